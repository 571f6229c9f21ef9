"""The simulator's numba kernels against independent numpy/scipy references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vigil.sim import kernels


def blobs_reference(shape, uc, vc, w, h, contrast, sub: int = 64) -> np.ndarray:
    """Supersampled rectangles: each pixel split into ``sub x sub`` points, max over blobs."""
    rows, cols = shape
    out = np.zeros(shape)
    offs = (np.arange(sub) + 0.5) / sub
    for k in range(len(uc)):
        for i in range(rows):
            ys = i + offs
            iny = (ys >= vc[k] - h[k] / 2) & (ys <= vc[k] + h[k] / 2)
            if not iny.any():
                continue
            for j in range(cols):
                xs = j + offs
                inx = (xs >= uc[k] - w[k] / 2) & (xs <= uc[k] + w[k] / 2)
                cov = iny.mean() * inx.mean()
                out[i, j] = max(out[i, j], contrast[k] * cov)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_add_blobs_matches_supersampling(seed):
    rng = np.random.default_rng(seed)
    shape = (24, 32)
    n = 6
    uc = rng.uniform(-2, 34, n)
    vc = rng.uniform(-2, 26, n)
    w = rng.uniform(0.2, 9.0, n)
    h = rng.uniform(0.2, 9.0, n)
    contrast = rng.uniform(5, 80, n)
    acc = np.zeros(shape, np.float32)
    kernels.add_blobs(acc, uc, vc, w, h, contrast)
    ref = blobs_reference(shape, uc, vc, w, h, contrast)
    # 64 samples per axis: the reference is good to about contrast / 64 per edge.
    np.testing.assert_allclose(acc, ref, atol=contrast.max() * 2.5 / 64)


def test_add_blobs_conserves_area_inside_the_image():
    acc = np.zeros((40, 40), np.float32)
    kernels.add_blobs(acc, np.array([17.3]), np.array([20.8]), np.array([3.7]),
                      np.array([0.4]), np.array([1.0]))  # fmt: skip
    assert acc.sum() == pytest.approx(3.7 * 0.4, rel=1e-5)


def compose_reference(bg, row_shift, du, dv, veg_w, veg_group, flicker, acc, gain, offset,
                      noise, nr, nc):  # fmt: skip
    rows, cols = bg.shape
    ii, jj = np.mgrid[0:rows, 0:cols].astype(np.float64)
    sv = ii + dv
    su = jj + du + row_shift[:, None]
    sampled = ndimage.map_coordinates(bg.astype(np.float64), [sv, su], order=1, mode="nearest")
    svc = np.clip(sv, 0, rows - 1)
    suc = np.clip(su, 0, cols - 1)
    ni = np.where(svc - np.floor(svc) < 0.5, np.floor(svc), np.minimum(np.floor(svc) + 1, rows - 1))
    nj = np.where(suc - np.floor(suc) < 0.5, np.floor(suc), np.minimum(np.floor(suc) + 1, cols - 1))
    ni, nj = ni.astype(int), nj.astype(int)
    veg = veg_w[ni, nj] * flicker[veg_group[ni, nj]]
    tile = np.roll(noise, (-nr, -nc), axis=(0, 1))[:rows, :cols]
    val = gain * (sampled + veg + acc) + offset + tile
    return np.clip(np.floor(val + 0.5), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("du", "dv"), [(0.0, 0.0), (1.3, -0.7), (-2.6, 2.2)], ids=["still", "shake1", "shake2"]
)
def test_compose_frame_matches_scipy(du, dv):
    rng = np.random.default_rng(7)
    rows, cols = 30, 40
    bg = rng.uniform(20, 200, (rows, cols)).astype(np.float32)
    row_shift = rng.uniform(-1.5, 1.5, rows).astype(np.float32)
    veg_w = (rng.uniform(size=(rows, cols)) < 0.3).astype(np.float32)
    veg_group = rng.integers(0, 8, (rows, cols)).astype(np.uint8)
    flicker = rng.uniform(-5, 5, 8).astype(np.float32)
    acc = np.zeros((rows, cols), np.float32)
    acc[10:14, 20:22] = 60.0
    noise = rng.normal(0, 2, (64, 64)).astype(np.float32)
    out = np.empty((rows, cols), np.uint8)
    kernels.compose_frame(bg, row_shift, du, dv, veg_w, veg_group, flicker, acc, 1.05, 3.0,
                          noise, 50, 37, out)  # fmt: skip
    ref = compose_reference(bg, row_shift, du, dv, veg_w, veg_group, flicker, acc, 1.05, 3.0,
                            noise, 50, 37)  # fmt: skip
    diff = np.abs(out.astype(int) - ref.astype(int))
    # float32 in the kernel, float64 in the reference: only exact .5 ties may round apart.
    assert diff.max() <= 1
    assert (diff > 0).mean() < 0.01
