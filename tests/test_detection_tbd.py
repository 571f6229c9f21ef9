"""The track-before-detect stage (vigil.detection.tbd): faint slow bodies, jolts, settings.

Frames are made here: a textured still ground, sensor noise of 1.2 grey levels and a body a
pixel across, drawn with its warmth shared between the pixels it straddles, creeping at a
fraction of a pixel a second. The development scenes' full evaluation is
``python -m benchmarks.bench_detection_scenes --methods vigil+n1+tbd``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from vigil.detection import tbd_kernels as tk
from vigil.detection import tbd_shift as ts
from vigil.detection.background import DetectionError
from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.tbd import SlowMoverDetector, TbdParams, TrackBeforeDetect

FPS = 10.0
H, W = 96, 128


def _ground(rng: np.random.Generator) -> np.ndarray:
    tex = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), 2.0)
    return 100.0 + 10.0 * tex / tex.std()


def _frames(
    seed: int, seconds: float, warmth: float, speed_px_s: float, start=(40.0, 50.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Frames with one body of ``warmth`` grey levels (a pixel) moving right; its path."""
    rng = np.random.default_rng(seed)
    ground = _ground(rng)
    n = int(seconds * FPS)
    out = np.empty((n, H, W), np.uint8)
    path = np.zeros((n, 2))
    for i in range(n):
        img = ground + rng.standard_normal((H, W)).astype(np.float32) * 1.2
        u, v = start[0] + speed_px_s * i / FPS, start[1]
        path[i] = (u, v)
        if warmth:
            x0 = int(math.floor(u))
            f = u - x0
            img[int(v), x0] += warmth * (1 - f)
            img[int(v), x0 + 1] += warmth * f
        out[i] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return out, path


def _near(box, u: float, v: float, px: float = 3.0) -> bool:
    return box[0] - px <= u <= box[2] + px and box[1] - px <= v <= box[3] + px


def test_a_faint_creeping_body_is_found_and_nothing_else() -> None:
    # 5 grey levels a pixel (4 noise standard deviations) at 0.3 px/s: under the per-frame
    # detector's radius floor (8 levels), and it creeps a pixel in three seconds
    frames, path = _frames(1, 30.0, 5.0, 0.3)
    stage = TrackBeforeDetect((H, W), FPS)
    # on this still ground the shimmer fit (TbdParams.shimmer_px, default 2) only adds the
    # noise of its shift estimate: 11 blocks measured with it, 12 without
    found, false = 0, 0
    for i, f in enumerate(frames):
        if stage.add(f):
            for b in stage.boxes:
                if _near(b, *path[i]):
                    found += 1
                else:
                    false += 1
    assert found >= 10, found  # reported in most of the 24 blocks after the warm-up (16)
    assert false == 0
    det = MotionDetector((H, W), DetectorConfig.for_tower())
    boxed = sum(
        any(_near(d.box, *path[i]) for d in det.process(f, i / FPS, i + 1).pixel_detections)
        for i, f in enumerate(frames)
    )
    assert boxed == 0  # the detector alone does not see it


def test_an_empty_scene_gives_no_reports() -> None:
    frames, _ = _frames(2, 20.0, 0.0, 0.0)
    stage = TrackBeforeDetect((H, W), FPS)
    reports = sum(len(stage.boxes) for f in frames if stage.add(f))
    assert reports == 0
    assert stage.blocks == 20 and stage.bad_blocks == 0


def test_a_jolt_block_is_left_out_not_reported() -> None:
    frames, _ = _frames(3, 20.0, 0.0, 0.0)
    # a jolt the registration did not undo: two pixels for a whole block
    m = np.float32([[1, 0, 2.0], [0, 1, 1.0]])
    for i in range(120, 130):
        frames[i] = cv2.warpAffine(frames[i], m, (W, H), borderMode=cv2.BORDER_REFLECT)
    stage = TrackBeforeDetect((H, W), FPS)
    reports = 0
    for f in frames:
        if stage.add(f):
            reports += len(stage.boxes)
    assert stage.bad_blocks == 1
    assert reports == 0


