"""The simulated world: movers, crossing rates, camera truth geometry, sensors, aircraft."""

from __future__ import annotations

import math
from collections import Counter

import msgspec
import numpy as np
import pytest
from scipy import stats

from vigil.config import load_default
from vigil.geo.site import GroundSensor
from vigil.sim import SimError, SimSettings, World
from vigil.sim.movers import MoverStates
from vigil.sim.ugs import SensorField

START = SimSettings().start_time
NIGHT = START + 6 * 3600  # 23:00 in Arizona (UTC-7)
QUIET = dict(cameras="off", ugs=False, uas=False)


@pytest.fixture(scope="module")
def site():
    return load_default().site


def test_settings_reject_out_of_bounds_values():
    with pytest.raises(msgspec.ValidationError, match="noise_dn"):
        msgspec.convert({"noise_dn": -1.0}, SimSettings)
    with pytest.raises(msgspec.ValidationError, match="crossing_hour_weights"):
        msgspec.convert({"crossing_hour_weights": [1.0] * 5}, SimSettings)
    with pytest.raises(msgspec.ValidationError, match="unknown"):
        msgspec.convert({"unknown": 1}, SimSettings)


def test_unknown_tower_is_named(site):
    with pytest.raises(SimError, match="t99"):
        World(site, SimSettings(towers=("t99",)), 1)


def test_crossings_match_configured_rates(site):
    """Chi-square over 120 simulated days: per corridor and per local hour."""
    days = 120
    scale = 2.0
    settings = SimSettings(
        **QUIET, animals=False, road_traffic=False, crossing_rate_scale=scale, stop_probability=0.5
    )
    world = World(site, settings, 2024)
    world.step(days * 86400.0)
    north = [c for c in world.crossings() if c.cls == "person" and c.direction == "northbound"]
    p_cross = 1.0 - settings.turn_back_before
    share = np.asarray(settings.crossing_hour_weights) / sum(settings.crossing_hour_weights)
    rates = np.array([c.groups_per_day for c in site.corridors]) * scale
    # per corridor
    by_corridor = Counter(c.origin for c in north)
    observed = np.array([by_corridor[c.id] for c in site.corridors])
    expected = rates * days * p_cross
    assert abs(observed.sum() - expected.sum()) < 4 * math.sqrt(expected.sum())
    assert stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue > 0.01
    # per local hour (Arizona is UTC-7 all year)
    by_hour = Counter(world.population.local_hour(c.time) for c in north)
    observed_h = np.array([by_hour[h] for h in range(24)])
    expected_h = share * rates.sum() * days * p_cross
    assert (
        stats.chisquare(observed_h, expected_h * observed_h.sum() / expected_h.sum()).pvalue > 0.01
    )
    # and the test can tell a wrong schedule: a flat one is rejected
    flat = np.full(24, observed_h.sum() / 24)
    assert stats.chisquare(observed_h, flat).pvalue < 1e-6
    # groups that turn back after the line come back south
    south = [c for c in world.crossings() if c.cls == "person" and c.direction == "southbound"]
    assert 0 < len(south) < 0.15 * len(north)


def test_walkers_groups_and_speeds(site):
    world = World(site, SimSettings(**QUIET, crossing_rate_scale=30.0), 5)
    world.step(4 * 3600.0)
    s = world.states(NIGHT)
    people = [k for k in range(len(s)) if s.kinds[k] == "person"]
    assert len(people) > 20
    groups: dict[str, list[int]] = {}
    for k in people:
        groups.setdefault(s.groups[k], []).append(k)
    assert all(1 <= len(m) <= 15 for m in groups.values())
    for members in groups.values():
        xs, ys = s.x[members], s.y[members]
        assert np.hypot(xs - xs.mean(), ys - ys.mean()).max() < 25.0  # they stay together
        speed = np.hypot(s.vx[members], s.vy[members])
        moving = speed[speed > 0]
        assert np.all((moving >= 0.8 - 1e-6) & (moving <= 1.8 + 1e-6))
    vehicles = [k for k in range(len(s)) if s.classes[k] == "vehicle" and s.groups[k][0] != "p"]
    v = np.hypot(s.vx[vehicles], s.vy[vehicles])
    assert len(vehicles) > 3 and np.all((v >= 10.0 - 1e-6) & (v <= 25.0 + 1e-6))


def test_road_traffic_never_crosses(site):
    world = World(site, SimSettings(**QUIET, crossings=False, animals=False), 8)
    world.step(86400.0)
    assert world.crossings() == []
    seen = [m for m in world.population.movers.values() if m.cls == "vehicle"]
    assert len(seen) > 100
    for m in seen[:200]:
        assert (world.border.side(m.plan.x, m.plan.y) == 1).all()


