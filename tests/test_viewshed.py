"""Viewsheds against GDAL's gdal_viewshed (Debian gdal-bin) cell by cell on the same DEM and
observer, on synthetic hills and on a real DEM; the horizon on a curved earth; a wall's shadow."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio

from vigil.geo.dem import ElevationModel, SyntheticRelief, TerrainError, read_geotiff
from vigil.geo.frames import LocalFrame
from vigil.geo.raycast import CURVATURE_REFRACTION, curvature_factor
from vigil.geo.relief import synthetic_relief
from vigil.geo.viewshed import HIDDEN, OUT_OF_RANGE, VISIBLE, viewsheds

GDAL_VIEWSHED = shutil.which("gdal_viewshed")
needs_gdal = pytest.mark.skipif(
    GDAL_VIEWSHED is None, reason="gdal_viewshed (Debian gdal-bin) is not installed"
)
FRAME = LocalFrame(31.33, -110.94)
OLINDA = Path(__file__).parent / "data" / "terrain" / "olinda_dem_utm25s.tif"


def gdal_viewshed(
    dem: ElevationModel,
    tif: Path,
    x: float,
    y: float,
    height: float,
    target: float,
    max_distance: float,
    coeff: float,
) -> np.ndarray:
    """Run gdal_viewshed on the DEM's GeoTIFF and lay its answer on the DEM's grid (codes as
    :mod:`vigil.geo.viewshed`'s; cells outside GDAL's output window are out of range)."""
    out = tif.with_name("viewshed.tif")
    # plain floats: numpy's repr, np.float64(...), would read as 0 in gdal_viewshed
    x, y, height, target = float(x), float(y), float(height), float(target)
    max_distance, coeff = float(max_distance), float(coeff)
    args = [GDAL_VIEWSHED, "-q", "-ox", repr(x), "-oy", repr(y), "-oz", repr(height)]
    args += ["-tz", repr(target), "-md", repr(max_distance), "-cc", repr(coeff)]
    args += ["-vv", str(VISIBLE), "-iv", str(HIDDEN), "-ov", str(OUT_OF_RANGE)]
    subprocess.run([*args, str(tif), str(out)], check=True, timeout=120)
    with rasterio.open(out) as ds:
        codes = ds.read(1)
        t = ds.transform
    grid = np.full(dem.shape, OUT_OF_RANGE, dtype=np.uint8)
    half = dem.cell_m / 2.0
    col0 = round((t.c - (dem.x0 - half)) / dem.cell_m)
    top = dem.y0 + (dem.shape[0] - 1) * dem.cell_m + half
    row0 = round((top - t.f) / dem.cell_m)
    north_up = grid[::-1]
    north_up[row0 : row0 + codes.shape[0], col0 : col0 + codes.shape[1]] = codes
    return grid


def on_cell(dem: ElevationModel, x: float, y: float) -> tuple[float, float]:
    """The centre of the cell nearest (x, y): GDAL and Vigil then pick the same cell."""
    return (
        dem.x0 + round((x - dem.x0) / dem.cell_m) * dem.cell_m,
        dem.y0 + round((y - dem.y0) / dem.cell_m) * dem.cell_m,
    )


@pytest.fixture(scope="module")
def hills(tmp_path_factory: pytest.TempPathFactory) -> tuple[ElevationModel, Path]:
    dem = synthetic_relief(SyntheticRelief(seed=1), (-6000.0, -5000.0, 6000.0, 5000.0), 30.0, FRAME)
    return dem, dem.to_geotiff(tmp_path_factory.mktemp("hills") / "dem.tif")


CASES = [
    # x, y, eye height, target height, max distance, curvature coefficient
    (0.0, 0.0, 25.0, 0.0, 4000.0, CURVATURE_REFRACTION),
    (1200.0, -900.0, 10.0, 1.7, 0.0, CURVATURE_REFRACTION),
    (-3000.0, 2000.0, 25.0, 0.0, 3000.0, 0.0),
    (4500.0, 4000.0, 40.0, 2.0, 5000.0, 1.0),
    (-5900.0, -4900.0, 15.0, 0.0, 0.0, CURVATURE_REFRACTION),
]


@needs_gdal
@pytest.mark.parametrize("case", CASES, ids=["tower", "no-limit", "flat-earth", "corner", "edge"])
def test_agrees_with_gdal_viewshed_on_hills(hills, case) -> None:
    dem, tif = hills
    x, y, h, t, md, cc = case
    x, y = on_cell(dem, x, y)
    want = gdal_viewshed(dem, tif, x, y, h, t, md, cc)
    got = viewsheds(dem, [x], [y], h, target_height_m=t, max_distance_m=md, curvature_coeff=cc)
    codes = got.codes[0]
    assert np.mean(codes == want) >= 0.99
    in_range = want != OUT_OF_RANGE
    assert np.mean(codes[in_range] == want[in_range]) >= 0.99
    # the hills hide a real share of the ground, so agreement is not all-visible by chance
    assert 0.02 < np.mean(want[in_range] == VISIBLE) < 0.95


@needs_gdal
def test_agrees_with_gdal_viewshed_on_a_real_dem(tmp_path: Path) -> None:
    frame = LocalFrame(-8.0, -34.87)
    dem = read_geotiff(OLINDA, frame, (-4500.0, -4000.0, 4500.0, 5000.0), 30.0)
    tif = dem.to_geotiff(tmp_path / "olinda.tif")
    x, y = on_cell(dem, -2000.0, 1000.0)  # on the hills west of Olinda
    want = gdal_viewshed(dem, tif, x, y, 20.0, 1.7, 6000.0, CURVATURE_REFRACTION)
    got = viewsheds(dem, [x], [y], 20.0, target_height_m=1.7, max_distance_m=6000.0).codes[0]
    assert np.mean(got == want) >= 0.99
    assert 0.05 < np.mean(want == VISIBLE) < 0.95


@needs_gdal
def test_curvature_and_refraction_as_gdal_applies_them(hills) -> None:
    # Without a range limit, curvature changes about 0.1 % of the cells; the kernel with GDAL's
    # coefficient must be much closer to GDAL than the kernel on a flat earth.
    dem, tif = hills
    x, y = on_cell(dem, 1200.0, -900.0)
    want = gdal_viewshed(dem, tif, x, y, 10.0, 1.7, 0.0, CURVATURE_REFRACTION)
    curved = viewsheds(dem, [x], [y], 10.0, target_height_m=1.7).codes[0]
    flat = viewsheds(dem, [x], [y], 10.0, target_height_m=1.7, curvature_coeff=0.0).codes[0]
    wrong_flat = int(np.sum(flat != want))
    assert wrong_flat > 100
    assert np.sum(curved != want) * 5 < wrong_flat


def test_many_observers_equal_one_at_a_time(hills) -> None:
    dem, _ = hills
    xs = np.array([0.0, 1500.0, -2500.0])
    ys = np.array([0.0, -1000.0, 2500.0])
    together = viewsheds(dem, xs, ys, [25.0, 10.0, 30.0], max_distance_m=3000.0)
    for k in range(3):
        alone = viewsheds(
            dem, xs[k : k + 1], ys[k : k + 1], [25.0, 10.0, 30.0][k], max_distance_m=3000.0
        )
        assert np.array_equal(together.codes[k], alone.codes[0])
    assert np.array_equal(together.any_visible(), together.visible.any(axis=0))
    seen = together.seen_at(xs, ys)
    assert seen.shape == (3, 3) and all(seen[k, k] for k in range(3))


def test_horizon_on_a_curved_earth() -> None:
    # Flat ground seen from 25 m: with curvature the ground is hidden past the horizon, where
    # the sight line's slope -h/d - curv * d is steepest, d = sqrt(h / curv) (19.3 km)
    dem = ElevationModel.flat((0.0, -200.0, 30_000.0, 200.0), 100.0)
    got = viewsheds(dem, [0.0], [0.0], 25.0).codes[0]
    row = got[2]
    d = dem.x0 + dem.cell_m * np.arange(dem.shape[1])
    horizon = math.sqrt(25.0 / curvature_factor(CURVATURE_REFRACTION))
    assert np.all(row[d < horizon - dem.cell_m] == VISIBLE)
    assert np.all(row[d > horizon + dem.cell_m] == HIDDEN)
    flat = viewsheds(dem, [0.0], [0.0], 25.0, curvature_coeff=0.0).codes[0]
    assert np.all(flat[2] == VISIBLE)


def test_a_wall_casts_its_shadow() -> None:
    # flat ground from x = -1000 to 1000 m, a 20 m wall at x = 0, the eye 10 m up at -1000 m:
    # the sight line over the crest rises 1 m per 100 m, so the ground behind the wall is all
    # hidden, and a 25 m target behind it is seen only while 25 >= 20 + x / 100, to x = 500 m
    z = np.zeros((21, 201))
    z[:, 100] = 20.0
    dem = ElevationModel(z, -1000.0, -200.0, 10.0)
    x = dem.x0 + dem.cell_m * np.arange(dem.shape[1])
    got = viewsheds(dem, [-1000.0], [0.0], 10.0, curvature_coeff=0.0)
    row = got.codes[0, 20]
    assert np.all(row[x <= 0.0] == VISIBLE)
    assert np.all(row[x > 0.0] == HIDDEN)
    tall = viewsheds(dem, [-1000.0], [0.0], 10.0, target_height_m=25.0, curvature_coeff=0.0)
    row = tall.codes[0, 20]
    assert np.all(row[(x > 0.0) & (x < 495.0)] == VISIBLE)
    assert np.all(row[x > 505.0] == HIDDEN)


def test_bad_observers_are_refused() -> None:
    dem = ElevationModel.flat((0.0, 0.0, 1000.0, 1000.0), 10.0)
    with pytest.raises(TerrainError, match="outside"):
        viewsheds(dem, [0.0, 5000.0], [0.0, 0.0], 10.0)
    with pytest.raises(TerrainError, match="observers"):
        viewsheds(dem, [], [], 10.0)
    z = dem.z.copy()
    z[0, 0] = np.nan
    with pytest.raises(TerrainError, match="no known height"):
        viewsheds(ElevationModel(z, 0.0, 0.0, 10.0), [0.0], [0.0], 10.0)
    with pytest.raises(TerrainError, match="max_distance_m"):
        viewsheds(dem, [0.0], [0.0], 10.0, max_distance_m=-1.0)
