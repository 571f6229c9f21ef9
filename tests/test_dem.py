"""Elevation model: a GeoTIFF in its own CRS lands in the right place in the sector frame;
settings decode strictly; flat ground with a warning; the synthetic relief is seeded,
grid-independent and of the region's amplitude."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from vigil.geo.dem import (
    ElevationModel,
    FlatGroundWarning,
    SyntheticRelief,
    TerrainError,
    TerrainSettings,
    load_terrain,
    read_geotiff,
    site_bounds,
)
from vigil.geo.frames import LocalFrame
from vigil.geo.relief import relief_height, synthetic_relief
from vigil.geo.site import Site

OLINDA = Path(__file__).parent / "data" / "terrain" / "olinda_dem_utm25s.tif"
OLINDA_FRAME = LocalFrame(-8.0, -34.87)
# Local bounds well inside the file's 10 x 10 km footprint.
OLINDA_BOUNDS = (-4500.0, -4000.0, 4500.0, 5000.0)


def _source_cells() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each source cell's centre as (lat, lon), from the file's own geotransform and CRS
    through pyproj (not through the reader under test), and its height."""
    with rasterio.open(OLINDA) as src:
        z = src.read(1).astype(np.float64)
        a = src.transform
        crs = src.crs
    rows, cols = np.mgrid[0 : z.shape[0], 0 : z.shape[1]]
    east = a.c + (cols + 0.5) * a.a
    north = a.f + (rows + 0.5) * a.e
    to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = to_wgs84.transform(east.ravel(), north.ravel())
    return np.asarray(lat), np.asarray(lon), z.ravel()


def test_real_geotiff_in_utm_lands_on_its_cells_in_the_local_frame() -> None:
    # Nearest resampling onto a fine grid: at a source cell's centre the local grid must hold
    # exactly that cell's height. A flipped row order, swapped axes, a half-cell shift (45 m)
    # or an ignored CRS would put other cells' heights there.
    dem = read_geotiff(OLINDA, OLINDA_FRAME, OLINDA_BOUNDS, 15.0, resampling="nearest")
    lat, lon, z = _source_cells()
    x, y = OLINDA_FRAME.to_local(lat, lon)
    b = dem.bounds
    inside = (x > b[0]) & (x < b[2]) & (y > b[1]) & (y < b[3])
    assert inside.sum() > 5000
    got = dem.elevation_at(x[inside], y[inside])
    assert np.allclose(got, z[inside], rtol=0.0, atol=1e-9)


def test_real_geotiff_geography_sea_east_hills_west() -> None:
    dem = read_geotiff(OLINDA, OLINDA_FRAME, OLINDA_BOUNDS, 30.0)
    # Off Olinda's beach, in the Atlantic; and on the tabuleiro hills north-west of Recife.
    sea = OLINDA_FRAME.to_local([-8.00, -8.03], [-34.83, -34.84])
    hills = OLINDA_FRAME.to_local([-7.97], [-34.90])
    assert np.all(dem.elevation_at(*sea) <= 1.0)
    assert np.all(dem.elevation_at(*hills) > 25.0)


def test_real_geotiff_bilinear_stays_within_the_source_range() -> None:
    dem = read_geotiff(OLINDA, OLINDA_FRAME, OLINDA_BOUNDS, 30.0)
    assert dem.frame == OLINDA_FRAME
    assert np.all(np.isfinite(dem.z))
    assert float(dem.z.min()) >= -2.0 and float(dem.z.max()) <= 89.0


def test_geotiff_written_and_read_back_is_the_same_grid(tmp_path: Path) -> None:
    frame = LocalFrame(31.33, -110.94)
    dem = synthetic_relief(SyntheticRelief(seed=3), (-3000.0, -2000.0, 3000.0, 2500.0), 50.0, frame)
    path = dem.to_geotiff(tmp_path / "relief.tif")
    back = read_geotiff(path, frame, dem.bounds, 50.0, resampling="nearest")
    assert back.shape == dem.shape
    assert np.allclose(back.z, dem.z)


def test_uncovered_cells_are_nan_and_no_overlap_is_refused() -> None:
    dem = read_geotiff(OLINDA, OLINDA_FRAME, (-4000.0, -4000.0, 9000.0, 4000.0), 100.0)
    x = np.array([0.0, 8500.0])
    got = dem.elevation_at(x, np.zeros(2))
    assert np.isfinite(got[0]) and np.isnan(got[1])
    with pytest.raises(TerrainError, match="does not cover"):
        read_geotiff(OLINDA, LocalFrame(31.33, -110.94), OLINDA_BOUNDS, 100.0)


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(TerrainError, match="no such file"):
        read_geotiff(tmp_path / "none.tif", OLINDA_FRAME, OLINDA_BOUNDS)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff")
    with pytest.raises(TerrainError, match="junk.tif"):
        read_geotiff(junk, OLINDA_FRAME, OLINDA_BOUNDS)
    with pytest.raises(TerrainError, match="band"):
        read_geotiff(OLINDA, OLINDA_FRAME, OLINDA_BOUNDS, band=2)
    with pytest.raises(TerrainError, match="at most"):
        read_geotiff(OLINDA, OLINDA_FRAME, (-1e5, -1e5, 1e5, 1e5), 1.0)