def test_animals_wander_and_some_cross(site):
    world = World(site, SimSettings(**QUIET, crossings=False, road_traffic=False), 9)
    world.step(2 * 86400.0)
    crossed = [c for c in world.crossings() if c.cls == "animal"]
    assert len(crossed) > 5
    animals = {m.mover_id for m in world.population.movers.values() if m.cls == "animal"}
    assert len({c.group_id for c in crossed}) < len(animals)  # some, not all


def test_crossing_truth_matches_positions(site):
    world = World(site, SimSettings(**QUIET, animals=False, crossing_rate_scale=20.0), 3)
    world.step(6 * 3600.0)
    people = [c for c in world.crossings() if c.cls == "person"]
    assert people
    for c in people[:20]:
        plan = next(m.plan for m in world.population.movers.values() if m.group_id == c.group_id)
        x, y, vx, vy = plan.at(c.time)
        assert math.hypot(x - c.x, y - c.y) < 1e-6 * max(1.0, abs(x))
        before = world.border.side(*plan.at(c.time - 5.0)[:2])[0]
        after = world.border.side(*plan.at(c.time + 5.0)[:2])[0]
        assert (before, after) == ((-1, 1) if c.direction == "northbound" else (1, -1))
        seg = world.border.segments[int(world.border.nearest_segment([c.x], [c.y])[0])]
        assert seg.segment_id == c.segment_id


def test_projection_consistency(site):
    """Every visible object: ground -> foot of its box, and the foot back to the ground (1%)."""
    settings = SimSettings(
        start_time=NIGHT, cameras="truth", towers=("t03",), frame_rate_hz=1.0,
        crossing_rate_scale=40.0, ugs=False, uas=False, shake_per_hour=600.0,
    )  # fmt: skip
    world = World(site, settings, 4)
    c3 = site.corridors[2]
    x, y = world.frame.to_local([c3.path[3][0]], [c3.path[3][1]])
    aim = world.camera("t03").pointed_at(float(x[0]), float(y[0]) - 300.0)
    world.point_camera("t03", aim.pan_deg, aim.tilt_deg)
    n = 0
    shaken = 0
    for item in world.run(300.0):
        cam = item.camera
        shaken += abs(cam.pan_deg - aim.pan_deg) > 1e-9
        for o in item.objects:
            u, v, _ = cam.project(o.x, o.y)
            fu, fv = o.foot
            assert math.hypot(u - fu, v - fv) <= 1e-6
            gx, gy, hit = cam.to_ground([fu], [fv])
            assert hit[0]
            assert math.hypot(gx[0] - o.x, gy[0] - o.y) <= 0.01 * o.range_m
            assert o.box[0] < o.box[2] and o.box[1] < o.box[3]
            n += 1
    assert n > 50
    assert shaken > 0


def test_rendered_masks_are_warm(site):
    settings = SimSettings(
        start_time=NIGHT, towers=("t03",), frame_rate_hz=1.0, frame_width=320, frame_height=240,
        crossing_rate_scale=40.0, ugs=False, uas=False, sensor_noise=False, shimmer=False,
        vegetation=False, shake=False,
    )  # fmt: skip
    world = World(site, settings, 4)
    c3 = site.corridors[2]
    x, y = world.frame.to_local([c3.path[3][0]], [c3.path[3][1]])
    aim = world.camera("t03").pointed_at(float(x[0]), float(y[0]) - 300.0)
    world.point_camera("t03", aim.pan_deg, aim.tilt_deg)
    checked = 0
    for item in world.run(180.0):
        for o in item.objects:
            if o.contrast_dn * min(1, o.box[2] - o.box[0]) * min(1, o.box[3] - o.box[1]) < 30:
                continue
            r, c = o.mask_origin
            h, w = o.mask.shape
            assert o.mask.any()
            patch = item.image[r : r + h, c : c + w].astype(int)
            ring = item.image[max(r - 3, 0) : r + h + 3, max(c - 3, 0) : c + w + 3].astype(int)
            assert patch[o.mask].max() > np.median(ring) + 5
            checked += 1
    world.close()
    assert checked > 5


