"""Background-weighted blob centroids (detection/centroid.py)."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.detection.blobs import Blobs, label_components
from vigil.detection.centroid import refine_centroids, weighted_centroids


def _reference(frame, samples, box, pad, floor):
    """Plain numpy: weights |frame - mean(samples)| - floor (>= 0) over the padded box."""
    left, top, width, height = box
    h, w = frame.shape
    r0, r1 = max(top - pad, 0), min(top + height + pad, h)
    c0, c1 = max(left - pad, 0), min(left + width + pad, w)
    bg = samples.astype(np.float64).mean(axis=0)
    wt = np.clip(np.abs(frame.astype(np.float64) - bg) - floor, 0, None)[r0:r1, c0:c1]
    rr, cc = np.mgrid[r0:r1, c0:c1]
    mx, my = (wt * cc).sum() / wt.sum(), (wt * rr).sum() / wt.sum()
    vx = (wt * (cc - mx) ** 2).sum() / wt.sum()
    vy = (wt * (rr - my) ** 2).sum() / wt.sum()
    return mx, my, vx, vy


def test_kernel_matches_numpy_on_random_arrays() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        h, w = rng.integers(4, 12, 2)
        frame = rng.integers(0, 256, (h, w), dtype=np.uint8)
        samples = rng.integers(0, 256, (5, h, w), dtype=np.uint8)
        left = rng.integers(0, w, 3).astype(np.int32)
        top = rng.integers(0, h, 3).astype(np.int32)
        width = np.minimum(rng.integers(1, 4, 3), w - left).astype(np.int32)
        height = np.minimum(rng.integers(1, 4, 3), h - top).astype(np.int32)
        cx, cy, vu, vv = (np.full(3, -1.0) for _ in range(4))
        weighted_centroids(frame, samples, left, top, width, height, 1, 2.0, False, cx, cy, vu, vv)
        for k in range(3):
            box = (left[k], top[k], width[k], height[k])
            ex, ey, evu, evv = _reference(frame, samples, box, 1, 2.0)
            assert cx[k] == pytest.approx(ex, abs=1e-9)
            assert cy[k] == pytest.approx(ey, abs=1e-9)
            assert vu[k] == pytest.approx(evu, abs=1e-9)
            assert vv[k] == pytest.approx(evv, abs=1e-9)


def test_box_without_weight_keeps_its_centroid() -> None:
    frame = np.full((6, 6), 50, np.uint8)
    samples = np.full((4, 6, 6), 50, np.uint8)
    blobs = Blobs(
        np.array([2], np.int32), np.array([2], np.int32), np.array([1], np.int32),
        np.array([1], np.int32), np.array([1], np.int32), np.array([2.0]), np.array([2.0]),
    )  # fmt: skip
    out = refine_centroids(blobs, frame, samples)
    assert (out.cx[0], out.cy[0]) == (2.0, 2.0)


def _render(v_top: float, height_px: float, contrast: float = 60.0) -> np.ndarray:
    """A body one pixel wide whose top edge is at continuous row ``v_top``, area-sampled."""
    img = np.full((16, 9), 40.0)
    rows = np.arange(16, dtype=np.float64)
    cover = np.clip(np.minimum(v_top + height_px, rows + 1) - np.maximum(v_top, rows), 0, None)
    img[:, 4] += contrast * cover
    return np.round(img).astype(np.uint8)


def test_follows_a_sub_pixel_body_the_mask_centroid_cannot() -> None:
    samples = np.full((4, 16, 9), 40, np.uint8)
    height = 1.3  # a person at ~2 km from a tower
    err_mask, err_weighted = [], []
    for v_top in np.linspace(5.0, 6.0, 11):
        frame = _render(v_top, height)
        mask = np.where(frame.astype(int) - 40 >= 20, 255, 0).astype(np.uint8)
        _, blobs = label_components(mask)
        assert len(blobs) == 1
        truth = v_top + height / 2 - 0.5  # pixel-index coordinates
        refined = refine_centroids(blobs, frame, samples, floor_dn=0.0)
        err_mask.append(abs(blobs.cy[0] - truth))
        err_weighted.append(abs(refined.cy[0] - truth))
    assert max(err_weighted) < 0.1  # grey levels are whole numbers: ~0.08 px at worst
    assert max(err_mask) >= 2.5 * max(err_weighted)  # whole rows: the mask jumps


def test_refine_rejects_mismatched_samples() -> None:
    blobs = Blobs(
        np.array([0], np.int32), np.array([0], np.int32), np.array([1], np.int32),
        np.array([1], np.int32), np.array([1], np.int32), np.array([0.0]), np.array([0.0]),
    )  # fmt: skip
    with pytest.raises(ValueError, match="samples"):
        refine_centroids(blobs, np.zeros((4, 4), np.uint8), np.zeros((2, 5, 5), np.uint8))


def test_spread_tells_a_tall_body_from_a_wide_one() -> None:
    """Bodies 1-2 pixels in size: the weighted spread, averaged over where they fall on the
    pixel grid, gives back their size ((w^2 + 1) / 12), which whole-pixel boxes cannot."""
    samples = np.full((4, 16, 16), 40, np.uint8)

    def spread(w: float, h: float) -> tuple[float, float]:
        got = []
        for du in np.linspace(0.0, 1.0, 8, endpoint=False):
            for dv in np.linspace(0.0, 1.0, 8, endpoint=False):
                u0, v0 = 6.0 + du, 6.0 + dv
                cols = np.arange(16.0)
                cu = np.clip(np.minimum(u0 + w, cols + 1) - np.maximum(u0, cols), 0, None)
                cv = np.clip(np.minimum(v0 + h, cols + 1) - np.maximum(v0, cols), 0, None)
                frame = np.round(40 + 60 * np.outer(cv, cu)).astype(np.uint8)
                mask = np.where(frame > 45, 255, 0).astype(np.uint8)
                _, blobs = label_components(mask)
                r = refine_centroids(blobs, frame, samples, floor_dn=0.0)
                k = int(np.argmax(blobs.area))
                got.append((r.var_u[k], r.var_v[k]))
        return tuple(np.mean(got, axis=0))

    person = spread(0.5, 1.7)  # a person at ~1.5 km: half a pixel wide, 1.7 tall
    cow = spread(2.2, 1.4)
    assert person[0] == pytest.approx((0.5**2 + 1) / 12, abs=0.03)
    assert person[1] == pytest.approx((1.7**2 + 1) / 12, abs=0.03)
    assert cow[0] == pytest.approx((2.2**2 + 1) / 12, abs=0.03)
    assert person[1] > person[0] and cow[0] > cow[1]


def test_warm_only_leaves_a_cold_trace_out() -> None:
    samples = np.full((4, 8, 8), 100, np.uint8)
    frame = np.full((8, 8), 100, np.uint8)
    frame[3, 3] = 160  # the body
    frame[3, 4] = 40  # the cold trace it left behind, inside the padded box
    blobs = Blobs(
        np.array([3], np.int32), np.array([3], np.int32), np.array([1], np.int32),
        np.array([1], np.int32), np.array([1], np.int32), np.array([3.0]), np.array([3.0]),
    )  # fmt: skip
    both = refine_centroids(blobs, frame, samples)
    warm = refine_centroids(blobs, frame, samples, warm_only=True)
    assert warm.cx[0] == pytest.approx(3.0) and warm.cy[0] == pytest.approx(3.0)
    assert both.cx[0] == pytest.approx(3.5, abs=0.05)  # pulled halfway to the trace
