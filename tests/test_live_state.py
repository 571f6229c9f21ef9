"""The live map's picture of a sector, fed by bus messages: tracks, alerts, crossings,
sensors, cameras, the aircraft, and the ring of recent positions for history playback."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from shapely.geometry import Polygon

from vigil.config import load_default
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import (
    Alert,
    AlertAction,
    CameraCommand,
    CameraDetection,
    Crossing,
    SensorEvent,
    SensorStatus,
    Telemetry,
    Track,
    topic_for,
)
from vigil.maps.live.auth import User
from vigil.maps.live.state import LiveState, history_from_tracks, track_row

T0 = 1_700_000_000.0


def feed(live: LiveState, msg) -> None:
    """Hand ``msg`` to the map as the bus does, on its own topic."""
    live.apply(topic_for(live.site.sector.name, msg), msg)


@pytest.fixture(scope="module")
def site():
    return load_default().site


@pytest.fixture
def live(site) -> LiveState:
    return LiveState(site, track_timeout_s=60.0, history_s=600.0, history_step_s=2.0)


def track(tid="t1", t=T0, lat=31.32, lon=-110.9, vx=0.0, vy=1.0, state="confirmed", cls="person"):
    return Track(
        track_id=tid,
        time=t,
        lat=lat,
        lon=lon,
        vx=vx,
        vy=vy,
        cov=(4.0, 0.0, 0.0, 4.0),
        state=state,
        class_guess=cls,
    )


def alert(aid="A1", t=T0, units=(), assigned=None, state="new"):
    return Alert(
        alert_id=aid,
        time=t,
        kind="crossing",
        priority=1,
        segment_id="tucson-0010",
        lat=31.33,
        lon=-110.9,
        units=list(units),
        assigned_unit=assigned,
        state=state,
    )


@pytest.mark.parametrize(
    ("vx", "vy", "course", "speed"),
    [(0.0, 2.0, 0.0, 2.0), (1.5, 0.0, 90.0, 1.5), (-3.0, -4.0, 216.9, 5.0), (0.0, 0.0, None, 0.0)],
    ids=["north", "east", "south-west", "still"],
)
def test_track_row_course_and_speed(vx, vy, course, speed) -> None:
    row = track_row(track(vx=vx, vy=vy))
    assert row[0] == "t1" and row[3] == "person" and row[4] == "confirmed"
    assert row[5] == course
    assert row[6] == pytest.approx(speed)


def test_tracks_appear_move_and_end(live: LiveState) -> None:
    assert live.take_changes() is None
    feed(live, track(lat=31.32))
    feed(live, track(t=T0 + 1, lat=31.3201))
    feed(live, track(tid="t2", t=T0 + 1, cls="vehicle"))
    batch = live.take_changes()
    assert batch["type"] == "batch" and batch["now"] == T0 + 1
    # only the latest position of each track goes out in a batch
    assert sorted((r[0], r[1]) for r in batch["tracks"]) == [("t1", 31.3201), ("t2", 31.32)]
    assert live.take_changes() is None
    feed(live, track(t=T0 + 2, state="ended"))
    batch = live.take_changes()
    assert batch["ended"] == ["t1"] and "tracks" not in batch
    assert list(live.snapshot()["tracks"][0][:1]) == ["t2"]


def test_silent_tracks_time_out_on_message_time(live: LiveState) -> None:
    feed(live, track(tid="old", t=T0))
    feed(live, track(tid="new", t=T0 + 59))
    live.take_changes()
    feed(live, track(tid="new", t=T0 + 61))
    batch = live.take_changes()
    assert batch["ended"] == ["old"]
    assert [r[0] for r in live.snapshot()["tracks"]] == ["new"]
    assert live.counts["tracks_timed_out"] == 1


def test_segments_shaded_by_crossings_within_the_window(site) -> None:
    live = LiveState(site, crossing_window_s=3600.0)
    for i, (seg, dt) in enumerate(
        [("tucson-0003", -4000), ("tucson-0003", -100), ("tucson-0003", 0), ("tucson-0007", -10)]
    ):
        feed(
            live,
            Crossing(
                crossing_id=f"x{i}",
                track_id="t1",
                time=T0 + dt,
                segment_id=seg,
                direction="northbound",
                lat=31.33,
                lon=-110.9,
            ),
        )
    batch = live.take_changes()
    assert batch["segments"] == {"tucson-0003": 2, "tucson-0007": 1}


@pytest.mark.parametrize("pan", [90.0, 160.0, 225.0, 300.0])
def test_camera_command_turns_the_field_of_view(site, live: LiveState, pan: float) -> None:
    tower = site.towers[2]
    feed(live, CameraCommand(camera=tower.id, time=T0, pan_deg=pan, tilt_deg=1.0))
    view = live.take_changes()["towers"][0]
    assert view["id"] == tower.id and view["pan"] == pan
    ring = np.asarray(view["fov"])
    x, y = live.frame.to_local(ring[:, 0], ring[:, 1])
    tx, ty = live.frame.to_local(np.array([tower.lat]), np.array([tower.lon]))
    c = Polygon(np.column_stack([x, y])).centroid
    bearing = math.degrees(math.atan2(c.x - tx[0], c.y - ty[0])) % 360.0
    assert abs((bearing - pan + 180.0) % 360.0 - 180.0) < 1.0
    assert live.snapshot()["towers"][2]["pan"] == pan


def test_camera_command_for_an_unknown_camera_is_counted(live: LiveState) -> None:
    feed(live, CameraCommand(camera="t99", time=T0, pan_deg=10.0, tilt_deg=1.0))
    assert live.counts["refused_unknown_device"] == 1
    assert live.take_changes() is None  # nothing to send


def test_alert_lifecycle_from_alerts_and_actions(live: LiveState) -> None:
    feed(live, alert(units=["p01", "p02"]))
    live.take_changes()
    feed(live, AlertAction(alert_id="A1", time=T0 + 5, action="acknowledge", by="cmd"))
    view = live.take_changes()["alerts"][0]
    assert (view["state"], view["by"]) == ("acknowledged", "cmd")
    feed(live, AlertAction(alert_id="A1", time=T0 + 6, action="assign", by="cmd", unit="p02"))
    assert live.take_changes()["alerts"][0]["assigned"] == "p02"
    assert live.alert_units("A1") == {"p01", "p02"}
    feed(live, AlertAction(alert_id="A9", time=T0 + 6, action="acknowledge", by="cmd"))
    assert live.counts["action_unknown_alert"] == 1
    feed(live, AlertAction(alert_id="A1", time=T0 + 7, action="close", by="cmd"))
    assert live.take_changes()["alerts"][0]["state"] == "closed"
    assert live.snapshot()["alerts"] == []


def test_sensors_and_aircraft(live: LiveState, site) -> None:
    s = site.sensors[0]
    feed(
        live, SensorStatus(sensor=s.id, time=T0, battery=0.4, state="degraded", last_heard=T0 - 30)
    )
    feed(
        live,
        SensorEvent(
            sensor=s.id, time=T0 + 10, modality="seismic", strength=2.0, class_guess="person"
        ),
    )
    feed(live, CameraDetection(camera="t01", time=T0, lat=31.3, lon=-110.9, cov=(1, 0, 0, 1)))
    batch = live.take_changes()
    sensor = batch["sensors"][0]
    assert (sensor["state"], sensor["battery"], sensor["heard"]) == ("degraded", 0.4, T0 + 10)
    assert sensor["event"]["class"] == "person"
    assert live.counts["ignored"] == 1
    feed(
        live,
        Telemetry(
            aircraft="uas1",
            time=T0 + 11,
            lat=31.35,
            lon=-110.93,
            alt_m=2400.0,
            yaw_deg=90.0,
            footprint=[(31.34, -110.94), (31.34, -110.92), (31.36, -110.93)],
        ),
    )
    uas = live.take_changes()["uas"][0]
    assert uas["id"] == "uas1" and len(uas["footprint"]) == 3 and uas["yaw"] == 90.0


def test_history_ring_keeps_one_point_per_step_and_forgets_old_tracks(live: LiveState) -> None:
    for i in range(21):  # every 0.5 s for 10 s: a point kept every 2 s
        feed(live, track(t=T0 + 0.5 * i, lat=31.32 + 1e-5 * i))
    items = live.history(T0, T0 + 100)
    assert len(items) == 1 and items[0]["class"] == "person"
    assert [p[0] for p in items[0]["points"]] == [T0 + 2.0 * k for k in range(6)]
    assert [p[0] for p in live.history(T0 + 3, T0 + 7)[0]["points"]] == [T0 + 4, T0 + 6]
    feed(live, track(tid="t2", t=T0 + 1000))
    live.take_changes()  # expiry runs on a tick
    assert [h["id"] for h in live.history(0, T0 + 2000)] == ["t2"]


def test_history_from_store_tracks_matches_ring_form() -> None:
    msgs = [track(t=T0 + 2), track(t=T0), track(tid="t2", t=T0 + 1, cls="animal")]
    items = history_from_tracks(msgs)
    assert [(i["id"], i["class"], [p[0] for p in i["points"]]) for i in items] == [
        ("t1", "person", [T0, T0 + 2]),
        ("t2", "animal", [T0 + 1]),
    ]


@pytest.mark.parametrize(
    ("user", "alert_kwargs", "visible"),
    [
        (User("c", "commander"), {"units": ["p01"]}, True),
        (User("p", "planner"), {"units": ["p01"]}, True),
        (User("a", "admin"), {"units": ["p01"]}, False),
        (User("a", "agent", "p01"), {"units": ["p01", "p02"]}, True),
        (User("a", "agent", "p01"), {"units": ["p01"], "assigned": "p02"}, False),
        (User("a", "agent", "p02"), {"units": ["p01"], "assigned": "p02"}, True),
        (User("a", "agent", "p03"), {"units": ["p01"]}, False),
        (User("a", "agent", None), {"units": ["p01"]}, False),
    ],
    ids=[
        "commander",
        "planner",
        "admin",
        "agent-recommended",
        "agent-assigned-elsewhere",
        "agent-assigned",
        "agent-other-unit",
        "agent-no-unit",
    ],
)
def test_who_sees_which_alert(user, alert_kwargs, visible) -> None:
    from vigil.maps.live.feed import visible_alert
    from vigil.maps.live.state import alert_view

    assert visible_alert(user, alert_view(alert(**alert_kwargs))) is visible


def test_publishers_on_many_threads_lose_nothing(site) -> None:
    """The bus calls handlers on the publishers' threads while the loop takes batches."""
    bus = InProcessBus(site.sector.name, clock=lambda: T0 + 100)
    live = LiveState(site)
    bus.subscribe(f"vigil/v1/{site.sector.name}/#", live.apply)
    seen: set[str] = set()
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            batch = live.take_changes()
            if batch:
                seen.update(r[0] for r in batch.get("tracks", []))

    def publish(k: int) -> None:
        for i in range(250):
            msg = track(tid=f"k{k}-{i}", t=T0 + i * 0.01)
            bus.publish(topic_for(site.sector.name, msg), msg)

    drainer = threading.Thread(target=drain)
    drainer.start()
    workers = [threading.Thread(target=publish, args=(k,)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    drainer.join()
    batch = live.take_changes()
    if batch:
        seen.update(r[0] for r in batch.get("tracks", []))
    assert len(seen) == 1000
    assert len(live.snapshot()["tracks"]) == 1000
