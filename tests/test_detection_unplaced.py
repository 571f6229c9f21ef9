"""Blobs the ground cannot place (ObjectParams.unplaced): followed and given as pixel
detections, never as ground detections; off by default (dropped, as before)."""

from __future__ import annotations

import numpy as np

from vigil.detection.blobs import Blobs
from vigil.detection.objects import CameraGeometry, ObjectFollower, ObjectParams
from vigil.geo.camera import PinholeCamera
from vigil.geo.frames import LocalFrame


def _tower() -> CameraGeometry:
    cam = PinholeCamera(
        x=0.0, y=0.0, height_m=25.0, pan_deg=0.0, tilt_deg=2.0, hfov_deg=24.0,
        width=320, height=240, max_range_m=3000.0,
    )  # fmt: skip
    return CameraGeometry(cam, LocalFrame(31.33, -110.94), "t01")


def _blobs(vs: list[float], u: float = 160.0, w: int = 1, h: int = 2) -> Blobs:
    n = len(vs)
    i = lambda x: np.full(n, x, np.int32)  # noqa: E731
    tops = np.array([int(round(v - h)) for v in vs], np.int32)
    us = [u + 40.0 * k for k in range(n)]  # 40 columns apart
    lefts = np.array([int(round(x - w / 2)) for x in us], np.int32)
    return Blobs(
        lefts, tops, i(w), i(h), i(w * h),
        lefts + (w - 1) / 2.0, tops + (h - 1) / 2.0,
    )  # fmt: skip


def test_sky_blob_is_given_as_pixels_only_when_asked() -> None:
    geo = _tower()
    cam = geo.camera
    horizon = cam.height / 2.0 - cam.focal_px * np.tan(np.radians(2.0))
    _, v_ground, _ = cam.project(40.0, 1500.0, 0.0)  # a blob on the ground, another in the sky
    vs = [float(v_ground), float(horizon - 15.0)]
    for on in (False, True):
        follower = ObjectFollower("t01", ObjectParams(unplaced=on), geo)
        for k in range(5):
            res = follower.update(_blobs(vs), 100.0 + k, k)
        assert len(res.detections) == 1  # the ground blob, placed either way
        assert res.detection_objects and len(res.detection_objects) == 1
        if not on:
            assert res.unplaced == []
            continue
        assert len(res.unplaced) == 1
        d = res.unplaced[0]
        assert d.camera == "t01" and d.frame == 4
        assert d.box[3] < horizon and d.object not in res.detection_objects
