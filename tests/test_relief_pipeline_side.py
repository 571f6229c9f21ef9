"""The relief pipeline's image side (``Pipeline(image_side=True)``, issue 21): each camera
detection's feet pixel, recovered from its ground point through the tower's terrain geometry,
reaches the crossing monitor with its margin's sign the side the point is on."""

from __future__ import annotations

import numpy as np

from vigil.config import load_default
from vigil.demo import demo_relief
from vigil.geo.image_side import ImageSideMonitor
from vigil.ingest.schema import CameraDetection
from vigil.pipeline import Pipeline
from vigil.sim import SimSettings
from vigil.sim.terrain import SimTerrain


def test_detections_reach_the_monitor_with_their_side() -> None:
    d = load_default()
    terrain = SimTerrain(demo_relief(d), pointing_sigma_deg=0.05)
    sim = SimSettings(towers=("t05",), frame_rate_hz=1.0, animals=False, uas=False, ugs=False)
    plain = Pipeline(d.site, sim, 1, terrain=terrain, image_side=False)
    assert not isinstance(plain.core.monitor, ImageSideMonitor)
    assert plain.core.monitor.side_probability is not None
    pipe = Pipeline(d.site, sim, 1, terrain=terrain)  # on by default on relief
    monitor = pipe.core.monitor
    assert isinstance(monitor, ImageSideMonitor) and monitor.image_only
    cam = pipe.world.camera("t05")
    geo = pipe._geometry(cam, "t05")
    # ground points the camera's rays meet, across its view
    u, v = np.meshgrid(np.linspace(40, cam.width - 40, 9), np.linspace(150, cam.height - 5, 12))
    x, y, hit, _ = geo.ground(u.ravel(), v.ravel())
    far = hit & (np.abs(pipe.border.signed_distance(np.nan_to_num(x), np.nan_to_num(y))) > 50)
    assert far.sum() >= 20
    x, y = x[far], y[far]
    lat, lon = pipe.frame.to_wgs84(x, y)
    dets = [
        CameraDetection(camera="t05", time=100.0, lat=float(a), lon=float(b), cov=(1, 0, 0, 1))
        for a, b in zip(lat, lon, strict=True)
    ]
    pipe._observe_sides(geo, dets)
    seen = monitor._seen[100.0]
    assert len(seen) == len(dets)
    margins = np.array([r[2] for r in seen])
    truth = pipe.border.side(x, y)
    # the pixel is the one the ground point was cast from, through the same camera: exact
    assert np.all(np.sign(margins) == truth)
    assert set(truth.tolist()) == {-1, 1}  # both sides in view
