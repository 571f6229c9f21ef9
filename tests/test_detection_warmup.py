"""The detector's warm-up: no detections while the background model is new."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from vigil.detection.detector import DetectorConfig, MotionDetector


def _frames(n: int) -> list[np.ndarray]:
    """A textured still scene with a warm 4x4 square walking right one pixel a frame."""
    rng = np.random.default_rng(2)
    ground = rng.integers(60, 140, (60, 80)).astype(np.uint8)
    out = []
    for k in range(n):
        f = ground.copy()
        f[28:32, 10 + k : 14 + k] = 250
        out.append(f)
    return out


def _first_detection(config: DetectorConfig) -> int | None:
    det = MotionDetector((60, 80), config)
    for k, frame in enumerate(_frames(40), start=1):
        if det.process(frame, float(k), k).pixel_detections:
            return k
    return None


def test_no_detection_before_the_warm_up_ends_and_one_after() -> None:
    base = DetectorConfig(filter_size=1)
    plain = _first_detection(base)
    assert plain is not None and plain <= 10  # found within its persistence window
    first = _first_detection(replace(base, warmup_frames=20))
    assert first is not None and first == max(plain, 21)


def test_tower_settings_warm_up() -> None:
    assert DetectorConfig.for_tower().warmup_frames > 0
    assert DetectorConfig().warmup_frames == 0
