"""The detector's fast kernels give the results of the plain array code they replaced.

``neighbour_filter`` (the neighbourhood test by flood fill from foreground pixels) against
the whole-frame OpenCV version it replaced (dilated warmest sample, saturating difference,
``connectedComponents``); ``shift_bilinear`` (a vectorised interior) against the per-pixel
clamped formula, bit for bit, at shifts that put the interior anywhere from all to none of
the row; the track-before-detect stage's velocity filter (per-column tables and contiguous
slices) against the per-pixel version, ``label_peaks`` against ``np.maximum.at``, the
stage's numba components (``component_peaks``' block order) against OpenCV's labels, and
``affine_fit`` (which skips the median when more than half the residuals are under a third
of the trim) against numpy's fit; the ``"lk"`` shake registration (a numba Gauss-Newton
translation with gain and offset) against known sub-pixel shifts with a gain change.
"""

from __future__ import annotations

import math

import cv2
import numba as nb
import numpy as np
import pytest
from numpy.typing import NDArray

from vigil.detection import kernels
from vigil.detection import tbd_kernels as tk
from vigil.detection.background import DetectionError
from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.registration import ShakeCompensator
from vigil.detection.settings import DetectionSettings
from vigil.detection.tbd import TbdParams, TrackBeforeDetect


def _neighbour_reference(
    fg: NDArray[np.uint8],
    grey: NDArray[np.uint8],
    gain: float,
    hot: NDArray[np.uint8],
    r: int,
    margin: int | NDArray[np.uint8],
) -> NDArray[np.uint8]:
    """The whole-frame version (the detector's code before the kernel)."""
    fg = fg.copy()
    n = 2 * r + 1
    hot = cv2.dilate(hot, np.ones((n, n), np.uint8))
    level = np.minimum(grey.astype(np.float32) / gain + 0.5, 255.0).astype(np.uint8)
    warm = cv2.subtract(level, hot) > margin
    n_lab, labels = cv2.connectedComponents(fg, connectivity=8, ltype=cv2.CV_32S)
    if n_lab <= 1:
        return fg
    keep = np.zeros(n_lab, bool)
    keep[labels[warm & (fg > 0)]] = True
    keep[0] = False
    fg[~keep[labels]] = 0
    return fg


def _scene(seed: int, h: int = 60, w: int = 80) -> tuple:
    rng = np.random.default_rng(seed)
    samples = rng.integers(80, 140, (8, h, w), dtype=np.uint8)
    grey = rng.integers(60, 200, (h, w), dtype=np.uint8)
    fg = np.where(rng.random((h, w)) < 0.3, 255, 0).astype(np.uint8)
    return rng, samples, grey, fg


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("r", [1, 2])
@pytest.mark.parametrize("gain", [1.0, 0.937, 1.21])
def test_neighbour_filter_on_samples_matches_the_frame_wide_version(
    seed: int, r: int, gain: float
) -> None:
    rng, samples, grey, fg = _scene(seed)
    ref = _neighbour_reference(fg, grey, gain, samples.max(axis=0), r, 4)
    got = fg.copy()
    queue = np.empty(fg.size, np.int64)
    no_mean = np.zeros((1, 1), np.float32)
    no_map = np.zeros((1, 1), np.uint8)
    kept = kernels.neighbour_filter(got, grey, gain, samples, no_mean, False, r, no_map, 4,
                                    False, queue, got.view(np.uint64))  # fmt: skip
    np.testing.assert_array_equal(got, ref)
    assert kept == np.count_nonzero(ref)
    assert 0 < kept < np.count_nonzero(fg)  # both kinds of blob occur


