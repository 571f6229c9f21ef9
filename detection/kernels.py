"""numba kernels for motion detection: pure loops over arrays with preallocated outputs.

Every kernel is compiled ``nopython``, ``nogil`` (so detectors for several cameras run in
threads) and cached. Kernels do not validate their inputs: the thin wrappers in
:mod:`vigil.detection.background`, :mod:`vigil.detection.blobs` and
:mod:`vigil.detection.registration` check shapes and dtypes and allocate the outputs once per
camera.

The background model is a sample-consensus model in the family of ViBe (Barnich and Van
Droogenbroeck, 2011) and PBAS (Hofmann et al., 2012), sized for speed:

- each pixel keeps ``n`` grey-level samples of its recent background (``uint8``);
- a pixel is background when at least ``min_matches`` samples lie within its radius;
- the radius adapts per pixel to the mean distance from the pixel to its closest sample
  when it was last background, so shimmer and waving brush, whose values spread wide, get a
  wide radius and a still sky a narrow one;
- background pixels are updated at random (on average one in ``period`` frames): one sample
  is replaced by the current value and a random neighbour learns a value too (its own, or
  the updated pixel's).
  The random gaps between updated pixels come from a precomputed table of random numbers,
  so the model is deterministic for a seed and the classification loop stays branch-free
  and vectorised;
- pixels whose state keeps flipping between frames (brush whipping between two
  positions, shimmer) accumulate a blinking level that widens their radius further;
- a global gain factor (8.8 fixed point) scales the incoming frame onto the model's grey
  levels before comparison, which compensates a camera's automatic gain.
"""

from __future__ import annotations

import numba as nb
import numpy as np

ngjit = nb.njit(nogil=True, cache=True)

# The eight neighbours (dy, dx) in raster order.
_NEIGHBOUR_DY = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
_NEIGHBOUR_DX = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)


# -- background model -------------------------------------------------------------------------


@ngjit
def init_samples(
    frame: np.ndarray, rand_table: np.ndarray, rand_pos: int, samples_out: np.ndarray
) -> int:
    """Fill a sample-consensus model from one frame.

    Sample 0 is the frame itself; every other sample of a pixel is the value of a random
    pixel of its 3x3 neighbourhood (edges replicated), as in ViBe.

    Parameters
    ----------
    frame
        ``uint8 (h, w)`` grey levels.
    rand_table
        ``uint32 (L,)`` random numbers.
    rand_pos
        Where to start reading ``rand_table``.
    samples_out
        ``uint8 (n, h, w)``, overwritten.

    Returns
    -------
    int
        The next position in ``rand_table``.
    """
    n, h, w = samples_out.shape
    size = rand_table.shape[0]
    for y in range(h):
        for x in range(w):
            samples_out[0, y, x] = frame[y, x]
    for k in range(1, n):
        for y in range(h):
            for x in range(w):
                r = rand_table[rand_pos]
                rand_pos += 1
                if rand_pos >= size:
                    rand_pos = 0
                i = r & 7
                yy = min(max(y + _NEIGHBOUR_DY[i], 0), h - 1)
                xx = min(max(x + _NEIGHBOUR_DX[i], 0), w - 1)
                samples_out[k, y, x] = frame[yy, xx]
    return rand_pos


