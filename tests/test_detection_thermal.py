"""Real thermal video (Cacophony Project CPTV): the moving animal is found while it moves.

The animal is much warmer than the scene, so an independent truth is simple: its pixels are
the largest region above a fixed count, and it moves in a frame when that region's centroid
shifted by a pixel or more over the last two frames.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.sensor_defaults import sensor_plan
from vigil.detection.settings import DetectionSettings

#: Thermal settings with the neighbourhood test and the start-up calibration (both off by
#: default; the calibration's constants were chosen on ``v2-latlon.cptv``, so its figure
#: below is not a held-out one).
CALIBRATED = DetectionSettings(sensor="thermal", neighbour_px=1, calibrate=True)

WARM_COUNTS = 2800  # raw counts; the scene spans about 2660-2730, the animal 2800-3180


@pytest.fixture(scope="module")
def cptv_frames(shared_data):
    cptv = pytest.importorskip("cptv", reason="the cptv package reads CPTV files")
    path = shared_data / "thermal" / "v2.cptv"
    if not path.exists():
        pytest.skip(f"thermal sequence not present at {path}")
    with path.open("rb") as f:
        frames = list(cptv.CPTVReader(f))
    pix = np.array([fr.pix for fr in frames])
    times = np.array([fr.time_on.total_seconds() for fr in frames])
    return pix, times


def read_cptv(path):
    """Raw counts ``(n, h, w)`` and frame times (s) of a CPTV file."""
    cptv = pytest.importorskip("cptv", reason="the cptv package reads CPTV files")
    if not path.exists():
        pytest.skip(f"thermal sequence not present at {path}")
    with path.open("rb") as f:
        frames = list(cptv.CPTVReader(f))
    return np.array([fr.pix for fr in frames]), np.array(
        [fr.time_on.total_seconds() for fr in frames]
    )


def animal_truth(pix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the animal's box (x, y, w, h) and whether it moved."""
    boxes, centres = [], []
    for frame in pix:
        warm = (frame > WARM_COUNTS).astype(np.uint8)
        _, _, stats, cents = cv2.connectedComponentsWithStats(warm)
        k = 1 + int(np.argmax(stats[1:, 4]))
        boxes.append(stats[k, :4])
        centres.append(cents[k])
    centres = np.array(centres)
    moving = np.zeros(len(pix), bool)
    moving[2:] = np.hypot(*(centres[2:] - centres[:-2]).T) >= 1.0
    return np.array(boxes), moving


@pytest.mark.parametrize(("config", "min_recall"), [("plain", 0.9), ("tower", 0.9)])
def test_moving_animal_is_detected_while_it_moves(
    cptv_frames, config: str, min_recall: float
) -> None:
    pix, times = cptv_frames
    boxes, moving = animal_truth(pix)
    assert moving.sum() > 30  # the sequence has plenty of motion to score
    cfg = DetectorConfig() if config == "plain" else DetectorConfig.for_tower()
    det = MotionDetector(pix.shape[1:], cfg, camera_id="cacophony")
    found, elsewhere = score_on_animal(det, pix, times, boxes)
    # the detector says nothing while its model is new (``warmup_frames``): score after it
    scored = moving & (np.arange(len(pix)) >= cfg.warmup_frames)
    assert scored.sum() > 30
    recall = found[scored].mean()
    assert recall >= min_recall, (
        f"animal found in {recall:.0%} of the {scored.sum()} frames it moves after the warm-up"
    )
    if config == "plain":
        # The ghost the animal leaves where it stood in the first frame is learnt within
        # a few seconds; nothing else is reported.
        assert elsewhere <= 0.3 * len(pix), f"{elsewhere} detections away from the animal"


def score_on_animal(det, pix, times, boxes) -> tuple[np.ndarray, int]:
    """Run ``det`` over the clip: per frame, whether a detection touches the animal's box
    (2 px slack), and how many detections fell elsewhere."""
    found = np.zeros(len(pix), bool)
    elsewhere = 0
    for i, frame in enumerate(pix):
        res = det.process(frame, float(times[i]), i + 1)
        x, y, w, h = boxes[i]
        for d in res.pixel_detections:
            u0, v0, u1, v1 = d.box
            if u0 <= x + w + 2 and u1 >= x - 2 and v0 <= y + h + 2 and v1 >= y - 2:
                found[i] = True
            else:
                elsewhere += 1
    return found, elsewhere


