"""numba kernels of the track-before-detect stage (:mod:`vigil.detection.tbd`).

Pure loops over preallocated arrays, compiled ``nopython``, ``nogil`` and cached; the stage
checks shapes and dtypes. Grey levels are float32 block means (0-255); evidence is in units
of each pixel's own standard deviation. numpy's error model: a division by zero gives inf or
nan as in numpy instead of raising, so a loop that divides has no check and vectorises
(``surround_evidence`` 0.7 -> 0.1 ms at 640x480); no kernel here divides by zero.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

ngjit = nb.njit(nogil=True, cache=True, error_model="numpy")


@ngjit
def accumulate(frame: np.ndarray, acc: np.ndarray, recent: np.ndarray, rate: float) -> None:
    """Add a ``uint8 (h, w)`` frame into the ``float32 (h, w)`` block sum ``acc`` and move
    the running mean ``recent`` ``rate`` of the way to it."""
    h, w = frame.shape
    for y in range(h):
        for x in range(w):
            f = frame[y, x]
            acc[y, x] += f
            recent[y, x] += rate * (f - recent[y, x])


@ngjit
def level_fit(mean: np.ndarray, bg: np.ndarray, step: int, trim: float, out: np.ndarray) -> None:
    """Fit ``mean = a * bg + b`` on a grid of every ``step``-th pixel, trimmed.

    A least-squares fit over the grid, then a second one over the grid points whose first
    residual is within ``trim`` grey levels (bodies, brush and a changed sky leave it).
    Writes ``(a, b)`` into ``out``; ``(1, 0)`` when the fit is degenerate.
    """
    h, w = mean.shape
    a, b = 1.0, 0.0
    for rnd in range(2):
        n = 0.0
        sx = 0.0
        sy = 0.0
        sxx = 0.0
        sxy = 0.0
        for y in range(0, h, step):
            for x in range(0, w, step):
                xv = float(bg[y, x])
                yv = float(mean[y, x])
                if rnd == 1 and abs(yv - (a * xv + b)) > trim:
                    continue
                n += 1.0
                sx += xv
                sy += yv
                sxx += xv * xv
                sxy += xv * yv
        if n < 16.0:
            break
        den = n * sxx - sx * sx
        if den <= 1e-6 * n * n:
            a = 1.0
            b = (sy - sx) / n
        else:
            a = (n * sxy - sx * sy) / den
            b = (sy - a * sx) / n
    if not (0.25 <= a <= 4.0):
        a, b = 1.0, 0.0
    out[0] = a
    out[1] = b


@ngjit
def block_evidence(
    mean: np.ndarray,
    bg: np.ndarray,
    var: np.ndarray,
    a: float,
    b: float,
    z: np.ndarray,
    resid: np.ndarray,
    with_z: bool = True,
) -> None:
    """Each pixel's block mean against its background, in its own standard deviations.

    ``resid = (mean - b) / a - bg`` (grey levels on the background's scale) and
    ``z = resid / sqrt(var)`` (left as it is unless ``with_z``).
    """
    h, w = mean.shape
    inv_a = 1.0 / a
    for y in range(h):
        for x in range(w):
            r = (mean[y, x] - b) * inv_a - bg[y, x]
            resid[y, x] = r
            if with_z:
                z[y, x] = r / math.sqrt(var[y, x])


@ngjit
def surround_evidence(resid: np.ndarray, around: np.ndarray, var: np.ndarray, z: np.ndarray) -> int:
    """``resid -= around`` and ``z = resid / sqrt(var)``, all ``float32 (h, w)`` in ``float32``
    arithmetic (numpy's ``subtract``, ``sqrt`` and ``divide`` in one pass); returns how many
    pixels have ``z < -3``."""
    h, w = resid.shape
    cold = 0
    for y in range(h):
        for x in range(w):
            r = resid[y, x] - around[y, x]
            resid[y, x] = r
            v = r / np.sqrt(var[y, x])
            z[y, x] = v
            cold += v < np.float32(-3.0)
    return cold


@ngjit
def learn(
    mean: np.ndarray,
    resid: np.ndarray,
    hold: np.ndarray,
    a: float,
    b: float,
    bg: np.ndarray,
    var: np.ndarray,
    rate_bg: float,
    rate_var: float,
    cap_sd: float,
    floor_var: float,
) -> None:
    """Update the background and variance from a block (``hold`` slows both tenfold).

    The background moves ``rate_bg`` of the way to the level-compensated block mean, the
    variance ``rate_var`` of the way to the squared residual capped at ``cap_sd`` standard
    deviations (a body passing raises it only slowly), floored at ``floor_var``.
    """
    h, w = mean.shape
    inv_a = 1.0 / a
    for y in range(h):
        for x in range(w):
            rb = rate_bg
            rv = rate_var
            if hold[y, x]:
                rb *= 0.1
                rv *= 0.1
            level = (mean[y, x] - b) * inv_a
            bg[y, x] += rb * (level - bg[y, x])
            r2 = resid[y, x] * resid[y, x]
            cap = cap_sd * cap_sd * var[y, x]
            if r2 > cap:
                r2 = cap
            v = var[y, x] + rv * (r2 - var[y, x])
            var[y, x] = v if v > floor_var else floor_var


@ngjit
def velocity_filter(
    z: np.ndarray,
    energy: np.ndarray,
    scratch: np.ndarray,
    vx: np.ndarray,
    vy: np.ndarray,
    decay: float,
    z_lo: float,
    z_hi: float,
    best: np.ndarray,
    best_j: np.ndarray,
) -> None:
    """One step of a recursive velocity-matched filter over a bank of velocities.

    For each velocity ``j`` (``vx[j], vy[j]`` pixels per block), ``energy[j]`` becomes
    ``decay * energy[j]`` moved by that velocity (bilinear, edges replicated) plus ``z``
    clipped to ``[z_lo, z_hi]``: evidence that moves with the body adds up along its path,
    evidence that does not (noise, a stem swinging back and forth) averages away.
    ``best`` is the largest over the bank scaled to unit variance for white unit ``z``
    (times ``sqrt(1 - decay**2)``) and ``best_j`` which velocity gave it. ``scratch`` is
    not used (kept for the callers).

    The picture is swept row by row with every velocity at each row, so that a row's
    ``best``, ``best_j`` and clipped ``z`` stay in the cache while the bank passes over it
    (the same arithmetic per pixel and velocity as one velocity at a time, the same bytes).
    """
    nv, h, w = energy.shape
    norm = math.sqrt(1.0 - decay * decay)
    # Per velocity, the source column of every column (and its weight) depends on x alone:
    # computed once, the same arithmetic as per pixel, so the rows' interior, where the
    # two source columns are x + k and x + k + 1 for one k, runs as contiguous slices.
    x0s = np.empty((nv, w), np.int64)
    x1s = np.empty((nv, w), np.int64)
    fxs = np.empty((nv, w), np.float64)
    gxs = np.empty((nv, w), np.float64)
    y0s = np.empty((nv, h), np.int64)
    fys = np.empty((nv, h), np.float64)
    ks = np.empty(nv, np.int64)
    los = np.empty(nv, np.int64)
    his = np.empty(nv, np.int64)
    rings = np.ones(nv, np.int64)
    done = np.zeros(nv, np.int64)
    for j in range(nv):
        dx = vx[j]
        dy = vy[j]
        for x in range(w):
            sx = x - dx
            if sx < 0.0:
                sx = 0.0
            elif sx > w - 1:
                sx = float(w - 1)
            x0 = int(sx)
            x0s[j, x] = x0
            x1s[j, x] = min(x0 + 1, w - 1)
            fxs[j, x] = sx - x0
            gxs[j, x] = 1.0 - fxs[j, x]
        # the interior run [lo, hi): x0 = x + k and x1 = x0 + 1 throughout
        k = x0s[j, w // 2] - w // 2
        lo = w // 2
        while lo > 0 and x0s[j, lo - 1] == lo - 1 + k and x1s[j, lo - 1] == lo + k:
            lo -= 1
        hi = w // 2
        while hi < w and x0s[j, hi] == hi + k and x1s[j, hi] == hi + k + 1:
            hi += 1
        ks[j], los[j], his[j] = k, lo, hi
        # Each row's source rows, and a ring of new rows: a new row goes back into the
        # energy once no later row reads the old one (the source row is nondecreasing
        # down the picture), so the energy is read and written in one pass.
        for y in range(h):
            sy = min(max(y - dy, 0.0), float(h - 1))
            y0s[j, y] = int(sy)
            fys[j, y] = sy - y0s[j, y]
            rings[j] = max(rings[j], y - min(y0s[j, y], y) + 1)
    rmax = 1
    for j in range(nv):
        rmax = max(rmax, rings[j])
    ring_rows = np.empty((nv, rmax, w), np.float32)
    zc = np.empty(w, np.float64)
    for y in range(h):
        zr = z[y]
        for x in range(w):
            zi = np.float64(zr[x])
            if zi < z_lo:
                zi = z_lo
            elif zi > z_hi:
                zi = z_hi
            zc[x] = zi
        bo = best[y]
        jo = best_j[y]
        for x in range(w):
            bo[x] = -1e30
            jo[x] = 0
        for j in range(nv):
            e = energy[j]
            k, lo, hi = ks[j], los[j], his[j]
            ring = rings[j]
            y0 = y0s[j, y]
            y1 = min(y0 + 1, h - 1)
            fy = fys[j, y]
            gy = 1.0 - fy
            out = ring_rows[j, y % ring]
            if hi > lo:
                a = e[y0, lo + k : hi + k]
                b = e[y0, lo + k + 1 : hi + k + 1]
                c = e[y1, lo + k : hi + k]
                d = e[y1, lo + k + 1 : hi + k + 1]
                fx = fxs[j, lo:hi]
                gx = gxs[j, lo:hi]
                zz = zc[lo:hi]
                o = out[lo:hi]
                for i in range(hi - lo):
                    prev = gy * (gx[i] * a[i] + fx[i] * b[i]) + fy * (gx[i] * c[i] + fx[i] * d[i])
                    o[i] = np.float32(decay * prev + zz[i])
            for xe in range(w - hi + lo):  # the edge columns (all when there is no run)
                x = xe if xe < lo or hi <= lo else xe - lo + hi
                x0 = x0s[j, x]
                x1 = x1s[j, x]
                prev = gy * (gxs[j, x] * e[y0, x0] + fxs[j, x] * e[y0, x1]) + fy * (
                    gxs[j, x] * e[y1, x0] + fxs[j, x] * e[y1, x1]
                )
                out[x] = np.float32(decay * prev + zc[x])
            for x in range(w):  # branch-free (selects), so that it vectorises
                sv = out[x] * norm
                up = sv > bo[x]
                bo[x] = np.float32(sv) if up else bo[x]
                jo[x] = j if up else jo[x]
            upto = min(y0s[j, y + 1], y + 1) if y + 1 < h else h
            while done[j] < upto:
                row = e[done[j]]
                new = ring_rows[j, done[j] % ring]
                for x in range(w):  # a loop: numba's slice assignment is several times slower
                    row[x] = new[x]
                done[j] += 1


@ngjit
def label_peaks(labels: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """``out[i]`` becomes the largest of ``values`` over the pixels labelled ``i`` (``out`` is
    ``float32 (n,)`` of the label count, filled with 0 first: background is 0)."""
    out[:] = 0.0
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            i = labels[y, x]
            if i > 0 and values[y, x] > out[i]:
                out[i] = values[y, x]


@ngjit
def component_peaks(
    labels: np.ndarray, values: np.ndarray, peak: np.ndarray, first: np.ndarray
) -> None:
    """Per label ``i > 0`` of ``labels``: ``peak[i]``, the largest of ``values`` over its
    pixels (``peak`` filled with 0 first: background is 0), and ``first[i]``, the raster
    index of its first 2x2 block (``(y // 2) * ((w + 1) // 2) + x // 2``, least over its
    pixels): OpenCV's ``connectedComponentsWithStats`` numbers components in that order
    (8-connected: one component per block at most), so sorting by it gives OpenCV's order.
    ``peak`` and ``first`` are ``(n + 1,)``."""
    peak[:] = 0.0
    first[:] = np.iinfo(np.int64).max
    h, w = labels.shape
    w2 = (w + 1) // 2
    for y in range(h):
        for x in range(w):
            i = labels[y, x]
            if i > 0:
                if values[y, x] > peak[i]:
                    peak[i] = values[y, x]
                key = (y >> 1) * w2 + (x >> 1)
                if key < first[i]:
                    first[i] = key


@ngjit
def paint_labels(
    labels: np.ndarray, chosen: np.ndarray, mask: np.ndarray, hold: np.ndarray
) -> None:
    """``mask`` 255 and ``hold`` 1 on the pixels whose label is ``chosen`` (``uint8 (n + 1,)``,
    non-zero for the chosen labels); the others are left."""
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            if chosen[labels[y, x]]:
                mask[y, x] = 255
                hold[y, x] = 1


@ngjit
def _grad(bg: np.ndarray, y: int, x: int) -> tuple[float, float]:
    """Central differences of ``bg`` at ``(y, x)`` (one-sided at the frame's edges), grey
    levels per pixel."""
    h, w = bg.shape
    x0, x1 = max(x - 1, 0), min(x + 1, w - 1)
    y0, y1 = max(y - 1, 0), min(y + 1, h - 1)
    gx = (float(bg[y, x1]) - float(bg[y, x0])) / max(x1 - x0, 1)
    gy = (float(bg[y1, x]) - float(bg[y0, x])) / max(y1 - y0, 1)
    return gx, gy


@ngjit
def _ring_shift(
    recent: np.ndarray,
    background: np.ndarray,
    a: float,
    b: float,
    window: np.ndarray,
    inner: np.ndarray,
    lam: float,
) -> tuple[float, float]:
    """The shift ``d`` (px) of :func:`box_warmth`'s fit over the ring: least squares of
    ``r = c + g . d`` (``g`` the background's gradient), ridge ``lam`` on ``d``."""
    n = 0.0
    sx = sy = sr = sxx = sxy = syy = sxr = syr = 0.0
    for y in range(window[0], window[1]):
        for x in range(window[2], window[3]):
            if inner[0] <= y < inner[1] and inner[2] <= x < inner[3]:
                continue
            r = float((recent[y, x] - b) / a - background[y, x])
            gx, gy = _grad(background, y, x)
            n += 1.0
            sx += gx
            sy += gy
            sr += r
            sxx += gx * gx
            sxy += gx * gy
            syy += gy * gy
            sxr += gx * r
            syr += gy * r
    if n < 4.0:
        return 0.0, 0.0
    # centred sums (the offset c taken out), then the 2x2 ridge solve
    cxx = sxx - sx * sx / n + lam * n
    cyy = syy - sy * sy / n + lam * n
    cxy = sxy - sx * sy / n
    cxr = sxr - sx * sr / n
    cyr = syr - sy * sr / n
    det = cxx * cyy - cxy * cxy
    if det <= 0.0:
        return 0.0, 0.0
    dx = (cyy * cxr - cxy * cyr) / det
    dy = (cxx * cyr - cxy * cxr) / det
    return min(max(dx, -1.5), 1.5), min(max(dy, -1.5), 1.5)


@ngjit
def box_warmth(
    recent: np.ndarray,
    background: np.ndarray,
    var_used: np.ndarray,
    a: np.float32,
    b: np.float32,
    noise: np.float32,
    window: np.ndarray,
    inner: np.ndarray,
    box: np.ndarray,
    ring: np.ndarray,
    z: np.ndarray,
    lam: float = 0.0,
) -> None:
    """Each pixel's warmth over a box (``TrackBeforeDetect.warmth``), in ``float32`` as the
    array code computes it: ``r = (recent - b) / a - background`` over ``window`` (``y0, y1,
    x0, x1``), the median of ``r`` outside ``inner`` (``y0, y1, x0, x1``; 0 when none is),
    and ``z = (r - median) / sqrt(var_used + noise)`` over ``box`` (``v0, v1, u0, u1``), written
    to ``z`` (``float32 (v1 - v0, u1 - u0)``). ``ring`` is ``float32`` scratch of the
    window's size. With ``lam > 0`` the ring's ``r`` is first fitted as an offset plus the
    background moved by one shift ``d`` (``r ~ c + grad(background) . d``, ridge ``lam``
    in (grey levels / px)^2 on ``d``, ``|d|`` at most 1.5 px: heat shimmer moves the
    ground's texture locally) and ``grad(background) . d`` is taken off every ``r``."""
    dx = 0.0
    dy = 0.0
    if lam > 0.0:
        dx, dy = _ring_shift(recent, background, a, b, window, inner, lam)
    n = 0
    for y in range(window[0], window[1]):
        for x in range(window[2], window[3]):
            if inner[0] <= y < inner[1] and inner[2] <= x < inner[3]:
                continue
            ring[n] = (recent[y, x] - b) / a - background[y, x]
            if lam > 0.0:
                gx, gy = _grad(background, y, x)
                ring[n] -= np.float32(gx * dx + gy * dy)
            n += 1
    level = np.float32(0.0)
    if n > 0:
        # the median by selection: s[n // 2] is in place, what precedes it is no larger
        s = np.partition(ring[:n], n // 2)
        level = s[n // 2]
        if n % 2 == 0:  # numpy's float32 mean of the middle two
            level = np.float32(s[: n // 2].max() + s[n // 2]) / np.float32(2.0)
    for y in range(box[0], box[1]):
        for x in range(box[2], box[3]):
            r = (recent[y, x] - b) / a - background[y, x]
            if lam > 0.0:
                gx, gy = _grad(background, y, x)
                r -= np.float32(gx * dx + gy * dy)
            z[y - box[0], x - box[2]] = (r - level) / np.sqrt(var_used[y, x] + noise)
