"""Issue 22: groups that string out, bunch at rests, split and re-form, and runners."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from vigil.config import load_default
from vigil.sim import SimSettings, World
from vigil.sim.perturbations import Groups, LayUps, Perturbations, Runners
from vigil.sim.perturbations_groups import run_warp
from vigil.sim.plans import Plan

START = SimSettings().start_time
NIGHT = START + 6 * 3600
WALKERS = dict(cameras="off", ugs=False, uas=False, animals=False, road_traffic=False,
               crossing_rate_scale=6.0)  # fmt: skip


@pytest.fixture(scope="module")
def site():
    return load_default().site


def groups_of(world: World, min_size: int = 2) -> dict[str, list]:
    out: dict[str, list] = {}
    for m in world.population.movers.values():
        if m.kind == "person" and not m.friendly:
            out.setdefault(m.group_id, []).append(m)
    return {g: sorted(ms, key=lambda m: int(m.mover_id.rsplit(".", 1)[1]))
            for g, ms in out.items() if len(ms) >= min_size}  # fmt: skip


def positions(world: World, members: list, t: float) -> np.ndarray:
    s = world.states(t)
    where = {i: k for k, i in enumerate(s.ids)}
    return np.array([[s.x[where[m.mover_id]], s.y[where[m.mover_id]]] for m in members])


def test_groups_string_out_while_walking_and_close_up_at_rests(site):
    p = Perturbations(groups=Groups(string_min_m=100.0, string_max_m=100.0,
                                    split_probability=0.0)).only("groups")  # fmt: skip
    world = World(site, SimSettings(**WALKERS, stop_probability=1.0), 3, perturbations=p)
    world.states(NIGHT)
    walking, resting = [], []
    for members in groups_of(world).values():
        lead, last = members[0], members[-1]
        plan = lead.plan
        # the file's length: leader to last while both walk, mid-walk
        t = 0.5 * (plan.start + plan.end) + last.lag_s / 2
        if last.lag_s < 1 or plan.start + last.lag_s > t or t > plan.end:
            continue
        vl = lead.plan.at(t)[2:]
        vz = last.plan.at(t - last.lag_s)[2:]
        if math.hypot(*vl) > 0.5 and math.hypot(*vz) > 0.5:
            xy = positions(world, [lead, last], t)
            walking.append(float(np.hypot(*(xy[0] - xy[1]))))
        # a rest longer than the file's lag: everyone there near its end
        dt = np.diff(plan.t)
        still = (np.diff(plan.x) == 0) & (np.diff(plan.y) == 0) & (dt > last.lag_s + 20)
        for k in np.flatnonzero(still)[:1]:
            xy = positions(world, members, plan.t[k + 1] - 5.0)
            resting.append(float(np.hypot(*(xy - xy.mean(axis=0)).T).max()))
    assert len(walking) >= 10 and len(resting) >= 5
    assert 88.0 <= float(np.median(walking)) <= 104.0  # 100 m less the route's bends, +- offsets
    assert max(resting) < 25.0  # closed up (the members' own offsets: 1.2 m x sqrt(size))


def test_groups_split_and_re_form(site):
    g = Groups(string_min_m=60.0, string_max_m=60.0, split_probability=1.0, split_m=150.0)
    g0 = msgspec.structs.replace(g, split_probability=0.0)
    whole = World(site, SimSettings(**WALKERS), 4,
                  perturbations=Perturbations(groups=g0).only("groups"))  # fmt: skip
    split = World(site, SimSettings(**WALKERS), 4,
                  perturbations=Perturbations(groups=g).only("groups"))  # fmt: skip
    whole.states(NIGHT)
    split.states(NIGHT)
    checked = 0
    for gid, members in groups_of(split, 3).items():
        sp = members[-1].split
        assert sp is not None
        rear = members[len(members) // 2 :]
        front = members[: len(members) // 2]
        assert all(m.split is sp for m in rear) and all(m.split is None for m in front)
        t_mid = 0.5 * (sp.t0 + sp.t1)
        if not (members[-1].plan.start + members[-1].lag_s < t_mid < members[0].plan.end):
            continue
        others = groups_of(whole, 3)[gid]
        d_mid = positions(split, rear, t_mid) - positions(whole, others[len(others) // 2 :], t_mid)
        assert np.allclose(np.hypot(*d_mid.T), 150.0)  # apart by the set distance
        assert np.allclose(positions(split, front, t_mid),
                           positions(whole, others[: len(others) // 2], t_mid))  # fmt: skip
        t_after = sp.t1 + 1.0
        if t_after < members[0].plan.end:
            assert np.allclose(positions(split, rear, t_after),
                               positions(whole, others[len(others) // 2 :], t_after))  # fmt: skip
        checked += 1
    assert checked >= 5


def first(world: World) -> dict:
    """Each group's first crossing: the one its plan aims at."""
    out: dict = {}
    for c in sorted(world.population.crossings, key=lambda c: c.time):
        out.setdefault(c.group_id, c)
    return out


def test_runners_run_across_the_line_and_keep_its_time(site):
    r = Runners(probability=1.0, run_s=120.0, speed_min_mps=2.5, speed_max_mps=4.0)
    walk = World(site, SimSettings(**WALKERS, stop_probability=0.0), 5)
    run = World(site, SimSettings(**WALKERS, stop_probability=0.0), 5,
                perturbations=Perturbations(runners=r).only("runners"))  # fmt: skip
    t_end = NIGHT + 3600
    walk.states(t_end)
    run.states(t_end)

    a, b = first(walk), first(run)
    assert len(a) >= 10 and a.keys() == b.keys()
    assert np.allclose([a[g].time for g in a], [b[g].time for g in a], atol=1e-6)
    b = list(b.values())
    speeds, before = [], []
    movers = run.population.movers
    for c in b[:40]:
        plan = movers[f"{c.group_id}.0"].plan
        for dt in (-90.0, -30.0, 30.0, 90.0):
            speeds.append(math.hypot(*plan.at(c.time + dt)[2:]))
        before.append(math.hypot(*plan.at(c.time - 300.0)[2:]))
    assert min(speeds) >= 2.5 and max(speeds) <= 4.0 + 1e-9
    assert max(before) <= 1.8 + 1e-9  # walking again outside the run


