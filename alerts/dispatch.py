"""Which unit to send and where it meets the group: travel time off-road and by road.

All positions are in the sector's local frame (metres); speeds in m/s; times in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from shapely.geometry import LineString, Point

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


class RoadNetwork:
    """Roads as polylines; travel goes off-road to a road, along it, and off-road again."""

    def __init__(self, roads: list[LineString]) -> None:
        self.roads = [r for r in roads if r.length > 0]

    def travel_time(self, unit: UnitState, x: float, y: float) -> float:
        """Seconds for a unit to reach ``(x, y)``: the better of straight off-road or by road."""
        direct = math.hypot(x - unit.x, y - unit.y) / unit.speed_mps
        best = direct
        if not self.roads:
            return best
        a, b = Point(unit.x, unit.y), Point(x, y)
        for road in self.roads:
            sa, sb = road.project(a), road.project(b)
            pa, pb = road.interpolate(sa), road.interpolate(sb)
            t = (
                a.distance(pa) / unit.speed_mps
                + abs(sa - sb) / unit.road_speed_mps
                + b.distance(pb) / unit.speed_mps
            )
            best = min(best, t)
        return best


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

    def slack(t: float) -> float:
        return roads.travel_time(unit, x + vx * t, y + vy * t) - t

    if slack(0.0) <= 0.0:
        return Intercept(unit.unit_id, 0.0, x, y, 0.0)
    prev = 0.0
    t = step_s
    while t <= horizon_s:
        if slack(t) <= 0.0:
            lo, hi = prev, t
            for _ in range(30):
                mid = 0.5 * (lo + hi)
                if slack(mid) <= 0.0:
                    hi = mid
                else:
                    lo = mid
            px, py = x + vx * hi, y + vy * hi
            return Intercept(unit.unit_id, hi, px, py, roads.travel_time(unit, px, py))
        prev, t = t, t + step_s
    px, py = x + vx * horizon_s, y + vy * horizon_s
    return Intercept(unit.unit_id, horizon_s, px, py, roads.travel_time(unit, px, py))


def recommend(
    units: list[UnitState],
    x: float,
    y: float,
    vx: float,
    vy: float,
    roads: RoadNetwork,
    horizon_s: float = 3600.0,
    n: int = 2,
) -> list[Intercept]:
    """The ``n`` available units that can intercept soonest, best first."""
    options = [intercept(u, x, y, vx, vy, roads, horizon_s) for u in units if u.available]
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