@pytest.mark.parametrize("seed", [3, 4])
def test_neighbour_filter_on_a_mean_with_a_margin_map_matches(seed: int) -> None:
    rng, _, grey, fg = _scene(seed)
    mean = rng.uniform(-0.4, 300.0, grey.shape).astype(np.float32)
    mean[:5] = 254.7  # rounds past 255: clipped
    margin = rng.integers(0, 12, grey.shape, dtype=np.uint8)
    hot = np.minimum(mean + 0.5, 255).astype(np.uint8)
    ref = _neighbour_reference(fg, grey, 1.05, hot, 1, margin)
    got = fg.copy()
    kernels.neighbour_filter(got, grey, 1.05, np.zeros((1, 1, 1), np.uint8), mean, True, 1,
                             margin, 0, True, np.empty(fg.size, np.int64),
                             np.zeros((0, 0), np.uint64))  # fmt: skip
    np.testing.assert_array_equal(got, ref)


def test_neighbour_filter_of_empty_and_full_masks() -> None:
    _, samples, grey, _ = _scene(5)
    args = (np.zeros((1, 1), np.float32), False, 1, np.zeros((1, 1), np.uint8), 4, False)
    empty = np.zeros(grey.shape, np.uint8)
    queue = np.empty(grey.size, np.int64)
    kept = kernels.neighbour_filter(empty, grey, 1.0, samples, *args, queue, empty.view(np.uint64))
    assert kept == 0
    full = np.full(grey.shape, 255, np.uint8)
    ref = _neighbour_reference(full, grey, 1.0, samples.max(axis=0), 1, 4)
    kernels.neighbour_filter(full, grey, 1.0, samples, *args, queue, full.view(np.uint64))
    np.testing.assert_array_equal(full, ref)


def _shift_reference(frame: NDArray[np.uint8], dx: float, dy: float) -> NDArray[np.uint8]:
    """The per-pixel clamped bilinear shift (the kernel before its vectorised interior)."""
    h, w = frame.shape
    ix, iy = int(np.floor(-dx)), int(np.floor(-dy))
    fx, fy = -dx - ix, -dy - iy
    ys = np.arange(h)[:, None]
    xs = np.arange(w)[None, :]
    y0, y1 = np.clip(ys + iy, 0, h - 1), np.clip(ys + iy + 1, 0, h - 1)
    x0, x1 = np.clip(xs + ix, 0, w - 1), np.clip(xs + ix + 1, 0, w - 1)
    f = frame.astype(np.float64)
    v = ((1.0 - fx) * (1.0 - fy) * f[y0, x0] + fx * (1.0 - fy) * f[y0, x1]
         + (1.0 - fx) * fy * f[y1, x0] + fx * fy * f[y1, x1])  # fmt: skip
    return np.clip(v + 0.5, 0.0, 255.0).astype(np.uint8)


@pytest.mark.parametrize(
    ("dx", "dy"),
    [(0.0, 0.0), (0.3, -0.2), (-1.7, 2.4), (5.5, -3.25), (-20.0, 7.0), (30.2, 0.1), (-0.5, 0.5)],
)
@pytest.mark.parametrize("shape", [(48, 64), (7, 9), (1, 1), (3, 2)])
def test_shift_bilinear_is_the_clamped_formula(
    dx: float, dy: float, shape: tuple[int, int]
) -> None:
    frame = np.random.default_rng(6).integers(0, 256, shape, dtype=np.uint8)
    out = np.empty_like(frame)
    kernels.shift_bilinear(frame, dx, dy, out)
    np.testing.assert_array_equal(out, _shift_reference(frame, dx, dy))


@pytest.mark.parametrize(("dx", "dy"), [(-5.3, 2.6), (0.4, -0.7), (3.0, 0.0), (0.05, 0.12)])
@pytest.mark.parametrize("gain", [1.0, 1.08])
def test_lk_registration_recovers_subpixel_shifts_through_a_gain_change(
    dx: float, dy: float, gain: float
) -> None:
    rng = np.random.default_rng(4)
    img = cv2.GaussianBlur(rng.normal(0, 1, (240, 320)).astype(np.float32), (0, 0), 4.0)
    img = cv2.normalize(img, None, 30, 200, cv2.NORM_MINMAX)
    comp = ShakeCompensator((240, 320), scale=2, method="lk")
    comp(img.astype(np.uint8))
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(img * gain + 3.0, m, (320, 240), borderMode=cv2.BORDER_REPLICATE)
    back = comp(np.clip(moved + 0.5, 0, 255).astype(np.uint8))
    assert comp.last_shift == (pytest.approx(dx, abs=0.05), pytest.approx(dy, abs=0.05))
    inner = (slice(10, -10), slice(10, -10))
    ref = np.clip(img * gain + 3.5, 0, 255).astype(int)
    assert np.abs(back[inner].astype(int) - ref[inner]).max() <= 3


