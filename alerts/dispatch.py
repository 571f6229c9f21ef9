"""Which unit to send and where it meets the group: travel time off-road and by road.

All positions are in the sector's local frame (metres); speeds in m/s; times in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import ArrayLike
from shapely.geometry import LineString

from vigil.alerts import road_fast
from vigil.alerts.road_fast import RoadSegments
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
        self._segments = RoadSegments(self.roads)  # for :meth:`reached`
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

    def reached(self, units: list[UnitState], px, py, rows, u, t) -> np.ndarray:  # noqa: ANN001
        """Whether unit ``units[u[k]]`` reaches point ``rows[k]`` of ``(px, py)`` (local
        metres) within ``t[k]`` s, for each ``k``: :meth:`times` minus ``t`` at most 0, the
        same answers, screened in compiled loops (:func:`vigil.alerts.road_fast.reached`)."""
        segs = self._segs()

        def exact(ks: np.ndarray) -> np.ndarray:
            to = self.places(px[rows[ks]], py[rows[ks]])
            return _travel(units, u[ks], self, to) - t[ks] <= 0.0

        starts = [self._start(q) for q in units]
        return road_fast.reached(segs, units, starts, px, py, rows, u, t, exact)

    def bisect(self, units: list[UnitState], groups, g, u, lo, hi, exact) -> np.ndarray:  # noqa: ANN001
        """The earliest times (s) within ``[lo[k], hi[k]]`` unit ``units[u[k]]`` reaches group
        ``g[k]`` of ``groups``, 30 halvings each: :func:`vigil.alerts.road_fast.bisect`,
        ``exact(ks, t)`` the answers by the shapely path where screening is not sure."""
        gs = (groups.x, groups.y, groups.vx, groups.vy)
        starts = [self._start(q) for q in units]
        return road_fast.bisect(self._segs(), units, starts, gs, g, u, lo, hi, 30, exact)

    def _segs(self) -> RoadSegments:
        segs = getattr(self, "_segments", None)  # None: a network from an older snapshot
        if segs is None:
            segs = self._segments = RoadSegments(self.roads)
        return segs

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


@dataclass(frozen=True)
class _Group:
    """Groups moving at constant velocity: starts ``(x, y)`` (local metres) and velocities
    ``(vx, vy)`` (m/s), one entry per group."""

    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray

    def at(self, g: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where groups ``g[i]`` are at times ``t[i]`` (s): ``x + vx t``, ``y + vy t``."""
        return self.x[g] + self.vx[g] * t, self.y[g] + self.vy[g] * t


