"""numba kernels of the track-before-detect stage's local shift fits (:mod:`vigil.detection.tbd`):
the heat-shimmer fit over each pixel's window (``shift_terms``, ``shift_remove``) and the box
supports that fit the same over each box's ring (``box_windows``, ``boxes_warmth``).

Split from :mod:`vigil.detection.tbd_kernels` (same conventions: ``nopython``, ``nogil``,
cached, numpy's error model; float32 grey levels 0-255, shifts in pixels).
"""

from __future__ import annotations

import math

import numpy as np

from vigil.detection.tbd_kernels import box_warmth, ngjit


@ngjit
def box_windows(h: int, w: int, box: np.ndarray, grow: int, surround: int) -> np.ndarray:
    """Where :func:`box_warmth` looks for a box ``(u0, v0, u1, v1)`` (``float64 (4,)``) in an
    ``h`` x ``w`` frame: rows ``(y0, y1, x0, x1)`` of the window (the box grown by ``grow``,
    clipped, then by ``surround + 1`` more), the inner part left out of the ring (the grown
    box grown by ``max(grow, 1) - grow``) and ``(v0, v1, u0, u1)`` the grown, clipped box
    (empty when ``u1 <= u0`` or ``v1 <= v0``), as ``int64 (3, 4)``."""
    g = surround + 1
    e = max(grow, 1)
    u0 = max(int(box[0]) - grow, 0)
    v0 = max(int(box[1]) - grow, 0)
    u1 = min(int(math.ceil(box[2])) + grow, w)
    v1 = min(int(math.ceil(box[3])) + grow, h)
    x0, y0 = max(u0 - g, 0), max(v0 - g, 0)
    x1, y1 = min(u1 + g, w), min(v1 + g, h)
    out = np.empty((3, 4), np.int64)
    out[0, 0], out[0, 1], out[0, 2], out[0, 3] = y0, y1, x0, x1
    out[1, 0], out[1, 1] = max(v0 - e + grow, y0), min(v1 + e - grow, y1)
    out[1, 2], out[1, 3] = max(u0 - e + grow, x0), min(u1 + e - grow, x1)
    out[2, 0], out[2, 1], out[2, 2], out[2, 3] = v0, v1, u0, u1
    return out


@ngjit
def boxes_warmth(
    recent: np.ndarray,
    background: np.ndarray,
    var_used: np.ndarray,
    a: np.float32,
    b: np.float32,
    noise: np.float32,
    boxes: np.ndarray,
    grow: int,
    surround: int,
    ring: np.ndarray,
    mask: np.ndarray,
    mask_sd: np.float32,
    peak: np.ndarray,
    lam: float = 0.0,
) -> None:
    """:func:`box_warmth` over many boxes at once (``TrackBeforeDetect.supports``).

    ``boxes`` is ``float64 (k, 4)`` ``(u0, v0, u1, v1)``, each looked at as
    :func:`box_windows` says. ``peak[i]`` (``float32 (k,)``) becomes the largest ``z`` over
    box ``i`` (0 for an empty box); where ``mask_sd > 0``, ``mask`` (``uint8 (h, w)``) is set
    to 255 where ``z >= mask_sd``. ``ring`` is ``float32`` scratch of at least the largest
    window's size; ``lam`` as :func:`box_warmth`'s.
    """
    h, w = recent.shape
    for i in range(boxes.shape[0]):
        geo = box_windows(h, w, boxes[i], grow, surround)
        v0, v1, u0, u1 = geo[2, 0], geo[2, 1], geo[2, 2], geo[2, 3]
        peak[i] = 0.0
        if u1 <= u0 or v1 <= v0:
            continue
        z = np.empty((v1 - v0, u1 - u0), np.float32)
        box_warmth(recent, background, var_used, a, b, noise, geo[0], geo[1], geo[2], ring, z, lam)
        top = z[0, 0]
        for y in range(v1 - v0):
            for x in range(u1 - u0):
                top = max(top, z[y, x])
                if mask_sd > 0.0 and z[y, x] >= mask_sd:
                    mask[v0 + y, u0 + x] = 255
        peak[i] = top


@ngjit
def shift_terms(bg: np.ndarray, r: np.ndarray, terms: np.ndarray) -> None:
    """The per-pixel terms of :meth:`TrackBeforeDetect._unshimmer`'s local shift fit, into
    ``terms`` (``float32 (8, h, w)``): the background's central-difference gradient ``gx,
    gy`` (grey levels per pixel, one-sided at the edges), ``r`` and the products ``gx gx,
    gy gy, gx gy, gx r, gy r``."""
    h, w = bg.shape
    half = np.float32(0.5)
    for y in range(h):
        ya, yb = max(y - 1, 0), min(y + 1, h - 1)
        sy = np.float32(1.0 / max(yb - ya, 1))
        gxr = terms[0, y]
        gyr = terms[1, y]
        row = bg[y]
        # the interior as straight-line code (vectorised), the two edge columns after
        for x in range(1, w - 1):
            gxr[x] = (row[x + 1] - row[x - 1]) * half
        gxr[0] = row[min(1, w - 1)] - row[0]
        gxr[w - 1] = row[w - 1] - row[max(w - 2, 0)]
        above, below = bg[ya], bg[yb]
        rr = r[y]
        t2, t3, t4 = terms[2, y], terms[3, y], terms[4, y]
        t5, t6, t7 = terms[5, y], terms[6, y], terms[7, y]
        for x in range(w):
            gy = (below[x] - above[x]) * sy
            gx = gxr[x]
            rv = rr[x]
            gyr[x] = gy
            t2[x] = rv
            t3[x] = gx * gx
            t4[x] = gy * gy
            t5[x] = gx * gy
            t6[x] = gx * rv
            t7[x] = gy * rv


@ngjit
def shift_remove(terms: np.ndarray, means: np.ndarray, lam: float, r: np.ndarray) -> None:
    """Solve each pixel's shift from the window means of :func:`shift_terms`' terms
    (``means``, the same layout): ``r ~ c + g . d`` by least squares, ridge ``lam`` on
    ``d``, ``|d|`` clipped to 1.5 px, and take ``g . d`` off ``r`` (``float32 (h, w)``)."""
    _, h, w = terms.shape
    lam32 = np.float32(lam)
    lim = np.float32(1.5)
    for y in range(h):
        for x in range(w):
            mx = means[0, y, x]
            my = means[1, y, x]
            mr = means[2, y, x]
            cxx = means[3, y, x] - mx * mx + lam32
            cyy = means[4, y, x] - my * my + lam32
            cxy = means[5, y, x] - mx * my
            cxr = means[6, y, x] - mx * mr
            cyr = means[7, y, x] - my * mr
            det = cxx * cyy - cxy * cxy
            dx = (cyy * cxr - cxy * cyr) / det
            dy = (cxx * cyr - cxy * cxr) / det
            dx = min(max(dx, -lim), lim)
            dy = min(max(dy, -lim), lim)
            r[y, x] -= terms[0, y, x] * dx + terms[1, y, x] * dy