@ngjit
def consensus_segment(
    frame: np.ndarray,
    roi: np.ndarray,
    samples: np.ndarray,
    radius: np.ndarray,
    dist_avg: np.ndarray,
    gain_q8: int,
    min_matches: int,
    period: int,
    r_min: int,
    r_max: int,
    r_scale_q4: int,
    rand_table: np.ndarray,
    rand_pos: int,
    previous: np.ndarray,
    flicker: np.ndarray,
    flicker_step: int,
    spread_centre: bool,
    warm_only: bool,
    fg_age: np.ndarray,
    absorb_after: int,
    frame_slot: int,
    fg_out: np.ndarray,
    level: np.ndarray,
    dmin: np.ndarray,
    count: np.ndarray,
    reff: np.ndarray,
    below: np.ndarray,
) -> int:
    """Classify one frame against the sample-consensus model and update the model.

    Parameters
    ----------
    frame
        ``uint8 (h, w)`` grey levels.
    roi
        ``uint8 (h, w)``: 0 where motion is never reported (the region mask), else non-zero.
    samples
        ``uint8 (n, h, w)`` model samples, updated in place.
    radius
        ``uint8 (h, w)`` per-pixel match radius in grey levels, updated in place.
    dist_avg
        ``uint16 (h, w)`` running mean of the distance to the closest sample, grey levels
        times 16, updated in place.
    gain_q8
        Gain applied to the frame before comparison, 8.8 fixed point (256 is 1.0).
    min_matches
        Samples within the radius needed to call a pixel background.
    period
        Mean number of frames between two updates of a background pixel (ViBe's phi);
        ``0`` freezes the model (classification only).
    r_min, r_max
        Bounds of the radius, grey levels.
    r_scale_q4
        Radius as a multiple of ``dist_avg``, 4-bit fixed point (16 is 1.0; 0 keeps
        ``r_min``).
    rand_table, rand_pos
        ``uint32 (L,)`` random numbers and where to start reading them.
    previous
        ``uint8 (h, w)``: the previous frame's mask (not the same array as ``fg_out``).
    flicker
        ``uint8 (h, w)`` blinking level, updated in place: up by ``flicker_step`` each time
        a pixel's state flips, down by one otherwise; a quarter of it widens the radius, so
        pixels that keep flipping (brush, shimmer) stop being reported (after SuBSENSE).
    flicker_step
        Increment of ``flicker`` on a flip (0 turns the feedback off).
    spread_centre
        What a random neighbour of an updated pixel learns: the updated pixel's value
        (``True``, ViBe: spreads background into the edges of ghosts, never absorbs a small
        warm target) or its own current value (``False``, PBAS: absorbs ghosts and stopped
        objects sooner).
    warm_only
        Report only pixels warmer than their coldest sample (thermal cameras, where what
        moves is warm): the cold trace a warm body leaves where the model had learnt it is
        not foreground, and is relearnt as background.
    fg_age
        ``uint8 (h, w)`` frames each pixel has been foreground in a row (saturating at 255),
        updated in place.
    absorb_after
        Foreground older than this many frames is written into the model every frame
        (sample ``frame_slot % n``), so it becomes background within a few frames; 0 never.
    frame_slot
        A counter that changes every frame (which sample absorbed foreground replaces).
    fg_out
        ``uint8 (h, w)``: 255 for foreground, 0 for background.
    level, dmin, count, reff, below
        ``uint8 (w,)`` scratch rows.

    Returns
    -------
    int
        The next position in ``rand_table``.
    """
    n, h, w = samples.shape
    size = rand_table.shape[0]
    for y in range(h):
        frow = frame[y]
        rrow = radius[y]
        blink = flicker[y]
        for x in range(w):
            level[x] = np.uint8(min((np.int32(frow[x]) * gain_q8 + 128) >> 8, 255))
            reff[x] = np.uint8(min(np.int32(rrow[x]) + (np.int32(blink[x]) >> 2), 255))
            dmin[x] = 255
            count[x] = 0
            below[x] = 0
        for k in range(n):
            srow = samples[k, y]
            for x in range(w):
                a = srow[x]
                b = level[x]
                d = np.uint8(max(a, b) - min(a, b))
                dmin[x] = min(dmin[x], d)
                count[x] += d <= reff[x]
                below[x] += a < b
        if warm_only:
            # No warmer than every sample (none below the level): counted as background.
            for x in range(w):
                if below[x] == 0:
                    count[x] = max(count[x], np.uint8(min_matches))
        orow = fg_out[y]
        prow = previous[y]
        mrow = roi[y]
        agerow = fg_age[y]
        for x in range(w):
            new = np.uint8(255) if (count[x] < min_matches) & (mrow[x] != 0) else np.uint8(0)
            orow[x] = new
            f = np.int32(blink[x])
            f = min(f + flicker_step, 255) if new != prow[x] else max(f - 1, 0)
            blink[x] = np.uint8(f)
            agerow[x] = np.uint8(min(np.int32(agerow[x]) + 1, 255)) if new != 0 else np.uint8(0)
        if absorb_after > 0:
            # Foreground that has not moved for `absorb_after` frames (a ghost left where an
            # object stood when the model started, or an object that stopped) is learnt.
            kk = frame_slot % n
            sk = samples[kk, y]
            for x in range(w):
                if agerow[x] >= absorb_after:
                    sk[x] = level[x]
        if period <= 0:
            continue
        # Sparse random update: jump from pixel to pixel by random gaps of mean `period`.
        # Random numbers are cut into fields and scaled by multiply-and-shift (no division):
        # bits 0-15 the gap, 16-23 the sample, 24-26 the neighbour, 27-31 its sample.
        span = 2 * period - 1
        x = np.int64(((rand_table[rand_pos] & 0xFFFF) * period) >> 16)
        rand_pos += 1
        if rand_pos >= size:
            rand_pos = 0
        while x < w:
            rnd = np.int64(rand_table[rand_pos])
            rand_pos += 1
            if rand_pos >= size:
                rand_pos = 0
            if orow[x] == 0 and mrow[x] != 0:
                samples[(((rnd >> 16) & 0xFF) * n) >> 8, y, x] = level[x]
                da = np.int32(dist_avg[y, x])
                da += (np.int32(dmin[x]) * 16 - da) >> 4
                dist_avg[y, x] = np.uint16(da)
                rr = (da * r_scale_q4) >> 8
                radius[y, x] = np.uint8(min(max(rr, r_min), r_max))
                i = (rnd >> 24) & 7
                yy = min(max(y + _NEIGHBOUR_DY[i], 0), h - 1)
                xx = min(max(x + _NEIGHBOUR_DX[i], 0), w - 1)
                if spread_centre:
                    nval = np.int32(level[x])
                else:
                    nval = min((np.int32(frame[yy, xx]) * gain_q8 + 128) >> 8, 255)
                samples[(((rnd >> 27) & 31) * n) >> 5, yy, xx] = np.uint8(nval)
            x += 1 + (((rnd & 0xFFFF) * span) >> 16)
    return rand_pos


