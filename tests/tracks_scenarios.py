"""Scenario builders for the tracks tests: a sector frame, camera detections, a walk."""

from __future__ import annotations

import numpy as np

from vigil.geo.frames import LocalFrame
from vigil.ingest.schema import CameraDetection

T0 = 1_750_000_000.0
FRAME = LocalFrame(31.33, -110.94)


def camera_detection(
    camera: str, t: float, x: float, y: float, guess: str = "unknown", conf: float = 0.0
) -> CameraDetection:
    lat, lon = FRAME.to_wgs84([x], [y])
    return CameraDetection(
        camera=camera,
        time=T0 + t,
        lat=float(lat[0]),
        lon=float(lon[0]),
        cov=(16.0, 0.0, 0.0, 16.0),
        class_guess=guess,
        class_confidence=conf,
        range_m=800.0,
    )


def walk(rng, start, velocity, seconds, rate_hz=1.0):
    for k in range(int(seconds * rate_hz)):
        t = k / rate_hz
        p = np.asarray(start) + np.asarray(velocity) * t + rng.normal(0, 4, 2)
        yield t, float(p[0]), float(p[1])
