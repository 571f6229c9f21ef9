"""Each detection kernel against an independent reference (numpy or OpenCV) on small arrays."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vigil.detection import kernels
from vigil.detection.background import BackgroundParams, SampleConsensusModel
from vigil.detection.blobs import dilate, erode, label_components, majority_filter, rank_filter
from vigil.detection.registration import ShakeCompensator, estimate_shift, shift_image


def random_mask(rng: np.random.Generator, h: int, w: int, density: float) -> np.ndarray:
    return ((rng.random((h, w)) < density) * 255).astype(np.uint8)


# -- background model -------------------------------------------------------------------------


def numpy_consensus(frame, samples, radius, roi, gain_q8, min_matches, warm_only=False):
    """Plain numpy classification: foreground when fewer than min_matches samples are near
    (and, warm only, when warmer than the coldest sample)."""
    level = np.minimum((frame.astype(np.int32) * gain_q8 + 128) >> 8, 255)
    dist = np.abs(samples.astype(np.int32) - level[None])
    matches = (dist <= radius.astype(np.int32)[None]).sum(axis=0)
    fg = (matches < min_matches) & (roi != 0)
    if warm_only:
        fg &= level > samples.min(axis=0)
    return np.where(fg, 255, 0).astype(np.uint8)


@pytest.mark.parametrize("warm_only", [False, True], ids=["both", "warm"])
@pytest.mark.parametrize("gain_q8", [256, 200, 300], ids=["unity", "darker", "brighter"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_consensus_classification_matches_numpy(seed: int, gain_q8: int, warm_only: bool) -> None:
    rng = np.random.default_rng(seed)
    n, h, w = 6, 13, 17
    samples = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    frame = rng.integers(0, 256, (h, w), dtype=np.uint8)
    radius = rng.integers(5, 60, (h, w), dtype=np.uint8)
    roi = (rng.random((h, w)) < 0.8).astype(np.uint8)
    dist_avg = np.zeros((h, w), np.uint16)
    out = np.empty((h, w), np.uint8)
    rand = rng.integers(0, 2**32, 1024, dtype=np.uint32)
    scratch = [np.empty(w, np.uint8) for _ in range(5)]
    kernels.consensus_segment(
        frame,
        roi,
        samples.copy(),
        radius.copy(),
        dist_avg,
        gain_q8,
        2,
        0,
        5,
        60,
        80,
        rand,
        0,
        np.zeros((h, w), np.uint8),
        np.zeros((h, w), np.uint8),
        8,
        False,
        warm_only,
        np.zeros((h, w), np.uint8),
        0,
        0,
        out,
        *scratch,
    )
    want = numpy_consensus(frame, samples, radius, roi, gain_q8, 2, warm_only)
    np.testing.assert_array_equal(out, want)
    if warm_only:  # the rule removed some foreground
        assert (numpy_consensus(frame, samples, radius, roi, gain_q8, 2) > want).any()


def test_consensus_update_touches_background_only_at_the_expected_rate() -> None:
    rng = np.random.default_rng(5)
    h, w, n, period = 64, 96, 4, 8
    frame = rng.integers(20, 236, (h, w), dtype=np.uint8)
    samples = np.repeat(frame[None] + 3, n, axis=0)  # right half: near every sample
    samples[:, :, : w // 2] ^= 0x80  # left half: far from every sample -> foreground
    before = samples.copy()
    radius = np.full((h, w), 10, np.uint8)
    out = np.empty((h, w), np.uint8)
    rand = rng.integers(0, 2**32, 4096, dtype=np.uint32)
    roi = np.ones((h, w), np.uint8)
    kernels.consensus_segment(
        frame,
        roi,
        samples,
        radius,
        np.zeros((h, w), np.uint16),
        256,
        2,
        period,
        10,
        60,
        0,
        rand,
        0,
        np.zeros((h, w), np.uint8),
        np.zeros((h, w), np.uint8),
        0,
        False,
        False,
        np.zeros((h, w), np.uint8),
        0,
        0,
        out,
        *[np.empty(w, np.uint8) for _ in range(5)],
    )
    assert (out[:, : w // 2] == 255).all() and (out[:, w // 2 :] == 0).all()
    changed = samples != before
    # Updates happen only where the pixel is background (a neighbour update may reach one
    # column into the foreground half) and write the frame's own value.
    assert not changed[:, :, : w // 2 - 1].any()
    np.testing.assert_array_equal(samples[changed], np.broadcast_to(frame, samples.shape)[changed])
    # Own updates at rate 1/period, and as many neighbour updates.
    rate = changed[:, :, w // 2 + 1 :].any(axis=0).mean()
    assert 1.0 / period < rate < 2.2 / period


def test_flicker_level_rises_on_flips_and_widens_the_radius() -> None:
    h, w = 3, 5
    samples = np.full((2, h, w), 100, np.uint8)
    frame = np.full((h, w), 130, np.uint8)  # 30 away: foreground at radius 20
    radius = np.full((h, w), 20, np.uint8)
    previous = np.zeros((h, w), np.uint8)
    previous[0] = 255  # row 0 was foreground: no flip there
    flicker = np.zeros((h, w), np.uint8)
    flicker[2] = 48  # row 2: radius widened by 48 / 4 = 12 -> 32 >= 30: background
    out = np.empty((h, w), np.uint8)
    kernels.consensus_segment(
        frame,
        np.ones((h, w), np.uint8),
        samples,
        radius,
        np.zeros((h, w), np.uint16),
        256,
        1,
        0,
        5,
        60,
        0,
        np.zeros(8, np.uint32),
        0,
        previous,
        flicker,
        8,
        False,
        False,
        np.zeros((h, w), np.uint8),
        0,
        0,
        out,
        *[np.empty(w, np.uint8) for _ in range(5)],
    )
    np.testing.assert_array_equal(out[:, 0], [255, 255, 0])
    np.testing.assert_array_equal(flicker[:, 0], [0, 8, 47])


def numpy_slow_warm(frame, gain_q8, roi, mean, excess, spread, a_m, a_x, a_s, held, floor, k):
    """Plain numpy (float64) slow warm background step: new state and mask."""
    level = np.minimum((frame.astype(np.int64) * gain_q8 + 128) >> 8, 255).astype(np.float64)
    e = level - mean
    ex = excess + a_x * (e - excess)
    lo = np.minimum(ex, e)
    fg = (lo > floor) & (lo > k * spread) & (roi != 0)
    new_mean = np.where(fg, mean + (a_m / held) * e, mean + a_m * e)
    new_spread = np.where(fg, spread, spread + a_s * (np.abs(ex) - spread))
    return new_mean, ex, new_spread, np.where(fg, 255, 0).astype(np.uint8)


@pytest.mark.parametrize("gain_q8", [256, 230])
@pytest.mark.parametrize("seed", [0, 1])
def test_slow_warm_segment_matches_numpy(seed: int, gain_q8: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = 11, 19
    frame = rng.integers(60, 140, (h, w), dtype=np.uint8)
    mean = rng.uniform(60, 140, (h, w)).astype(np.float32)
    excess = rng.uniform(-10, 10, (h, w)).astype(np.float32)
    spread = rng.uniform(0, 4, (h, w)).astype(np.float32)
    roi = (rng.random((h, w)) < 0.8).astype(np.uint8)
    args = (0.02, 0.3, 0.05, 16.0, 4.0, 3.0)
    want = numpy_slow_warm(
        frame, gain_q8, roi, mean.astype(np.float64), excess.astype(np.float64),
        spread.astype(np.float64), *args,
    )  # fmt: skip
    out = np.empty((h, w), np.uint8)
    m, x, s = mean.copy(), excess.copy(), spread.copy()
    kernels.slow_warm_segment(frame, gain_q8, roi, m, x, s, *args, out)
    # Float32 state: pixels within rounding of a threshold may differ; none are here.
    np.testing.assert_array_equal(out, want[3])
    assert 0 < (out == 255).sum() < out.size  # both outcomes are exercised
    np.testing.assert_allclose(m, want[0], rtol=0, atol=1e-3)
    np.testing.assert_allclose(x, want[1], rtol=0, atol=1e-3)
    np.testing.assert_allclose(s, want[2], rtol=0, atol=1e-3)


def test_init_samples_take_values_from_the_3x3_neighbourhood() -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    samples = np.empty((5, 9, 11), np.uint8)
    rand = rng.integers(0, 2**32, 997, dtype=np.uint32)
    kernels.init_samples(frame, rand, 0, samples)
    np.testing.assert_array_equal(samples[0], frame)
    pad = np.pad(frame, 1, mode="edge")
    neighbours = np.stack(
        [pad[1 + dy : 10 + dy, 1 + dx : 12 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    )
    assert (samples[1:, None] == neighbours[None]).any(axis=1).all()


def test_gain_ratio_matches_numpy() -> None:
    rng = np.random.default_rng(4)
    ref = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    frame = np.clip(ref * 1.2, 0, 255).astype(np.uint8)
    fg = random_mask(rng, 40, 50, 0.1)
    got = kernels.gain_ratio(frame, ref, fg, 3, 8)
    sel = np.zeros_like(fg, bool)
    sel[::3, ::3] = True
    sel &= (fg == 0) & (ref >= 8)
    assert got == pytest.approx(frame[sel].sum() / ref[sel].sum(), rel=1e-12)


def test_region_mask_silences_its_pixels() -> None:
    roi = np.zeros((20, 30), np.uint8)
    roi[5:15, 5:15] = 1
    model = SampleConsensusModel((20, 30), BackgroundParams(gain_compensation=False), roi=roi)
    model.apply(np.full((20, 30), 50, np.uint8))
    fg = model.apply(np.full((20, 30), 200, np.uint8))
    expected = np.zeros((20, 30), np.uint8)
    expected[5:15, 5:15] = 255
    np.testing.assert_array_equal(fg, expected)


def test_same_seed_same_masks() -> None:
    rng = np.random.default_rng(9)
    frames = rng.integers(0, 256, (30, 24, 32), dtype=np.uint8)
    masks = []
    for _ in range(2):
        m = SampleConsensusModel((24, 32), BackgroundParams(seed=11))
        masks.append(np.stack([m.apply(f).copy() for f in frames]))
    np.testing.assert_array_equal(masks[0], masks[1])
    other = SampleConsensusModel((24, 32), BackgroundParams(seed=12))
    assert not np.array_equal(masks[0], np.stack([other.apply(f).copy() for f in frames]))


# -- morphology -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [3, 5, 7])
@pytest.mark.parametrize("density", [0.02, 0.3, 0.7])
@pytest.mark.parametrize("shape", [(1, 1), (4, 9), (23, 17), (40, 64)], ids=str)
def test_rank_filters_match_opencv(size: int, density: float, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(size * 100 + int(density * 10))
    mask = random_mask(rng, *shape, density)
    box = np.ones((size, size), np.uint8)
    if size <= 5:  # OpenCV's medianBlur takes only 3 and 5 on uint8 beyond... keep to its API
        np.testing.assert_array_equal(majority_filter(mask, size), cv2.medianBlur(mask, size))
    np.testing.assert_array_equal(
        dilate(mask, size), cv2.dilate(mask, box, borderType=cv2.BORDER_REPLICATE)
    )
    np.testing.assert_array_equal(
        erode(mask, size), cv2.erode(mask, box, borderType=cv2.BORDER_REPLICATE)
    )


def test_rank_filter_matches_numpy_counts() -> None:
    rng = np.random.default_rng(8)
    mask = random_mask(rng, 15, 21, 0.4)
    pad = np.pad(mask != 0, 3, mode="edge").astype(int)
    counts = sum(pad[dy : dy + 15, dx : dx + 21] for dy in range(7) for dx in range(7))
    for k in (1, 10, 25, 49):
        np.testing.assert_array_equal(rank_filter(mask, 7, k), np.where(counts >= k, 255, 0))


# -- connected components ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_components_match_opencv(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 40, 2))
    mask = random_mask(rng, h, w, float(rng.uniform(0.05, 0.8)))
    labels, blobs = label_components(mask)
    n, ref_labels, ref_stats, ref_cent = cv2.connectedComponentsWithStatsWithAlgorithm(
        mask, 8, cv2.CV_32S, cv2.CCL_BBDT
    )
    assert len(blobs) == n - 1
    # Same partition: labels map one to one.
    pairs = np.unique(np.stack([labels.ravel(), ref_labels.ravel()]), axis=1)
    assert pairs.shape[1] == len(np.unique(labels))
    mapping = dict(zip(pairs[0], pairs[1], strict=True))
    for k in range(1, len(blobs) + 1):
        r = mapping[k]
        got = (blobs.left[k - 1], blobs.top[k - 1], blobs.width[k - 1], blobs.height[k - 1])
        assert got + (blobs.area[k - 1],) == tuple(ref_stats[r])
        assert blobs.cx[k - 1] == pytest.approx(ref_cent[r, 0])
        assert blobs.cy[k - 1] == pytest.approx(ref_cent[r, 1])
    # Numbered in raster order of first pixel.
    firsts = [np.flatnonzero(labels.ravel() == k)[0] for k in range(1, len(blobs) + 1)]
    assert firsts == sorted(firsts)


def test_components_of_an_empty_and_a_full_mask() -> None:
    assert len(label_components(np.zeros((5, 7), np.uint8))[1]) == 0
    labels, blobs = label_components(np.full((5, 7), 255, np.uint8))
    assert len(blobs) == 1 and blobs.area[0] == 35 and (labels == 1).all()


# -- registration -----------------------------------------------------------------------------


@pytest.mark.parametrize(("dx", "dy"), [(0.0, 0.0), (2.0, -1.0), (0.4, 0.7), (-3.25, 1.5)])
def test_bilinear_shift_matches_opencv(dx: float, dy: float) -> None:
    rng = np.random.default_rng(2)
    img = cv2.GaussianBlur(rng.integers(0, 256, (30, 40)).astype(np.uint8), (0, 0), 1.5)
    got = shift_image(img, dx, dy)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    ref = cv2.warpAffine(
        img.astype(np.float32),
        m,
        (40, 30),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    assert np.abs(got.astype(int) - np.round(ref)).max() <= 1


def test_integer_shift_is_exact() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (20, 25), dtype=np.uint8)
    got = shift_image(img, 3, 2)
    np.testing.assert_array_equal(got[2:, 3:], img[:-2, :-3])


@pytest.mark.parametrize(("dx", "dy"), [(-5.3, 2.6), (0.4, -0.7), (3.0, 0.0)])
def test_shake_compensator_recovers_subpixel_shifts(dx: float, dy: float) -> None:
    rng = np.random.default_rng(4)
    img = cv2.GaussianBlur(rng.normal(0, 1, (240, 320)).astype(np.float32), (0, 0), 4.0)
    img = cv2.normalize(img, None, 30, 220, cv2.NORM_MINMAX).astype(np.uint8)
    comp = ShakeCompensator((240, 320))
    comp(img)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(img, m, (320, 240), borderMode=cv2.BORDER_REPLICATE)
    back = comp(moved)
    assert comp.last_shift == (pytest.approx(dx, abs=0.1), pytest.approx(dy, abs=0.1))
    inner = (slice(10, -10), slice(10, -10))
    assert np.abs(back[inner].astype(int) - img[inner]).max() <= 3


def test_phase_correlation_recovers_a_known_shift() -> None:
    rng = np.random.default_rng(4)
    img = cv2.GaussianBlur(rng.normal(0, 1, (120, 160)).astype(np.float32), (0, 0), 0.8)
    moved = np.roll(img, (3, -5), axis=(0, 1))
    dx, dy, response = estimate_shift(img, moved)
    assert (dx, dy) == (pytest.approx(-5, abs=0.1), pytest.approx(3, abs=0.1))
    assert response > 0.3