def test_guarded_lk_asks_ecc_only_for_jolts(monkeypatch: pytest.MonkeyPatch) -> None:
    """``"lkg"``: ``lk``, with ECC deciding a frame whose shift is over ``GUARD_PX``."""
    from vigil.detection import registration

    calls: list[int] = []
    real = cv2.findTransformECC
    monkeypatch.setattr(registration.cv2, "findTransformECC",
                        lambda *a: calls.append(1) or real(*a))  # fmt: skip
    rng = np.random.default_rng(5)
    img = cv2.GaussianBlur(rng.normal(0, 1, (240, 320)).astype(np.float32), (0, 0), 4.0)
    img = cv2.normalize(img, None, 30, 200, cv2.NORM_MINMAX)
    comp = ShakeCompensator.made_for((240, 320), "lkg")
    assert comp.guard_px == registration.GUARD_PX > 0
    for dx, dy, ecc in ((0.0, 0.0, 0), (0.2, -0.3, 0), (1.4, 0.6, 1), (0.1, 0.0, 0)):
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(img, m, (320, 240), borderMode=cv2.BORDER_REPLICATE)
        n = len(calls)
        comp(np.clip(moved + 0.5, 0, 255).astype(np.uint8))
        assert len(calls) - n == ecc, (dx, dy)
        # against a reference that follows the frames a little (a running mean)
        assert comp.last_shift == (pytest.approx(dx, abs=0.12), pytest.approx(dy, abs=0.12))
    assert ShakeCompensator.made_for((240, 320), "lk").guard_px == 0.0


def test_lk_registration_on_a_flat_picture_leaves_the_frame() -> None:
    comp = ShakeCompensator((60, 80), scale=2, method="lk")
    flat = np.full((60, 80), 90, np.uint8)
    comp(flat)
    np.testing.assert_array_equal(comp(flat), flat)
    assert comp.last_shift == (0.0, 0.0)


def test_registration_method_is_checked() -> None:
    with pytest.raises(DetectionError, match="method"):
        ShakeCompensator((60, 80), method="orb")
    with pytest.raises(DetectionError, match="register_method"):
        DetectorConfig(register_method="orb")


@nb.njit(cache=False)
def _velocity_reference(z, energy, scratch, vx, vy, decay, z_lo, z_hi, best, best_j):  # noqa: ANN001, ANN202
    """The per-pixel velocity filter (the kernel before its per-column tables and slices)."""
    nv, h, w = energy.shape
    norm = math.sqrt(1.0 - decay * decay)
    best[:] = -1e30
    best_j[:] = 0
    for j in range(nv):
        e = energy[j]
        for y in range(h):
            sy = min(max(y - vy[j], 0.0), float(h - 1))
            y0 = int(sy)
            y1 = min(y0 + 1, h - 1)
            fy = sy - y0
            for x in range(w):
                sx = min(max(x - vx[j], 0.0), float(w - 1))
                x0 = int(sx)
                x1 = min(x0 + 1, w - 1)
                fx = sx - x0
                prev = (1.0 - fy) * ((1.0 - fx) * e[y0, x0] + fx * e[y0, x1]) + fy * (
                    (1.0 - fx) * e[y1, x0] + fx * e[y1, x1]
                )
                zz = min(max(np.float64(z[y, x]), z_lo), z_hi)
                scratch[y, x] = decay * prev + zz
        for y in range(h):
            for x in range(w):
                e[y, x] = scratch[y, x]
                s = scratch[y, x] * norm
                if s > best[y, x]:
                    best[y, x] = s
                    best_j[y, x] = j


