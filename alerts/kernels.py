"""numba kernels for unit planning: where points lie on the roads and how long a unit takes.

Pure loops over arrays with preallocated outputs (``nogil``, cached), wrapped by
:mod:`vigil.alerts.road_fast`. They follow GEOS's arithmetic (``LengthIndexOfPoint``,
``Distance::pointToSegment``, ``LengthLocationMap``, ``pointAlongSegmentByFraction``) and
:meth:`vigil.alerts.dispatch.RoadNetwork.times`, so their numbers differ from those of the
shapely path by rounding at most; the caller uses them only to screen (see
:mod:`vigil.alerts.road_fast`). Positions in local metres, speeds m/s, times seconds.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

ngjit = nb.njit(nogil=True, cache=True)


@ngjit
def road_places(px, py, ax, ay, bx, by, seg, start, off, tie_m, s_out, d_out, unsure):  # noqa: ANN001, ANN201
    """For each point ``i`` and road ``r`` (segments ``off[r]:off[r+1]`` of the flat
    segment arrays, ``start`` the distance along the road where each begins): ``s_out[i, r]``
    the distance along the road of the nearest point on it, ``d_out[i, r]`` the distance
    from the point to where that lies; ``unsure[i]`` set where another segment is within
    ``tie_m`` as near with another place along the road, or a value is not finite."""
    for i in range(px.shape[0]):
        x, y = px[i], py[i]
        bad = not (math.isfinite(x) and math.isfinite(y))
        for r in range(off.shape[0] - 1):
            s, d, tie = _place(x, y, off[r], off[r + 1], ax, ay, bx, by, seg, start, tie_m)
            s_out[i, r], d_out[i, r] = s, d
            bad = bad or tie
        unsure[i] = bad


@ngjit
def _place(x, y, lo, hi, ax, ay, bx, by, seg, start, tie_m):  # noqa: ANN001, ANN202
    """Point ``(x, y)`` on the road of segments ``lo:hi``: the distance along it of its
    nearest point, the distance to where that lies, and whether GEOS must say (a tie within
    ``tie_m`` at another place along the road, or a value not finite)."""
    best, s = np.inf, -1.0
    for j in range(lo, hi):
        dist, meas = _segment(x, y, ax[j], ay[j], bx[j], by[j], seg[j], start[j])
        if dist < best:  # the first of equals, as GEOS keeps it
            best, s = dist, meas
    bad = False
    for j in range(lo, hi):
        dist, meas = _segment(x, y, ax[j], ay[j], bx[j], by[j], seg[j], start[j])
        if dist <= best + tie_m and meas != s:
            bad = True
    # where s lies: the first segment whose end is past s (the last one if none)
    k = hi - 1
    for j in range(lo, hi):
        if start[j] + seg[j] > s:
            k = j
            break
    frac = (s - start[k]) / seg[k]
    if frac <= 0.0:
        qx, qy = ax[k], ay[k]
    elif frac >= 1.0:
        qx, qy = bx[k], by[k]
    else:
        qx, qy = (bx[k] - ax[k]) * frac + ax[k], (by[k] - ay[k]) * frac + ay[k]
    ex, ey = x - qx, y - qy
    d = math.sqrt(ex * ex + ey * ey)
    if not (math.isfinite(s) and math.isfinite(d)):
        bad = True
    return s, d, bad


@ngjit
def _segment(x, y, ax, ay, bx, by, seg, start):  # noqa: ANN001, ANN202
    """Distance from ``(x, y)`` to segment ``a``-``b`` and the distance along the road of
    its nearest point (the segment begins ``start`` along the road and is ``seg`` long)."""
    dx, dy = bx - ax, by - ay
    len2 = dx * dx + dy * dy
    if len2 == 0.0:
        return math.sqrt((x - ax) * (x - ax) + (y - ay) * (y - ay)), start
    r = ((x - ax) * dx + (y - ay) * dy) / len2
    if r <= 0.0:
        return math.sqrt((x - ax) * (x - ax) + (y - ay) * (y - ay)), start
    if r >= 1.0:
        dist = math.sqrt((x - bx) * (x - bx) + (y - by) * (y - by))
    else:
        q = ((ay - y) * dx - (ax - x) * dy) / len2
        dist = abs(q) * math.sqrt(len2)
    if r <= 1.0:
        return dist, start + r * seg
    return dist, start + seg


@ngjit
def travel_times(px, py, rows, u, ux, uy, v, w, sa, da, s, d, out):  # noqa: ANN001, ANN201
    """``out[k]``: seconds for unit ``u[k]`` (at ``ux, uy``, off-road speed ``v``, road
    speed ``w``; ``sa[u, r]``, ``da[u, r]`` its own place on road ``r``) to reach point
    ``rows[k]`` (placed on the roads at ``s``, ``d``): the better of straight off-road or
    by any road, a road whose time is not a number left out."""
    nroads = s.shape[1]
    for k in range(rows.shape[0]):
        i, j = rows[k], u[k]
        best = math.hypot(px[i] - ux[j], py[i] - uy[j]) / v[j]
        for r in range(nroads):
            t = da[j, r] / v[j] + abs(sa[j, r] - s[i, r]) / w[j] + d[i, r] / v[j]
            if t < best:
                best = t
        out[k] = best


@ngjit
def bisect_reach(
    lo,
    hi,
    left,
    g,
    gx,
    gy,
    gvx,
    gvy,
    ax,
    ay,
    bx,
    by,
    seg,
    start,
    off,
    tie_m,
    u,
    ux,
    uy,
    v,
    w,
    sa,
    da,
    tol_s,
    tol_rel,
    stuck,
):  # noqa: ANN001, ANN201, E501
    """For each bracket ``k`` (group ``g[k]`` at ``gx + gvx t``, ``gy + gvy t``; unit
    ``u[k]``): ``left[k]`` halvings of ``[lo[k], hi[k]]``, keeping in ``hi`` the times by
    which the unit reaches the group (travel time minus the time at most 0, as
    :func:`travel_times` computes it). A midpoint whose answer is within ``tol_s`` (plus
    ``tol_rel`` of the times' size) of the boundary, or whose place on a road is unsure,
    stops its bracket there: ``stuck[k]`` set, ``lo``, ``hi`` and ``left`` as they are."""
    for k in range(lo.shape[0]):
        stuck[k] = False
        i, j = g[k], u[k]
        while left[k] > 0:
            m = 0.5 * (lo[k] + hi[k])
            x, y = gx[i] + gvx[i] * m, gy[i] + gvy[i] * m
            bad = not (math.isfinite(x) and math.isfinite(y))
            best = math.hypot(x - ux[j], y - uy[j]) / v[j]
            for r in range(off.shape[0] - 1):
                s, d, tie = _place(x, y, off[r], off[r + 1], ax, ay, bx, by, seg, start, tie_m)
                bad = bad or tie
                t = da[j, r] / v[j] + abs(sa[j, r] - s) / w[j] + d / v[j]
                if t < best:
                    best = t
            slack = best - m
            tol = tol_s + tol_rel * (abs(m) + abs(best))
            if bad or not math.isfinite(best) or not (slack <= -tol or slack >= tol):
                stuck[k] = True
                break
            if slack <= -tol:
                hi[k] = m
            else:
                lo[k] = m
            left[k] -= 1
