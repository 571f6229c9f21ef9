"""The compiled screening of the intercept search (alerts/road_fast.py, alerts/kernels.py):
its places on the roads are GEOS's to rounding, it leaves ties and answers near the boundary
to the shapely path, and every answer it gives is the shapely path's own."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString

from vigil.alerts import road_fast
from vigil.alerts.dispatch import RoadNetwork, UnitState, _travel
from vigil.alerts.engine import AlertEngine
from vigil.alerts.road_fast import RoadSegments
from vigil.config import load_default


@pytest.fixture(scope="module")
def sector() -> tuple[RoadNetwork, list[UnitState]]:
    engine = AlertEngine(load_default().site, None)
    assert engine.roads.roads and len(engine.units) >= 3
    return engine.roads, list(engine.units.values())


def _points(rng: np.random.Generator, roads: list[LineString], n: int) -> np.ndarray:
    """Points over the roads' extent, some on their vertices and some a hair off them."""
    lo = np.min([r.bounds[:2] for r in roads], axis=0) - 3000.0
    hi = np.max([r.bounds[2:] for r in roads], axis=0) + 3000.0
    p = rng.uniform(lo, hi, (n, 2))
    v = np.concatenate([np.asarray(r.coords)[:, :2] for r in roads])
    k = rng.integers(0, len(v), n // 5)
    return np.concatenate([p, v[k], v[k] + rng.normal(0, 1e-4, (k.size, 2))])


def test_places_are_geos_places(sector) -> None:
    roads, _ = sector
    rng = np.random.default_rng(41)  # cases drawn here only
    p = _points(rng, roads.roads, 2000)
    s, d, unsure = RoadSegments(roads.roads).locate(p[:, 0], p[:, 1])
    pts = shapely.points(p[:, 0], p[:, 1])
    for r, road in enumerate(roads.roads):
        want_s = shapely.line_locate_point(road, pts)
        want_d = shapely.distance(pts, shapely.line_interpolate_point(road, want_s))
        ok = ~unsure
        np.testing.assert_allclose(s[ok, r], want_s[ok], rtol=0, atol=1e-9)
        np.testing.assert_allclose(d[ok, r], want_d[ok], rtol=0, atol=1e-9)
    assert unsure.mean() < 0.01


def test_a_point_between_two_parts_of_a_road_is_left_to_geos() -> None:
    # a V: the point on its axis is as near the one arm as the other, at other places along it
    road = LineString([(-100.0, 100.0), (0.0, 0.0), (100.0, 100.0)])
    s, _, unsure = RoadSegments([road]).locate(np.array([0.0, 30.0]), np.array([50.0, 50.0]))
    assert unsure.tolist() == [True, False]
    assert s[1, 0] == pytest.approx(shapely.line_locate_point(road, shapely.Point(30.0, 50.0)))


def _exact(units, roads, px, py, rows, u, t):
    to = roads.places(px[rows], py[rows])
    return _travel(units, u, roads, to) - t <= 0.0


def test_answers_are_the_shapely_paths_even_at_the_boundary(sector) -> None:
    roads, units = sector
    rng = np.random.default_rng(42)  # cases drawn here only
    p = _points(rng, roads.roads, 500)
    n = len(p)
    rows = np.repeat(np.arange(n), len(units))
    u = np.tile(np.arange(len(units)), n)
    travel = _travel(units, u, roads, roads.places(p[rows, 0], p[rows, 1]))
    # times allowed: far either side, and exactly the travel time or one step beside it
    t = np.concatenate(
        [
            travel * rng.uniform(0.5, 1.5, travel.size),
            travel,
            np.nextafter(travel, np.inf),
            np.nextafter(travel, -np.inf),
        ]
    )
    rows4, u4 = np.tile(rows, 4), np.tile(u, 4)
    asked = []

    def exact(ks: np.ndarray) -> np.ndarray:
        asked.append(ks.size)
        return _exact(units, roads, p[:, 0], p[:, 1], rows4[ks], u4[ks], t[ks])

    starts = [roads._start(q) for q in units]
    segs = RoadSegments(roads.roads)
    got = road_fast.reached(segs, units, starts, p[:, 0], p[:, 1], rows4, u4, t, exact)
    want = _exact(units, roads, p[:, 0], p[:, 1], rows4, u4, t)
    assert got.tolist() == want.tolist()
    # the boundary cases went to the shapely path, the far ones (nearly all) did not
    assert 3 * travel.size <= sum(asked) < 3 * travel.size + travel.size // 100
    # and the network's own entry point answers the same
    assert roads.reached(units, p[:, 0], p[:, 1], rows4, u4, t).tolist() == want.tolist()


def test_travel_times_are_the_shapely_paths_to_rounding(sector) -> None:
    from vigil.alerts import kernels

    roads, units = sector
    rng = np.random.default_rng(43)  # cases drawn here only
    p = _points(rng, roads.roads, 2000)
    n = len(p)
    rows = np.repeat(np.arange(n), len(units))
    u = np.tile(np.arange(len(units)), n)
    want = _travel(units, u, roads, roads.places(p[rows, 0], p[rows, 1]))
    s, d, unsure = RoadSegments(roads.roads).locate(p[:, 0], p[:, 1])
    starts = [roads._start(q) for q in units]
    got = np.empty(rows.size)
    kernels.travel_times(
        np.ascontiguousarray(p[:, 0]), np.ascontiguousarray(p[:, 1]), rows, u,
        np.array([q.x for q in units]), np.array([q.y for q in units]),
        np.array([q.speed_mps for q in units]), np.array([q.road_speed_mps for q in units]),
        np.array([a for a, _ in starts]), np.array([b for _, b in starts]), s, d, got,
    )  # fmt: skip
    ok = ~unsure[rows]
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-13, atol=1e-10)


