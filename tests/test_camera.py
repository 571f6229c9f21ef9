"""Pinhole camera geometry: ground <-> pixel round trips, footprints, pointing."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from vigil.detection.video import _CameraSection
from vigil.geo.camera import CAMERA_BOUNDS, MAX_FRAME_RATE_HZ, CameraError, PinholeCamera
from vigil.geo.frames import LocalFrame
from vigil.geo.site import Aircraft, Tower, tower_camera


@pytest.fixture
def cam() -> PinholeCamera:
    return PinholeCamera(
        x=100.0, y=-50.0, height_m=25.0, pan_deg=200.0, tilt_deg=1.5, hfov_deg=24.0
    )


def test_ground_pixel_round_trip(cam: PinholeCamera) -> None:
    rng = np.random.default_rng(0)
    u = rng.uniform(0, cam.width, 500)
    v = rng.uniform(cam.height / 2 + 5, cam.height, 500)
    gx, gy, hit = cam.to_ground(u, v)
    assert hit.all()
    u2, v2, depth = cam.project(gx, gy)
    assert np.all(depth > 0)
    assert np.allclose(u, u2, atol=1e-6) and np.allclose(v, v2, atol=1e-6)


def test_centre_pixel_hits_the_ground_at_the_tilt_range(cam: PinholeCamera) -> None:
    gx, gy, hit = cam.to_ground([cam.width / 2], [cam.height / 2])
    expected = cam.height_m / np.tan(np.radians(cam.tilt_deg))
    assert hit[0]
    assert np.hypot(gx[0] - cam.x, gy[0] - cam.y) == pytest.approx(expected, rel=1e-9)
    azimuth = np.degrees(np.arctan2(gx[0] - cam.x, gy[0] - cam.y)) % 360
    assert azimuth == pytest.approx(cam.pan_deg)


def test_focal_length_by_hand() -> None:
    c = PinholeCamera(x=0, y=0, height_m=10, pan_deg=0, tilt_deg=0, hfov_deg=90.0, width=640)
    assert c.focal_px == pytest.approx(320.0)
    # a point 100 m north and 100 m east is at the right edge of a 90 degree view
    u, v, _ = c.project([100.0], [100.0], [10.0])
    assert u[0] == pytest.approx(640.0) and v[0] == pytest.approx(240.0)


def test_sky_pixels_do_not_hit_the_ground(cam: PinholeCamera) -> None:
    _, _, hit = cam.to_ground([320.0], [0.0])
    assert not hit[0]


def test_footprint_contains_what_is_in_view(cam: PinholeCamera) -> None:
    import shapely

    fp = cam.footprint()
    rng = np.random.default_rng(1)
    x = cam.x + rng.uniform(-5000, 5000, 4000)
    y = cam.y + rng.uniform(-5000, 5000, 4000)
    inside = cam.in_view(x, y)
    assert inside.sum() > 50
    contained = shapely.contains_xy(fp.buffer(1.0), x, y)
    assert np.all(contained[inside])
    assert fp.area < np.pi * cam.max_range_m**2


def test_pointed_at_centres_the_target(cam: PinholeCamera) -> None:
    turned = cam.pointed_at(cam.x + 800.0, cam.y + 1200.0)
    u, v, _ = turned.project([cam.x + 800.0], [cam.y + 1200.0])
    assert u[0] == pytest.approx(cam.width / 2) and v[0] == pytest.approx(cam.height / 2)


@pytest.mark.parametrize(
    "kwargs", [{"height_m": 0.0}, {"hfov_deg": 200.0}, {"width": 2}, {"tilt_deg": np.nan}]
)
def test_impossible_cameras_are_refused(kwargs: dict) -> None:
    base = dict(x=0.0, y=0.0, height_m=20.0, pan_deg=0.0, tilt_deg=2.0, hfov_deg=30.0)
    base.update(kwargs)
    with pytest.raises(CameraError, match=next(iter(kwargs))):
        PinholeCamera(**base)


# -- one set of bounds ------------------------------------------------------------------------

#: Where a camera is declared (struct, field) for each key of CAMERA_BOUNDS.
DECLARED = [
    (Tower, "tilt_deg", "tilt_deg"),
    (Tower, "hfov_deg", "hfov_deg"),
    (Tower, "width", "width"),
    (Tower, "height", "height"),
    (Tower, "range_m", "max_range_m"),
    (Aircraft, "hfov_deg", "hfov_deg"),
    (Aircraft, "width", "width"),
    (Aircraft, "height", "height"),
    (_CameraSection, "height_m", "height_m"),
    (_CameraSection, "tilt_deg", "tilt_deg"),
    (_CameraSection, "hfov_deg", "hfov_deg"),
    (_CameraSection, "width", "width"),
    (_CameraSection, "height", "height"),
    (_CameraSection, "range_m", "max_range_m"),
]


def _field_type(struct: type, field: str) -> msgspec.inspect.Type:
    """The bounded type of a struct's field (through descriptions and ``| None``)."""
    ftype = next(f.type for f in msgspec.inspect.type_info(struct).fields if f.name == field)
    if isinstance(ftype, msgspec.inspect.UnionType):
        ftype = next(t for t in ftype.types if not isinstance(t, msgspec.inspect.NoneType))
    while isinstance(ftype, msgspec.inspect.Metadata):
        ftype = ftype.type
    return ftype


@pytest.mark.parametrize(
    ("struct", "field", "key"), DECLARED, ids=[f"{s.__name__}.{f}" for s, f, _ in DECLARED]
)
def test_every_camera_declaration_has_the_geometry_bounds(struct, field, key) -> None:
    ftype = _field_type(struct, field)
    assert (ftype.ge, ftype.le) == CAMERA_BOUNDS[key]


def test_frame_rate_bound_is_shared() -> None:
    for struct in (Tower, _CameraSection):
        ftype = _field_type(struct, "fps")
        assert (ftype.gt, ftype.le) == (0.0, MAX_FRAME_RATE_HZ)


@pytest.mark.parametrize(
    ("hfov", "ok"),
    [(0.5, True), (100.0, True), (0.05, False), (175.0, False)],
    ids=["tele-lens", "wide-lens", "below", "above"],
)
def test_a_tower_lens_is_valid_in_the_deployment_exactly_when_the_geometry_takes_it(
    hfov: float, ok: bool
) -> None:
    raw = {"id": "t1", "lat": 31.34, "lon": -110.95, "hfov_deg": hfov}
    if ok:
        cam = tower_camera(msgspec.convert(raw, Tower), LocalFrame(31.33, -110.94))
        assert cam.hfov_deg == hfov
        return
    with pytest.raises(msgspec.ValidationError, match="hfov_deg"):
        msgspec.convert(raw, Tower)
    base = dict(x=0.0, y=0.0, height_m=20.0, pan_deg=0.0, tilt_deg=2.0)
    with pytest.raises(CameraError, match="hfov_deg"):
        PinholeCamera(**base, hfov_deg=hfov)