def test_settings_decode_strictly() -> None:
    s = msgspec.convert({"dem": "dem.tif", "cell_m": 10.0}, TerrainSettings)
    assert s.dem == "dem.tif" and s.cell_m == 10.0 and s.resampling == "bilinear"
    with pytest.raises(msgspec.ValidationError, match="demm"):
        msgspec.convert({"demm": "x"}, TerrainSettings)
    with pytest.raises(msgspec.ValidationError, match="cell_m"):
        msgspec.convert({"cell_m": 0.0}, TerrainSettings)
    with pytest.raises(msgspec.ValidationError, match="resampling"):
        msgspec.convert({"resampling": "lanczos"}, TerrainSettings)
    with pytest.raises(msgspec.ValidationError, match="not both"):
        msgspec.convert({"dem": "x.tif", "synthetic": {"seed": 1}}, TerrainSettings)
    with pytest.raises(msgspec.ValidationError, match="relief_m"):
        msgspec.convert({"synthetic": {"relief_m": -1.0}}, TerrainSettings)


def _site() -> Site:
    return msgspec.convert(
        {
            "sector": {"name": "t", "centre": [31.33, -110.94]},
            "towers": [{"id": "a", "lat": 31.345, "lon": -110.94, "range_m": 3000.0}],
        },
        Site,
    )


def test_no_dem_is_flat_ground_with_a_warning() -> None:
    site = _site()
    with pytest.warns(FlatGroundWarning, match="flat"):
        dem = load_terrain(None, site)
    assert np.all(dem.z == 0.0)
    xmin, ymin, xmax, ymax = site_bounds(site, TerrainSettings().margin_m)
    assert dem.bounds[0] == xmin and dem.bounds[1] == ymin
    assert dem.bounds[2] >= xmax and dem.bounds[3] >= ymax
    # the tower's whole range is inside
    assert xmax - xmin >= 6000.0


def test_dem_path_is_taken_relative_to_the_deployment(tmp_path: Path) -> None:
    site = _site()
    frame = site.frame()
    src = synthetic_relief(SyntheticRelief(seed=5), site_bounds(site, 2200.0), 60.0, frame)
    (tmp_path / "terrain").mkdir()
    src.to_geotiff(tmp_path / "terrain" / "sector.tif")
    settings = TerrainSettings(dem="terrain/sector.tif", cell_m=60.0)
    dem = load_terrain(settings, site, base_dir=tmp_path)
    assert dem.frame == frame
    x = np.linspace(-2000.0, 2000.0, 9)
    assert np.allclose(dem.elevation_at(x, x / 2), src.elevation_at(x, x / 2), atol=1e-6)
    with pytest.raises(TerrainError, match="no such file"):
        load_terrain(settings, site, base_dir=tmp_path / "elsewhere")


def test_synthetic_relief_is_seeded_and_independent_of_the_grid() -> None:
    spec = SyntheticRelief(seed=11)
    coarse = synthetic_relief(spec, (0.0, 0.0, 3000.0, 3000.0), 60.0)
    fine = synthetic_relief(spec, (0.0, 0.0, 3000.0, 3000.0), 30.0)
    assert np.array_equal(coarse.z, fine.z[::2, ::2])
    other = synthetic_relief(SyntheticRelief(seed=12), (0.0, 0.0, 3000.0, 3000.0), 60.0)
    assert not np.allclose(coarse.z, other.z)


def test_synthetic_relief_has_the_regions_amplitude_and_washes() -> None:
    spec = SyntheticRelief(seed=2)
    dem = synthetic_relief(spec, (-20000.0, -4000.0, 20000.0, 8000.0), 30.0)
    # hills: standard deviation near relief_m once the regional slope is taken out
    y = dem.y0 + dem.cell_m * np.arange(dem.shape[0])
    detrended = dem.z - spec.rise_north * y[:, None]
    assert 0.6 * spec.relief_m < float(np.std(detrended)) < 1.6 * spec.relief_m
    # 100-150 m or so between ridge and valley within 3 km windows (Nogales hills)
    windows = [np.ptp(dem.z[i : i + 100, j : j + 100]) for i in (0, 200) for j in (0, 600, 1200)]
    assert 60.0 < float(np.median(windows)) < 250.0
    # washes: the same ground without them is higher by up to wash_depth_m, and the cut
    # covers a share of the ground close to (2 * width / spacing)
    no_wash = synthetic_relief(
        msgspec.structs.replace(spec, wash_depth_m=0.0), (-20000.0, -4000.0, 20000.0, 8000.0), 30.0
    )
    cut = no_wash.z - dem.z
    assert float(cut.max()) <= spec.wash_depth_m + 1e-9
    assert float(cut.max()) > 0.9 * spec.wash_depth_m
    share = float(np.mean(cut > 0.5))
    assert 0.5 * 2 * spec.wash_width_m / spec.wash_spacing_m < share < 0.2


def test_relief_height_matches_the_grid_at_cell_centres() -> None:
    spec = SyntheticRelief(seed=4)
    dem = synthetic_relief(spec, (100.0, -500.0, 1300.0, 700.0), 40.0)
    i, j = 7, 11
    x, y = dem.x0 + j * dem.cell_m, dem.y0 + i * dem.cell_m
    assert math.isclose(float(relief_height(spec, x, y)), float(dem.z[i, j]), abs_tol=1e-9)


def test_elevation_model_validates_and_interpolates() -> None:
    with pytest.raises(TerrainError, match="shape"):
        ElevationModel(np.zeros((1, 5)), 0.0, 0.0, 1.0)
    with pytest.raises(TerrainError, match="cell_m"):
        ElevationModel(np.zeros((3, 3)), 0.0, 0.0, -1.0)
    dem = ElevationModel(np.array([[0.0, 10.0], [20.0, 30.0]]), 100.0, 200.0, 10.0)
    assert float(dem.elevation_at(105.0, 205.0)) == pytest.approx(15.0)
    assert float(dem.elevation_at(110.0, 200.0)) == pytest.approx(10.0)
    assert np.isnan(dem.elevation_at(99.0, 205.0))
