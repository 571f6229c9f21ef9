"""Paths in time for the simulator's movers: plans, their random streams, and where they cross.

A *plan* is a list of knots ``(t, x, y)`` in the sector's local frame (seconds, metres) with
straight lines between them: a mover's position at any time is an interpolation, and its
border crossings are found exactly, once, when the plan is made (:func:`crossings_of_plan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import LineString

from vigil.geo.border import FOREIGN_SIDE, US_SIDE, Border
from vigil.geo.frames import LocalFrame


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """An independent random stream for ``(seed, *key)``; keys are non-negative ints."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *key]))


@dataclass
class Plan:
    """A piecewise-linear path in time: knots ``t`` (s), ``x``, ``y`` (m), ``t`` non-decreasing."""

    t: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]

    @property
    def start(self) -> float:
        """Time of the first knot, UTC seconds."""
        return float(self.t[0])

    @property
    def end(self) -> float:
        """Time of the last knot, UTC seconds."""
        return float(self.t[-1])

    def at(self, t: float) -> tuple[float, float, float, float]:
        """Position ``(x, y)`` m and velocity ``(vx, vy)`` m/s at ``t``, clamped to the plan."""
        k = int(np.searchsorted(self.t, t, side="right")) - 1
        n = len(self.t)
        if k < 0:
            return float(self.x[0]), float(self.y[0]), 0.0, 0.0
        if k >= n - 1:
            return float(self.x[-1]), float(self.y[-1]), 0.0, 0.0
        dt = self.t[k + 1] - self.t[k]
        if dt <= 0:
            return float(self.x[k + 1]), float(self.y[k + 1]), 0.0, 0.0
        f = (t - self.t[k]) / dt
        vx = (self.x[k + 1] - self.x[k]) / dt
        vy = (self.y[k + 1] - self.y[k]) / dt
        return (
            float(self.x[k] + f * (self.x[k + 1] - self.x[k])),
            float(self.y[k] + f * (self.y[k + 1] - self.y[k])),
            float(vx),
            float(vy),
        )


def crossings_of_plan(
    border: Border, plan: Plan, k0: int = 0
) -> list[tuple[float, float, float, str, str]]:
    """Where a plan's path crosses the border from knot ``k0`` on.

    Returns ``(time, x, y, segment_id, direction)`` per crossing, in time order. The side of
    each knot comes from :meth:`Border.side`; a change of side between two knots is placed at
    the intersection of that leg with the border line.
    """
    x, y, t = plan.x[k0:], plan.y[k0:], plan.t[k0:]
    if len(t) < 2:
        return []
    side = border.side(x, y)
    # Knots exactly on the line carry the side of the knot before them.
    for i in range(len(side)):
        if side[i] == 0:
            side[i] = side[i - 1] if i else side[min(i + 1, len(side) - 1)]
    out = []
    for i in np.flatnonzero(side[1:] != side[:-1]):
        a, b = side[i], side[i + 1]
        if a == 0 or b == 0:
            continue
        leg = LineString([(x[i], y[i]), (x[i + 1], y[i + 1])])
        hit = leg.intersection(border.line)
        if hit.is_empty:
            px, py = (x[i] + x[i + 1]) / 2, (y[i] + y[i + 1]) / 2
        else:
            pts = shapely.get_coordinates(hit)
            px, py = pts[0]
        length = leg.length
        f = 0.0 if length == 0 else math.hypot(px - x[i], py - y[i]) / length
        when = float(t[i] + f * (t[i + 1] - t[i]))
        seg = border.segments[int(border.nearest_segment([px], [py])[0])].segment_id
        direction = "northbound" if (a == FOREIGN_SIDE and b == US_SIDE) else "southbound"
        out.append((when, float(px), float(py), seg, direction))
    return out


def polyline_local(frame: LocalFrame, path: list[tuple[float, float]]) -> NDArray[np.float64]:
    """A ``(lat, lon)`` path (degrees) as an ``(n, 2)`` array of local ``(x, y)``, metres."""
    lat, lon = np.asarray(path, dtype=np.float64).T
    x, y = frame.to_local(lat, lon)
    return np.column_stack([x, y])


def resample(line: NDArray[np.float64], step_m: float) -> NDArray[np.float64]:
    """Points every ``step_m`` along a polyline, keeping its ends."""
    ls = LineString(line)
    n = max(2, int(math.ceil(ls.length / step_m)) + 1)
    d = np.linspace(0.0, ls.length, n)
    return shapely.get_coordinates(shapely.line_interpolate_point(ls, d))


def cumulative(pts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Distance along a polyline at each of its points, metres, starting at 0."""
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])


def timeline(
    pts: NDArray[np.float64], speed: float, t0: float, stops: list[tuple[float, float]]
) -> Plan:
    """A plan walking ``pts`` at ``speed`` from ``t0``, pausing ``(distance_m, duration_s)``."""
    s = cumulative(pts)
    stop_s = np.asarray(sorted(d for d, _ in stops), dtype=np.float64).reshape(-1)
    stop_dur = [dur for _, dur in sorted(stops)]
    # Put each stop's point into the path, then give every point its arrival time.
    all_s = np.concatenate([s, stop_s])
    order = np.argsort(all_s, kind="stable")
    is_stop = np.concatenate([np.zeros(len(s), bool), np.ones(len(stop_s), bool)])[order]
    all_s = all_s[order]
    x = np.interp(all_s, s, pts[:, 0])
    y = np.interp(all_s, s, pts[:, 1])
    ts, xs, ys = [], [], []
    extra = 0.0
    j = 0
    for i in range(len(all_s)):
        ts.append(t0 + all_s[i] / speed + extra)
        xs.append(x[i])
        ys.append(y[i])
        if is_stop[i]:
            extra += stop_dur[j]
            j += 1
            ts.append(t0 + all_s[i] / speed + extra)
            xs.append(x[i])
            ys.append(y[i])
    return Plan(np.asarray(ts), np.asarray(xs), np.asarray(ys))