def test_point_camera_slews_and_send_unit_arrives(site):
    settings = SimSettings(cameras="truth", towers=("t01",), frame_rate_hz=5.0, ugs=False,
                           uas=False, shake=False, slew_deg_per_s=10.0)  # fmt: skip
    world = World(site, settings, 1)
    world.step(1.0)
    start = world.camera("t01").pan_deg
    world.point_camera("t01", (start + 40.0) % 360.0, 3.0)
    world.step(2.0)
    mid = world.camera("t01").pan_deg
    assert 15.0 < (mid - start) % 360.0 < 25.0  # 10 deg/s for about 2 s
    world.step(4.0)
    assert world.camera("t01").pan_deg == pytest.approx((start + 40.0) % 360.0)
    unit = site.units[0]
    ux, uy = world.frame.to_local([unit.lat], [unit.lon])
    eta = world.send_unit(unit.id, float(ux[0]) + 400.0, float(uy[0]))
    assert eta - world.now == pytest.approx(400.0 / unit.speed_mps)
    world.step(eta - world.now + 1.0)
    s = world.states()
    k = s.ids.index(unit.id)
    assert (s.x[k], s.y[k]) == pytest.approx((float(ux[0]) + 400.0, float(uy[0])))
    with pytest.raises(SimError, match="p99"):
        world.send_unit("p99", 0.0, 0.0)


def _people_at(distances: list[float], classes: list[str]) -> MoverStates:
    n = len(distances)
    return MoverStates(
        0.0, [f"m{i}" for i in range(n)], ["person"] * n, classes, [""] * n,
        np.asarray(distances, float), np.zeros(n), np.full(n, 1.2), np.zeros(n),
        np.full(n, 0.5), np.full(n, 1.7), np.full(n, 60.0),
    )  # fmt: skip


@pytest.mark.parametrize("modality", ["seismic", "pir"])
def test_ugs_detection_falls_with_distance(site, modality):
    frame = site.frame()
    sensor = GroundSensor(id="s1", lat=site.sector.centre[0], lon=site.sector.centre[1],
                          modality=modality, radius_m=40.0)  # fmt: skip
    settings = SimSettings(ugs_holdoff_s=0.0, wind_nuisance_per_hour=0.0, malformed_rate=0.0,
                           skewed_rate=0.0)  # fmt: skip
    rates = []
    for d in (2.0, 20.0, 35.0, 60.0):
        field = SensorField([sensor], frame, settings, 7)
        hits = 0
        for k in range(400):
            out = field.step(START + k, _people_at([d], ["person"]), 1.0)
            hits += sum(1 for m in out if m.cause == ("m0",))
        rates.append(hits / 400)
    assert rates[0] > 0.7 and rates[0] > rates[1] > rates[2] > rates[3] == 0.0


def test_magnetic_sensors_ignore_animals_and_wind_is_labelled(site):
    frame = site.frame()
    sensor = GroundSensor(id="s2", lat=site.sector.centre[0], lon=site.sector.centre[1],
                          modality="magnetic", radius_m=15.0)  # fmt: skip
    settings = SimSettings(ugs_holdoff_s=0.0, wind_nuisance_per_hour=200.0)
    field = SensorField([sensor], frame, settings, 7)
    causes = Counter()
    for k in range(600):
        for m in field.step(START + k, _people_at([3.0], ["animal"]), 15.0):
            if m.message is not None and type(m.message).__name__ == "SensorEvent":
                causes[m.cause] += 1
    assert causes[("m0",)] == 0
    assert causes[("wind",)] > 5


def test_uas_orbit_telemetry_and_detections(site):
    from pymavlink.dialects.v20 import ardupilotmega as mavlink

    settings = SimSettings(start_time=NIGHT, cameras="off", ugs=False, crossing_rate_scale=20.0)
    world = World(site, settings, 6)
    tel = []
    dets = []
    for item in world.run(120.0):
        name = type(item).__name__
        if name == "TelemetryItem":
            tel.append(item)
        elif name == "UasDetection":
            dets.append(item)
    a = site.aircraft[0]
    assert len(tel) == 240
    parser = mavlink.MAVLink(None)
    pos = [m for p in tel[10].packets for m in [parser.decode(bytearray(p))]
           if m.get_type() == "GLOBAL_POSITION_INT"][0]  # fmt: skip
    assert pos.lat / 1e7 == pytest.approx(tel[10].message.lat, abs=1e-7)
    assert pos.relative_alt / 1000 == pytest.approx(a.altitude_agl_m)
    x0, y0 = world.frame.to_local([tel[0].message.lat], [tel[0].message.lon])
    x1, y1 = world.frame.to_local([tel[1].message.lat], [tel[1].message.lon])
    speed = math.hypot(x1[0] - x0[0], y1[0] - y0[0]) / 0.5
    assert speed == pytest.approx(a.speed_mps, rel=0.01)
    assert dets, "the aircraft should see something over two minutes"
    for d in dets:
        assert d.message.camera == a.id and d.message.frame == -1
        px, py = world.frame.to_local([d.message.lat], [d.message.lon])
        assert math.hypot(px[0] - d.x, py[0] - d.y) < 6 * a.position_error_m