@pytest.mark.parametrize("shape", [(30, 41), (5, 3), (1, 1)])
def test_velocity_filter_matches_the_per_pixel_version(shape: tuple[int, int]) -> None:
    vx, vy = TbdParams().velocities(10.0)
    vx = np.concatenate([vx, [3.0, -2.5, 1e-17, 700.0]])  # integer, tiny and huge steps
    vy = np.concatenate([vy, [-1e-17, 2.0, 0.5, -3.3]])
    rng = np.random.default_rng(7)
    got, ref = [], []
    for fn, keep in ((tk.velocity_filter, got), (_velocity_reference, ref)):
        energy = np.random.default_rng(8).normal(0, 1, (len(vx), *shape)).astype(np.float32)
        scratch = np.zeros(shape, np.float32)
        best = np.zeros(shape, np.float32)
        best_j = np.zeros(shape, np.int32)
        for _ in range(3):
            z = rng.normal(0, 3, shape).astype(np.float32)
            fn(z, energy, scratch, vx, vy, 0.8, -1.0, 4.0, best, best_j)
        keep += [energy, best, best_j]
        rng = np.random.default_rng(7)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_label_peaks_is_the_maximum_per_label() -> None:
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 6, (20, 30)).astype(np.int32)
    values = rng.normal(0, 5, (20, 30)).astype(np.float32)
    ref = np.zeros(6, np.float32)
    np.maximum.at(ref, labels.ravel(), values.ravel())
    got = np.empty(6, np.float32)
    tk.label_peaks(labels, values, got)
    np.testing.assert_array_equal(got[1:], ref[1:])
    assert got[0] == 0.0


@pytest.mark.parametrize("noise", [1.0, 6.0])  # a median under / over a third of trim_dn
def test_affine_fit_matches_numpy(noise: float) -> None:
    rng = np.random.default_rng(10)
    samples = rng.integers(20, 230, (8, 40, 60)).astype(np.uint8)
    ref = samples.astype(np.float64).mean(axis=0)
    frame = np.clip(1.05 * ref - 3.0 + rng.normal(0, noise, ref.shape) + 0.5, 0, 255)
    frame = frame.astype(np.uint8)
    fg = np.zeros(ref.shape, np.uint8)
    out = np.zeros(6)
    kernels.affine_fit(frame, samples, fg, 2, 4.0, out)
    xs, ys = ref[::2, ::2].ravel(), frame[::2, ::2].astype(np.float64).ravel()
    ok = (ys > 0) & (ys < 255) & (xs >= 1.0) & (xs <= 254.0)
    xs, ys = xs[ok], ys[ok]
    a, b = np.polyfit(xs, ys, 1)
    res = np.abs(ys - (a * xs + b))
    keep = res <= max(3.0 * np.median(res), 4.0)
    a, b = np.polyfit(xs[keep], ys[keep], 1)
    assert out[0] == pytest.approx(a, rel=1e-9) and out[1] == pytest.approx(b, rel=1e-7, abs=1e-9)
    assert out[3] == pytest.approx(np.mean(np.abs(ys - (a * xs + b)) <= 4.0), rel=1e-12)


def test_settings_choose_the_registration() -> None:
    assert DetectionSettings().detector_config().register_method == "ecc"
    cfg = DetectionSettings(registration="lk", neighbour_px=1).detector_config()
    assert (cfg.register_method, cfg.neighbour_px, cfg.register) == ("lk", 1, True)
    det = MotionDetector((480, 640), cfg)
    assert (det.registration.method, det.registration.scale) == ("lk", 2)
    assert MotionDetector((1080, 1920), cfg).registration.scale == 4


