"""The vectorised unit recommendation gives exactly what one unit, one road and one point at a
time gives (the planner before it was vectorised, kept here as the reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import LineString, Point

from vigil.alerts.dispatch import (
    Intercept,
    RoadNetwork,
    UnitPlanner,
    UnitState,
    intercept,
    recommend,
    recommend_many,
)
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


def _cases(rng: np.random.Generator, n: int) -> np.ndarray:
    """Groups ``(x, y, vx, vy)`` over the sector, some standing, one on a unit."""
    out = np.column_stack(
        [
            rng.uniform(-20_000, 20_000, n),
            rng.uniform(-5_000, 8_000, n),
            rng.normal(0, 2, n) * (rng.random(n) > 0.1),
            rng.normal(0, 2, n),
        ]
    )
    return out


def test_many_groups_at_once_equal_each_alone(sector) -> None:
    roads, units = sector
    rng = np.random.default_rng(31)  # cases drawn here only
    for horizon, n in ((3600.0, 2), (900.0, 1), (120.0, 3), (3600.0, 8)):
        us = [
            UnitState(u.unit_id, u.x + rng.normal(0, 50), u.y, u.speed_mps, u.road_speed_mps,
                      bool(rng.random() > 0.2))
            for u in units
        ]  # fmt: skip
        g = _cases(rng, 60)
        g[0, :2] = us[0].x, us[0].y  # in reach at once
        many = recommend_many(us, g[:, 0], g[:, 1], g[:, 2], g[:, 3], roads, horizon, n)
        alone = [recommend(us, *map(float, row), roads, horizon, n) for row in g]
        assert many == alone  # to the bit: the same points, the same sums
        # and each alone is what one unit at a time gives
        for row, got in list(zip(g, alone, strict=True))[:8]:
            x, y, vx, vy = map(float, row)
            want = [_intercept(roads.roads, u, x, y, vx, vy, horizon) for u in us if u.available]
            assert got == sorted(want, key=lambda i: (i.time_s, i.unit_id))[:n]
    assert recommend_many(units, [], [], [], [], roads) == []


def test_plans_made_ahead_are_the_plans_made_when_asked(sector) -> None:
    roads, units = sector
    frame = load_default().site.frame()
    rng = np.random.default_rng(32)  # cases drawn here only
    g = _cases(rng, 40)
    fresh = UnitPlanner({u.unit_id: u for u in units}, roads, frame, 3600.0)
    want = [fresh.plan(*map(float, row), 1.7e9) for row in g]
    mine = {u.unit_id: UnitState(**vars(u)) for u in units}
    ahead = UnitPlanner(mine, roads, frame, 3600.0)
    ahead.prepare(g[:30, 0], g[:30, 1], g[:30, 2], g[:30, 3])  # the last 10 not made ahead
    calls = []
    import vigil.alerts.dispatch as dispatch

    real = dispatch.recommend
    dispatch.recommend = lambda *a, **k: calls.append(a) or real(*a, **k)
    try:
        assert [ahead.plan(*map(float, row), 1.7e9) for row in g] == want
        assert len(calls) == 10  # made when asked: only those not made ahead
        # a unit that moved or was assigned: the plans made ahead are not used
        first = next(iter(mine.values()))
        first.available = False
        expect = fresh_plan(roads, frame, mine, g[0])
        del calls[10:]
        assert ahead.plan(*map(float, g[0]), 1.7e9) == expect
        assert len(calls) == 11
        ahead.forget()
        first.available = True
        ahead.plan(*map(float, g[1]), 1.7e9)
        assert len(calls) == 12
    finally:
        dispatch.recommend = real


def fresh_plan(roads, frame, units, row):
    """A plan from a planner that made nothing ahead."""
    return UnitPlanner(units, roads, frame, 3600.0).plan(*map(float, row), 1.7e9)


def test_places_projected_with_the_plans_are_those_projected_alone(sector) -> None:
    roads, units = sector
    frame = load_default().site.frame()
    rng = np.random.default_rng(33)  # cases drawn here only
    g = _cases(rng, 30)
    planner = UnitPlanner({u.unit_id: u for u in units}, roads, frame, 3600.0)
    planner.prepare(g[:20, 0], g[:20, 1], g[:20, 2], g[:20, 3])  # the last 10 not prepared

    class Counting:  # the frame, counting the projections asked of it
        calls = 0

        def to_wgs84(self, x, y):
            Counting.calls += 1
            return frame.to_wgs84(x, y)

    planner.frame = Counting()  # type: ignore[assignment]
    for row in g:
        x, y = float(row[0]), float(row[1])
        lat, lon = frame.to_wgs84([x], [y])
        assert planner.wgs84(x, y) == (float(lat[0]), float(lon[0]))
    assert Counting.calls == 10  # the prepared places came with the plans
    planner.forget()
    planner.wgs84(float(g[0, 0]), float(g[0, 1]))
    assert Counting.calls == 11