def _travel(
    units: list[UnitState],
    u: np.ndarray,
    roads: RoadNetwork,
    to: Places,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """For each ``i``: unit ``u[i]``'s travel time (s) to place ``rows[i]`` of ``to``
    (``rows`` omitted: place ``i``); one travel-time call per unit (each point's numbers are
    its own, as one at a time)."""
    rows = np.arange(u.size) if rows is None else rows
    travel = np.empty(u.size)
    for k in np.unique(u).tolist():
        mine = np.flatnonzero(u == k)
        at = rows[mine]
        travel[mine] = roads.times(units[k], Places(to.x[at], to.y[at], to.s[at], to.d[at]))
    return travel


def _search(
    units: list[UnitState],
    groups: _Group,
    roads: RoadNetwork,
    steps: list[float],
    enough: int,
) -> list[dict[int, int]]:
    """For each group: unit index to the first step index at which the unit can be where
    the group is (-1: at once), looking forward a chunk of steps at a time for every unit
    still out of reach, until ``enough`` units have one (those not reached by then are later
    than all of them). All groups go in lockstep, sharing the calls; a group's places at a
    chunk's steps serve all its units."""
    m, nu = groups.x.size, len(units)
    found: list[dict[int, int]] = [{} for _ in range(m)]
    to = roads.places(*groups.at(np.arange(m), np.zeros(m)))
    u0 = np.tile(np.arange(nu), m)
    travel = _travel(units, u0, roads, to, np.repeat(np.arange(m), nu))
    for j in np.flatnonzero(travel - 0.0 <= 0.0).tolist():
        found[j // nu][j % nu] = -1
    chunk = 32
    for first in range(0, len(steps), chunk):
        active = [r for r in range(m) if len(found[r]) < enough]
        if not active:
            break
        ts = np.array(steps[first : first + chunk])
        w = ts.size
        px, py = groups.at(np.repeat(active, w), np.tile(ts, len(active)))
        pairs = [(a, i) for a, r in enumerate(active) for i in range(nu) if i not in found[r]]
        rows = (np.array([a for a, _ in pairs], dtype=np.int64)[:, None] * w + np.arange(w)).ravel()
        u = np.repeat(np.array([i for _, i in pairs], dtype=np.int64), w)
        ok = roads.reached(units, px, py, rows, u, np.tile(ts, len(pairs))).reshape(-1, w)
        late = ok.argmax(axis=1)  # the first step in reach, where there is one
        for p in np.flatnonzero(ok.any(axis=1)).tolist():
            a, i = pairs[p]
            found[active[a]][i] = first + int(late[p])
    return found


def _intercepts(
    units: list[UnitState],
    picks: list[list[tuple[int, int | None]]],
    groups: _Group,
    roads: RoadNetwork,
    steps: list[float],
    horizon_s: float,
) -> list[list[Intercept]]:
    """For each group, the intercepts of its picked units ``(unit index, k)``, each first in
    reach at step ``k`` (-1: at once; ``None``: never within the horizon); the bisections
    (every group's, every unit's) run in compiled loops (:meth:`RoadNetwork.bisect`), the
    midpoints they cannot decide answered by the shapely path."""
    out: list[list[Intercept | None]] = [[None] * len(p) for p in picks]
    hits: list[tuple[int, int, float]] = []  # (group, position in its picks, time)
    refine: list[tuple[int, int]] = []
    ks: list[int] = []
    for r, pick in enumerate(picks):
        for q, (i, k) in enumerate(pick):
            if k == -1:
                x, y = float(groups.x[r]), float(groups.y[r])
                out[r][q] = Intercept(units[i].unit_id, 0.0, x, y, 0.0)
            elif k is None:
                hits.append((r, q, horizon_s))
            else:
                refine.append((r, q))
                ks.append(k)
    if refine:
        g1 = np.array([r for r, _ in refine], dtype=np.int64)
        u1 = np.array([picks[r][q][0] for r, q in refine], dtype=np.int64)

        def exact(k: np.ndarray, t: np.ndarray) -> np.ndarray:  # units k there by t
            to = roads.places(*groups.at(g1[k], t))
            return _travel(units, u1[k], roads, to) - t <= 0.0

        lo = np.array([steps[k - 1] if k > 0 else 0.0 for k in ks])
        times = roads.bisect(units, groups, g1, u1, lo, np.array([steps[k] for k in ks]), exact)
        times = times.tolist()
        hits += [(r, q, h) for (r, q), h in zip(refine, times, strict=True)]
    if hits:
        hits.sort()  # by group, then unit: the order the places were once made in
        g = np.array([r for r, _, _ in hits], dtype=np.int64)
        u = np.array([picks[r][q][0] for r, q, _ in hits], dtype=np.int64)
        t = np.array([h for _, _, h in hits])
        to = roads.places(*groups.at(g, t))
        travel = _travel(units, u, roads, to)
        for j, (r, q, h) in enumerate(hits):
            unit = units[picks[r][q][0]]
            out[r][q] = Intercept(unit.unit_id, h, float(to.x[j]), float(to.y[j]), float(travel[j]))
    assert all(o is not None for row in out for o in row)
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
    groups = _Group(*(np.array([float(v)]) for v in (x, y, vx, vy)))
    k = _search([unit], groups, roads, steps, 1)[0].get(0)
    return _intercepts([unit], [[(0, k)]], groups, roads, steps, horizon_s)[0][0]


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
    return recommend_many(units, [x], [y], [vx], [vy], roads, horizon_s, n, step_s)[0]


def recommend_many(
    units: list[UnitState],
    x: ArrayLike,
    y: ArrayLike,
    vx: ArrayLike,
    vy: ArrayLike,
    roads: RoadNetwork,
    horizon_s: float = 3600.0,
    n: int = 2,
    step_s: float = 15.0,
) -> list[list[Intercept]]:
    """:func:`recommend` for many groups at once (group ``i`` at ``(x[i], y[i])``, local
    metres, moving at ``(vx[i], vy[i])``, m/s): the same intercepts, each point's numbers
    computed as for one group alone, with the calls that place points on the roads and the
    travel times shared by all groups."""
    groups = _Group(*(np.asarray(v, dtype=np.float64).reshape(-1) for v in (x, y, vx, vy)))
    avail = [u for u in units if u.available]
    if not avail or n <= 0:
        return [[] for _ in range(groups.x.size)]
    steps = _steps(horizon_s, step_s)
    picks: list[list[tuple[int, int | None]]] = []
    for found in _search(avail, groups, roads, steps, n):
        chosen: dict[int, int | None] = dict(found)
        kth = -2
        if len(found) >= n:
            kth = sorted(found.values())[n - 1]
            chosen = {i: k for i, k in found.items() if k <= kth}
        if len(found) < n or kth == len(steps) - 1:
            # the rest never come within reach: all at the horizon, ties by id (a unit first
            # in reach at the last step may land on the horizon too)
            chosen.update({i: None for i in range(len(avail)) if i not in found})
        picks.append(list(chosen.items()))
    out = []
    for options in _intercepts(avail, picks, groups, roads, steps, horizon_s):
        options.sort(key=lambda i: (i.time_s, i.unit_id))
        out.append(options[:n])
    return out


def predict(
    x: float, y: float, vx: float, vy: float, times_s: list[float]
) -> list[tuple[float, float, float]]:
    """Constant-velocity positions ``(t, x, y)`` at the given offsets, seconds."""
    t = np.asarray(times_s, dtype=float)
    return [(float(ti), float(x + vx * ti), float(y + vy * ti)) for ti in t]


class UnitPlanner:
    """Recommends the units to send to an alert and predicts where its group will be.

    Recommendations for several groups can be made ahead, at once (:meth:`prepare`): a tick
    that raises dozens of alerts shares the calls that place points on the roads instead of
    making them alert by alert. A prepared recommendation is used only for the very same
    group position and velocity and the very same units (positions, speeds, availability),
    so :meth:`plan` answers the same with or without it.

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
        #: Recommendations made ahead by :meth:`prepare`, by ``(x, y, vx, vy)``, and the
        #: units they were made for (see :meth:`_units_now`).
        self._ready: dict[tuple[float, float, float, float], list[Intercept]] = {}
        self._ready_for: tuple = ()
        #: WGS84 ``(lat, lon)`` of the prepared groups' predicted positions, by their key,
        #: and of their places, by ``(x, y)``: projected in one call (PROJ projects each
        #: point alone: the same numbers as one at a time).
        self._ready_ll: dict[tuple[float, float, float, float], list[tuple[float, float]]] = {}
        self._ready_xy: dict[tuple[float, float], tuple[float, float]] = {}

    def _units_now(self) -> tuple:
        """Everything about the units a recommendation depends on, in their order."""
        return tuple(
            (u.unit_id, u.x, u.y, u.speed_mps, u.road_speed_mps, u.available)
            for u in self.units.values()
        )

    def prepare(self, x: ArrayLike, y: ArrayLike, vx: ArrayLike, vy: ArrayLike) -> None:
        """Make the recommendations for groups at ``(x[i], y[i])`` (local metres) moving at
        ``(vx[i], vy[i])`` (m/s) now, all at once, for :meth:`plan` to use while the units
        stay as they are; replaces those prepared before."""
        cols = [np.asarray(v, dtype=np.float64).reshape(-1).tolist() for v in (x, y, vx, vy)]
        keys = list(dict.fromkeys(zip(*cols, strict=True)))
        self._ready, self._ready_for = {}, self._units_now()
        self._ready_ll, self._ready_xy = {}, {}
        if keys:
            units = list(self.units.values())
            gx, gy, gvx, gvy = zip(*keys, strict=True)
            got = recommend_many(units, gx, gy, gvx, gvy, self.roads, self.horizon_s)
            self._ready = dict(zip(keys, got, strict=True))
            pts = [predict(*k, _offsets(o)) for k, o in zip(keys, got, strict=True)]
            xs = [p[1] for ps in pts for p in ps] + list(gx)
            lat, lon = self.frame.to_wgs84(xs, [p[2] for ps in pts for p in ps] + list(gy))
            ll = list(zip(lat.tolist(), lon.tolist(), strict=True))
            at = 0
            for k, ps in zip(keys, pts, strict=True):
                self._ready_ll[k], at = ll[at : at + len(ps)], at + len(ps)
            self._ready_xy = dict(zip(zip(gx, gy, strict=True), ll[at:], strict=True))

    def forget(self) -> None:
        """Drop the recommendations made ahead (they are not kept past the tick they serve)."""
        self._ready, self._ready_for = {}, ()
        self._ready_ll, self._ready_xy = {}, {}

    def wgs84(self, x: float, y: float) -> tuple[float, float]:
        """A place (local metres) in WGS84 ``(lat, lon)``, degrees; prepared with the plans
        when it is a prepared group's place."""
        got = getattr(self, "_ready_xy", {}).get((x, y))
        if got is None:
            lat, lon = self.frame.to_wgs84([x], [y])
            got = float(lat[0]), float(lon[0])
        return got

    def plan(
        self, x: float, y: float, vx: float, vy: float, t0: float
    ) -> tuple[list[str], list[PredictedPosition], list[Intercept]]:
        """The recommended unit ids (best first), the group's predicted positions and the
        intercepts behind the recommendation, for a group at ``(x, y)`` (local metres) moving
        at ``(vx, vy)`` (m/s) at time ``t0`` (UTC seconds)."""
        ready = getattr(self, "_ready", None)  # None: a planner from an older snapshot
        options = None
        ll = None
        if ready:
            options = ready.get((x, y, vx, vy))
            if options is not None and self._ready_for != self._units_now():
                options = None
            if options is not None:
                ll = getattr(self, "_ready_ll", {}).get((x, y, vx, vy))
        if options is None:
            options = recommend(list(self.units.values()), x, y, vx, vy, self.roads, self.horizon_s)
        options = list(options)
        pts = predict(x, y, vx, vy, _offsets(options))
        if ll is None:
            lat, lon = self.frame.to_wgs84([p[1] for p in pts], [p[2] for p in pts])
            ll = list(zip(lat.tolist(), lon.tolist(), strict=True))
        predicted = [
            PredictedPosition(time=t0 + p[0], lat=a, lon=o)
            for p, (a, o) in zip(pts, ll, strict=True)
        ]
        return [o.unit_id for o in options], predicted, options


def _offsets(options: list[Intercept]) -> list[float]:
    """The offsets (s) at which an alert predicts its group's place: the usual ones and the
    best unit's intercept time (rounded to 0.1 s)."""
    if not options:
        return list(PREDICTION_OFFSETS_S)
    return sorted({*PREDICTION_OFFSETS_S, round(options[0].time_s, 1)})