def test_a_settled_shift_is_aligned_not_left_out() -> None:
    # after a jolt the registration's reference follows the camera, so the registered
    # frames may settle a fraction of a pixel from where they were: here 0.58 px from 10 s
    frames, _ = _frames(3, 24.0, 0.0, 0.0)
    m = np.float32([[1, 0, 0.5], [0, 1, -0.3]])
    for i in range(100, len(frames)):
        frames[i] = cv2.warpAffine(frames[i], m, (W, H), borderMode=cv2.BORDER_REFLECT)
    runs = {}
    for align in (0.0, 0.3):
        # the shimmer fit off: it takes a settled sub-pixel shift out of the evidence too
        stage = TrackBeforeDetect((H, W), FPS, TbdParams(align_px=align, shimmer_px=0))
        reports = sum(len(stage.boxes) for f in frames if stage.add(f))
        runs[align] = (stage.bad_blocks, stage.aligned, reports)
    assert runs[0.0][0] >= 10  # unaligned: every block after the shift is left out
    assert runs[0.3] == (0, 1, 0)  # aligned once, no block left out, nothing reported


def test_the_slow_bank_keeps_a_body_crossing_a_pixel_in_ten_seconds() -> None:
    # 4 grey levels at 0.1 px/s: the fast bank's still filter (5 blocks) loses it as it
    # moves between pixels; the slow bank (0.1 and 0.2 px/s, 20 blocks) keeps it
    frames, path = _frames(1, 30.0, 4.0, 0.1)
    found = {}
    for slow in (False, True):
        # the shimmer fit off: on a still ground it costs a 4-level body a fifth of its
        # evidence, and this is about the slow bank's longer integration
        stage = TrackBeforeDetect((H, W), FPS, TbdParams(slow=slow, shimmer_px=0))
        hits = []
        for i, f in enumerate(frames):
            if stage.add(f):
                hits += [_near(b, *path[i]) for b in stage.boxes]
        assert all(hits)  # nothing reported away from the body
        found[slow] = len(hits)
    assert found[True] >= found[False] + 3, found


def test_support_is_high_on_a_warm_body_and_low_on_ground() -> None:
    frames, path = _frames(4, 12.0, 20.0, 0.0)
    stage = TrackBeforeDetect((H, W), FPS)
    assert math.isinf(stage.support((0.0, 0.0, 2.0, 2.0)))  # no opinion before the warm-up
    for f in frames[:100]:
        stage.add(f)
    # the body stood still from the first frame: it is in the background, no support
    u, v = path[-1]
    assert stage.support((u - 1, v - 1, u + 2, v + 2)) < 3.0
    warm = frames[100:].copy()
    warm[:, 20, 30] = np.minimum(warm[:, 20, 30].astype(int) + 15, 255)
    for f in warm:
        stage.add(f)
    assert stage.support((29.0, 19.0, 32.0, 22.0)) > 5.0
    assert stage.support((70.0, 60.0, 74.0, 64.0)) < 3.0


def test_velocity_filter_adds_evidence_along_its_velocity() -> None:
    h, w = 20, 40
    vx, vy = np.array([0.0, 1.0]), np.array([0.0, 0.0])
    energy = np.zeros((2, h, w), np.float32)
    scratch = np.zeros((h, w), np.float32)
    best = np.zeros((h, w), np.float32)
    idx = np.zeros((h, w), np.int32)
    decay = 0.8
    for k in range(8):
        z = np.zeros((h, w), np.float32)
        z[10, 5 + k] = 4.0  # one pixel a block to the right
        tk.velocity_filter(z, energy, scratch, vx, vy, decay, -2.0, 6.0, best, idx)
    expect = 4.0 * (1 - decay**8) / (1 - decay) * math.sqrt(1 - decay**2)
    assert best[10, 12] == pytest.approx(expect, rel=1e-5)
    assert idx[10, 12] == 1
    assert energy[0, 10, 12] == pytest.approx(4.0)  # standing still sees one block of it


def test_level_fit_recovers_gain_and_offset_past_outliers() -> None:
    rng = np.random.default_rng(5)
    bg = rng.uniform(40, 200, (64, 64)).astype(np.float32)
    mean = (1.03 * bg + 2.5).astype(np.float32)
    mean[:8, :8] += 60.0  # a warm patch the trimmed pass leaves out
    out = np.zeros(2)
    tk.level_fit(mean, bg, 2, 4.0, out)
    assert out[0] == pytest.approx(1.03, abs=1e-3) and out[1] == pytest.approx(2.5, abs=0.1)


