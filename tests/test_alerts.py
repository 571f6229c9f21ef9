"""Alert rules, grouping, corroboration, rate limits, cues, lifecycle and dispatch."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from alert_scenes import ANIMAL, T0, Scene, alerts_of

from vigil.alerts.dispatch import RoadNetwork, UnitState, intercept
from vigil.alerts.engine import AlertEngine
from vigil.alerts.rules import AlertRules
from vigil.config import load_default
from vigil.ingest.schema import (
    AlertAction,
    CameraCommand,
    Crossing,
    SensorEvent,
    SensorStatus,
)


@pytest.fixture(scope="module")
def site():
    return load_default().site


@pytest.fixture
def engine(site) -> AlertEngine:
    return AlertEngine(site)


def test_person_crossing_raises_one_alert_with_evidence_and_dispatch(engine) -> None:
    s = Scene(engine)
    out = s.walk_across("k1", 14_500.0, T0)
    new = alerts_of(out, "crossing")
    assert len(new) == 1
    a = new[0]
    assert a.state == "new" and a.priority == 1 and a.track_id == "k1"
    assert a.segment_id == "tucson-0014"
    assert a.evidence.sensors == ["t03"] and a.evidence.detections == 10
    assert a.evidence.class_probs["person"] == pytest.approx(0.85)
    assert a.units, "a unit is recommended"
    assert len(a.predicted) >= 3 and all(p.time > a.time for p in a.predicted)
    assert "intercept" in a.summary


def test_animal_evidence_never_raises_a_crossing_alert(engine) -> None:
    out = Scene(engine).walk_across("cow", 14_500.0, T0, probs=ANIMAL)
    assert alerts_of(out) == []
    assert engine.counts["crossing_not_person"] == 1


def test_a_track_of_uncertain_class_waits_for_evidence(engine) -> None:
    # a far blob the class evidence hardly moves off its prior leans "person" by chance
    unsure = {"person": 0.65, "animal": 0.3, "vehicle": 0.05}
    s = Scene(engine)
    out = s.walk_across("blob", 14_500.0, T0, probs=unsure, updates=6)
    assert alerts_of(out, "crossing") == []
    assert engine.counts["crossing_not_person"] == 1
    # the group comes closer and its guesses settle it: the waiting crossing is alerted
    x, y = s.border_point(14_500.0, 80.0)
    late = alerts_of(s.track("blob", x, y, T0 + 30), "crossing")
    assert [a.state for a in late][:1] == ["new"] and engine.counts["crossing_late_evidence"] == 1


def test_uncorroborated_track_raises_nothing(engine) -> None:
    out = Scene(engine).walk_across("blip", 14_500.0, T0, updates=1)
    assert alerts_of(out) == []
    assert engine.counts["crossing_uncorroborated"] == 1


def test_a_track_published_often_on_few_detections_is_not_corroborated(engine) -> None:
    # a coasting track is published every second with nothing new behind it: what counts
    # is the fused detections (Track.count), not how many times it was published
    s = Scene(engine)
    out = s.walk_across("ghost", 14_500.0, T0, updates=12, count=3)
    assert alerts_of(out, "crossing") == []
    assert engine.counts["crossing_uncorroborated"] == 1
    # the detections come: the waiting crossing is alerted
    x, y = s.border_point(14_500.0, 110.0)
    late = s.track("ghost", x, y, T0 + 13, count=engine.rules.min_track_updates)
    assert len(alerts_of(late, "crossing")) == 1


def test_a_person_track_faster_than_people_walk_waits(engine) -> None:
    # a "person" track crossing at 8 m/s is a track hopping between false detections
    s = Scene(engine)
    out = s.walk_across("hop", 14_500.0, T0, updates=6, start_m=-40.0, step_m=16.0, vy=8.0)
    assert alerts_of(out, "crossing") == []
    assert engine.counts["crossing_uncorroborated"] == 1


def test_southbound_crossing_raises_nothing(engine) -> None:
    s = Scene(engine)
    for i in range(4):
        x, y = s.border_point(9000.0, 30.0 - 10 * i)
        s.track("south", x, y, T0 + i, vy=-1.0)
    x, y = s.border_point(9000.0, 0.0)
    lat, lon = s.frame.to_wgs84([x], [y])
    out = engine.handle(
        Crossing(
            crossing_id="x",
            track_id="south",
            time=T0 + 3,
            segment_id="tucson-0009",
            direction="southbound",
            lat=float(lat[0]),
            lon=float(lon[0]),
        )
    )
    assert alerts_of(out) == []


def test_one_group_gives_one_alert(engine) -> None:
    s = Scene(engine)
    out = []
    for k in range(6):  # six walkers of one group, tracked separately, crossing within 60 m
        out += s.walk_across(f"g{k}", 20_000.0 + 10.0 * k, T0 + 5.0 * k)
    new = alerts_of(out, "crossing")
    ids = {a.alert_id for a in new}
    assert len(ids) == 1
    assert [a.state for a in new].count("new") == 1
    assert engine.counts["crossing_grouped"] == 5


def test_an_inferred_crossing_joins_its_groups_alert_minutes_after_the_group_was_lost(
    engine,
) -> None:
    # the group's track crossed and was lost 60 m into the US; 300 s later (past the group
    # window) a new track found 300 m on reports the crossing the monitor inferred for it,
    # dated at its estimate: it joins the group's alert; the same crossing seen (confidence
    # 1), which is a new group's, raises its own
    rules = engine.rules
    assert rules.group_window_s < 300.0 < rules.inferred_group_window_s
    for confidence, new_alerts in ((0.85, 1), (1.0, 2)):
        e = AlertEngine(engine.site, rules)
        s = Scene(e)
        out = s.walk_across("lost", 22_000.0, T0, updates=9)
        late = T0 + 8.0 + 300.0
        for i in range(9):
            out += s.track("found", *s.border_point(22_300.0, 40.0 + 10.0 * i), late - 8 + i)
        x = s.crossing_message("found", 22_300.0, late)
        out += e.handle(msgspec.structs.replace(x, confidence=confidence))
        states = [a.state for a in alerts_of(out, "crossing")]
        assert states.count("new") == new_alerts, confidence
        assert e.counts["crossing_inferred_grouped"] == (new_alerts == 1)


def test_a_track_already_alerted_that_crosses_again_updates_its_alert(engine) -> None:
    # a lay-up near the line: the group turns back and crosses again 20 min later
    s = Scene(engine)
    out = s.walk_across("k", 23_000.0, T0)
    later = T0 + 1200.0
    for i in range(5):
        out += s.track("k", *s.border_point(23_000.0, -20.0 + 10.0 * i), later + i)
    out += s.cross("k", 23_000.0, later + 2)
    crossing = alerts_of(out, "crossing")
    assert [a.state for a in crossing].count("new") == 1
    assert {a.alert_id for a in crossing} == {crossing[0].alert_id}
    assert engine.counts["crossing_track_alerted"] == 1


def test_a_crossing_alerted_late_joins_the_alert_of_where_its_group_crossed(engine) -> None:
    # two walkers cross 15 s and 100 m apart; the second's class evidence comes 400 s later,
    # when the alert has followed the first 400 m on: it joins where the group crossed
    s = Scene(engine)
    out = s.walk_across("a", 24_000.0, T0)
    unsure = {"person": 0.65, "animal": 0.3, "vehicle": 0.05}
    out += s.walk_across("b", 24_100.0, T0 + 15.0, probs=unsure)
    for i in range(5, 400, 20):
        out += s.track("a", *s.border_point(24_000.0, 20.0 + 1.0 * i), T0 + i)
    out += s.track("b", *s.border_point(24_100.0, 30.0), T0 + 420.0)
    crossing = alerts_of(out, "crossing")
    assert engine.counts["crossing_late_evidence"] == 1
    assert [a.state for a in crossing].count("new") == 1
    assert crossing[-1].alert_id == crossing[0].alert_id


def test_rate_limit_per_segment(engine) -> None:
    rules = engine.rules
    s = Scene(engine)
    out = []
    for k in range(6):  # separate groups on one segment, spaced beyond the grouping window
        out += s.walk_across(
            f"r{k}", 30_100.0 + 150.0 * (k % 2), T0 + k * (rules.group_window_s + 60)
        )
    new_ids = {a.alert_id for a in alerts_of(out) if a.state == "new"}
    assert len(new_ids) == rules.max_alerts_per_segment == 3
    assert engine.counts["crossing_rate_limited"] == 3


def test_zone_entry(engine, site) -> None:
    s = Scene(engine)
    zone = site.zones[0]
    lat, lon = np.mean(np.asarray(zone.polygon), axis=0)
    x, y = s.frame.to_local([lat], [lon])
    out = []
    for i in range(4):
        out += s.track("z", float(x[0]), float(y[0]) + i, T0 + i)
    zone_alerts = alerts_of(out, "zone_entry")
    assert len(zone_alerts) == 1
    assert zone_alerts[0].zone == zone.id and zone_alerts[0].priority == zone.priority
    # an animal in the zone does not raise it
    for i in range(4):
        out = s.track("deer", float(x[0]), float(y[0]) + i, T0 + 10 + i, probs=ANIMAL)
        assert alerts_of(out) == []


def test_sensor_hit_cues_the_nearest_tower(engine, site) -> None:
    sensor = site.sensors[0]
    out = engine.handle(
        SensorEvent(
            sensor=sensor.id, time=T0, modality=sensor.modality, strength=2.0, class_guess="person"
        )
    )
    commands = [m for m in out if isinstance(m, CameraCommand)]
    assert len(commands) == 1
    cmd = commands[0]
    cam = engine.cameras[cmd.camera]
    sx, sy, _, _ = engine.sensor_xy[sensor.id]
    nearest = min(
        engine.cameras, key=lambda k: math.hypot(engine.cameras[k].x - sx, engine.cameras[k].y - sy)
    )
    assert cmd.camera == nearest
    # the commanded pan and tilt put the sensor in the middle of the picture
    from vigil.geo.camera import PinholeCamera

    turned = PinholeCamera(
        x=cam.x,
        y=cam.y,
        height_m=cam.height_m,
        pan_deg=cmd.pan_deg,
        tilt_deg=cmd.tilt_deg,
        hfov_deg=cam.hfov_deg,
    )
    u, v, _ = turned.project([sx], [sy])
    assert abs(u[0] - turned.width / 2) < 1.0 and abs(v[0] - turned.height / 2) < 1.0
    assert len(alerts_of(out, "sensor_cue")) == 1
    # a second hit on the same line joins the open cue: no new alert, no new command
    other = next(s for s in site.sensors[1:] if s.line == sensor.line)
    out2 = engine.handle(
        SensorEvent(sensor=other.id, time=T0 + 20, modality=other.modality, strength=1.0)
    )
    assert out2 == []
    # an animal-classified hit cues nothing
    far = site.sensors[-1]
    out3 = engine.handle(
        SensorEvent(
            sensor=far.id, time=T0, modality=far.modality, strength=1.0, class_guess="animal"
        )
    )
    assert out3 == []


def test_hit_already_seen_by_a_camera_is_not_cued(engine, site) -> None:
    s = Scene(engine)
    sensor = site.sensors[12]
    sx, sy, _, _ = engine.sensor_xy[sensor.id]
    s.track("seen", sx + 20.0, sy, T0, sensors=("t02",))
    out = engine.handle(
        SensorEvent(sensor=sensor.id, time=T0 + 5, modality=sensor.modality, strength=1.0)
    )
    assert out == [] and engine.counts["cue_already_seen"] == 1


def test_track_lost_near_the_border(engine, site) -> None:
    s = Scene(engine)
    # a track that never crossed (an agent, a fragment): losing it is no news
    quiet = []
    for i in range(4):
        x, y = s.border_point(5_000.0, 300.0 + i)
        quiet += s.track("quiet", x, y, T0 + i)
    quiet += s.track("quiet", x, y, T0 + 10, state="ended")
    assert alerts_of(quiet) == []
    # a crossing with an open alert: the alert is updated, no second alert
    out = s.walk_across("alerted", 5_000.0, T0)
    (alert,) = alerts_of(out, "crossing")
    x, y = s.border_point(5_000.0, 300.0)
    out = s.track("alerted", x, y, T0 + 30, state="ended")
    assert [(a.alert_id, a.kind) for a in alerts_of(out)] == [(alert.alert_id, "crossing")]
    assert alerts_of(out)[0].history[-1].note == "track lost"
    # a crossing that raised no alert of its own (crossing alerts off here): track_lost
    quiet_engine = AlertEngine(site, AlertRules(crossing=False))
    s = Scene(quiet_engine)
    out = s.walk_across("lost", 5_000.0, T0)
    assert alerts_of(out) == []
    out = s.track("lost", x, y, T0 + 30, state="ended")
    assert len(alerts_of(out, "track_lost")) == 1
    # ... but not one lost far from the border
    far = s.walk_across("gone", 6_000.0, T0)
    for i in range(4):
        x, y = s.border_point(6_000.0, 6_000.0 + i)
        far += s.track("gone", x, y, T0 + 10 + i)
    far += s.track("gone", x, y, T0 + 20, state="ended")
    assert alerts_of(far) == []


def test_sensor_health(engine, site) -> None:
    a, b = site.sensors[3], site.sensors[4]
    out = engine.handle(SensorStatus(sensor=a.id, time=T0, battery=0.9, tamper=True, last_heard=T0))
    assert alerts_of(out, "sensor_health")[0].priority == 2
    assert engine.handle(SensorStatus(sensor=b.id, time=T0, battery=0.9, last_heard=T0)) == []
    assert engine.tick(T0 + 100) == []
    silent = alerts_of(engine.tick(T0 + engine.rules.silent_after_s + 1))
    assert [al.kind for al in silent] == ["sensor_health"]
    assert b.id in silent[0].summary
    assert engine.tick(T0 + engine.rules.silent_after_s + 100) == []  # not raised twice


def test_lifecycle_acknowledge_assign_close(engine) -> None:
    s = Scene(engine)
    a = alerts_of(s.walk_across("life", 14_500.0, T0))[0]
    first_unit = a.units[0]
    ack = engine.handle(
        AlertAction(alert_id=a.alert_id, time=T0 + 30, action="acknowledge", by="cmdr")
    )
    assert ack[0].state == "acknowledged" and ack[0].history[-1].by == "cmdr"
    asg = engine.handle(
        AlertAction(alert_id=a.alert_id, time=T0 + 40, action="assign", by="cmdr", unit=first_unit)
    )
    assert asg[0].assigned_unit == first_unit
    assert engine.units[first_unit].available is False
    b = alerts_of(s.walk_across("next", 25_500.0, T0 + 50))[0]
    assert first_unit not in b.units
    closed = engine.handle(
        AlertAction(alert_id=a.alert_id, time=T0 + 90, action="close", by="cmdr")
    )
    assert closed[0].state == "closed" and [h.state for h in closed[0].history] == [
        "new",
        "acknowledged",
        "acknowledged",
        "closed",
    ]
    assert engine.units[first_unit].available is True
    assert (
        engine.handle(AlertAction(alert_id=a.alert_id, time=T0 + 99, action="close", by="x")) == []
    )


def test_updates_are_throttled(engine) -> None:
    s = Scene(engine)
    a = alerts_of(s.walk_across("slow", 14_500.0, T0))[0]
    updates = []
    for i in range(60):  # one minute of 1 Hz updates after the crossing
        x, y = s.border_point(14_500.0, 30.0 + i)
        updates += alerts_of(s.track("slow", x, y, T0 + 10 + i))
    assert 2 <= len(updates) <= 60 / engine.rules.update_interval_s + 1
    assert all(u.alert_id == a.alert_id and u.state == "updated" for u in updates)


def test_intercept_by_hand() -> None:
    unit = UnitState("p1", 0.0, 0.0, speed_mps=10.0, road_speed_mps=20.0)
    got = intercept(unit, 1000.0, 0.0, 0.0, 1.0, RoadNetwork([]))
    # |(1000, t)| = 10 t  =>  t = 1000 / sqrt(99)
    assert got.time_s == pytest.approx(1000.0 / math.sqrt(99.0), rel=1e-6)
    assert got.x == pytest.approx(1000.0) and got.y == pytest.approx(got.time_s, rel=1e-6)


def test_roads_shorten_travel() -> None:
    from shapely.geometry import LineString

    unit = UnitState("p1", 0.0, 0.0, speed_mps=5.0, road_speed_mps=25.0)
    road = RoadNetwork([LineString([(0.0, 10.0), (10_000.0, 10.0)])])
    off = RoadNetwork([]).travel_time(unit, 10_000.0, 0.0)
    on = road.travel_time(unit, 10_000.0, 0.0)
    assert off == pytest.approx(2000.0)
    assert on == pytest.approx(10 / 5 + 10_000 / 25 + 10 / 5)


def test_rules_config_is_strict() -> None:
    import msgspec

    with pytest.raises(msgspec.ValidationError, match="max_alerts_per_segment"):
        msgspec.convert({"max_alerts_per_segment": 0}, AlertRules)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"nonsense": 1}, AlertRules)
