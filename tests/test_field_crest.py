"""The field path places crest boxes as the relief demo does (issue 21): on a deployment whose
``[terrain]`` names relief, ``vigil edge camera``'s detector (:class:`vigil.edge.TowerDetector`
with :func:`vigil.edge.tower_ground`) publishes a person whose feet a crest hides where it
stands behind the crest, placed by its box's top (:func:`vigil.relief_frame.place_crest_boxes`),
not on the crest in front where the detector's own ray lands; and ``vigil run``'s core
(:func:`vigil.cli.run.side_geometries`) takes those boxes' tops to the image side."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from vigil.cli.run import side_geometries, tracker_for
from vigil.config import Deployment, default_deployment_path, load
from vigil.detection.detector import DetectorConfig
from vigil.edge import TowerDetector, tower_ground
from vigil.geo.image_side import ImageSideMonitor
from vigil.geo.raycast import cast_rays, curvature_factor
from vigil.ingest.schema import topic_for
from vigil.runner import SectorRunner

T0 = 1_780_000_000.0  # UTC s
TOWER = "t06"
#: Where the walker stands, from the tower's camera: range (m) and bearing off the camera's
#: axis (degrees); there a crest ~230 m in front hides its feet (found by scanning the
#: shipped deployment's synthetic relief, seed 2, for such places 0.4-1.5 km out).
RANGE_M, OFF_AXIS_DEG = 659.0, 5.4
HEIGHT_M = 1.7
CONFIG = replace(DetectorConfig.for_tower(), warmup_frames=0)
N_EMPTY, N_WALK = 30, 40


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    path = tmp_path_factory.mktemp("field_crest") / "sector.toml"
    text = default_deployment_path().read_text(encoding="utf-8")
    path.write_text(text + "\n[terrain]\nsynthetic = { seed = 2 }\n", encoding="utf-8")
    return load(path)


def _lowest_seen_row(cam, dem, u: float, v_feet: float, v_top: float, r: float) -> float:
    """The lowest row of a body at range ``r`` in column ``u`` the camera sees over the
    ground in front (its feet's row when nothing hides them), by a dense scan up from them."""
    rows = np.arange(v_feet, v_top, -0.02)
    d = cam.rays(np.full(rows.size, u), rows)
    hit = cast_rays(dem, np.broadcast_to(cam.centre, d.shape), d)
    clear = (~hit.hit) | (hit.range_m >= r - 1.0)
    return float(rows[int(np.argmax(clear))]) if clear.any() else math.nan


def _render(detect: TowerDetector):
    """Frames of warm textured ground through ``detect`` (the first builds its detector):
    after ``N_EMPTY`` a person ``HEIGHT_M`` tall walks across at 1.4 m/s (10 frames a second)
    where a crest hides its feet, drawn from its top row down to the lowest row the camera
    sees of it. Returns the frames and per frame its true place (local m), its lowest seen row
    and its feet row (None before it comes)."""
    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (480, 640)).astype(np.float32), (0, 0), 6.0)
    base = cv2.normalize(noise, None, 60, 160, cv2.NORM_MINMAX)
    detect(base.astype(np.uint8), T0, 0)
    geometry = detect.detector.geometry
    cam, dem = geometry.camera, geometry.dem
    az = math.radians(cam.pan_deg + OFF_AXIS_DEG)
    x0, y0 = cam.x + RANGE_M * math.sin(az), cam.y + RANGE_M * math.cos(az)
    frames, truth = [], []
    for k in range(N_EMPTY + N_WALK):
        f = base.copy()
        if k >= N_EMPTY:
            s = 1.4 * (k - N_EMPTY) * 0.1  # across the sight line
            x, y = x0 + s * math.cos(az), y0 - s * math.sin(az)
            r = math.hypot(x - cam.x, y - cam.y)
            z = float(dem.elevation_at(x, y)) - curvature_factor() * r**2 - cam.ground_z
            u, vf, _ = (float(a) for a in cam.project(x, y, z))
            _, vt, _ = (float(a) for a in cam.project(x, y, z + HEIGHT_M))
            vb = _lowest_seen_row(cam, dem, u, vf, vt, r)
            f[round(vt) : round(vb), round(u) - 1 : round(u) + 1] += 60.0
            truth.append((x, y, vb, vf))
        else:
            truth.append(None)
        frames.append(np.clip(f + rng.normal(0, 1.5, f.shape), 0, 255).astype(np.uint8))
    return frames, truth