@ngjit
def gain_ratio(
    frame: np.ndarray, reference: np.ndarray, fg: np.ndarray, step: int, min_level: int
) -> float:
    """Ratio of the frame's brightness to the reference's over background pixels.

    Sums over a grid of every ``step``-th row and column, skipping foreground pixels and
    pixels darker than ``min_level`` in the reference (where a ratio means little).
    Returns 1.0 when no pixel qualifies.
    """
    h, w = frame.shape
    num = 0.0
    den = 0.0
    for y in range(0, h, step):
        for x in range(0, w, step):
            if fg[y, x] == 0 and reference[y, x] >= min_level:
                num += np.float64(frame[y, x])
                den += np.float64(reference[y, x])
    if den <= 0.0 or num <= 0.0:
        return 1.0
    return num / den


@ngjit
def slow_warm_segment(
    frame: np.ndarray,
    gain_q8: int,
    roi: np.ndarray,
    mean: np.ndarray,
    excess: np.ndarray,
    spread: np.ndarray,
    a_mean: float,
    a_excess: float,
    a_spread: float,
    held_div: float,
    min_excess: float,
    spread_k: float,
    fg_out: np.ndarray,
    two_sided: bool = False,
) -> None:
    """Find pixels that stay warmer than a slow background: things that creep or stand.

    A second, slow background for small warm targets whose image moves a pixel in tens of
    seconds (a group walking straight at a tower 2-3 km away), which a sample-consensus
    model learns as they go: each step of their pixel's value is within its radius. Per
    pixel, with ``x`` the gain-compensated grey level and ``e = x - mean``:

    - ``excess`` follows ``e`` with rate ``a_excess`` (a low-pass of about a second): heat
      shimmer and brush flicker swing ``e`` both ways and average out, a warm body lifts it
      and holds it;
    - the pixel is foreground when ``min(excess, e) > max(min_excess, spread_k * spread)``
      (and the region mask allows it): the low-pass must hold the excess and this frame
      must show it, so a walker leaves no trail of decaying excess behind him; only
      warmer than the background counts, so the cold trace a body leaves where it stood
      when the model started is never reported;
    - ``spread`` (mean ``|excess|``, rate ``a_spread``) and ``mean`` (rate ``a_mean``) learn only
      while the pixel is background; a foreground pixel's mean moves at ``a_mean /
      held_div``, so a body that stays is learnt in the end, ``held_div`` times slower.

    Parameters
    ----------
    frame
        ``uint8 (h, w)`` grey levels.
    gain_q8
        Gain applied to the frame first, 8.8 fixed point (256 is 1.0).
    roi
        ``uint8 (h, w)``: 0 where motion is never reported.
    mean, excess, spread
        ``float32 (h, w)`` state in grey levels, updated in place.
    a_mean, a_excess, a_spread
        Update rates per frame, in (0, 1].
    held_div
        How many times slower a foreground pixel's mean learns (>= 1).
    min_excess
        Least excess reported, grey levels.
    spread_k
        Excess needed as a multiple of the pixel's spread.
    fg_out
        ``uint8 (h, w)``: 255 for foreground, 0 for background.
    two_sided
        Also report pixels that stay colder than the background by as much (``max(excess,
        e) < -max(min_excess, spread_k * spread)``): bodies colder than a sun-heated ground.
    """
    h, w = frame.shape
    a_held = a_mean / held_div
    for y in range(h):
        for x in range(w):
            lv = min((np.int32(frame[y, x]) * gain_q8 + 128) >> 8, 255)
            m = mean[y, x]
            e = np.float32(lv) - m
            ex = excess[y, x] + np.float32(a_excess) * (e - excess[y, x])
            excess[y, x] = ex
            sp = spread[y, x]
            lo = min(ex, e)
            if two_sided:
                lo = max(lo, -max(ex, e))
            fg = (lo > min_excess) & (lo > spread_k * sp) & (roi[y, x] != 0)
            if fg:
                mean[y, x] = m + np.float32(a_held) * e
                fg_out[y, x] = 255
            else:
                mean[y, x] = m + np.float32(a_mean) * e
                spread[y, x] = sp + np.float32(a_spread) * (abs(ex) - sp)
                fg_out[y, x] = 0


