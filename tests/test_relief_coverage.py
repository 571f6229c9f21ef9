"""Coverage over the relief: with a DEM in ``[terrain]``, the planners' report counts only the
ground the towers see (viewsheds), so border hidden behind a hill is not covered, and the tower
advice goes where the hidden crossings are; the flat wedges counted that ground as covered."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from vigil.cli import main
from vigil.config import default_deployment_path, load
from vigil.geo.dem import ElevationModel, site_bounds
from vigil.geo.patterns.coverage import segment_coverage
from vigil.geo.patterns.synthetic import simulate_crossings
from vigil.geo.site import tower_camera
from vigil.geo.terrain_coverage import sector_coverage

TOWER = "t03"
#: A ridge this high (metres above the plain) runs east-west this far south of the tower,
#: across this half-width either side of it: it hides the border from the tower's mast.
RIDGE_M, RIDGE_SOUTH_M, RIDGE_HALF_WIDTH_M = 80.0, 500.0, 2000.0


@pytest.fixture(scope="module")
def sector(tmp_path_factory):
    """The demo deployment on a plain at 1200 m, and on the same plain with a ridge between
    tower t03 and the line (a GeoTIFF the deployment's [terrain] names)."""
    folder = tmp_path_factory.mktemp("relief")
    shipped = load(default_deployment_path())
    site, frame = shipped.site, shipped.site.frame()
    plain = ElevationModel.flat(site_bounds(site, 1000.0), 30.0, 1200.0, frame)
    cam = tower_camera(next(t for t in site.towers if t.id == TOWER), frame)
    ny, nx = plain.shape
    x = plain.x0 + plain.cell_m * np.arange(nx)
    y = plain.y0 + plain.cell_m * np.arange(ny)
    across = np.abs(x - cam.x) <= RIDGE_HALF_WIDTH_M
    ridge_z = RIDGE_M * np.exp(-(((y - (cam.y - RIDGE_SOUTH_M)) / 80.0) ** 2))
    ridge = ElevationModel(plain.z + ridge_z[:, None] * across[None, :], plain.x0, plain.y0,
                           plain.cell_m, frame)  # fmt: skip
    ridge.to_geotiff(folder / "ridge.tif")
    path = folder / "sector.toml"
    path.write_text(
        default_deployment_path().read_text(encoding="utf-8") + '\n[terrain]\ndem = "ridge.tif"\n',
        encoding="utf-8",
    )
    return load(path), plain, ridge, cam


def hidden_segments(d, plain, cam) -> list[int]:
    """Segments that tower t03 sees most of over the plain (within the ridge's reach)."""
    border = d.site.border(d.site.frame())
    fps, _ = sector_coverage(d.site, plain, candidate_spacing_m=None)
    covered = segment_coverage(border, fps)["covered"].to_numpy()
    mid = np.array([s.line.centroid.x for s in border.segments])
    near = np.abs(mid - cam.x) < RIDGE_HALF_WIDTH_M - 500.0
    return [int(i) for i in np.flatnonzero((covered > 0.5) & near)]


def drawn_footprints(html: str, frame) -> list:
    """The footprint polygons the report's map draws (``vigil-footprint``), local frame: each
    folium polygon's rings (the outer one, then its holes) as written in the page."""
    out = []
    for m in re.finditer(r"L\.polygon\(\s*(\[.*?\])\s*,\s*(\{.*?\})\s*\)", html, re.S):
        if "vigil-footprint" not in m.group(2):
            continue
        rings = json.loads(m.group(1))
        if rings and isinstance(rings[0][0], float | int):
            rings = [rings]  # one ring: folium writes it unnested
        local = []
        for ring in rings:
            la, lo = np.asarray(ring, dtype=float).T
            x, y = frame.to_local(la, lo)
            local.append(list(zip(x, y, strict=True)))
        out.append(Polygon(local[0], local[1:]))
    return out


def test_border_behind_a_ridge_is_not_covered(sector) -> None:
    d, plain, ridge, cam = sector
    border = d.site.border(d.site.frame())
    hidden = hidden_segments(d, plain, cam)
    assert len(hidden) >= 1
    fps, _ = sector_coverage(d.site, ridge, candidate_spacing_m=None)
    on_ridge = segment_coverage(border, fps)["covered"].to_numpy()
    assert np.all(on_ridge[hidden] < 0.01), on_ridge[hidden]
    # the flat wedge, as the coverage was before terrain, counts them covered
    wedge = segment_coverage(border, [cam.footprint()])["covered"].to_numpy()
    assert np.all(wedge[hidden] > 0.5)
    # elsewhere the ridge changes nothing
    fps_plain, _ = sector_coverage(d.site, plain, candidate_spacing_m=None)
    on_plain = segment_coverage(border, fps_plain)["covered"].to_numpy()
    far = np.array([abs(s.line.centroid.x - cam.x) > RIDGE_HALF_WIDTH_M + 1000.0
                    for s in border.segments])  # fmt: skip
    assert np.allclose(on_ridge[far], on_plain[far])


def test_vigil_analyze_counts_what_the_relief_lets_towers_see(sector, tmp_path: Path) -> None:
    d, plain, ridge, cam = sector
    border = d.site.border(d.site.frame())
    hidden = hidden_segments(d, plain, cam)
    rates = np.full(len(border.segments), 0.2)
    rates[hidden] = 8.0  # the crossings go where the ridge hides them
    table, _ = simulate_crossings(border, days=60, rates=rates, timezone="UTC", seed=21)
    table.to_csv(tmp_path / "crossings.csv", index=False)
    out = tmp_path / "report"
    argv = ["analyze", str(tmp_path / "crossings.csv"), "--out", str(out)]
    assert main([*argv, "--deployment", str(d.path)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["coverage_from"] == "viewsheds"
    segs = gpd.read_file(out / "segments.gpkg")
    ids = [border.segment_ids[i] for i in hidden]
    assert (segs.set_index("segment_id").loc[ids, "covered"] < 0.01).all()
    assert set(ids) <= set(summary["uncovered_segments"])
    # the advice: one more tower where the hidden crossings are (the flat wedges had them
    # covered already, so it would have gone elsewhere)
    chainage = float(summary["best_new_tower"]["candidate"][1:])
    lo = min(border.segments[i].chainage_start_km for i in hidden) * 1000.0
    hi = max(border.segments[i].chainage_end_km for i in hidden) * 1000.0
    assert lo - 1000.0 <= chainage <= hi + 1000.0, (chainage, lo, hi)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "hills hiding the rest" in html
    # the map draws the viewsheds the figure counted, not the flat wedges
    drawn = drawn_footprints(html, d.site.frame())
    fps, _ = sector_coverage(d.site, ridge, candidate_spacing_m=None)
    want, got = shapely.union_all(fps), shapely.union_all(drawn)
    assert want.area > 1e6
    assert got.symmetric_difference(want).area < 0.01 * want.area
    lines = shapely.union_all([border.segments[i].line for i in hidden])
    assert lines.intersection(cam.footprint()).length > 0.5 * lines.length
    assert lines.intersection(got).length < 0.01 * lines.length