def test_run_warp_is_monotonic_and_fixes_the_crossing():
    t = np.arange(0.0, 1001.0, 100.0)
    plan = Plan(t, t * 1.0, np.zeros_like(t))  # 1 m/s along x
    out = run_warp(plan, 500.0, 60.0, 3.0)
    assert np.all(np.diff(out.t) >= 0)
    assert out.at(500.0)[0] == pytest.approx(500.0)
    assert out.at(530.0)[2] == pytest.approx(3.0)
    assert out.at(200.0)[2] == pytest.approx(1.0)
    # 180 s of walk either side of the line take 60 s: the ends move 120 s toward it
    assert (out.start, out.end) == pytest.approx((120.0, 880.0))


def test_lay_ups_hide_groups_for_the_set_hours_and_keep_the_crossing(site):
    lu = LayUps(probability=1.0, min_h=2.0, max_h=2.0)
    st = SimSettings(**WALKERS, stop_probability=0.0)
    walk = World(site, st, 6)
    lay = World(site, st, 6, perturbations=Perturbations(lay_ups=lu).only("lay_ups"))
    t_end = NIGHT + 3600
    walk.states(t_end)
    lay.states(t_end)
    a, b = first(walk), first(lay)
    assert len(a) >= 10 and a.keys() == b.keys()
    assert np.allclose([a[g].time for g in a], [b[g].time for g in a], atol=1e-6)
    sides = []
    for g in a:
        p0 = walk.population.movers[f"{g}.0"].plan
        p1 = lay.population.movers[f"{g}.0"].plan
        assert p1.end - p1.start == pytest.approx(p0.end - p0.start + 7200.0)
        dt = np.diff(p1.t)
        still = (np.diff(p1.x) == 0) & (np.diff(p1.y) == 0)
        assert np.isclose(dt[still], 7200.0).sum() == 1  # one stop, of two hours
        sides.append(p1.start < p0.start - 1.0)  # the walk before the line starts earlier
    assert 0 < sum(sides) < len(sides)  # before the line and after it


def test_off_road_vehicles_drive_on_the_us_side_at_the_set_rate(site):
    from vigil.geo.border import US_SIDE
    from vigil.sim.perturbations import OffRoad
    from vigil.sim.perturbations_groups import off_road_tracks

    pert = Perturbations(off_road=OffRoad(per_hour=5.0)).only("off_road")
    world = World(site, SimSettings(**WALKERS), 8, perturbations=pert)
    hours = range(494520, 494560)
    tracks = [tr for k in hours for tr in off_road_tracks(world.population.off_road, 8, k,
              world.border.line, world.border.side)]  # fmt: skip
    assert abs(len(tracks) - 200) < 4 * math.sqrt(200)
    for kind, _, speed, pts in tracks:
        assert kind in ("pickup", "atv") and 4.0 <= speed <= 12.0
        assert np.all(world.border.side(pts[:, 0], pts[:, 1]) == US_SIDE)
        d = world.border.distance(pts[:, 0], pts[:, 1])
        assert np.all((d >= 140.0) & (d <= 2510.0))
    # in the world: vehicles off any road, as movers of class vehicle, crossing nothing
    world.states(NIGHT)
    off = [m for m in world.population.movers.values() if m.origin == "off-road"]
    assert off and all(m.cls == "vehicle" for m in off)
    assert not [c for c in world.population.crossings if c.origin == "off-road"]
    plain = World(site, SimSettings(**WALKERS), 8)
    plain.states(NIGHT)
    assert not [m for m in plain.population.movers.values() if m.origin == "off-road"]


def test_small_animals_dash_and_pause_near_the_line(site):
    from vigil.sim.perturbations import SmallAnimals
    from vigil.sim.perturbations_groups import small_animal_plans

    cfg = SmallAnimals(per_km_hour=1.0)
    world = World(site, SimSettings(**WALKERS), 9,
                  perturbations=Perturbations(small_animals=cfg).only("small_animals"))  # fmt: skip
    km = world.border.line.length / 1000.0
    line = world.border.line
    plans = [p for k in range(494520, 494530) for p in small_animal_plans(cfg, 9, k, line)]
    assert abs(len(plans) - 10 * km) < 4 * math.sqrt(10 * km)
    for p in plans[:200]:
        dt, d = np.diff(p.t), np.hypot(np.diff(p.x), np.diff(p.y))
        dash = d > 0
        assert 3 <= dash.sum() <= 10
        assert np.all((d[dash] >= 10.0) & (d[dash] <= 60.0))
        v = d[dash] / dt[dash]
        assert np.all((v >= 4.0 - 1e-9) & (v <= 10.0 + 1e-9))
        assert np.all((dt[~dash] >= 5.0) & (dt[~dash] <= 120.0))
        assert world.border.distance([p.x[0]], [p.y[0]])[0] <= 1500.0 * math.sqrt(2) + 1
    s = world.states(NIGHT)
    small = [i for i, k in enumerate(s.kinds) if k == "jackrabbit"]
    assert small and all(s.classes[i] == "animal" for i in small)
    assert not [c for c in world.population.crossings if c.origin == "small-animal"]
