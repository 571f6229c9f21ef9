"""Which unit to send and where it meets the group: travel time off-road and by road.

All positions are in the sector's local frame (metres); speeds in m/s; times in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString

from vigil.geo.frames import LocalFrame
from vigil.ingest.schema import PredictedPosition

#: Offsets (s) at which an alert about a moving group predicts where the group will be; the
#: best unit's intercept time is added to them.
PREDICTION_OFFSETS_S = (300.0, 600.0, 900.0)


@dataclass
class UnitState:
    """A patrol unit's position (local metres), speeds (m/s) and whether it is free."""

    unit_id: str
    x: float
    y: float
    speed_mps: float
    road_speed_mps: float
    available: bool = True


@dataclass(frozen=True)
class Intercept:
    """Where and when a unit can meet a moving group."""

    unit_id: str
    time_s: float
    x: float
    y: float
    travel_s: float


@dataclass(frozen=True)
class Places:
    """Destinations (local metres) and where each lies on each road: ``s`` the distance
    along the road of the nearest point on it and ``d`` the distance to that point, metres,
    ``(m, roads)``. They do not depend on the unit, so one set serves every unit."""

    x: np.ndarray
    y: np.ndarray
    s: np.ndarray
    d: np.ndarray


class RoadNetwork:
    """Roads as polylines; travel goes off-road to a road, along it, and off-road again.

    Travel times are computed for many destinations (and units) at once with shapely's
    vectorised functions: the same GEOS calls, so the same numbers, as one point and one
    road at a time. A unit's own place on each road is kept for the next call from where it
    stands.
    """

    def __init__(self, roads: list[LineString]) -> None:
        self.roads = [r for r in roads if r.length > 0]
        self._roads = np.array(self.roads, dtype=object)
        #: ``(x, y)`` of a unit to ``(s, d)`` on each road (see :class:`Places`), metres;
        #: cleared when it grows past 4096 places.
        self._from: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}

    def places(self, x: np.ndarray, y: np.ndarray) -> Places:
        """Where the destinations ``(x[i], y[i])`` (local metres) lie on the roads."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if not self.roads or not x.size:
            empty = np.empty((x.size, 0))
            return Places(x, y, empty, empty)
        b = shapely.points(x, y)[:, None]
        roads = self._roads[None, :]
        s = shapely.line_locate_point(roads, b)
        d = shapely.distance(b, shapely.line_interpolate_point(roads, s))
        return Places(x, y, s, d)

    def _start(self, unit: UnitState) -> tuple[np.ndarray, np.ndarray]:
        key = (unit.x, unit.y)
        got = self._from.get(key)
        if got is None:
            a = shapely.points(unit.x, unit.y)
            sa = shapely.line_locate_point(self._roads, a)
            da = shapely.distance(a, shapely.line_interpolate_point(self._roads, sa))
            if len(self._from) >= 4096:
                self._from.clear()
            got = self._from[key] = (sa, da)
        return got

    def times(self, unit: UnitState, to: Places) -> np.ndarray:
        """Seconds for a unit to reach each of ``to``, as :meth:`travel_time` for each."""
        ux, uy = unit.x, unit.y
        off = [
            math.hypot(a - ux, b - uy) for a, b in zip(to.x.tolist(), to.y.tolist(), strict=True)
        ]
        direct = np.array(off, dtype=np.float64) / unit.speed_mps
        if not self.roads or not to.x.size:
            return direct
        sa, da = self._start(unit)
        v, w = unit.speed_mps, unit.road_speed_mps
        t = da / v + np.abs(sa - to.s) / w + to.d / v  # the order of a scalar sum
        t = np.where(np.isnan(t), np.inf, t)  # as min(best, nan) keeps best
        return np.minimum(direct, t.min(axis=1))

    def travel_times(self, unit: UnitState, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Seconds for a unit to reach each ``(x[i], y[i])`` (local metres)."""
        return self.times(unit, self.places(x, y))

    def travel_time(self, unit: UnitState, x: float, y: float) -> float:
        """Seconds for a unit to reach ``(x, y)``: the better of straight off-road or by road."""
        return float(self.travel_times(unit, np.array([x]), np.array([y]))[0])


def _steps(horizon_s: float, step_s: float) -> list[float]:
    """The forward search's times, seconds: ``step_s, 2 step_s, ...`` up to the horizon
    (summed as the search steps)."""
    out: list[float] = []
    t = step_s
    while t <= horizon_s:
        out.append(t)
        t = t + step_s
    return out


