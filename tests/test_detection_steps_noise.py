"""The level-step handling on a noisy, low-contrast thermal camera (issue 24): a scene whose
few dozen counts are stretched over 255 grey levels, with noise that holds its value for
frames, is not a new picture every frame; a real new picture and a real level step still
are. (The real clip behind it, ``v2-latlon.cptv``, is in ``test_detection_thermal.py``.)
The residual level's kernel (``kernels.level_residuals``) gives the array code's residuals
bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vigil.detection import kernels
from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.steps import median, quantile_linear

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


def _residuals_reference(grey, samples, fg, g, a, b):  # noqa: ANN001, ANN202
    """The array version the kernel replaced (``LevelSteps._measure`` before it)."""
    now = grey[::g, ::g].astype(np.float32)
    background = samples[:, ::g, ::g].mean(axis=0, dtype=np.float32)
    keep = (fg[::g, ::g] == 0) & (now > 0) & (now < 255)
    keep &= (background >= 1.0) & (background <= 254.0)
    return np.abs(now[keep] - (np.float32(a) * background[keep] + np.float32(b)))


@pytest.mark.parametrize(("n", "g", "seed"), [(8, 7, 1), (8, 4, 2), (5, 3, 3), (6, 9, 4)])
def test_level_residuals_are_the_array_versions_bit_for_bit(n: int, g: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = 61, 83
    samples = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    samples[:, :5] = rng.integers(0, 3, (n, 5, w), dtype=np.uint8)  # backgrounds under 1
    samples[:, -5:] = rng.integers(253, 256, (n, 5, w), dtype=np.uint8)  # and over 254
    grey = rng.integers(0, 256, (h, w), dtype=np.uint8)
    grey[rng.random((h, w)) < 0.1] = 0
    grey[rng.random((h, w)) < 0.1] = 255
    fg = np.where(rng.random((h, w)) < 0.2, 255, 0).astype(np.uint8)
    a, b = 1.0 + rng.normal(0, 0.05), rng.normal(0, 3.0)
    ref = _residuals_reference(grey, samples, fg, g, a, b)
    out = np.full(((h + g - 1) // g) * ((w + g - 1) // g), np.nan, np.float32)
    got = kernels.level_residuals(grey, samples, fg, g, a, b, out)
    assert got == ref.size > 30
    np.testing.assert_array_equal(out[:got], ref)  # same values, same (raster) order
    assert np.isnan(out[got:]).all()


def test_quantile_linear_is_numpys_quantile() -> None:
    rng = np.random.default_rng(7)
    for i in range(3000):
        n = int(rng.integers(1, 7000))
        if i % 3 == 0:
            x = np.abs(rng.normal(0, 3, n)).astype(np.float32)
        elif i % 3 == 1:  # ties: residuals on a grid of eighths
            x = (rng.integers(0, 30, n) / 8).astype(np.float32)
        else:
            x = (rng.random(n) * rng.uniform(0.1, 300)).astype(np.float32)
        q = (0.9, 0.5, 0.25, 0.0, 1.0)[i % 5]
        assert quantile_linear(x.copy(), q) == float(np.quantile(x, q))


def test_median_is_numpys_median() -> None:
    rng = np.random.default_rng(8)
    for i in range(3000):
        n = int(rng.integers(1, 16))
        x = rng.normal(3.0, 2.0, n) if i % 2 else rng.integers(0, 6, n) / 3.0
        assert median(x.tolist()) == float(np.median(x))