def test_same_frames_same_reports() -> None:
    frames, _ = _frames(6, 14.0, 9.0, 0.5)

    def run() -> list:
        stage = TrackBeforeDetect((H, W), FPS)
        return [list(stage.boxes) for f in frames if stage.add(f)]

    assert run() == run()


def test_pair_vetoes_and_needs_registration() -> None:
    with pytest.raises(DetectionError, match="registered"):
        SlowMoverDetector((H, W), FPS, replace(DetectorConfig.for_tower(), register=False))
    frames, path = _frames(7, 20.0, 7.0, 0.3)
    pair = SlowMoverDetector((H, W), FPS)
    got = [pair.process(f, i / FPS, i + 1) for i, f in enumerate(frames)]
    # the mask keeps the detector's pixels where it vetoed nothing (it may add dim ones)
    for r in got:
        if not r.vetoed:
            assert np.all(r.mask[r.detector.mask > 0] == 255)
    extra = [(i, b) for i, r in enumerate(got) for b in r.tbd_boxes]
    assert extra and all(_near(b, *path[i]) for i, b in extra)
    assert all(set(r.tbd_boxes) <= set(r.boxes) for r in got)


@pytest.mark.parametrize(
    "bad",
    [
        {"block_s": 0.0},
        {"decay": 1.0},
        {"threshold": float("nan")},
        {"grow": 9.0},
        {"confirm": 4, "confirm_of": 3},
        {"speeds_px_s": ()},
        {"speeds_px_s": (-1.0,)},
        {"veto_sd": -1.0},
        {"slow_speeds_px_s": (0.0,)},
        {"slow_decay": 1.0},
        {"slow_blocks": 0},
        {"align_px": -0.1},
    ],
)
def test_settings_out_of_range_are_refused(bad: dict) -> None:
    with pytest.raises(DetectionError):
        TbdParams(**bad)


def test_frames_of_the_wrong_kind_are_refused() -> None:
    stage = TrackBeforeDetect((H, W), FPS)
    with pytest.raises(DetectionError, match="expected uint8"):
        stage.add(np.zeros((H, W), np.float32))
    with pytest.raises(DetectionError, match="expected uint8"):
        stage.add(np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DetectionError, match="fps"):
        TrackBeforeDetect((H, W), 0.0)
    with pytest.raises(DetectionError, match="at least"):
        TrackBeforeDetect((4, W), FPS)


