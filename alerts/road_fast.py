"""Whether units reach places in time, screened with GEOS's arithmetic in compiled loops.

:class:`vigil.alerts.dispatch.RoadNetwork` places a point on a road with GEOS
(``shapely.line_locate_point``, ``line_interpolate_point``, ``distance``): the numbers every
recommendation is made of. The intercept search asks, for thousands of (group position, unit,
time) triples a tick, only whether the unit can be there by then, and nearly all of them are
far from the boundary. :func:`reached` answers with the formulas GEOS and
:meth:`~vigil.alerts.dispatch.RoadNetwork.times` use, computed in :mod:`vigil.alerts.kernels`
(their numbers differ from the shapely path's by rounding at most, about 1e-12 s on a sector's
scale), trusts an answer only where the travel time is farther than :data:`SLACK_TOL_S` from
the time allowed and the point's nearest road segment is unambiguous, and asks the shapely
path for the rest: every answer is the shapely path's own.

All positions are in the sector's local frame (metres), speeds in m/s, times in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from shapely.geometry import LineString

#: An answer whose travel time lies within this of the time allowed (seconds, plus
#: :data:`SLACK_REL` of the times' size) is left to the shapely path: a thousand times the
#: rounding differences between the two.
SLACK_TOL_S = 1e-9
SLACK_REL = 1e-12
#: A segment within this distance (metres) of a point as near as its nearest one, at another
#: place along the road, leaves the point to the shapely path (GEOS might pick the other).
TIE_M = 1e-7


class RoadSegments:
    """The roads' segments as flat arrays (road ``r``'s are ``off[r]:off[r+1]``).

    Parameters
    ----------
    roads
        The roads (local metres), in the road network's order.
    """

    def __init__(self, roads: Sequence[LineString]) -> None:
        ax, ay, bx, by, seg, start, off = [], [], [], [], [], [], [0]
        for road in roads:
            c = np.asarray(road.coords, dtype=np.float64)[:, :2]
            x0, y0, x1, y1 = c[:-1, 0], c[:-1, 1], c[1:, 0], c[1:, 1]
            lengths = np.sqrt((x0 - x1) * (x0 - x1) + (y0 - y1) * (y0 - y1))
            total = 0.0
            for v in lengths.tolist():  # summed one by one, as GEOS walks the segments
                start.append(total)
                total = total + v
            ax += x0.tolist()
            ay += y0.tolist()
            bx += x1.tolist()
            by += y1.tolist()
            seg += lengths.tolist()
            off.append(len(ax))
        f = np.float64
        self.ax, self.ay, self.bx, self.by = (np.array(a, dtype=f) for a in (ax, ay, bx, by))
        self.seg, self.start = np.array(seg, dtype=f), np.array(start, dtype=f)
        self.off = np.array(off, dtype=np.int64)
        # the compiled loops loaded now, not in the first tick that plans
        s, d, _ = self.locate(np.zeros(1), np.zeros(1))
        one, z = np.ones(1), np.zeros(1, dtype=np.int64)
        from vigil.alerts import kernels

        kernels.travel_times(one, one, z, z, one, one, one, one, s, d, s, d, np.empty(1))
        kernels.bisect_reach(
            np.zeros(1), one, np.ones(1, dtype=np.int64), z, one, one, one, one, self.ax,
            self.ay, self.bx, self.by, self.seg, self.start, self.off, TIE_M, z, one, one, one,
            one, s, d, SLACK_TOL_S, SLACK_REL, np.zeros(1, dtype=np.bool_),
        )  # fmt: skip

    def locate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For points ``(x[i], y[i])``: the distance along each road of the nearest point on
        it and the distance from the point to there (``(n, roads)``, metres), and which points
        only the shapely path may place (``(n,)``)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        n, nr = x.size, self.off.size - 1
        s, d = np.empty((n, nr)), np.empty((n, nr))
        unsure = np.empty(n, dtype=np.bool_)
        from vigil.alerts import kernels  # numba: imported where used

        kernels.road_places(
            x, y, self.ax, self.ay, self.bx, self.by, self.seg, self.start, self.off, TIE_M,
            s, d, unsure,
        )  # fmt: skip
        return s, d, unsure


def reached(
    segments: RoadSegments,
    units: Sequence,
    starts: Sequence[tuple[np.ndarray, np.ndarray]],
    px: np.ndarray,
    py: np.ndarray,
    rows: np.ndarray,
    u: np.ndarray,
    t: np.ndarray,
    exact: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """For each ``k``: whether unit ``units[u[k]]`` can be at point ``rows[k]`` (``px``,
    ``py``, local metres) within ``t[k]`` seconds (its travel time minus ``t[k]`` at most 0).

    ``starts[i]`` is unit ``i``'s own place on the roads (``(s, d)`` per road, as the road
    network keeps it); ``exact(ks)`` answers for the entries ``ks`` with the shapely path,
    and is asked only where screening cannot be sure.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    u = np.ascontiguousarray(u, dtype=np.int64)
    t = np.asarray(t, dtype=np.float64)
    px = np.ascontiguousarray(px, dtype=np.float64)
    py = np.ascontiguousarray(py, dtype=np.float64)
    s, d, unsure = segments.locate(px, py)
    shape = (len(units), s.shape[1])
    q = np.array([(a.x, a.y, a.speed_mps, a.road_speed_mps) for a in units], dtype=np.float64)
    ux, uy, v, w = (np.ascontiguousarray(q[:, k]) for k in range(4))
    sa = np.array([a for a, _ in starts], dtype=np.float64).reshape(shape)
    da = np.array([b for _, b in starts], dtype=np.float64).reshape(shape)
    travel = np.empty(rows.size)
    from vigil.alerts import kernels

    kernels.travel_times(px, py, rows, u, ux, uy, v, w, sa, da, s, d, travel)
    with np.errstate(invalid="ignore"):
        slack = travel - t
        tol = SLACK_TOL_S + SLACK_REL * (np.abs(t) + np.abs(travel))
        ok = slack <= -tol
        check = ~(ok | (slack >= tol)) | unsure[rows] | ~np.isfinite(travel)
    if check.any():
        ks = np.flatnonzero(check)
        ok[ks] = exact(ks)
    return ok


