"""The vectorised unit recommendation gives exactly what one unit, one road and one point at a
time gives (the planner before it was vectorised, kept here as the reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import LineString, Point

from vigil.alerts.dispatch import Intercept, RoadNetwork, UnitState, intercept, recommend
from vigil.alerts.engine import AlertEngine
from vigil.config import load_default


def _travel_time(roads: list[LineString], unit: UnitState, x: float, y: float) -> float:
    best = math.hypot(x - unit.x, y - unit.y) / unit.speed_mps
    a, b = Point(unit.x, unit.y), Point(x, y)
    for road in roads:
        sa, sb = road.project(a), road.project(b)
        pa, pb = road.interpolate(sa), road.interpolate(sb)
        t = (
            a.distance(pa) / unit.speed_mps
            + abs(sa - sb) / unit.road_speed_mps
            + b.distance(pb) / unit.speed_mps
        )
        best = min(best, t)
    return best


def _intercept(roads, unit, x, y, vx, vy, horizon_s=3600.0, step_s=15.0) -> Intercept:
    def slack(t: float) -> float:
        return _travel_time(roads, unit, x + vx * t, y + vy * t) - t

    if slack(0.0) <= 0.0:
        return Intercept(unit.unit_id, 0.0, x, y, 0.0)
    prev, t = 0.0, step_s
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
            return Intercept(unit.unit_id, hi, px, py, _travel_time(roads, unit, px, py))
        prev, t = t, t + step_s
    px, py = x + vx * horizon_s, y + vy * horizon_s
    return Intercept(unit.unit_id, horizon_s, px, py, _travel_time(roads, unit, px, py))


@pytest.fixture(scope="module")
def sector() -> tuple[RoadNetwork, list[UnitState]]:
    engine = AlertEngine(load_default().site, None)
    assert engine.roads.roads and len(engine.units) >= 3
    return engine.roads, list(engine.units.values())


def test_recommend_equals_one_unit_at_a_time(sector) -> None:
    roads, units = sector
    rng = np.random.default_rng(20)  # cases drawn here only
    for _ in range(40):
        x, y = rng.uniform(-20_000, 20_000), rng.uniform(-5_000, 8_000)
        vx, vy = rng.normal(0, 2), rng.normal(0, 2)
        n = int(rng.integers(1, 4))
        horizon = float(rng.choice([3600.0, 1000.0, 120.0]))
        us = [
            UnitState(u.unit_id, u.x + rng.normal(0, 50), u.y, u.speed_mps, u.road_speed_mps,
                      bool(rng.random() > 0.25))
            for u in units
        ]  # fmt: skip
        want = [_intercept(roads.roads, u, x, y, vx, vy, horizon) for u in us if u.available]
        want = sorted(want, key=lambda i: (i.time_s, i.unit_id))[:n]
        assert recommend(us, x, y, vx, vy, roads, horizon, n) == want
        u = us[0]
        assert intercept(u, x, y, vx, vy, roads, horizon) == _intercept(
            roads.roads, u, x, y, vx, vy, horizon
        )


def test_units_out_of_reach_tie_at_the_horizon_by_id() -> None:
    road = RoadNetwork([LineString([(0.0, 0.0), (100.0, 0.0)])])
    slow = [UnitState(f"u{i}", 50_000.0 + i, 0.0, 1.0, 2.0) for i in (3, 1, 2)]
    got = recommend(slow, 0.0, 0.0, 5.0, 0.0, road, horizon_s=300.0, n=2)
    assert [g.unit_id for g in got] == ["u1", "u2"]
    assert all(g.time_s == 300.0 for g in got)
