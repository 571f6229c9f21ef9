"""Sky detections through the relief pipeline (issue 21): on relief with the image side, the
towers' detectors give the blobs the ground cannot place (``FrameResult.unplaced``) and the
pipeline hands them to the monitor, whose next update pools their margin into the track they
match in the image; with the image side off nothing of the kind runs."""

from __future__ import annotations

import numpy as np
from side_scene import relief_pipeline

from vigil.detection.detector import FrameResult
from vigil.detection.objects import PixelDetection
from vigil.geo.image_side import ImageSideMonitor
from vigil.pipeline import Pipeline
from vigil.sim.world import CameraFrame

TOWER = "t05"


def _feed_sky(pipe: Pipeline, t: float, u: float, v: float) -> bool:
    """One frame through the pipeline (``_feed``) whose detector saw one sky blob, feet at
    ``(u, v)`` (pixels); returns whether the detector was built to give such blobs."""
    cam = pipe.world.camera(TOWER)
    item = CameraFrame(t, TOWER, 1, cam, np.zeros((cam.height, cam.width), np.uint8), [])
    det = pipe._detector(item)
    sky = PixelDetection(
        camera=TOWER, time=t, frame=1, box=(u - 3.0, v - 12.0, u + 3.0, v),
        centroid=(u, v - 6.0), area_px=60, score=1.0, object=1,
    )  # fmt: skip
    result = FrameResult(1, t, np.zeros((1, 1), np.uint8), None, [], [], unplaced=[sky])  # type: ignore[arg-type]
    det.process = lambda *a, **k: result  # the detector's own frame work is not under test
    pipe._feed(item)
    return det.follower.params.unplaced


def _crest(pipe: Pipeline) -> tuple[float, float, float, float, float, float]:
    """A column whose feet ray sees sky just above a crest: the sky pixel ``(u, v)``, the
    crest's ground point ``(x, y)`` just below it and a ground point far across the image."""
    cam = pipe.world.camera(TOWER)
    geo = pipe._geometry(cam, TOWER)
    for u in np.linspace(60.0, cam.width - 60.0, 25):
        v = np.arange(cam.height - 1.0, 0.0, -1.0)
        x, y, hit, _ = geo.ground(np.full(v.size, u), v)
        if hit[0] and not hit.all():
            k = int(np.argmin(hit))  # the first row (from the bottom) that sees sky
            far_u = cam.width - u
            fx, fy, fhit, _ = geo.ground(np.array([far_u]), np.array([cam.height - 20.0]))
            if fhit[0]:
                return float(u), float(v[k]), float(x[k - 1]), float(y[k - 1]), fx[0], fy[0]
    raise AssertionError("no crest with sky above it in the tower's view")


def test_a_sky_detection_reaches_the_side_evidence_of_the_track_it_matches() -> None:
    pipe = relief_pipeline(TOWER)
    monitor = pipe.core.monitor
    assert isinstance(monitor, ImageSideMonitor)
    u, v, x, y, fx, fy = _crest(pipe)
    assert _feed_sky(pipe, 100.0, u, v)
    assert len(monitor.unplaced) == 1
    covs = [np.eye(2) * 100.0, np.eye(2) * 100.0]
    monitor.update(["crest", "far"], [101.0, 101.0], [x, fx], [y, fy], covs)
    assert len(monitor.unplaced) == 0
    assert np.isfinite(monitor.evidence.z("crest"))
    assert np.isnan(monitor.evidence.z("far"))
    # the image side off: the detector does not give sky blobs, nor the pipeline take them
    off = relief_pipeline(TOWER, image_side=False)
    assert not _feed_sky(off, 100.0, u, v)
    assert not isinstance(off.core.monitor, ImageSideMonitor)


def test_a_sky_blob_the_image_side_refuses_is_counted_and_the_run_goes_on() -> None:
    pipe = relief_pipeline(TOWER)
    assert _feed_sky(pipe, 100.0, float("nan"), float("nan"))
    assert pipe.stats.side_refused == 1
    assert len(pipe.core.monitor.unplaced) == 0
    assert pipe.stats.frames == 1
