"""numba kernels that draw the simulator's thermal frames: warm blobs and the frame composite.

Pure loops over preallocated arrays, ``nopython``, ``nogil`` (towers render on threads) and
cached. The wrappers in :mod:`vigil.sim.thermal` check shapes and types; each kernel has a
test against an independent numpy/scipy reference (``tests/test_sim_kernels.py``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

ngjit = numba.njit(nogil=True, cache=True)


@ngjit
def add_blobs(acc, uc, vc, w, h, contrast):  # pragma: no cover - compiled
    """Draw axis-aligned warm rectangles with exact pixel-area coverage into ``acc``.

    Blob ``k`` covers ``[uc-w/2, uc+w/2] x [vc-h/2, vc+h/2]`` in continuous pixels; a pixel
    gets ``contrast[k]`` times the fraction of its area covered. Where blobs overlap the
    warmer wins (the nearer body hides the one behind), so ``acc`` keeps the maximum.
    """
    rows, cols = acc.shape
    for k in range(uc.shape[0]):
        u0 = uc[k] - 0.5 * w[k]
        u1 = uc[k] + 0.5 * w[k]
        v0 = vc[k] - 0.5 * h[k]
        v1 = vc[k] + 0.5 * h[k]
        j0 = max(int(math.floor(u0)), 0)
        j1 = min(int(math.ceil(u1)), cols)
        i0 = max(int(math.floor(v0)), 0)
        i1 = min(int(math.ceil(v1)), rows)
        for i in range(i0, i1):
            oy = min(v1, i + 1.0) - max(v0, float(i))
            if oy <= 0.0:
                continue
            for j in range(j0, j1):
                ox = min(u1, j + 1.0) - max(u0, float(j))
                if ox <= 0.0:
                    continue
                val = contrast[k] * ox * oy
                if val > acc[i, j]:
                    acc[i, j] = val


@ngjit
def compose_frame(
    bg, row_shift, shake_du, shake_dv, veg_w, veg_group, flicker, acc, gain, offset, noise,
    noise_row, noise_col, out,
):  # pragma: no cover - compiled  # fmt: skip
    """One 8-bit thermal frame from a background and the frame's nuisances.

    Pixel ``(i, j)`` samples the background bilinearly at ``(i + shake_dv, j + shake_du +
    row_shift[i])`` with edge pixels repeated (camera shake moves the whole scene, heat
    shimmer shifts rows), adds the vegetation flicker of the nearest background pixel
    (``veg_w * flicker[veg_group]``) and the warm bodies in ``acc``, applies ``gain`` and
    ``offset``, adds the sensor noise tile ``noise`` (square, a power of two on a side) read
    from ``(noise_row, noise_col)`` with wrap-around, rounds and clips to 0-255.
    """
    rows, cols = bg.shape
    nmask = noise.shape[0] - 1
    last_row, last_col = rows - 1, cols - 1
    for i in range(rows):
        sv = i + shake_dv
        if sv < 0.0:
            sv = 0.0
        elif sv > last_row:
            sv = float(last_row)
        i0 = int(math.floor(sv))
        i1 = min(i0 + 1, last_row)
        fy = sv - i0
        ii = i0 if fy < 0.5 else i1
        shift = shake_du + row_shift[i]
        ishift = int(math.floor(shift))
        fx = shift - ishift
        near = 1 if fx >= 0.5 else 0
        nrow = (i + noise_row) & nmask
        for j in range(cols):
            a = j + ishift
            j0 = min(max(a, 0), last_col)
            j1 = min(max(a + 1, 0), last_col)
            top = bg[i0, j0] + fx * (bg[i0, j1] - bg[i0, j0])
            bot = bg[i1, j0] + fx * (bg[i1, j1] - bg[i1, j0])
            jj = j1 if near else j0
            val = top + fy * (bot - top) + veg_w[ii, jj] * flicker[veg_group[ii, jj]] + acc[i, j]
            val = gain * val + offset + noise[nrow, (j + noise_col) & nmask]
            if val <= 0.0:
                out[i, j] = 0
            elif val >= 255.0:
                out[i, j] = 255
            else:
                out[i, j] = np.uint8(int(val + 0.5))


def warm_up() -> None:
    """Compile (or load from cache) both kernels on tiny arrays."""
    acc = np.zeros((4, 4), np.float32)
    one = np.ones(1, np.float64)
    add_blobs(acc, one, one, one, one, one)
    out = np.zeros((4, 4), np.uint8)
    compose_frame(
        acc, np.zeros(4, np.float32), 0.0, 0.0, acc, np.zeros((4, 4), np.uint8),
        np.zeros(1, np.float32), acc, 1.0, 0.0, acc, 0, 0, out,
    )  # fmt: skip
