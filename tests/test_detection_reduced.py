"""Opt-in reduced-work settings of the thermal detector and the track-before-detect stage.

``SlowParams.every`` (the slow background learns and classifies on every k-th frame only),
``TbdParams.frame_stride`` (the stage sees every k-th frame only) and the ``"lk4"`` shake
registration (``"lk"`` on a copy half as wide). None is on by default; their speed and
accuracy are measured in ``benchmarks/bench_detection_scenes.py`` (``--reduced``,
``--slow-every``, ``--register lk4``; BENCHMARKS.md, issue 24).
"""

from __future__ import annotations

import numpy as np
import pytest

from vigil.detection.background import DetectionError, SlowBackground, SlowParams
from vigil.detection.detector import DetectorConfig
from vigil.detection.registration import ShakeCompensator
from vigil.detection.tbd import SlowMoverDetector, TbdParams

FPS = 10.0
H, W = 64, 96


def _frames(n: int, seed: int = 3) -> np.ndarray:
    """A noisy still ground with a warm 3x3 body appearing at frame 30."""
    rng = np.random.default_rng(seed)
    ground = 100.0 + 8.0 * rng.standard_normal((H, W)).astype(np.float32)
    out = np.empty((n, H, W), np.uint8)
    for i in range(n):
        img = ground + rng.standard_normal((H, W)).astype(np.float32) * 1.0
        if i >= 30:
            img[30:33, 40:43] += 40.0
        out[i] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return out


def test_the_defaults_are_unreduced() -> None:
    assert SlowParams().every == 1
    assert TbdParams().frame_stride == 1
    assert DetectorConfig().register_method == "ecc"


@pytest.mark.parametrize("bad", [0, -1, 101])
def test_out_of_range_strides_are_refused(bad: int) -> None:
    with pytest.raises(DetectionError):
        SlowParams(every=bad)
    with pytest.raises(DetectionError):
        TbdParams(frame_stride=bad)


def test_register_methods_are_checked_and_lk4_halves_the_copy() -> None:
    DetectorConfig(register=True, register_method="lk4")
    with pytest.raises(DetectionError):
        DetectorConfig(register=True, register_method="lk8")
    assert ShakeCompensator.made_for((480, 640), "lk").scale == 2
    assert ShakeCompensator.made_for((480, 640), "lk4").scale == 4
    assert ShakeCompensator.made_for((1080, 1920), "lk4").scale == 8
    assert ShakeCompensator.made_for((1080, 1920), "lk4").method == "lk"


def test_slow_background_every_second_frame_repeats_its_mask_and_finds_the_body() -> None:
    video = _frames(60)
    every, full = SlowBackground((H, W), SlowParams(every=2)), SlowBackground((H, W))
    masks = []
    for i, f in enumerate(video):
        masks.append(every.apply(f, i / FPS).copy())
        full.apply(f, i / FPS)
    # the model runs on calls 1, 2, 4, 6, ...: the call after each repeats its mask
    for i in range(2, len(masks), 2):
        assert np.array_equal(masks[i], masks[i - 1])
    assert every.frames_seen == 1 + len(video) // 2
    assert full.frames_seen == len(video)
    # the warm body that appeared at frame 30 is in the reduced model's mask at the end
    assert masks[-1][30:33, 40:43].any()
    assert not masks[-1][:20].any()


def test_pair_with_frame_stride_feeds_the_stage_every_kth_frame() -> None:
    video = _frames(41)
    config = DetectorConfig.for_tower()
    pair = SlowMoverDetector((H, W), FPS, config, TbdParams(frame_stride=2))
    ends = [pair.process(f, i / FPS, i + 1).block_ended for i, f in enumerate(video)]
    assert pair.stage.frames == 21
    assert pair.stage.n_block == 5  # a block stays 1 s long: 5 of the frames at 5 Hz
    # blocks end on the frames the stage is given: pair frames 9, 19, 29, 39 (0-based 8, 18..)
    assert [i for i, e in enumerate(ends) if e] == [8, 18, 28, 38]
