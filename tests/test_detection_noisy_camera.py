"""A thermal camera whose noise holds its value for frames (issue 24): the noise meter sees
it, and the opt-in small-box rule (``with_noisy_rule``; not in the thermal default: judged on
the calibration seeds it lost 4 bodies of 292 under held noise, BENCHMARKS.md) keeps its single
pixels out while a warm body is still found; a quiet camera is left exactly as before.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vigil.detection.calibration import CalibrationParams, StartupCalibration
from vigil.detection.sensor_defaults import (
    NOISE_METER,
    NoisyCameraParams,
    sensor_plan,
    with_noisy_rule,
)

H, W, FPS = 96, 128, 10.0


def held_frames(
    n: int, sd: float, rho: float, spread: float = 0.0, step: float = 1.0, seed: int = 3
) -> list[np.ndarray]:
    """``n`` grey frames: a smooth scene plus per-pixel AR(1) noise of coefficient ``rho``
    from frame to frame (rho 0: white) and ``sd`` grey levels times a log-normal factor of
    log-sd ``spread`` per pixel, rounded to multiples of ``step`` (a stretched count)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    scene = 110.0 + 20.0 * np.sin(x / 13.0) * np.cos(y / 17.0)
    size = sd * np.exp(spread * rng.standard_normal((H, W)))
    z = rng.normal(0.0, 1.0, (H, W))
    out = []
    for _ in range(n):
        z = rho * z + np.sqrt(1.0 - rho**2) * rng.normal(0.0, 1.0, (H, W))
        grey = np.rint((scene + z * size) / step) * step
        out.append(np.clip(grey, 0, 255).astype(np.uint8))
    return out


def level(frames: list[np.ndarray], lag: int) -> float:
    cal = StartupCalibration((H, W), replace(NOISE_METER, lag=lag, frames=20))
    for f in frames:
        cal.add(f)
    assert cal.done and cal.measured == 20
    return float(cal.report["noise_grey"])


def test_the_meter_counts_held_noise_in_full_a_lag_of_one_frame_does_not() -> None:
    held = held_frames(40, sd=6.0, rho=0.9)
    white = held_frames(40, sd=6.0, rho=0.0)
    # frame to frame, held noise changes by sqrt(2 (1 - 0.9)) of its size; ten frames
    # apart by sqrt(2 (1 - 0.9^10)); white noise by sqrt(2) of it either way
    assert level(held, 10) >= 2.0 * level(held, 1)
    assert abs(level(white, 10) - level(white, 1)) <= 1.0
    assert level(held, 10) >= 0.6 * level(white, 10)
    with pytest.raises(Exception, match="lag"):
        CalibrationParams(lag=0)


def run(plan, frames, body=None):
    """Boxes per frame after the warm-up: (on the body, elsewhere)."""
    det = plan.build((H, W), FPS)
    hit, false = 0, 0
    for i, f in enumerate(frames):
        res = det.process(f, i / FPS, i + 1)
        if i < 80:  # the stage learns for its first 6 s
            continue
        for d in res.pixel_detections:
            u0, v0, u1, v1 = d.box
            if (
                body is not None
                and u0 - 2 <= body[i][0] <= u1 + 2
                and v0 - 2 <= body[i][1] <= v1 + 2
            ):
                hit += 1
            else:
                false += 1
    return hit, false, det


def with_body(frames: list[np.ndarray], warmth: float) -> tuple[list[np.ndarray], list]:
    """A 3x4 px body ``warmth`` grey levels warm walking 2 px/s across the frames."""
    out, path = [], []
    for i, f in enumerate(frames):
        u, v = 20.0 + 0.2 * i, 50.0
        g = f.astype(np.float32)
        g[int(v) - 2 : int(v) + 2, int(u) - 1 : int(u) + 2] += warmth
        out.append(np.clip(g, 0, 255).astype(np.uint8))
        path.append((u, v))
    return out, path


def test_held_noise_single_pixels_are_kept_out_and_a_warm_body_is_found() -> None:
    # the development scenes' held noise (sim.scenes.SceneSpec.held_noise), a size larger
    frames, path = with_body(held_frames(160, 7.0, 0.9, spread=0.3, step=3.0), warmth=45.0)
    new = with_noisy_rule(sensor_plan("thermal"))
    old = sensor_plan("thermal")  # the default (the rule is opt-in)
    assert new.noisy is not None and old.noisy is None
    hit, false, det = run(new, frames, path)
    o_hit, o_false, _ = run(old, frames, path)
    assert det.noise_grey() >= new.noisy.noise_grey  # the rule is on
    # measured: old default 49 false boxes, 75 on the body; with the rule 3 and 75
    assert o_false >= 30, f"old default: {o_false} false boxes"  # the case is a real one
    assert false <= o_false / 5, f"{false} false boxes (old default {o_false})"
    assert hit >= 0.8 * o_hit and hit >= 40, f"body boxed {hit} times (old default {o_hit})"


def test_a_quiet_camera_is_left_as_it_was() -> None:
    frames, path = with_body(held_frames(120, sd=1.0, rho=0.0), warmth=25.0)
    new = run(with_noisy_rule(sensor_plan("thermal")), frames, path)
    old = run(sensor_plan("thermal"), frames, path)
    assert new[2].noise_grey() < NoisyCameraParams().noise_grey
    assert new[:2] == old[:2]
    assert new[0] >= 20