def _bisect(
    brackets: list[tuple[float, float]],
    ok: Callable[[list[np.ndarray]], list[np.ndarray]],
    steps: int = 30,
    depth: int = 5,
) -> list[float]:
    """For each ``[lo, hi]``: ``hi`` after ``steps`` halvings keeping ``ok(hi)`` true, the
    same midpoints as one halving at a time. ``ok`` is asked, in one call for all brackets,
    for ``depth`` levels of midpoints of each (a complete binary tree, ``2**depth - 1`` of
    them) and answers with one boolean array per bracket."""
    now = list(brackets)
    left = steps
    while left > 0:
        levels = min(depth, left)
        trees: list[list[float]] = []
        for lo, hi in now:
            mids: list[float] = []
            row = [(lo, hi)]
            for _ in range(levels):
                nxt = []
                for a, b in row:
                    m = 0.5 * (a + b)
                    mids.append(m)
                    nxt += [(a, m), (m, b)]
                row = nxt
            trees.append(mids)
        goods = ok([np.array(m) for m in trees])
        for u, (mids, good) in enumerate(zip(trees, goods, strict=True)):
            lo, hi = now[u]
            i = 0  # breadth-first: node i's halves are nodes 2i+1 (lower) and 2i+2 (upper)
            for _ in range(levels):
                if good[i]:
                    hi, i = mids[i], 2 * i + 1
                else:
                    lo, i = mids[i], 2 * i + 2
            now[u] = (lo, hi)
        left -= levels
    return [hi for _, hi in now]


def _split(to: Places, sizes: list[int]) -> list[Places]:
    """``to`` cut into consecutive parts of these sizes."""
    out, at = [], 0
    for n in sizes:
        out.append(
            Places(to.x[at : at + n], to.y[at : at + n], to.s[at : at + n], to.d[at : at + n])
        )
        at += n
    return out


def _search(
    units: list[UnitState],
    x: float,
    y: float,
    vx: float,
    vy: float,
    roads: RoadNetwork,
    steps: list[float],
    enough: int,
) -> dict[int, int]:
    """Unit index to the first step index at which the unit can be where the group is (-1:
    at once), looking forward a chunk of steps at a time for every unit still out of reach,
    until ``enough`` units have one (those not reached by then are later than all of them)."""
    found: dict[int, int] = {}
    at0 = roads.places(np.array([x + vx * 0.0]), np.array([y + vy * 0.0]))
    for i, u in enumerate(units):
        if roads.times(u, at0)[0] - 0.0 <= 0.0:
            found[i] = -1
    chunk = 32
    for first in range(0, len(steps), chunk):
        if len(found) >= enough:
            break
        ts = np.array(steps[first : first + chunk])
        to = roads.places(x + vx * ts, y + vy * ts)
        for i, u in enumerate(units):
            if i not in found:
                late = np.flatnonzero(roads.times(u, to) - ts <= 0.0)
                if late.size:
                    found[i] = first + int(late[0])
    return found


def _intercepts(
    units: list[UnitState],
    ks: list[int | None],
    x: float,
    y: float,
    vx: float,
    vy: float,
    roads: RoadNetwork,
    steps: list[float],
    horizon_s: float,
) -> list[Intercept]:
    """The intercept of each unit, first in reach at step ``ks[u]`` (-1: at once; ``None``:
    never within the horizon); the units' bisections go in lockstep, sharing each call that
    places points on the roads."""
    out: list[Intercept | None] = [None] * len(units)
    hits: dict[int, float] = {}
    for u, (unit, k) in enumerate(zip(units, ks, strict=True)):
        if k == -1:
            out[u] = Intercept(unit.unit_id, 0.0, x, y, 0.0)
        elif k is None:
            hits[u] = horizon_s
    refine = [u for u, k in enumerate(ks) if k is not None and k >= 0]
    if refine:

        def reached(ts: list[np.ndarray]) -> list[np.ndarray]:  # each unit there by then
            t = np.concatenate(ts)
            parts = _split(roads.places(x + vx * t, y + vy * t), [len(a) for a in ts])
            return [
                roads.times(units[u], p) - a <= 0.0
                for u, p, a in zip(refine, parts, ts, strict=True)
            ]

        brackets = []
        for u in refine:
            k = ks[u]
            assert k is not None
            brackets.append((steps[k - 1] if k > 0 else 0.0, steps[k]))
        hits.update(zip(refine, _bisect(brackets, reached), strict=True))
    if hits:
        order = sorted(hits)
        t = np.array([hits[u] for u in order])
        px, py = x + vx * t, y + vy * t
        parts = _split(roads.places(px, py), [1] * len(order))
        for j, (u, p) in enumerate(zip(order, parts, strict=True)):
            travel = float(roads.times(units[u], p)[0])
            out[u] = Intercept(units[u].unit_id, hits[u], float(px[j]), float(py[j]), travel)
    assert all(o is not None for o in out)
    return out  # type: ignore[return-value]