def test_calibrated_thermal_settings_find_the_animal_and_nothing_else(cptv_frames) -> None:
    """v2.cptv: the tower defaults put out 274 detections away from the animal (72 objects,
    measured); with the neighbourhood test and calibration none, and the animal still in
    every frame it moves."""
    pix, times = cptv_frames
    boxes, moving = animal_truth(pix)
    cfg = CALIBRATED.detector_config()
    det = MotionDetector(pix.shape[1:], cfg, camera_id="cacophony")
    found, elsewhere = score_on_animal(det, pix, times, boxes)
    scored = moving & (np.arange(len(pix)) >= cfg.warmup_frames)
    assert scored.sum() > 30
    assert found[scored].mean() >= 0.9
    assert elsewhere <= 5, f"{elsewhere} detections away from the animal"
    assert det.calibration_report["frames"] == 30


def test_false_detections_on_an_empty_real_thermal_scene_are_bounded(shared_data) -> None:
    """v2-latlon.cptv: 102 frames (11.5 s) of an empty low-contrast scene (57 counts from the
    1st to the 99.9th percentile, stretched over 255 grey levels with its noise). Every
    detection is false. Measured with the calibrated settings: 72 detections (18 objects,
    single pixels that hold a noisy value for frames) in the 67 frames after the warm-up;
    the tower defaults 20,793 (2,125 objects). The level-step handling must not restart the
    background on this camera's noise (it did at 98 of the 102 frames before it judged
    frames at the camera's own residual level, which left both figures at 0), yet a new
    picture still restarts it."""
    pix, times = read_cptv(shared_data / "thermal" / "v2-latlon.cptv")
    cfg = CALIBRATED.detector_config()
    det = MotionDetector(pix.shape[1:], cfg, camera_id="latlon")
    outputs, objects = 0, set()
    for i, frame in enumerate(pix):
        res = det.process(frame, float(times[i]), i + 1)
        outputs += len(res.pixel_detections)
        objects |= {d.object for d in res.pixel_detections}
    report = det.calibration_report
    assert report["radius_min"] > 8  # the camera's noise raised the floor
    assert det.steps.counts["reset"] <= 2, det.steps.counts
    assert det.model.frames_seen >= len(pix) - 3  # out of the warm-up: the bound means it
    assert outputs <= 95, f"{outputs} false detections"
    assert len(objects) <= 24, f"{len(objects)} false objects"
    det.process(np.ascontiguousarray(pix[-1][::-1, ::-1]), float(times[-1]) + 0.2)
    assert det.steps.last == "reset"  # the camera looks elsewhere


def test_vigil_detect_thermal_defaults_on_the_real_clips(cptv_frames, shared_data) -> None:
    """Both clips through ``vigil detect``'s thermal defaults (tower settings, neighbourhood
    test, track-before-detect stage: :mod:`vigil.detection.sensor_defaults`), at each clip's
    own frame rate. Measured: v2.cptv the animal in 44/44 of its moving frames after the
    warm-up, 9 detections away from it (5 objects, all before the stage has learnt for 6 s;
    tower settings alone: 547), the stage no box of its own (the clip is 11 s; the stage
    learns for 6 s and confirms in 2 of 3 blocks). v2-latlon.cptv (empty): 1,205 false
    detections (225 objects: single pixels, median 4 frames, that hold a noisy value) in the
    67 frames after the warm-up. With the slow background on every frame (the default
    before issue 24's speed round; v2.cptv the same 44/44 and 9): 1,195 (220 objects), 459
    (121 objects) of them in the 48 frames after the stage's first 6 s and about 3 a frame
    once it vetoes (113 in the last 40). The start-up calibration (``calibrate=True``, not
    in these defaults) took that to 45 (11 objects)."""
    pix, times = cptv_frames
    boxes, moving = animal_truth(pix)
    plan = sensor_plan("thermal")
    fps = (len(times) - 1) / (times[-1] - times[0])
    det = plan.build(pix.shape[1:], fps, camera_id="cacophony")
    found, elsewhere = score_on_animal(det, pix, times, boxes)
    scored = moving & (np.arange(len(pix)) >= plan.config.warmup_frames)
    assert scored.sum() > 30
    assert found[scored].mean() >= 0.9
    assert elsewhere <= 12, f"{elsewhere} detections away from the animal"
    assert det.detector.steps.counts["reset"] == 0
    pix, times = read_cptv(shared_data / "thermal" / "v2-latlon.cptv")
    fps = (len(times) - 1) / (times[-1] - times[0])
    det = plan.build(pix.shape[1:], fps, camera_id="latlon")
    outputs, objects = 0, set()
    for i, frame in enumerate(pix):
        res = det.process(frame, float(times[i]), i + 1)
        outputs += len(res.pixel_detections)
        objects |= {d.object for d in res.pixel_detections}
    # out of the warm-up for all but its first frames, so the bound below means something
    assert det.detector.steps.counts["reset"] <= 2, det.detector.steps.counts
    assert det.detector.model.frames_seen >= len(pix) - 3
    assert outputs <= 1450, f"{outputs} false detections"
    assert len(objects) <= 270, f"{len(objects)} false objects"