def _shimmering(seed: int, warmth: float, seconds: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Frames of a fine-textured ground moved by heat shimmer (smooth displacement fields, 4
    px wide, 0.7 px across and 0.35 px down, crossfaded every 2 s, as the development scenes
    draw it at the horizon), noise 1.2, and a body a pixel across at 0.3 px/s; its path."""
    rng = np.random.default_rng(seed)

    def smooth(scale: float) -> np.ndarray:
        z = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), scale)
        return z / z.std()

    ground = 100.0 + 10.0 * smooth(6.0) + 6.0 * smooth(1.2)
    fields = [smooth(4.0) for _ in range(4)]
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float32)
    n = int(seconds * FPS)
    out, path = np.empty((n, H, W), np.uint8), np.zeros((n, 2))
    for i in range(n):
        k = (i / FPS / 2.0) % 4
        j, f = int(k), k - int(k)
        fx = (1 - f) * fields[j] + f * fields[(j + 1) % 4]
        fy = (1 - f) * fields[(j + 2) % 4] + f * fields[(j + 3) % 4]
        img = cv2.remap(ground, gx + 0.7 * fx, gy + 0.35 * fy, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT)  # fmt: skip
        u, v = 40.0 + 0.3 * i / FPS, 50.0
        path[i] = (u, v)
        x0 = int(math.floor(u))
        img[int(v), x0] += warmth * (1 - (u - x0))
        img[int(v), x0 + 1] += warmth * (u - x0)
        img += rng.standard_normal((H, W)).astype(np.float32) * 1.2
        out[i] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return out, path


def test_shimmer_fit_finds_a_body_in_shimmer_and_nothing_else() -> None:
    # 8 grey levels a pixel at 0.3 px/s where shimmer moves a fine texture by 0.7 px: the
    # block means' spread there is the texture's slope times the shift, several levels
    found = {0: 0, 2: 0}
    for seed in (1, 2, 3):
        frames, path = _shimmering(seed, 8.0)
        empty, _ = _shimmering(seed, 0.0, 20.0)
        for px in found:
            stage = TrackBeforeDetect((H, W), FPS, TbdParams(shimmer_px=px))
            for i, f in enumerate(frames):
                if stage.add(f):
                    assert all(_near(b, *path[i]) for b in stage.boxes)  # nothing elsewhere
                    found[px] += len(stage.boxes)
            stage = TrackBeforeDetect((H, W), FPS, TbdParams(shimmer_px=px))
            assert sum(len(stage.boxes) for f in empty if stage.add(f)) == 0
    # measured: 2 blocks of the 72 after the warm-ups without the fit, 16 with it
    assert found[2] >= 10 and found[2] >= 4 * found[0], found


def test_shimmer_fit_takes_a_moved_texture_out_of_a_box_support() -> None:
    # the background moved by (0.5, 0.25) px and one pixel 6 levels warm: without the fit the
    # texture's slopes look warm or cold by several spreads and the warm pixel hides
    rng = np.random.default_rng(5)
    h, w = 64, 80
    tex = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.5)
    bg = (100 + 8 * tex / tex.std()).astype(np.float32)
    m = np.float32([[1, 0, 0.5], [0, 1, 0.25]])
    recent = cv2.warpAffine(bg, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    recent[30, 40] += 6.0
    grid = [[x, y, x + 1, y + 1] for y in range(8, 56, 3) for x in range(8, 72, 3)]
    boxes = np.array([*grid, [40, 30, 41, 31]], np.float64)
    peaks = {}
    for lam in (0.0, 1.0):
        peak = np.zeros(len(boxes), np.float32)
        ts.boxes_warmth(recent, bg, np.ones((h, w), np.float32), np.float32(1), np.float32(0),
                        np.float32(0), boxes, 0, 4, np.zeros(h * w, np.float32),
                        np.zeros((h, w), np.uint8), np.float32(0), peak, lam)  # fmt: skip
        peaks[lam] = peak
    assert np.abs(peaks[0.0][:-1]).max() > 4.0 and peaks[0.0][-1] < 3.0  # 6.6, 2.2 measured
    assert np.abs(peaks[1.0][:-1]).max() < 2.5 and peaks[1.0][-1] > 5.0  # 1.6, 6.0 measured


def test_box_support_shift_fit_is_the_ridge_least_squares_over_the_ring() -> None:
    # the kernel's fit against numpy's: r = c + g . d over the ring (not the box grown by
    # a pixel), ridge lam * n on d, g the background's central differences
    rng = np.random.default_rng(8)
    h, w = 30, 40
    tex = cv2.GaussianBlur(rng.standard_normal((h, w)), (0, 0), 1.5)
    bg = (100 + 8 * tex / tex.std()).astype(np.float32)
    m = np.float32([[1, 0, 0.4], [0, 1, -0.3]])
    recent = cv2.warpAffine(bg, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    recent = recent + rng.normal(0, 0.5, (h, w)).astype(np.float32)
    var = rng.uniform(0.5, 2.0, (h, w)).astype(np.float32)
    u0, v0, lam = 17, 12, 1.0
    peak = np.zeros(1, np.float32)
    ts.boxes_warmth(recent, bg, var, np.float32(1), np.float32(0), np.float32(0),
                    np.array([[u0, v0, u0 + 2, v0 + 1]], np.float64), 0, 4,
                    np.zeros(h * w, np.float32), np.zeros((h, w), np.uint8), np.float32(0),
                    peak, lam)  # fmt: skip
    gy, gx = np.gradient(bg.astype(np.float64))
    r = recent.astype(np.float64) - bg
    win = np.zeros((h, w), bool)
    win[v0 - 5 : v0 + 6, u0 - 5 : u0 + 7] = True
    win[v0 - 1 : v0 + 2, u0 - 1 : u0 + 3] = False
    a = np.column_stack([gx[win], gy[win]])
    a, y = a - a.mean(0), r[win] - r[win].mean()
    d = np.linalg.solve(a.T @ a + lam * win.sum() * np.eye(2), a.T @ y)
    assert 0.2 < abs(d[0]) < 0.6 and 0.1 < abs(d[1]) < 0.5  # about the shift applied
    rc = r - gx * d[0] - gy * d[1]
    z = (rc[v0, u0 : u0 + 2] - np.median(rc[win])) / np.sqrt(var[v0, u0 : u0 + 2])
    assert peak[0] == pytest.approx(z.max(), abs=1e-3)