def intercept(
    unit: UnitState,
    x: float,
    y: float,
    vx: float,
    vy: float,
    roads: RoadNetwork,
    horizon_s: float = 3600.0,
    step_s: float = 15.0,
) -> Intercept:
    """The earliest time the unit can be where a group moving at ``(vx, vy)`` will be.

    Searches forward in steps and refines by bisection; if the group stays out of reach
    within the horizon, returns its position at the horizon.
    """
    steps = _steps(horizon_s, step_s)
    k = _search([unit], x, y, vx, vy, roads, steps, 1).get(0)
    return _intercepts([unit], [k], x, y, vx, vy, roads, steps, horizon_s)[0]


def recommend(
    units: list[UnitState],
    x: float,
    y: float,
    vx: float,
    vy: float,
    roads: RoadNetwork,
    horizon_s: float = 3600.0,
    n: int = 2,
    step_s: float = 15.0,
) -> list[Intercept]:
    """The ``n`` available units that can intercept soonest, best first (ties: by id).

    The same as :func:`intercept` for every available unit and the ``n`` best of them, with
    the work cut: the group's positions on the roads are found once for all units, and only
    units that can be among the ``n`` best are refined by bisection (one first in reach at
    a later step than ``n`` others is later than all of them).
    """
    avail = [u for u in units if u.available]
    if not avail or n <= 0:
        return []
    steps = _steps(horizon_s, step_s)
    found = _search(avail, x, y, vx, vy, roads, steps, n)
    chosen: dict[int, int | None] = dict(found)
    kth = -2
    if len(found) >= n:
        kth = sorted(found.values())[n - 1]
        chosen = {i: k for i, k in found.items() if k <= kth}
    if len(found) < n or kth == len(steps) - 1:
        # the rest never come within reach: all at the horizon, ties by id (a unit first in
        # reach at the last step may land on the horizon too)
        chosen.update({i: None for i in range(len(avail)) if i not in found})
    pick = list(chosen)
    options = _intercepts(
        [avail[i] for i in pick], [chosen[i] for i in pick], x, y, vx, vy, roads, steps, horizon_s
    )
    options.sort(key=lambda i: (i.time_s, i.unit_id))
    return options[:n]


def predict(
    x: float, y: float, vx: float, vy: float, times_s: list[float]
) -> list[tuple[float, float, float]]:
    """Constant-velocity positions ``(t, x, y)`` at the given offsets, seconds."""
    t = np.asarray(times_s, dtype=float)
    return [(float(ti), float(x + vx * ti), float(y + vy * ti)) for ti in t]


class UnitPlanner:
    """Recommends the units to send to an alert and predicts where its group will be.

    Parameters
    ----------
    units
        The sector's patrol units by id; the planner reads them as they are when asked
        (positions in local metres, availability), so moves and assignments count.
    roads
        The sector's roads, in local metres.
    frame
        The sector's local frame, to give predicted positions in WGS84.
    horizon_s
        How far ahead the intercept search looks, seconds.
    """

    def __init__(
        self,
        units: dict[str, UnitState],
        roads: RoadNetwork,
        frame: LocalFrame,
        horizon_s: float,
    ) -> None:
        self.units = units
        self.roads = roads
        self.frame = frame
        self.horizon_s = horizon_s

    def plan(
        self, x: float, y: float, vx: float, vy: float, t0: float
    ) -> tuple[list[str], list[PredictedPosition], list[Intercept]]:
        """The recommended unit ids (best first), the group's predicted positions and the
        intercepts behind the recommendation, for a group at ``(x, y)`` (local metres) moving
        at ``(vx, vy)`` (m/s) at time ``t0`` (UTC seconds)."""
        options = recommend(list(self.units.values()), x, y, vx, vy, self.roads, self.horizon_s)
        offsets = list(PREDICTION_OFFSETS_S)
        if options:
            offsets = sorted({*offsets, round(options[0].time_s, 1)})
        pts = predict(x, y, vx, vy, offsets)
        lat, lon = self.frame.to_wgs84([p[1] for p in pts], [p[2] for p in pts])
        predicted = [
            PredictedPosition(time=t0 + p[0], lat=float(a), lon=float(o))
            for p, a, o in zip(pts, lat, lon, strict=True)
        ]
        return [o.unit_id for o in options], predicted, options
