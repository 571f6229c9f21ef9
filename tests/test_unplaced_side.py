"""Detections without a ground point matched to tracks in the image (vigil.geo.unplaced_side):
the pixel gate against the projection of true ground points, and the nearest track chosen."""

from __future__ import annotations

import numpy as np
import pytest
from side_scene import scene_border, scene_camera, scene_hills

from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel
from vigil.geo.raycast import curvature_factor
from vigil.geo.unplaced_side import GATE_CHI2, match_unplaced, pixel_gate


@pytest.fixture(scope="module")
def hills() -> ElevationModel:
    return scene_hills()


@pytest.fixture(scope="module")
def cam(hills: ElevationModel) -> PinholeCamera:
    return scene_camera(hills)


def _pixel(cam: PinholeCamera, dem: ElevationModel, x: float, y: float) -> tuple[float, float]:
    z = dem.elevation_at(x, y) - curvature_factor() * ((x - cam.x) ** 2 + (y - cam.y) ** 2)
    u, v, _ = cam.project(x, y, z - cam.ground_z)
    return float(u), float(v)


def test_gate_holds_the_track_own_pixel_and_refuses_a_far_one(
    cam: PinholeCamera, hills: ElevationModel
) -> None:
    x, y = 120.0, 300.0
    u, v = _pixel(cam, hills, x, y)
    cov = np.diag([20.0**2, 60.0**2])[None]
    near = pixel_gate(cam, hills, [x], [y], cov, u + 0.5, v - 0.5)
    far = pixel_gate(cam, hills, [x], [y], cov, u + 60.0, v)
    assert near[0] < 1.0
    assert far[0] > GATE_CHI2
    # a wider track's covariance widens the gate in the image: the same pixel is nearer
    wide = pixel_gate(cam, hills, [x], [y], np.diag([600.0**2, 600.0**2])[None], u + 60.0, v)
    assert wide[0] < far[0]


def test_gate_is_infinite_for_bad_inputs(cam: PinholeCamera, hills: ElevationModel) -> None:
    cov = np.eye(2)[None] * 100.0
    u, v = _pixel(cam, hills, 0.0, 300.0)
    assert np.isinf(pixel_gate(cam, hills, [np.nan], [300.0], cov, u, v)[0])
    assert np.isinf(pixel_gate(cam, hills, [0.0], [300.0], cov, np.nan, v)[0])
    assert np.isinf(pixel_gate(cam, hills, [0.0], [300.0], cov * np.nan, u, v)[0])
    # a track behind the camera (north of the tower, which looks south)
    assert np.isinf(pixel_gate(cam, hills, [0.0], [3000.0], cov, u, v)[0])


def test_match_picks_the_nearest_track_in_the_gate(
    cam: PinholeCamera, hills: ElevationModel
) -> None:
    xs, ys = np.array([-300.0, 100.0, 400.0]), np.array([200.0, 250.0, 100.0])
    covs = np.repeat((np.eye(2) * 30.0**2)[None], 3, axis=0)
    for k in range(3):
        u, v = _pixel(cam, hills, xs[k], ys[k])
        assert match_unplaced(cam, hills, xs, ys, covs, u + 0.3, v - 0.7) == k
    assert match_unplaced(cam, hills, xs, ys, covs, 5.0, 5.0) == -1
    assert match_unplaced(cam, hills, [], [], np.zeros((0, 2, 2)), 5.0, 5.0) == -1


def test_monitor_pools_an_unplaced_margin_into_the_matching_track(
    cam: PinholeCamera, hills: ElevationModel
) -> None:
    from vigil.geo.image_side import ImageMargins, ImageSideMonitor, SideGeometry

    border = scene_border()
    geo = SideGeometry(cam, hills, (0.01, 0.01, 0.01), 1.5 * cam.max_range_m)
    mon = ImageSideMonitor(border, side_probability=0.99, image_only=True)
    x, y = np.array([-300.0, 200.0]), np.array([200.0, 300.0])
    u, v = _pixel(cam, hills, x[1], y[1])
    margin = ImageMargins(np.array([-6.0]), np.array([1.0]), np.array([0.1]))
    mon.unplaced.observe(10.0, geo, [u + 0.4], [v - 0.8], [3.0], margin)
    assert len(mon.unplaced) == 1
    covs = [np.eye(2) * 400.0, np.eye(2) * 400.0]
    # a track updated before the detection's time does not take it
    mon.update(["A", "B"], [9.0, 9.0], x, y, covs)
    assert len(mon.unplaced) == 1 and np.isnan(mon.evidence.z("B"))
    mon.update(["A", "B"], [11.0, 11.0], x, y, covs)
    assert len(mon.unplaced) == 0
    assert np.isnan(mon.evidence.z("A"))
    assert mon.evidence.z("B") < -5.0  # the margin, pooled: foreign side
    # device input is refused outside the image or with a box height out of range
    for bad in ((-1.0, v, 3.0), (u, cam.height + 1.0, 3.0), (u, v, 0.0), (np.nan, v, 3.0)):
        with pytest.raises(ValueError):
            mon.unplaced.observe(12.0, geo, [bad[0]], [bad[1]], [bad[2]], margin)
    with pytest.raises(ValueError):
        mon.unplaced.observe(float("nan"), geo, [u], [v], [3.0], margin)


def test_waiting_detections_are_bounded_per_camera_and_in_all(
    cam: PinholeCamera, hills: ElevationModel
) -> None:
    from vigil.geo.image_side import ImageMargins, SideGeometry
    from vigil.geo.unplaced_side import MAX_PER_CAMERA, MAX_WAITING, UnplacedDetections

    geo = SideGeometry(cam, hills, (0.01, 0.01, 0.01), 1.5 * cam.max_range_m)
    n = 3 * MAX_PER_CAMERA  # a hostile device message: far more sky blobs than a frame holds
    us = np.linspace(1.0, cam.width - 1.0, n)
    vs = np.full(n, 0.5 * cam.height)
    margins = ImageMargins(np.arange(n, dtype=float), np.ones(n), np.zeros(n))
    waiting = UnplacedDetections()
    # no track ever comes (nothing is attached, nothing ages out): only the caps hold it
    waiting.observe(1.0, geo, us, vs, np.full(n, 3.0), margins, camera_id="t01")
    assert len(waiting) == MAX_PER_CAMERA and waiting.dropped == n - MAX_PER_CAMERA
    cams = MAX_WAITING // MAX_PER_CAMERA + 2
    for k in range(cams):
        waiting.observe(2.0 + k, geo, us, vs, np.full(n, 3.0), margins, camera_id=f"c{k}")
    assert len(waiting) == MAX_WAITING
    assert waiting.dropped == (cams + 1) * n - MAX_WAITING
    # small caps: the oldest received go first, and what is left is the newest
    small = UnplacedDetections(max_per_camera=3, max_waiting=5)
    for k in range(4):
        one = ImageMargins(np.array([float(k)]), np.ones(1), np.zeros(1))
        small.observe(float(k), geo, [us[k]], [vs[k]], [3.0], one, camera_id="a")
    assert len(small) == 3 and small.dropped == 1
    for k in range(4):
        one = ImageMargins(np.array([10.0 + k]), np.ones(1), np.zeros(1))
        small.observe(10.0 + k, geo, [us[k]], [vs[k]], [3.0], one, camera_id="b")
    # "b"'s third pushes out "a"'s oldest left (6 > 5), its fourth its own first (4 > 3)
    assert len(small) == 5 and small.dropped == 1 + 1 + 1
    with pytest.raises(ValueError):
        UnplacedDetections(max_per_camera=0)