def _warmth_reference(stage: TrackBeforeDetect, box: tuple, grow_px: int = 0) -> tuple:
    """The array version of ``TrackBeforeDetect.warmth`` (before its numba kernel)."""
    h, w = stage.shape
    g = stage.params.surround_px + 1
    u0, v0 = max(int(box[0]) - grow_px, 0), max(int(box[1]) - grow_px, 0)
    u1, v1 = min(int(math.ceil(box[2])) + grow_px, w), min(int(math.ceil(box[3])) + grow_px, h)
    x0, y0, x1, y1 = max(u0 - g, 0), max(v0 - g, 0), min(u1 + g, w), min(v1 + g, h)
    r = (stage.recent[y0:y1, x0:x1] - stage._b) / stage._a - stage.background[y0:y1, x0:x1]
    e = max(grow_px, 1)
    inner = np.zeros(r.shape, bool)
    inner[max(v0 - e + grow_px - y0, 0) : v1 + e - grow_px - y0,
          max(u0 - e + grow_px - x0, 0) : u1 + e - grow_px - x0] = True  # fmt: skip
    ring = r[~inner]
    level = float(np.median(ring)) if ring.size else 0.0
    rate = stage.params.recent_rate
    noise = stage.frame_noise**2 * rate / (2.0 - rate)
    sd = np.sqrt(stage._var_used[v0:v1, u0:u1] + noise)
    return (u0, v0, u1, v1), (r[v0 - y0 : v1 - y0, u0 - x0 : u1 - x0] - level) / sd


