"""The live map's camera coverage on the relief (issue 21): with a DEM in ``[terrain]``, each
tower's coverage layer is what its camera sees there (the report's viewsheds), so border hidden
behind a ridge is not drawn covered; the flat wedge drew it covered. Without terrain the layer
is today's wedges. The page gets GeoJSON in WGS84 with holes, its size bounded."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, shape

pytest.importorskip("starlette")

from test_relief_coverage import (  # noqa: E402
    TOWER,
    hidden_segments,
    sector,  # noqa: F401  (the fixture: the demo deployment with a ridge before t03)
)

from vigil.geo.camera import PinholeCamera  # noqa: E402
from vigil.geo.raycast import camera_on_terrain  # noqa: E402
from vigil.geo.site import tower_camera  # noqa: E402
from vigil.geo.terrain_coverage import visible_footprint  # noqa: E402
from vigil.ingest.schema import CameraCommand, topic_for  # noqa: E402
from vigil.maps.live.coverage import (  # noqa: E402
    COVERAGE_TOLERANCE_M,
    coverage_geojson,
    live_relief,
)
from vigil.maps.live.state import LiveState, latlon_ring  # noqa: E402


def local(frame, coverage: dict) -> MultiPolygon:
    """A page coverage (GeoJSON MultiPolygon, [lon, lat]) back in the sector's frame."""
    assert coverage["type"] == "MultiPolygon"

    def to_local(lonlat):
        x, y = frame.to_local(lonlat[:, 1], lonlat[:, 0])
        return np.column_stack([x, y])

    return shapely.transform(shape(coverage), to_local)


def wedge(frame, ring: list[list[float]]) -> Polygon:
    lat, lon = np.array(ring).T
    x, y = frame.to_local(lat, lon)
    return Polygon(np.column_stack([x, y]))


@pytest.fixture(scope="module")
def live(sector):  # noqa: F811
    d, _, _, _ = sector
    dem = live_relief(d.config.terrain, d.site, d.path.parent)
    assert dem is not None
    return LiveState(d.site, dem=dem), dem


def tower_view(state: LiveState, tower_id: str = TOWER) -> dict:
    return next(t for t in state.snapshot()["towers"] if t["id"] == tower_id)


def test_coverage_leaves_out_what_the_ridge_hides(sector, live) -> None:  # noqa: F811
    d, plain, _, cam = sector
    state, dem = live
    frame = d.site.frame()
    border = d.site.border(frame)
    hidden = hidden_segments(d, plain, cam)
    assert hidden
    lines = shapely.union_all([border.segments[i].line for i in hidden])
    view = tower_view(state)
    assert state.coverage_from == "viewsheds"
    coverage = local(frame, view["coverage"])
    # the flat wedge, as the layer drew it before terrain (and still sends as fov), covers
    # the hidden border; what the tower sees on the relief does not
    flat = wedge(frame, view["fov"])
    assert lines.intersection(flat).length > 0.5 * lines.length
    assert lines.intersection(coverage).length < 0.01 * lines.length
    # it sees a little before the ridge, and nothing behind it
    assert 0.0 < coverage.area < 0.3 * flat.area
    assert coverage.bounds[1] > cam.y - 600.0
    # it is the report's footprint (vigil analyze), simplified for the page
    report = visible_footprint(camera_on_terrain(tower_camera(cam_tower(d), frame), dem), dem)
    assert coverage.symmetric_difference(report).area < 0.02 * report.area
    # the other towers, with no ridge before them, see almost all their wedge
    for t in state.snapshot()["towers"]:
        if t["id"] != TOWER:
            assert local(frame, t["coverage"]).area > 0.9 * wedge(frame, t["fov"]).area, t["id"]


def cam_tower(d):
    return next(t for t in d.site.towers if t.id == TOWER)


def test_a_turned_camera_sees_its_viewshed_through_the_turned_image(sector, live) -> None:  # noqa: F811
    d, _, _, _ = sector
    _, dem = live
    state = LiveState(d.site, dem=dem)  # its own: the module's is not turned
    frame = d.site.frame()
    cmd = CameraCommand(camera=TOWER, time=1.0, pan_deg=10.0, tilt_deg=1.5, reason="cue")
    state.apply(topic_for(d.sector, cmd), cmd)
    batch = state.take_changes()
    assert batch is not None
    (view,) = batch["towers"]
    base = camera_on_terrain(tower_camera(cam_tower(d), frame), dem)
    turned = PinholeCamera(
        x=base.x,
        y=base.y,
        height_m=base.height_m,
        pan_deg=10.0,
        tilt_deg=1.5,
        hfov_deg=base.hfov_deg,
        width=base.width,
        height=base.height,
        max_range_m=base.max_range_m,
        ground_z=base.ground_z,
    )
    want = visible_footprint(turned, dem)
    got = local(frame, view["coverage"])
    assert want.area > 0.1e6
    assert got.symmetric_difference(want).area < 0.02 * want.area
    # turned north, away from the line: the coverage lies north of the mast
    assert got.bounds[1] > base.y - 50.0


def test_without_terrain_the_layer_is_todays_wedges(sector) -> None:  # noqa: F811
    d, _, _, _ = sector
    state = LiveState(d.site)
    frame = d.site.frame()
    assert state.coverage_from == "wedges"
    for t, view in zip(d.site.towers, state.snapshot()["towers"], strict=True):
        assert "coverage" not in view
        assert view["fov"] == latlon_ring(frame, tower_camera(t, frame).footprint())


def test_the_page_gets_rings_with_holes_and_a_bounded_size(sector) -> None:  # noqa: F811
    d, _, _, _ = sector
    frame = d.site.frame()
    # a disc of 2 km with a 200 m hole, its rim finely drawn
    disc = Point(0.0, 0.0).buffer(2000.0, 2000).difference(Point(500.0, 0.0).buffer(200.0, 64))
    out = coverage_geojson(frame, disc)
    (polygon,) = out["coordinates"]
    assert len(polygon) == 2  # the outer ring and the hole
    back = local(frame, out)
    # within the tolerance of the rims
    assert back.symmetric_difference(disc).area < COVERAGE_TOLERANCE_M * disc.length
    n = sum(len(r) for p in out["coordinates"] for r in p)
    assert n < len(shapely.get_coordinates(disc))  # simplified at a few metres
    small = coverage_geojson(frame, disc, max_vertices=100)
    assert sum(len(r) for p in small["coordinates"] for r in p) <= 100
    assert len(small["coordinates"][0]) == 2  # the hole is still a hole
    # a tower that sees nothing: an empty MultiPolygon
    assert coverage_geojson(frame, Polygon()) == {"type": "MultiPolygon", "coordinates": []}