def _run(detect: TowerDetector, frames, truth):
    """The detections the edge publishes for the walker, with its truth and the camera."""
    out = []
    for k, f in enumerate(frames):
        for d in detect(f, T0 + 0.1 * (k + 1), k + 1):
            assert truth[k] is not None, f"a detection before the walker came, frame {k}"
            out.append((d, truth[k]))
    return out


@pytest.fixture(scope="module")
def published(deployment):
    """The walker's detections as the edge publishes them (crest placement on, the default)
    and as the detector alone places them (``crest='off'``), the camera and the walker's
    truth per frame."""
    ground = tower_ground(deployment, TOWER)
    on = TowerDetector(deployment.site, TOWER, CONFIG, ground=ground)
    off = TowerDetector(deployment.site, TOWER, CONFIG, ground=ground, crest="off")
    frames, truth = _render(on)
    _render(off)
    cam = on.detector.geometry.camera
    return _run(on, frames, truth), _run(off, frames, truth), cam, on.frame_of_reference


def test_the_scene_hides_the_walkers_feet(published) -> None:
    on, _, cam, _ = published
    hidden = [t[3] - t[2] for _, t in on]
    assert len(on) >= 20, len(on)
    assert np.median(hidden) >= 0.4, hidden  # the crest cuts its lowest rows


def test_the_edge_places_a_crest_box_behind_the_crest(published) -> None:
    on, off, cam, frame = published

    def ranges(dets):
        rows = []
        for d, (x, y, *_) in dets:
            gx, gy = frame.to_local([d.lat], [d.lon])
            gx, gy = float(np.ravel(gx)[0]), float(np.ravel(gy)[0])
            e = np.array([gx - x, gy - y])
            nees = float(e @ np.linalg.solve(np.reshape(d.cov, (2, 2)), e))
            rows.append((math.hypot(gx - cam.x, gy - cam.y), math.hypot(x - cam.x, y - cam.y),
                         nees))  # fmt: skip
        return np.array(rows)

    placed, alone = ranges(on), ranges(off)
    assert len(alone) >= 20
    # the detector alone puts it on the crest, hundreds of metres in front of where it stands
    assert np.median(alone[:, 1] - alone[:, 0]) > 150.0, alone
    # the edge publishes it on the hidden ground behind the crest, its covariance covering it
    err = np.abs(placed[:, 0] - placed[:, 1])
    assert np.median(err) < 80.0, err
    assert np.median(placed[:, 2]) < 5.99 and np.mean(placed[:, 2] <= 13.8) >= 0.9, placed


def test_the_service_core_takes_the_crest_boxes_tops(deployment, published) -> None:
    """``vigil run``'s core on the deployment's relief judges each received frame as the demo
    does: the walker's boxes on the crest give their tops' side to its track."""
    on, _, _, _ = published
    runner = SectorRunner(deployment.site, tracker=tracker_for(deployment))
    core = runner.core
    core.use_image_side(side_geometries(deployment))
    monitor = core.monitor
    assert isinstance(monitor, ImageSideMonitor)
    us = {}
    for d, (x, y, *_) in on:
        runner.handle(topic_for(deployment.sector, d), d)
        runner.advance_to(d.time - 0.05)
        us[int(np.sign(core.border.signed_distance([x], [y])[0]))] = True
    runner.advance_to(on[-1][0].time + 2.0)
    ids = {m.track_id for m, _, _ in core.live}
    assert ids, "no track of the walker"
    sides = {monitor.hidden.side(t) for t in ids}
    (truth,) = us  # the walker stays on one side
    assert truth in sides, (sides, truth)
