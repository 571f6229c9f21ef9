"""LocalFrame: metric frame per sector, vectorised both ways, round trip under 1 mm."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.geo.frames import FrameError, LocalFrame


@pytest.mark.parametrize(
    "centre",
    [(31.33, -110.94), (49.0, -122.75), (25.97, -97.14), (64.0, -141.0)],
    ids=["nogales", "blaine", "brownsville", "alaska"],
)
def test_round_trip_under_a_millimetre_within_100_km(centre: tuple[float, float]) -> None:
    frame = LocalFrame(*centre)
    rng = np.random.default_rng(7)
    angle = rng.uniform(0.0, 2 * np.pi, 50_000)
    dist = np.sqrt(rng.uniform(0.0, 1.0, 50_000)) * 100_000.0
    x, y = dist * np.sin(angle), dist * np.cos(angle)
    lat, lon = frame.to_wgs84(x, y)
    x2, y2 = frame.to_local(lat, lon)
    assert np.max(np.hypot(x2 - x, y2 - y)) < 1e-3


def test_axes_are_east_and_north_in_metres() -> None:
    frame = LocalFrame(31.33, -110.94)
    # 0.01 degree of latitude is about 1109 m here; of longitude about 951 m.
    x, y = frame.to_local([31.34, 31.33], [-110.94, -110.93])
    assert abs(x[0]) < 1e-6 and 1100 < y[0] < 1120
    assert 940 < x[1] < 960 and abs(y[1]) < 1.0


def test_distances_are_true_near_the_centre() -> None:
    from pyproj import Geod

    frame = LocalFrame(31.33, -110.94)
    lat = np.array([31.20, 31.60])
    lon = np.array([-111.30, -110.60])
    x, y = frame.to_local(lat, lon)
    _, _, geodesic = Geod(ellps="WGS84").inv(lon[0], lat[0], lon[1], lat[1])
    assert abs(np.hypot(x[1] - x[0], y[1] - y[0]) - geodesic) / geodesic < 1e-3


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(np.nan, 0.0), (91.0, 0.0), (0.0, -181.0), (0.0, np.inf)],
    ids=["nan", "lat-range", "lon-range", "inf"],
)
def test_bad_coordinates_name_the_index_and_value(lat: float, lon: float) -> None:
    frame = LocalFrame(31.33, -110.94)
    with pytest.raises(FrameError, match="index 1"):
        frame.to_local([31.0, lat], [-110.0, lon])


def test_bad_centre_is_refused() -> None:
    with pytest.raises(FrameError, match="lat0"):
        LocalFrame(95.0, 0.0)


NOGALES = LocalFrame(31.33, -110.94)


@settings(max_examples=200, deadline=None)
@given(st.floats(-100_000, 100_000, allow_nan=False), st.floats(-100_000, 100_000, allow_nan=False))
def test_round_trip_property(x: float, y: float) -> None:
    lat, lon = NOGALES.to_wgs84([x], [y])
    x2, y2 = NOGALES.to_local(lat, lon)
    assert np.hypot(x2[0] - x, y2[0] - y) < 1e-3


def test_frame_agrees_with_its_crs() -> None:
    """The fast pipeline and the frame's CRS (as geopandas would use it) give the same metres."""
    from pyproj import Transformer

    frame = LocalFrame(31.33, -110.94)
    rng = np.random.default_rng(2)
    lat = 31.33 + rng.uniform(-0.9, 0.9, 1000)
    lon = -110.94 + rng.uniform(-1.0, 1.0, 1000)
    x, y = frame.to_local(lat, lon)
    ref_x, ref_y = Transformer.from_crs("EPSG:4326", frame.crs, always_xy=True).transform(lon, lat)
    assert np.max(np.hypot(x - ref_x, y - ref_y)) < 1e-6
