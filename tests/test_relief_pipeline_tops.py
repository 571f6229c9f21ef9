"""Tops over hidden feet through the relief pipeline (issue 21): a placed detection whose box's
bottom sits on a crest reaches the monitor's tops (``ImageSideMonitor.hidden``) with the side
its top row gives, and the track it matches in the image takes that side at the monitor's next
update (its feet margin still goes to the image side's evidence); with the image side off
nothing of the kind runs."""

from __future__ import annotations

import numpy as np
from side_scene import relief_pipeline

from vigil.detection.detector import FrameResult
from vigil.geo.hidden_side import box_tops
from vigil.geo.image_side import ImageSideMonitor, SideGeometry
from vigil.ingest.schema import CameraDetection
from vigil.pipeline import Pipeline
from vigil.sim.world import CameraFrame

TOWER = "t05"


def _crest_box(pipe: Pipeline):
    """A box (u0, v0, u1, v1) whose bottom sits on a crest and whose top gives a side, the
    side, the crest's ground point (where the detector would place it) and a point behind
    the crest that the rows just above it see."""
    cam = pipe.world.camera(TOWER)
    geo = pipe._geometry(cam, TOWER)
    side = SideGeometry.of(geo)
    for u in np.linspace(40.0, cam.width - 40.0, 40):
        v = np.arange(cam.height - 1.0, 1.0, -0.25)
        x, y, hit, rng = geo.ground(np.full(v.size, u), v)
        jump = np.flatnonzero(hit[:-1] & hit[1:] & (np.diff(rng) > 300.0))
        for k in jump:
            box = np.array([[u - 1.0, v[k] - 3.0, u + 1.0, v[k]]])
            on, s = box_tops(side, pipe.border, box)
            if on[0] and s[0] != 0:
                j = min(k + 6, v.size - 1)  # 1.5 rows above the crest: ground behind it
                if hit[j] and rng[j] > rng[k] + 300.0:
                    return box[0], int(s[0]), (x[k], y[k]), (x[j], y[j])
    raise AssertionError("no crest whose box's top gives a side in the tower's view")


def _feed_box(pipe: Pipeline, t: float, box, ground) -> None:
    cam = pipe.world.camera(TOWER)
    item = CameraFrame(t, TOWER, 1, cam, np.zeros((cam.height, cam.width), np.uint8), [])
    det = pipe._detector(item)
    lat, lon = pipe.frame.to_wgs84(np.array([ground[0]]), np.array([ground[1]]))
    placed = CameraDetection(
        camera=TOWER, time=t, frame=1, box=tuple(float(b) for b in box),
        lat=float(lat[0]), lon=float(lon[0]), cov=(100.0, 0.0, 0.0, 100.0), class_guess="person",
    )  # fmt: skip
    result = FrameResult(1, t, np.zeros((1, 1), np.uint8), None, [placed], [])  # type: ignore[arg-type]
    det.process = lambda *a, **k: result  # the detector's own frame work is not under test
    pipe._feed(item)


def test_a_box_on_a_crest_gives_its_top_side_to_the_track_it_matches() -> None:
    pipe = relief_pipeline(TOWER)
    monitor = pipe.core.monitor
    assert isinstance(monitor, ImageSideMonitor)
    box, side, crest, behind = _crest_box(pipe)
    _feed_box(pipe, 100.0, box, crest)
    assert len(monitor.hidden) == 1
    cov = [np.eye(2) * 400.0]
    monitor.update(["behind"], [101.0], [behind[0]], [behind[1]], cov)
    assert len(monitor.hidden) == 0 and monitor.hidden.side("behind") == side
    assert monitor.states["behind"].side == side
    # its feet margin stands too (the chain keeps it): a track placed there pools it
    monitor.update(["at_crest"], [100.0], [crest[0]], [crest[1]], cov)
    assert np.isfinite(monitor.evidence.z("at_crest"))
    # the image side off: nothing waits for tops
    off = relief_pipeline(TOWER, image_side=False)
    _feed_box(off, 100.0, box, crest)
    assert not isinstance(off.core.monitor, ImageSideMonitor)
