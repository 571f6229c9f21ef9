"""The level-step handling on a noisy, low-contrast thermal camera (issue 24): a scene whose
few dozen counts are stretched over 255 grey levels, with noise that holds its value for
frames, is not a new picture every frame; a real new picture and a real level step still
are. (The real clip behind it, ``v2-latlon.cptv``, is in ``test_detection_thermal.py``.)"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from vigil.detection.detector import DetectorConfig, MotionDetector

H, W = 96, 128


def counts_scene(n: int, seed: int = 5, rho: float = 0.9, sd: float = 3.0) -> list[np.ndarray]:
    """``n`` uint16 frames: a smooth scene spanning about 50 counts around 3000, plus noise of
    ``sd`` counts that follows an AR(1) process of coefficient ``rho`` from frame to frame
    (it holds its value for about ``1 / (1 - rho)`` frames), rounded to whole counts."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    scene = 3000.0 + 15.0 * np.sin(x / 17.0) * np.cos(y / 23.0) + 0.2 * y
    noise = rng.normal(0.0, sd, (H, W))
    out = []
    for _ in range(n):
        noise = rho * noise + np.sqrt(1.0 - rho**2) * rng.normal(0.0, sd, (H, W))
        out.append(np.rint(scene + noise).astype(np.uint16))
    return out


def tower() -> MotionDetector:
    return MotionDetector((H, W), replace(DetectorConfig.for_tower(), register=False))


def test_held_noise_of_a_stretched_scene_does_not_restart_the_background() -> None:
    det = tower()
    seq = counts_scene(80)
    for t, f in enumerate(seq):
        det.process(f, time_s=0.2 * t)
    # the scaler stretches the scene over 255 levels: a count is ~3.5 grey levels, and
    # most pixels sit more than trim_dn (4) off their samples in every frame (with a fixed
    # trim_dn: 24 restarts in 80 frames, the last at frame 80, so never out of the warm-up)
    assert det.thermal.scale > 3.0
    assert det.steps.noise > 3 * det.steps.params.trim_dn
    assert det.steps.counts["reset"] == 0, det.steps.counts
    assert det.model.frames_seen >= len(seq) - 2  # out of the warm-up
    # a new picture on the same camera (it looks elsewhere) still restarts it
    other = np.ascontiguousarray(np.fliplr(np.flipud(seq[-1])))
    det.process(other, time_s=0.2 * len(seq))
    assert det.steps.last == "reset"


def test_a_level_step_on_the_noisy_camera_is_still_mapped_back() -> None:
    det = tower()
    seq = counts_scene(80)
    for t, f in enumerate(seq):
        if t >= 60:  # a flat-field level jump of 12 counts
            f = f + np.uint16(12)
        det.process(f, time_s=0.2 * t)
        if t == 60:
            assert det.steps.last == "mapped"
    assert det.steps.counts["reset"] <= 1 and det.steps.counts["mapped"] >= 15