def bisect(
    segments: RoadSegments,
    units: Sequence,
    starts: Sequence[tuple[np.ndarray, np.ndarray]],
    group: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    g: np.ndarray,
    u: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    steps: int,
    exact: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """For each bracket ``[lo[k], hi[k]]`` (seconds): ``hi`` after ``steps`` halvings, each
    keeping the half whose upper end unit ``units[u[k]]`` reaches group ``g[k]`` by (the
    groups at ``x + vx t``, ``y + vy t``, ``group = (x, y, vx, vy)``, local metres and m/s):
    the midpoints of one halving at a time. ``exact(ks, t)`` says, with the shapely path,
    whether the units of brackets ``ks`` reach their groups by ``t``, for the midpoints that
    screening cannot decide."""
    from vigil.alerts import kernels

    lo, hi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
    g = np.ascontiguousarray(g, dtype=np.int64)
    u = np.ascontiguousarray(u, dtype=np.int64)
    gx, gy, gvx, gvy = (np.ascontiguousarray(a, dtype=np.float64) for a in group)
    shape = (len(units), segments.off.size - 1)
    q = np.array([(a.x, a.y, a.speed_mps, a.road_speed_mps) for a in units], dtype=np.float64)
    ux, uy, v, w = (np.ascontiguousarray(q[:, k]) for k in range(4))
    sa = np.array([a for a, _ in starts], dtype=np.float64).reshape(shape)
    da = np.array([b for _, b in starts], dtype=np.float64).reshape(shape)
    left = np.full(lo.size, steps, dtype=np.int64)
    stuck = np.zeros(lo.size, dtype=np.bool_)
    sg = segments
    while True:
        kernels.bisect_reach(
            lo, hi, left, g, gx, gy, gvx, gvy, sg.ax, sg.ay, sg.bx, sg.by, sg.seg, sg.start,
            sg.off, TIE_M, u, ux, uy, v, w, sa, da, SLACK_TOL_S, SLACK_REL, stuck,
        )  # fmt: skip
        ks = np.flatnonzero(stuck)
        if not ks.size:
            return hi
        m = 0.5 * (lo[ks] + hi[ks])
        ok = exact(ks, m)
        hi[ks], lo[ks] = np.where(ok, m, hi[ks]), np.where(ok, lo[ks], m)
        left[ks] -= 1