def test_box_warmth_matches_the_array_version() -> None:
    rng = np.random.default_rng(11)
    # the array version has no shimmer fit (TbdParams.shimmer_px; tests/test_detection_tbd.py)
    stage = TrackBeforeDetect((40, 50), 10.0, TbdParams(warmup_s=1.0, shimmer_px=0))
    ground = rng.normal(100, 10, (40, 50))
    for i in range(35):
        frame = ground + rng.normal(0, 2, ground.shape)
        frame[10:13, 5 + i // 3 : 7 + i // 3] += 20
        stage.add(np.clip(frame, 0, 255).astype(np.uint8))
    boxes = [(5.0, 10.0, 9.0, 13.0), (0.0, 0.0, 3.0, 2.0), (47.2, 36.5, 50.0, 40.0),
             (20.0, 20.0, 21.0, 21.0), (0.0, 0.0, 50.0, 40.0)]  # fmt: skip
    for box in boxes:
        for grow in (0, 1, 2):
            got, ref = stage.warmth(box, grow), _warmth_reference(stage, box, grow)
            assert got[0] == ref[0]
            np.testing.assert_array_equal(got[1], ref[1])
            assert got[1].dtype == ref[1].dtype == np.float32


@pytest.mark.parametrize("level", [0.5, 1.5, 2.0])
def test_component_peaks_orders_numba_components_as_opencv(level: float) -> None:
    # the stage's components come from numba's labelling (numbered by first pixel) and are
    # taken in the order of their first 2x2 block: OpenCV's numbering, label for label
    rng = np.random.default_rng(11)
    h, w = 61, 83
    values = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.0) * 3
    mask = (values > level).view(np.uint8)
    n_cv, labels_cv, stats_cv, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    cap = h * ((w + 1) // 2)
    labels = np.zeros((h, w), np.int32)
    stats = np.empty((cap, 5), np.int32)
    scratch = [np.empty(cap, np.int32) for _ in range(5)]
    n = kernels.label_components(mask, labels, stats, np.empty((cap, 2)), *scratch)
    assert n == n_cv - 1 > 3
    peak, first = np.zeros(n + 1, np.float32), np.empty(n + 1, np.int64)
    tk.component_peaks(labels, values, peak, first)
    order = np.argsort(first[1:], kind="stable")
    np.testing.assert_array_equal(stats[:n][order], stats_cv[1:])
    renumber = np.zeros(n + 1, np.int32)
    renumber[order + 1] = np.arange(1, n + 1)
    np.testing.assert_array_equal(renumber[labels], labels_cv)
    ref = np.zeros(n + 1, np.float32)
    np.maximum.at(ref, labels.ravel(), values.ravel())
    np.testing.assert_array_equal(peak[1:], ref[1:])


def test_stage_decides_alike_through_numba_and_opencv_components(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # with room for no component the stage falls back on OpenCV's labelling: same reports
    rng = np.random.default_rng(12)
    tex = cv2.GaussianBlur(rng.standard_normal((48, 64)).astype(np.float32), (0, 0), 2.0)
    frames = [
        np.clip(100 + 10 * tex + rng.normal(0, 1.5, tex.shape) + 0.5, 0, 255).astype(np.uint8)
        for _ in range(60)
    ]
    for f in frames[30:]:
        f[20:22, 30:32] += 6
    params = TbdParams(warmup_s=1.0, threshold=2.0, grow=1.0, bad_share=1.0)
    runs = []
    for room in (1 << 16, 0):
        monkeypatch.setattr("vigil.detection.tbd._MAX_COMPONENTS", room)
        stage = TrackBeforeDetect((48, 64), 10.0, params)
        seen = []
        for f in frames:
            if stage.add(f):
                seen.append((list(stage.boxes), stage.mask.copy(), stage._hold.copy()))
        runs.append(seen)
    assert sum(len(b) for b, _, _ in runs[0]) > 3
    for (b0, m0, h0), (b1, m1, h1) in zip(*runs, strict=True):
        assert b0 == b1
        np.testing.assert_array_equal(m0, m1)
        np.testing.assert_array_equal(h0, h1)


def test_supports_of_many_boxes_are_each_boxes_warmth() -> None:
    # one kernel call for a frame's boxes: each box's warmest pixel and, grown, the mask
    rng = np.random.default_rng(13)
    stage = TrackBeforeDetect((40, 50), 10.0, TbdParams(warmup_s=1.0))
    ground = rng.normal(100, 10, (40, 50))
    boxes = [(5.0, 10.0, 9.0, 13.0), (0.0, 0.0, 3.0, 2.0), (47.2, 36.5, 50.0, 40.0),
             (20.0, 20.0, 21.0, 21.0), (60.0, 50.0, 61.0, 51.0),
             (0.0, 0.0, 50.0, 40.0)]  # fmt: skip
    assert np.isinf(stage.supports(boxes)).all()  # no opinion before the warm-up
    for i in range(35):
        frame = ground + rng.normal(0, 2, ground.shape)
        frame[10:13, 5 + i // 3 : 7 + i // 3] += 20
        stage.add(np.clip(frame, 0, 255).astype(np.uint8))
    for grow in (0, 1, 2):
        ref = [float(z.max()) if z.size else 0.0 for _, z in (stage.warmth(b, grow) for b in boxes)]
        assert stage.supports(boxes, grow).tolist() == ref
        got = np.zeros((40, 50), np.uint8)
        stage.supports(boxes[:4], grow, got, 1.5)
        want = np.zeros_like(got)
        for b in boxes[:4]:
            (u0, v0, u1, v1), z = stage.warmth(b, grow)
            want[v0:v1, u0:u1][z >= 1.5] = 255
        assert want.any() and not want.all()
        np.testing.assert_array_equal(got, want)
    body = (16.0, 10.0, 18.0, 13.0)  # where the warm body is now
    assert stage.support(body) == stage.supports([body])[0] > 3.0


def test_surround_evidence_is_numpys_subtract_sqrt_divide() -> None:
    rng = np.random.default_rng(14)
    resid = rng.normal(0, 2, (33, 47)).astype(np.float32)
    around = rng.normal(0, 1, resid.shape).astype(np.float32)
    var = (rng.random(resid.shape) + 0.25).astype(np.float32)
    want_r = np.subtract(resid, around)
    want_z = np.divide(want_r, np.sqrt(var))
    z = np.empty_like(resid)
    cold = tk.surround_evidence(resid, around, var, z)
    np.testing.assert_array_equal(resid, want_r)
    np.testing.assert_array_equal(z, want_z)
    assert cold == np.count_nonzero(want_z < -3.0) > 0