@pytest.mark.parametrize("tol_s", [road_fast.SLACK_TOL_S, 1e9], ids=["screened", "all-to-shapely"])
def test_bisection_is_one_halving_at_a_time_by_the_shapely_path(sector, monkeypatch, tol_s) -> None:
    roads, units = sector
    rng = np.random.default_rng(44)  # cases drawn here only
    n = 40
    gx = rng.uniform(-15000, 15000, n)
    gy = rng.uniform(-2000, 6000, n)
    gvx, gvy = rng.normal(0, 1.5, n), rng.normal(0, 1.5, n)
    g, u = np.arange(n), rng.integers(0, len(units), n)
    # brackets of 15 s ending at the first step of 15 s at which the unit is there in time
    steps = np.arange(1, 241) * 15.0
    hi = np.full(n, 3600.0)
    for k in range(n):
        x, y = gx[k] + gvx[k] * steps, gy[k] + gvy[k] * steps
        there = _travel(units, np.full(steps.size, u[k]), roads, roads.places(x, y)) <= steps
        hi[k] = steps[np.argmax(there)] if there.any() else hi[k]
    lo = hi - 15.0

    def ok(k: int, t: float) -> bool:
        x, y = gx[k] + gvx[k] * t, gy[k] + gvy[k] * t
        to = roads.places(np.array([x]), np.array([y]))
        return bool(_travel(units, u[k : k + 1], roads, to)[0] - t <= 0.0)

    want = []
    for k in range(n):
        a, b = float(lo[k]), float(hi[k])
        for _ in range(30):
            m = 0.5 * (a + b)
            a, b = (a, m) if ok(k, m) else (m, b)
        want.append(b)
    asked = []

    def exact(ks: np.ndarray, t: np.ndarray) -> np.ndarray:
        asked.append(ks.size)
        return np.array([ok(int(k), float(m)) for k, m in zip(ks, t, strict=True)])

    monkeypatch.setattr(road_fast, "SLACK_TOL_S", tol_s)
    starts = [roads._start(q) for q in units]
    segs = RoadSegments(roads.roads)
    got = road_fast.bisect(segs, units, starts, (gx, gy, gvx, gvy), g, u, lo, hi, 30, exact)
    assert got.tolist() == want
    assert ((got > lo) & (got < hi)).sum() >= n // 2  # most brackets hold a change of answer
    if tol_s > 1.0:
        assert sum(asked) == 30 * n  # every midpoint by the shapely path, resumed each time