@ngjit
def affine_fit(
    frame: np.ndarray,
    samples: np.ndarray,
    fg: np.ndarray,
    step: int,
    trim_dn: float,
    out: np.ndarray,
) -> None:
    """Fit ``frame = a * background + b`` over background pixels (a frame-wide gain and offset).

    The background of a pixel is the mean of its samples. Pixels on a grid of every ``step``-th
    row and column count unless they are foreground in ``fg`` or clipped (0 or 255 in either
    image). A first least-squares fit is refined once over the pixels whose residual is
    within ``trim_dn`` grey levels of the median absolute residual times 3 (at least
    ``trim_dn``), so that bodies and brush the mask missed weigh nothing.

    Writes ``out[:] = (a, b, gain, kept_share, ref_lo, ref_hi)``: ``gain`` is the plain ratio
    of sums (what a gain-only compensation uses), ``kept_share`` the share of the sampled
    pixels within ``trim_dn`` of the final fit (near 1 when a gain and an offset explain
    the frame), ``ref_lo, ref_hi`` the least and greatest background levels kept.
    ``a = 1, b = 0, kept_share = 0`` when too few pixels qualify (under 16).
    """
    h, w = frame.shape
    ns = samples.shape[0]
    nmax = ((h + step - 1) // step) * ((w + step - 1) // step)
    xs = np.empty(nmax, np.float64)
    ys = np.empty(nmax, np.float64)
    n = 0
    for y in range(0, h, step):
        for x in range(0, w, step):
            if fg[y, x] != 0:
                continue
            f = frame[y, x]
            if f == 0 or f == 255:
                continue
            acc = 0
            for k in range(ns):
                acc += np.int32(samples[k, y, x])
            r = acc / ns
            if r < 1.0 or r > 254.0:
                continue
            xs[n] = r
            ys[n] = np.float64(f)
            n += 1
    out[0] = 1.0
    out[1] = 0.0
    out[2] = 1.0
    out[3] = 0.0
    out[4] = 0.0
    out[5] = 0.0
    if n < 16:
        return
    a = 1.0
    b = 0.0
    res = np.empty(n, np.float64)
    lo = 255.0
    hi = 0.0
    for it in range(2):
        sx = 0.0
        sy = 0.0
        sxx = 0.0
        sxy = 0.0
        m = 0
        lo = 255.0
        hi = 0.0
        limit = 1e30
        if it == 1:
            for i in range(n):
                res[i] = abs(ys[i] - (a * xs[i] + b))
            # The limit is trim_dn unless the median residual is over a third of it: where
            # more than half the residuals are (safely) under a third, the median is not
            # needed (the usual frame: noise of a grey level or two).
            third = trim_dn / 3.0 * (1.0 - 1e-9)
            small = 0
            for i in range(n):
                small += res[i] <= third
            if small > n // 2:
                limit = trim_dn
            else:
                mad = np.median(res)
                limit = max(3.0 * mad, trim_dn)
        for i in range(n):
            if it == 1 and res[i] > limit:
                continue
            sx += xs[i]
            sy += ys[i]
            sxx += xs[i] * xs[i]
            sxy += xs[i] * ys[i]
            lo = min(lo, xs[i])
            hi = max(hi, xs[i])
            m += 1
        if m < 16:
            return
        mx = sx / m
        my = sy / m
        vxx = sxx / m - mx * mx
        if vxx > 1.0:  # at least a grey level of spread: gain and offset both
            a = (sxy / m - mx * my) / vxx
            b = my - a * mx
        else:  # a flat picture: the offset alone
            a = 1.0
            b = my - mx
        if it == 0:
            out[2] = sy / sx if sx > 0 else 1.0
    close = 0
    for i in range(n):
        close += abs(ys[i] - (a * xs[i] + b)) <= trim_dn
    out[0] = a
    out[1] = b
    out[3] = close / n
    out[4] = lo
    out[5] = hi


@ngjit
def level_residuals(
    frame: np.ndarray,
    samples: np.ndarray,
    fg: np.ndarray,
    step: int,
    a: float,
    b: float,
    out: np.ndarray,
) -> int:
    """Residuals ``|frame - (a * background + b)|`` (``float32``) on a grid, for the level
    steps' residual level (:meth:`vigil.detection.steps.LevelSteps._measure`).

    Pixels on every ``step``-th row and column count unless they are foreground in ``fg``,
    clipped in the frame (0 or 255) or with a background (the mean of the samples) under 1
    or over 254. The arithmetic is ``float32`` throughout, as the array version's
    (``samples.mean(axis=0, dtype=float32)`` and the same products and sums). Writes the
    residuals of the ``n`` pixels that count, in raster order, to ``out[:n]`` (at least
    ``ceil(h / step) * ceil(w / step)`` long) and returns ``n``.
    """
    h, w = frame.shape
    ns = samples.shape[0]
    af = np.float32(a)
    bf = np.float32(b)
    nsf = np.float32(ns)
    n = 0
    for y in range(0, h, step):
        for x in range(0, w, step):
            if fg[y, x] != 0:
                continue
            f = frame[y, x]
            if f == 0 or f == 255:
                continue
            acc = 0
            for k in range(ns):
                acc += np.int32(samples[k, y, x])
            bg = np.float32(acc) / nsf
            if bg < np.float32(1.0) or bg > np.float32(254.0):
                continue
            out[n] = abs(np.float32(f) - (af * bg + bf))
            n += 1
    return n


# -- morphology -------------------------------------------------------------------------------


@ngjit
def rank_filter(
    mask: np.ndarray,
    size: int,
    min_count: int,
    out: np.ndarray,
    colsum: np.ndarray,
    acc: np.ndarray,
    row_set: np.ndarray,
) -> None:
    """Binary rank filter over a ``size`` x ``size`` window, edges replicated.

    A pixel of ``out`` is 255 when at least ``min_count`` pixels of its window are non-zero
    in ``mask``, else 0. ``min_count = 1`` is a dilation, ``size**2`` an erosion and
    ``(size**2 + 1) // 2`` the median (majority) filter. Column counts are kept as running
    sums, and rows whose window holds no set pixel are written as zeros straight away, so a
    sparse mask costs little more than a pass over it.

    Parameters
    ----------
    mask
        ``uint8 (h, w)``, non-zero for set pixels.
    size
        Odd window side, pixels, at most 15.
    min_count
        Set pixels needed in the window.
    out
        ``uint8 (h, w)``, not the same array as ``mask``.
    colsum
        ``uint8 (w + size - 1,)`` scratch.
    acc
        ``uint8 (w,)`` scratch.
    row_set
        ``uint8 (h,)`` scratch.
    """
    h, w = mask.shape
    half = size // 2
    for y in range(h):
        mrow = mask[y]
        any_set = np.uint8(0)
        for x in range(w):
            any_set |= mrow[x]
        row_set[y] = any_set != 0
    for x in range(w + 2 * half):
        colsum[x] = 0
    # Views with a zero offset keep the inner loops free of negative-index checks, so they
    # vectorise.
    centre = colsum[half : half + w]
    busy = 0
    for j in range(-half, half + 1):
        yy = min(max(j, 0), h - 1)
        if row_set[yy]:
            busy += 1
            mrow = mask[yy]
            for x in range(w):
                centre[x] += mrow[x] != 0
    for y in range(h):
        if y > 0:
            add = min(y + half, h - 1)
            sub = max(y - half - 1, 0)
            if row_set[add]:
                busy += 1
                mrow = mask[add]
                for x in range(w):
                    centre[x] += mrow[x] != 0
            if row_set[sub]:
                busy -= 1
                mrow = mask[sub]
                for x in range(w):
                    centre[x] -= mrow[x] != 0
        orow = out[y]
        if busy == 0:
            for x in range(w):
                orow[x] = 0
            continue
        for x in range(half):
            colsum[x] = colsum[half]
            colsum[w + half + x] = colsum[w + half - 1]
        for x in range(w):
            acc[x] = colsum[x]
        for j in range(1, size):
            shifted = colsum[j : j + w]
            for x in range(w):
                acc[x] += shifted[x]
        threshold = np.uint8(min_count)
        for x in range(w):
            orow[x] = 255 if acc[x] >= threshold else 0


# -- connected components ---------------------------------------------------------------------


@ngjit
def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@ngjit
def label_components(
    mask: np.ndarray,
    labels_out: np.ndarray,
    stats_out: np.ndarray,
    centroids_out: np.ndarray,
    run_y: np.ndarray,
    run_x0: np.ndarray,
    run_x1: np.ndarray,
    run_label: np.ndarray,
    parent: np.ndarray,
) -> int:
    """8-connected components of a binary mask, with their boxes, areas and centroids.

    Run-length labelling with union-find: each row's runs of set pixels join the runs of the
    row above that touch them (diagonals included). Components are numbered ``1..n`` in the
    raster order of their first pixel.

    Parameters
    ----------
    mask
        ``uint8 (h, w)``, non-zero for set pixels.
    labels_out
        ``int32 (h, w)`` label image (0 background), or an empty ``(0, 0)`` array to skip it.
    stats_out
        ``int32 (m, 5)``: row ``i - 1`` of component ``i`` is ``(left, top, width, height,
        area)`` in pixels, like OpenCV's ``connectedComponentsWithStats``.
    centroids_out
        ``float64 (m, 2)``: ``(x, y)`` centroid of each component, pixel-index coordinates.
    run_y, run_x0, run_x1, run_label, parent
        ``int32`` scratch of at least ``h * ((w + 1) // 2)`` entries each.

    Returns
    -------
    int
        The number of components ``n``; ``-1`` if there are more than ``m``.
    """
    h, w = mask.shape
    nruns = 0
    nlab = 0
    prev_start = 0
    prev_end = 0
    for y in range(h):
        row = mask[y]
        cur_start = nruns
        any_set = np.uint8(0)
        for x in range(w):
            any_set |= row[x]
        x = 0 if any_set != 0 else w
        p = prev_start
        while x < w:
            if row[x] == 0:
                x += 1
                continue
            x0 = x
            while x < w and row[x] != 0:
                x += 1
            # run [x0, x); touches a run [a, b) of the row above when a <= x and b >= x0
            lab = -1
            while p < prev_end and run_x1[p] < x0:
                p += 1
            q = p
            while q < prev_end and run_x0[q] <= x:
                other = _find(parent, run_label[q])
                if lab < 0:
                    lab = other
                elif other != lab:
                    if other < lab:
                        parent[lab] = other
                        lab = other
                    else:
                        parent[other] = lab
                q += 1
            if lab < 0:
                lab = nlab
                parent[nlab] = nlab
                nlab += 1
            run_y[nruns] = y
            run_x0[nruns] = x0
            run_x1[nruns] = x
            run_label[nruns] = lab
            nruns += 1
        prev_start = cur_start
        prev_end = nruns
    # Provisional labels were created in raster order and unions always point a root at a
    # smaller one, so every parent is smaller than its child: one pass in increasing order
    # numbers the roots (components, by first pixel) and stores -number in every label.
    m = stats_out.shape[0]
    final = 0
    for i in range(nlab):
        if parent[i] == i:
            final += 1
            parent[i] = -final
        else:
            parent[i] = parent[parent[i]]
    if final > m:
        return -1
    for c in range(final):
        stats_out[c, 0] = w
        stats_out[c, 1] = h
        stats_out[c, 2] = -1
        stats_out[c, 3] = -1
        stats_out[c, 4] = 0
        centroids_out[c, 0] = 0.0
        centroids_out[c, 1] = 0.0
    use_labels = labels_out.shape[0] == h and labels_out.shape[1] == w
    if use_labels:
        for y in range(h):
            for x in range(w):
                labels_out[y, x] = 0
    for r in range(nruns):
        c = -parent[run_label[r]] - 1
        y = run_y[r]
        a = run_x0[r]
        b = run_x1[r]
        length = b - a
        stats_out[c, 0] = min(stats_out[c, 0], a)
        stats_out[c, 1] = min(stats_out[c, 1], y)
        stats_out[c, 2] = max(stats_out[c, 2], b - 1)
        stats_out[c, 3] = max(stats_out[c, 3], y)
        stats_out[c, 4] += length
        centroids_out[c, 0] += 0.5 * (a + b - 1) * length
        centroids_out[c, 1] += np.float64(y) * length
        if use_labels:
            for x in range(a, b):
                labels_out[y, x] = c + 1
    for c in range(final):
        area = stats_out[c, 4]
        stats_out[c, 2] = stats_out[c, 2] - stats_out[c, 0] + 1
        stats_out[c, 3] = stats_out[c, 3] - stats_out[c, 1] + 1
        centroids_out[c, 0] /= area
        centroids_out[c, 1] /= area
    return final


# -- registration -----------------------------------------------------------------------------


@ngjit
def shift_bilinear(frame: np.ndarray, dx: float, dy: float, out: np.ndarray) -> None:
    """Shift an image by ``(dx, dy)`` pixels with bilinear interpolation, edges replicated.

    ``out[y, x] = frame(y - dy, x - dx)``: content moves right by ``dx`` and down by ``dy``.
    Values are rounded to the nearest grey level.
    """
    h, w = frame.shape
    sx = -dx
    sy = -dy
    ix = np.int64(np.floor(sx))
    iy = np.int64(np.floor(sy))
    fx = sx - ix
    fy = sy - iy
    w00 = (1.0 - fx) * (1.0 - fy)
    w01 = fx * (1.0 - fy)
    w10 = (1.0 - fx) * fy
    w11 = fx * fy
    # columns whose two source pixels lie inside the row: a straight loop (vectorised)
    lo = min(max(-ix, 0), w)
    hi = max(min(w - 1 - ix, w), lo)
    for y in range(h):
        y0 = min(max(y + iy, 0), h - 1)
        y1 = min(max(y + iy + 1, 0), h - 1)
        r0 = frame[y0]
        r1 = frame[y1]
        orow = out[y]
        # (slices and an int32 step keep this loop vectorised; v + 0.5 lies in [0, 256))
        a = r0[lo + ix : hi + ix]
        b = r0[lo + ix + 1 : hi + ix + 1]
        c = r1[lo + ix : hi + ix]
        d = r1[lo + ix + 1 : hi + ix + 1]
        o = out[y, lo:hi]
        for x in range(o.shape[0]):
            v = (
                w00 * np.float64(a[x])
                + w01 * np.float64(b[x])
                + w10 * np.float64(c[x])
                + w11 * np.float64(d[x])
            )
            o[x] = np.uint8(np.int32(v + 0.5))
        for x in range(w - hi + lo):  # the edge columns, clamped
            xe = x if x < lo else x - lo + hi
            x0 = min(max(xe + ix, 0), w - 1)
            x1 = min(max(xe + ix + 1, 0), w - 1)
            v = w00 * r0[x0] + w01 * r0[x1] + w10 * r1[x0] + w11 * r1[x1]
            orow[xe] = np.uint8(min(max(v + 0.5, 0.0), 255.0))


# -- neighbourhood test -----------------------------------------------------------------------


@ngjit
def _neighbourhood_warm(
    grey: np.ndarray,
    gain32: np.float32,
    samples: np.ndarray,
    mean: np.ndarray,
    use_mean: bool,
    y: int,
    x: int,
    r: int,
    margin: int,
) -> bool:
    """Whether pixel ``(y, x)`` is warmer by more than ``margin`` grey levels than the warmest
    background value within ``r`` pixels (see :func:`neighbour_filter`)."""
    h, w = grey.shape
    lv = np.float32(grey[y, x]) / gain32 + np.float32(0.5)
    level = np.int32(np.uint8(min(lv, np.float32(255.0))))
    # warm when every value around is under level - margin: stop at the first that is not
    thr = level - margin
    if thr <= 0:
        return False
    for yy in range(max(y - r, 0), min(y + r + 1, h)):
        for xx in range(max(x - r, 0), min(x + r + 1, w)):
            if use_mean:
                v = np.int32(np.uint8(min(mean[yy, xx] + np.float32(0.5), np.float32(255.0))))
                if v >= thr:
                    return False
            else:
                for k in range(samples.shape[0]):
                    if np.int32(samples[k, yy, xx]) >= thr:
                        return False
    return True


@ngjit
def neighbour_filter(
    fg: np.ndarray,
    grey: np.ndarray,
    gain: float,
    samples: np.ndarray,
    mean: np.ndarray,
    use_mean: bool,
    r: int,
    margin_map: np.ndarray,
    margin: int,
    use_map: bool,
    queue: np.ndarray,
    words: np.ndarray,
) -> int:
    """Clear the 8-connected blobs of ``fg`` with no pixel warmer than its neighbourhood.

    A pixel is warm when its gain-compensated level ``uint8(min(grey / gain + 0.5, 255))``
    (``float32`` arithmetic) exceeds by more than the margin the warmest background value
    of every pixel within ``r`` pixels (a ``(2r+1)``-square clipped to the frame): the
    warmest of the pixel's ``samples`` (``uint8 (n, h, w)``), or with ``use_mean``
    ``uint8(min(mean + 0.5, 255))`` of ``mean`` (``float32 (h, w)``). A blob is kept whole
    when one of its pixels is warm. Only foreground pixels are visited (flood fill from
    each), so the cost follows the mask, not the frame.

    Parameters
    ----------
    fg
        ``uint8 (h, w)`` mask, 0 or 255, filtered in place.
    grey, gain
        ``uint8 (h, w)`` frame and the model's gain estimate (the frame over the background).
    samples, mean, use_mean
        The background values (see above); the unused one may be any array of its dtype.
    r
        Neighbourhood radius, pixels.
    margin_map, margin, use_map
        Margin in grey levels: per pixel (``uint8 (h, w)``) with ``use_map``, else ``margin``.
    queue
        ``int64 (h * w,)`` scratch.
    words
        ``fg`` seen as ``uint64 (h, w // 8)`` (when ``w`` is a multiple of 8) to skip empty
        runs eight pixels at a time; any other shape scans byte by byte.

    Returns
    -------
    int
        Foreground pixels kept.
    """
    h, w = fg.shape
    gain32 = np.float32(gain)
    use_words = words.shape[0] == h and words.shape[1] * 8 == w
    n = 0
    kept = 0
    for y in range(h):
        row = fg[y]
        x = 0
        while x < w:
            # skip background eight pixels at a time (masks are mostly empty)
            if use_words and (x & 7) == 0 and words[y, x >> 3] == 0:
                x += 8
                continue
            if row[x] != 255:
                x += 1
                continue
            start = n
            queue[n] = y * w + x
            n += 1
            row[x] = 1
            head = start
            warm = False
            while head < n:
                i = queue[head]
                head += 1
                cy = i // w
                cx = i - cy * w
                if not warm:
                    m = np.int32(margin_map[cy, cx]) if use_map else np.int32(margin)
                    warm = _neighbourhood_warm(grey, gain32, samples, mean, use_mean, cy, cx, r, m)
                for yy in range(max(cy - 1, 0), min(cy + 2, h)):
                    for xx in range(max(cx - 1, 0), min(cx + 2, w)):
                        if fg[yy, xx] == 255:
                            fg[yy, xx] = 1
                            queue[n] = yy * w + xx
                            n += 1
            mark = np.uint8(2) if warm else np.uint8(0)
            for j in range(start, n):
                i = queue[j]
                cy = i // w
                fg[cy, i - cy * w] = mark
            if warm:
                kept += n - start
            x += 1
    for j in range(n):
        i = queue[j]
        cy = i // w
        if fg[cy, i - cy * w] == 2:
            fg[cy, i - cy * w] = 255
    return kept


@nb.njit(nogil=True, cache=True, fastmath=True)
def _row_sums(
    r0: np.ndarray,
    r1: np.ndarray,
    t: np.ndarray,
    gx: np.ndarray,
    gy: np.ndarray,
    w00: float,
    w01: float,
    w10: float,
    w11: float,
) -> tuple[float, float, float, float, float]:
    """Sums over a row of the bilinearly sampled image ``v`` (``r0, r1``: its two source rows,
    one longer than ``t``): ``v, v^2, v t, gx v, gy v`` (vectorised: the summation order is
    the compiler's, fixed for a build)."""
    si = 0.0
    sii = 0.0
    sit = 0.0
    sgx = 0.0
    sgy = 0.0
    for x in range(t.shape[0]):
        v = (
            w00 * np.float64(r0[x])
            + w01 * np.float64(r0[x + 1])
            + w10 * np.float64(r1[x])
            + w11 * np.float64(r1[x + 1])
        )
        si += v
        sii += v * v
        sit += v * np.float64(t[x])
        sgx += v * np.float64(gx[x])
        sgy += v * np.float64(gy[x])
    return si, sii, sit, sgx, sgy


@ngjit
def track_translation(
    reference: np.ndarray,
    image: np.ndarray,
    px: float,
    py: float,
    margin: int,
    max_iter: int,
    eps: float,
    gx: np.ndarray,
    gy: np.ndarray,
    out: np.ndarray,
) -> None:
    """Shift ``(px, py)`` with ``image(x + px, y + py)`` closest to ``reference(x, y)`` up to a
    gain and an offset: Gauss-Newton on the translation, the inverse-compositional form
    (the reference's gradients and their 2x2 normal matrix are computed once), with the
    gain and offset refitted by least squares at each step, so that the camera's gain
    drift does not pull the estimate.

    Pixels ``margin`` or more from the border are compared (the image is sampled
    bilinearly there), so shifts of up to ``margin - 1`` pixels are measured; a step that
    goes further, or a flat picture, ends the estimate as failed.

    Parameters
    ----------
    reference, image
        ``float32 (h, w)`` pictures (grey levels).
    px, py
        Where to start, pixels.
    margin
        Border left out, pixels (at least 2).
    max_iter, eps
        At most ``max_iter`` steps; stop when a step is under ``eps`` pixels.
    gx, gy
        ``float32 (h, w)`` scratch: the reference's gradients.
    out
        ``float64 (5,)``, written: ``px, py, ok (1 or 0), steps, correlation`` (the
        correlation coefficient of the reference and the shifted image at the end).
    """
    h, w = reference.shape
    out[0] = px
    out[1] = py
    out[2] = 0.0
    out[3] = 0.0
    out[4] = 0.0
    y0, y1, x0, x1 = margin, h - margin, margin, w - margin
    lim = np.float64(margin - 1)
    if y1 <= y0 or x1 <= x0 or not (abs(px) <= lim and abs(py) <= lim):
        return
    n = np.float64((y1 - y0) * (x1 - x0))
    st = 0.0
    stt = 0.0
    sgx = 0.0
    sgy = 0.0
    sgxt = 0.0
    sgyt = 0.0
    hxx = 0.0
    hxy = 0.0
    hyy = 0.0
    for y in range(y0, y1):
        for x in range(x0, x1):
            t = np.float64(reference[y, x])
            ax = np.float32(0.5) * (reference[y, x + 1] - reference[y, x - 1])
            ay = np.float32(0.5) * (reference[y + 1, x] - reference[y - 1, x])
            gx[y, x] = ax
            gy[y, x] = ay
            dx = np.float64(ax)
            dy = np.float64(ay)
            st += t
            stt += t * t
            sgx += dx
            sgy += dy
            sgxt += dx * t
            sgyt += dy * t
            hxx += dx * dx
            hxy += dx * dy
            hyy += dy * dy
    det = hxx * hyy - hxy * hxy
    vt = stt - st * st / n
    if det <= 1e-9 * (hxx + hyy) ** 2 or det <= 0.0 or vt <= 0.0:
        return
    for it in range(max_iter):
        ix = np.int64(np.floor(px))
        iy = np.int64(np.floor(py))
        fx = px - ix
        fy = py - iy
        w00 = (1.0 - fx) * (1.0 - fy)
        w01 = fx * (1.0 - fy)
        w10 = (1.0 - fx) * fy
        w11 = fx * fy
        si = 0.0
        sii = 0.0
        sit = 0.0
        sgxi = 0.0
        sgyi = 0.0
        for y in range(y0, y1):
            a, b, c, d, e = _row_sums(
                image[y + iy, x0 + ix : x1 + ix + 1],
                image[y + iy + 1, x0 + ix : x1 + ix + 1],
                reference[y, x0:x1],
                gx[y, x0:x1],
                gy[y, x0:x1],
                w00,
                w01,
                w10,
                w11,
            )
            si += a
            sii += b
            sit += c
            sgxi += d
            sgyi += e
        vi = sii - si * si / n
        if vi <= 0.0:
            return
        cov = sit - si * st / n
        alpha = cov / vi
        beta = (st - alpha * si) / n
        out[4] = cov / np.sqrt(vi * vt)
        # b = sum grad T * (alpha * I + beta - T)
        bx = alpha * sgxi + beta * sgx - sgxt
        by = alpha * sgyi + beta * sgy - sgyt
        dx = (hyy * bx - hxy * by) / det
        dy = (hxx * by - hxy * bx) / det
        px -= dx
        py -= dy
        out[3] = it + 1
        if not (abs(px) <= lim and abs(py) <= lim):
            return
        out[0] = px
        out[1] = py
        if dx * dx + dy * dy < eps * eps:
            out[2] = 1.0
            return
    out[2] = 1.0
