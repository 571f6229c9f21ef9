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


@pytest.mark.parametrize(("config", "min_recall"), [("plain", 0.9), ("tower", 0.75)])
def test_moving_animal_is_detected_while_it_moves(
    cptv_frames, config: str, min_recall: float
) -> None:
    pix, times = cptv_frames
    boxes, moving = animal_truth(pix)
    assert moving.sum() > 30  # the sequence has plenty of motion to score
    cfg = DetectorConfig() if config == "plain" else DetectorConfig.for_tower()
    det = MotionDetector(pix.shape[1:], cfg, camera_id="cacophony")
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
