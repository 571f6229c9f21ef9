"""Message-level fusion (cameras, ground sensors, aircraft), class fusion and the track store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from vigil.geo.frames import LocalFrame
from vigil.ingest.schema import (
    CameraDetection,
    SensorEvent,
    Telemetry,
    Track,
    decode,
    encode,
    topic_for,
)
from vigil.tracks.config import TrackerConfig
from vigil.tracks.fusion import (
    FusionTracker,
    GroundSensorSite,
    calibrate_speed_model,
    class_likelihood,
    group_clusters,
    merge_group,
    speed_likelihood,
)
from vigil.tracks.store import TrackStore

T0 = 1_750_000_000.0
FRAME = LocalFrame(31.33, -110.94)


def camera_detection(
    camera: str, t: float, x: float, y: float, guess: str = "unknown", conf: float = 0.0
) -> CameraDetection:
    lat, lon = FRAME.to_wgs84([x], [y])
    return CameraDetection(
        camera=camera,
        time=T0 + t,
        lat=float(lat[0]),
        lon=float(lon[0]),
        cov=(16.0, 0.0, 0.0, 16.0),
        class_guess=guess,
        class_confidence=conf,
        range_m=800.0,
    )


def walk(rng, start, velocity, seconds, rate_hz=1.0):
    for k in range(int(seconds * rate_hz)):
        t = k / rate_hz
        p = np.asarray(start) + np.asarray(velocity) * t + rng.normal(0, 4, 2)
        yield t, float(p[0]), float(p[1])


def test_class_likelihood() -> None:
    assert class_likelihood("animal", 1.0).tolist() == [0.0, 0.0, 1.0]
    assert class_likelihood("unknown", 0.9).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(class_likelihood("person", 0.4), [0.6, 0.2, 0.2])


def test_camera_and_ground_sensor_fuse_into_one_track() -> None:
    rng = np.random.default_rng(1)
    fusion = FusionTracker(FRAME, ground_sensors={"u1": GroundSensorSite(60.0, 0.0, 30.0)})
    msgs = []
    for t, x, y in walk(rng, (0.0, 0.0), (1.4, 0.0), 60, rate_hz=2.0):
        msgs.append(camera_detection("c1", t, x, y, "person", 0.5))
        if abs(1.4 * t - 60.0) < 25.0 and int(t * 2) % 6 == 0:
            msgs.append(
                SensorEvent(
                    sensor="u1",
                    time=T0 + t + 0.01,
                    modality="seismic",
                    strength=1.0,
                    class_guess="person",
                    class_confidence=0.5,
                )
            )
    fusion.ingest_many(msgs)
    tracks = [m for m in fusion.track_messages() if m.state != "ended"]
    assert len(tracks) == 1
    (track,) = tracks
    assert track.sensors == ["c1", "u1"]
    assert track.class_guess == "person"
    assert track.vx == pytest.approx(1.4, abs=0.4)
    x, y = FRAME.to_local([track.lat], [track.lon])
    assert abs(x[0] - 1.4 * 59.5) < 15 and abs(y[0]) < 15
    # the message is valid on the wire
    again = decode(topic_for("tucson", track), encode(track), now=T0 + 100)
    assert again == track


def test_ground_sensor_event_starts_a_tentative_track_only_when_allowed() -> None:
    sites = {"u9": GroundSensorSite(500.0, 200.0, 40.0)}
    event = SensorEvent(sensor="u9", time=T0, modality="pir", strength=2.0, class_guess="animal")
    default = FusionTracker(FRAME, ground_sensors=sites)
    default.ingest_many([event])
    assert default.track_messages(include_tentative=True) == []  # corroborates only
    fusion = FusionTracker(FRAME, TrackerConfig(ugs_can_initiate=True), ground_sensors=sites)
    fusion.ingest_many([event])
    shown = fusion.track_messages(include_tentative=True)
    assert [m.state for m in shown] == ["tentative"]
    x, y = FRAME.to_local([shown[0].lat], [shown[0].lon])
    assert abs(x[0] - 500.0) < 1e-3 and abs(y[0] - 200.0) < 1e-3
    assert shown[0].cov[0] == pytest.approx(20.0**2)  # radius 40 m: sigma = r / 2
    assert fusion.track_messages() == []  # nothing confirmed
    fusion.ingest(SensorEvent(sensor="nope", time=T0 + 1, modality="pir", strength=1.0))
    assert fusion.unknown_sensor == 1


def test_animal_is_classified_as_animal_from_noisy_guesses() -> None:
    rng = np.random.default_rng(4)
    fusion = FusionTracker(FRAME)
    guesses = rng.choice(["animal", "person", "unknown"], size=40, p=[0.55, 0.3, 0.15])
    msgs = []
    for (t, x, y), guess in zip(walk(rng, (0, 0), (0.8, 0.3), 40), guesses, strict=True):
        conf = 0.5 if guess == "animal" else 0.4
        msgs.append(camera_detection("c2", t, x, y, str(guess), conf))
    fusion.ingest_many(msgs)
    (track,) = fusion.track_messages()
    assert track.class_guess == "animal"
    assert track.class_probs["animal"] > 0.9


def test_speed_table_is_calibrated_from_labelled_speeds_and_read_back() -> None:
    speeds = [0.2, 0.3, 0.4, 1.2, 1.3, 1.5, 1.6, 9.0, 0.25, float("nan")]
    truths = ["animal", "animal", "animal", "person", "person", "person", "animal",
              "vehicle", "none", "person"]  # fmt: skip
    rows = calibrate_speed_model(speeds, truths, edges=(0.0, 1.0, 6.0, 100.0))
    # counts per band with one added: animal 3+1, 1+1, 0+1 of 7; person 0+1, 3+1, 0+1 of 6
    assert [r[:2] for r in rows] == [(0.0, 1.0), (1.0, 6.0), (6.0, 100.0)]
    assert [r[2] for r in rows] == pytest.approx([1 / 6, 4 / 6, 1 / 6], abs=1e-6)
    assert [r[4] for r in rows] == pytest.approx([4 / 7, 2 / 7, 1 / 7], abs=1e-6)
    assert [r[3] for r in rows] == pytest.approx([1 / 4, 1 / 4, 2 / 4], abs=1e-6)
    # read back: normalised to a maximum of 1, raised to the weight; no row, no evidence
    lik = speed_likelihood(rows, 0.5)
    np.testing.assert_allclose(lik, [(1 / 6) / (4 / 7), 0.4375, 1.0], rtol=1e-5)
    lik = speed_likelihood(rows, 2.0, 0.5)
    np.testing.assert_allclose(lik, np.sqrt([1.0, 3 / 8, 3 / 7]), rtol=1e-5)
    assert speed_likelihood(rows, 200.0) is None
    with pytest.raises(ValueError, match="speeds and truths"):
        calibrate_speed_model([1.0], ["person", "animal"])
    with pytest.raises(ValueError, match="speed_class_model"):
        overlapping = ((0.0, 1.0, 0.5, 0.5, 0.5), (0.5, 2.0, 0.5, 0.5, 0.5))
        TrackerConfig(speed_class_model=overlapping).check()


#: A toy speed table: people walk on at 0.8 m/s and more, animals amble below it.
_AMBLE = ((0.0, 0.15, 0.1, 0.1, 0.2), (0.15, 0.8, 0.05, 0.1, 0.6), (0.8, 6.0, 0.85, 0.1, 0.2))


def _class_at_pace(speed_mps: float, speed_model: tuple) -> dict[str, float]:
    """A body walking north at ``speed_mps`` for 4 minutes, 800 m from the camera, guessed
    a person half the time at a confidence (0.22) the sector's camera table reads as weak
    evidence (as a tower guesses a cow far out): its track's class probabilities."""
    rng = np.random.default_rng(12)
    config = TrackerConfig.for_sector(speed_class_model=speed_model)
    fusion = FusionTracker(FRAME, config)
    msgs = []
    for t, x, y in walk(rng, (0.0, 0.0), (0.0, speed_mps), 240, rate_hz=2.0):
        guess = ("person", 0.22) if rng.random() < 0.5 else ("unknown", 0.0)
        msgs.append(camera_detection("c1", t, x, y, *guess))
    fusion.ingest_many(msgs)
    (track,) = [m for m in fusion.track_messages() if m.state != "ended"]
    return track.class_probs


def test_a_slow_ambler_is_read_as_an_animal_by_its_pace_and_a_walker_is_not() -> None:
    # Guesses alone say person; the pace of a grazing animal says otherwise, over minutes.
    assert _class_at_pace(0.5, ())["person"] > 0.8
    amble = _class_at_pace(0.5, _AMBLE)
    assert amble["animal"] > 0.8, amble
    walker = _class_at_pace(1.3, _AMBLE)
    assert walker["person"] > 0.9, walker


def test_fusion_out_of_sequence_equals_in_order() -> None:
    rng = np.random.default_rng(7)
    msgs = []
    for start, vel, cam in [((0, 0), (1.2, 0.2), "c1"), ((300, 50), (-1.0, 0.5), "c2")]:
        msgs += [camera_detection(cam, t, x, y) for t, x, y in walk(rng, start, vel, 30)]
    msgs.sort(key=lambda m: m.time)
    a = FusionTracker(FRAME)
    a.ingest_many(msgs)
    late = list(msgs)
    # delay every fifth message by 3 s (the default lag is 5 s)
    for i in range(0, len(late) - 8, 5):
        late.insert(i + 7, late.pop(i))
    assert late != msgs
    b = FusionTracker(FRAME)
    b.ingest_many(late)
    assert b._replay.replayed > 0 and b.dropped_late == 0
    assert a.track_messages() == b.track_messages()
    assert len(a.track_messages()) == 2


def test_track_ends_after_coasting() -> None:
    rng = np.random.default_rng(2)
    fusion = FusionTracker(FRAME, TrackerConfig(max_coast_s=3.0))
    fusion.ingest_many(
        [camera_detection("c1", t, x, y) for t, x, y in walk(rng, (0, 0), (1, 0), 10)]
    )
    (live,) = fusion.track_messages()
    fusion.ingest_many([camera_detection("c1", 20.0, 5000.0, 5000.0)])
    states = {m.track_id: m.state for m in fusion.track_messages()}
    assert states == {live.track_id: "ended"}
    assert fusion.track_messages() == []  # ended once


def test_aircraft_detections_are_inflated_by_the_footprint() -> None:
    fusion = FusionTracker(FRAME)
    x = np.array([-300.0, 300.0, 300.0, -300.0])
    y = np.array([-200.0, -200.0, 200.0, 200.0])
    lat, lon = FRAME.to_wgs84(x, y)
    fusion.ingest(
        Telemetry(
            aircraft="uas1",
            time=T0,
            lat=31.33,
            lon=-110.94,
            alt_m=2500.0,
            footprint=list(zip(lat.tolist(), lon.tolist(), strict=True)),
        )
    )
    tower = fusion._camera_covariance(camera_detection("c1", 1.0, 0, 0))
    plane = fusion._camera_covariance(camera_detection("uas1", 1.0, 0, 0))
    span = np.hypot(600.0, 400.0)
    assert tower[0, 0] == pytest.approx(16.0)
    assert plane[0, 0] == pytest.approx(16.0 + (0.02 * span) ** 2, rel=1e-3)
    degenerate = CameraDetection(
        camera="c1", time=T0, lat=31.33, lon=-110.94, cov=(0.0, 0.0, 0.0, 0.0), range_m=1000.0
    )
    assert fusion._camera_covariance(degenerate)[0, 0] == pytest.approx((1.0 + 2.0) ** 2)


# -- store ------------------------------------------------------------------------------------


def _track(track_id: str, t: float, lat: float, state: str = "confirmed") -> Track:
    return Track(
        track_id=track_id,
        time=T0 + t,
        lat=lat,
        lon=-110.94,
        vx=1.0,
        vy=0.5,
        cov=(9.0, 1.0, 1.0, 16.0),
        state=state,
        class_guess="person",
        class_probs={"person": 0.8, "vehicle": 0.1, "animal": 0.1},
        sensors=["c1", "u1"],
        count=int(t) + 1,
    )


def test_store_keeps_latest_and_history(tmp_path: Path) -> None:
    path = tmp_path / "tracks.sqlite"
    with TrackStore(path) as store:
        for t in range(5):
            store.write([_track("T1", t, 31.33 + t * 1e-5), _track("T2", t, 31.34)])
        store.write([_track("T1", 2.0, 0.0)])  # a replayed older state: history only
        store.write([_track("T2", 6.0, 31.34, "ended")])
    with TrackStore(path) as store:
        latest = {t.track_id: t for t in store.latest()}
        assert latest["T1"].time == T0 + 4 and latest["T1"].lat == pytest.approx(31.33 + 4e-5)
        assert latest["T1"].sensors == ["c1", "u1"]
        assert latest["T1"].class_probs["person"] == 0.8
        assert latest["T1"].cov == (9.0, 1.0, 1.0, 16.0)
        assert [t.track_id for t in store.latest(state="ended")] == ["T2"]
        history = store.history("T1")
        assert [h.time - T0 for h in history] == [0, 1, 2, 3, 4]
        assert history[2].lat == 0.0
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def _run_with_gap(
    config: TrackerConfig,
    gap_s: float,
    guess_before: tuple[str, float] = ("person", 0.5),
    guess_after: tuple[str, float] = ("person", 0.5),
) -> tuple[list[str], list[Track]]:
    """A walker seen for 60 s, unseen for ``gap_s`` (longer than the coast), seen for 60 s
    more where he has walked to, with a class guess and confidence for each stretch;
    returns the confirmed ids in each stretch and every message published once a second."""
    rng = np.random.default_rng(5)
    fusion = FusionTracker(FRAME, config)
    ids: list[set[str]] = [set(), set()]
    out: list[Track] = []
    t_next = 0.0
    for t, x, y in walk(rng, (0.0, 0.0), (0.0, 1.2), 120.0 + gap_s):
        # another walker 5 km off keeps the clock going while ours is unseen
        fusion.ingest(camera_detection("c2", t, 5000.0, 5000.0 + 1.2 * t, "person", 0.5))
        if 60.0 <= t < 60.0 + gap_s:
            continue
        fusion.ingest(camera_detection("c1", t, x, y, *(guess_before if t < 60.0 else guess_after)))
        while t >= t_next:
            fusion.flush()
            msgs = fusion.track_messages()
            out += msgs
            for m in msgs:
                if m.state != "ended" and m.lat < 31.36:  # ours, not the far walker
                    ids[t >= 60.0].add(m.track_id)
            t_next += 1.0
    return [sorted(s) for s in ids], out


def test_a_walker_lost_for_two_minutes_keeps_his_id() -> None:
    config = TrackerConfig.for_sector()
    assert config.stitch_s >= 150.0 and config.max_coast_s < 150.0
    (before, after), msgs = _run_with_gap(config, 150.0)
    assert len(before) == 1 and after == before
    # while the walker was lost nothing said his track had ended
    assert not [m for m in msgs if m.state == "ended" and m.track_id in before]
    # without stitching the same walker comes back under a new id, after an "ended"
    (before, after), msgs = _run_with_gap(TrackerConfig.for_sector(stitch_s=0.0), 150.0)
    assert len(before) == 1 and len(after) == 1 and after != before
    assert [m.track_id for m in msgs if m.state == "ended" and m.track_id in before] == before


def test_a_lost_track_ends_when_no_one_claims_it() -> None:
    config = TrackerConfig.for_sector(stitch_s=60.0)
    fusion = FusionTracker(FRAME, config)
    rng = np.random.default_rng(6)
    ended_at = None
    for t, x, y in walk(rng, (0.0, 0.0), (0.0, 1.2), 30.0):
        fusion.ingest(camera_detection("c1", t, x, y, "person", 0.5))
    for k in range(30, 200):
        # far away: another walker, not him (his detections keep the clock going)
        fusion.ingest(camera_detection("c1", k, 5000.0, 5000.0 + 1.2 * k, "person", 0.5))
        fusion.flush()
        for m in fusion.track_messages():
            if m.state == "ended" and ended_at is None:
                ended_at = k
    # last seen at 29 s, deleted after the 30 s coast, ended 60 s after he was last seen
    assert ended_at is not None and 29 + 60 <= ended_at <= 29 + 60 + 3
    assert fusion.stitched == 0


def test_a_walker_lost_for_ten_minutes_gets_his_id_back_after_it_ended() -> None:
    config = TrackerConfig.for_sector()
    assert config.stitch_s < 600.0 < config.reacquire_s
    (before, after), msgs = _run_with_gap(config, 600.0)
    assert len(before) == 1 and after == before
    # past the stitch window his track was ended, once; then it came back
    ended = [m for m in msgs if m.state == "ended" and m.track_id in before]
    assert len(ended) == 1
    later = [m for m in msgs if m.track_id in before and m.time > ended[0].time]
    assert later and all(m.state != "ended" for m in later)
    (before, after), _ = _run_with_gap(TrackerConfig.for_sector(reacquire_s=0.0), 600.0)
    assert after != before


def _ids_after_a_turned_velocity(config: TrackerConfig) -> tuple[set[str], set[str]]:
    """A walker heading north at 1.2 m/s, seen for 200 s; in his last 6 s his detections
    slide east at 3 m/s (members of a group seen in turn), turning his filter's velocity,
    before he is lost for 600 s and found again north along his real way: the confirmed
    ids near him before the gap and after it."""
    rng = np.random.default_rng(10)
    fusion = FusionTracker(FRAME, config)
    ids: tuple[set[str], set[str]] = (set(), set())
    for k in range(900):
        fusion.ingest(camera_detection("c2", k, 5000.0, 5000.0 + 1.2 * k))  # keeps the clock
        body = (3.0 * max(k - 194, 0) * (k < 200), 1.2 * k)
        if k < 200 or k >= 800:
            e = rng.normal(0.0, 4.0, 2)
            fusion.ingest(camera_detection("c1", k, body[0] + e[0], body[1] + e[1]))
        fusion.flush()
        for m in fusion.track_messages():
            x, y = FRAME.to_local([m.lat], [m.lon])
            near = np.hypot(x[0] - body[0], y[0] - body[1]) < 50.0
            if near and (k < 200 or k >= 820) and m.state in ("confirmed", "coasting"):
                ids[k >= 800].add(m.track_id)
    return ids


def test_a_lost_track_is_looked_for_along_its_mean_velocity_too() -> None:
    config = TrackerConfig.for_sector()
    before, after = _ids_after_a_turned_velocity(config)
    assert len(before) == 1 and after == before


def _class_after_gap(gap_s: float) -> tuple[str, dict[str, float]]:
    """A walker guessed a person before a gap of ``gap_s`` and not guessed at all after it:
    his track's id and class probabilities at the end."""
    # no speed evidence: the track's own pace would read him as a person whatever it took
    config = TrackerConfig.for_sector(speed_class_model=())
    _, msgs = _run_with_gap(config, gap_s, ("person", 0.9), ("unknown", 0.0))
    last = [m for m in msgs if m.state != "ended" and m.lat < 31.36][-1]
    return last.track_id, last.class_probs


def test_a_stitched_track_keeps_its_class_and_a_reacquired_one_starts_afresh() -> None:
    # Within the stitch window the new track is the lost one, evidence and all; after the
    # lost one has ended, only its id comes back: which body took it up is less sure then
    # (an animal's new track taking a group's id would turn into a person), so the new
    # track's class is its own.
    tid, probs = _class_after_gap(150.0)
    assert tid == "T1" and probs["person"] > 0.9
    tid, probs = _class_after_gap(600.0)
    # the sector's prior (person 0.2), with vehicles ruled down at a walking pace
    assert tid == "T1" and 0.2 <= probs["person"] < 0.3


def _velocity_after_ground_sensor() -> tuple[float, float]:
    """A walker heading north at 1.2 m/s, seen by a camera for 60 s and then only by a
    ground sensor (radius 30 m) he walks past, which reports every 2 s while he is in
    range: his track's north velocity (m/s) before and after the sensor's reports."""
    rng = np.random.default_rng(8)
    fusion = FusionTracker(
        FRAME,
        TrackerConfig.for_sector(),
        ground_sensors={"u1": GroundSensorSite(0.0, 90.0, 30.0)},
    )
    before = after = float("nan")
    for t, x, y in walk(rng, (0.0, 0.0), (0.0, 1.2), 100.0):
        if t < 60.0:
            fusion.ingest(camera_detection("c1", t, x, y, "person", 0.5))
        elif abs(1.2 * t - 90.0) <= 30.0 and int(t) % 2 == 0:
            fusion.ingest(SensorEvent(sensor="u1", time=T0 + t, modality="seismic", strength=1.0))
        fusion.flush()
        (track,) = [m for m in fusion.track_messages() if m.state != "ended"] or [None]
        if track is not None and t == 59.0:
            before = track.vy
        if track is not None and t == 99.0:
            assert track.sensors == ["c1", "u1"]
            after = track.vy
    return before, after


def test_ground_sensor_reports_move_a_track_but_leave_its_velocity() -> None:
    # A ground sensor says a target is within its radius, not where: a run of its reports
    # at one place read as positions would stop the walker at the sensor, and a track lost
    # soon after would be looked for where he stood. They update the position alone.
    before, after = _velocity_after_ground_sensor()
    assert before == pytest.approx(1.2, abs=0.2)
    assert after == pytest.approx(before, abs=0.05)


def test_of_two_lost_tracks_the_one_whose_way_fits_best_takes_back_its_id() -> None:
    # Walker B (seen 120 s, without noise) was lost 1400 s ago heading west along y = 800;
    # walker A was lost 500 s ago heading north along x = 0 and comes back at (40, 830),
    # where his way has veered 40 m east and 30 m from B's way. Relative to their
    # allowances for sideways wander (which grow with the gap) B's way is nearer; but the
    # density under A's short, narrow way is higher than under B's long, wide one: A takes
    # his id back.
    rng = np.random.default_rng(9)
    fusion = FusionTracker(FRAME, TrackerConfig.for_sector())
    seen: dict[str, set[str]] = {"A": set(), "B": set(), "new": set()}
    for k in range(1600):
        fusion.ingest(camera_detection("c2", k, 5000.0, 5000.0 + 1.2 * k))  # keeps the clock
        e = rng.normal(0.0, 4.0, 2)
        body = None
        if k < 120:
            who, body, e = "B", (1200.0 - k, 800.0), 0.0 * e
        elif 900 <= k < 1040 or k >= 1540:
            who, body = ("A" if k < 1040 else "new"), (40.0 * (k >= 1540), 62.0 + 1.2 * (k - 900))
        if body is not None:
            fusion.ingest(camera_detection("c1", k, body[0] + e[0], body[1] + e[1]))
        fusion.flush()
        for m in fusion.track_messages():
            x, y = FRAME.to_local([m.lat], [m.lon])
            near = body is not None and np.hypot(x[0] - body[0], y[0] - body[1]) < 50.0
            if near and m.state in ("confirmed", "coasting"):
                seen[who].add(m.track_id)
    assert len(seen["A"]) == len(seen["B"]) == 1 and seen["A"] != seen["B"]
    assert seen["new"] == seen["A"]


def _two_tracks_converge(reborn: str | None) -> tuple[set[str], list[tuple[str, str]]]:
    """Two walkers 80 m apart, seen by two cameras, drift onto one path: their tracks are one
    group seen twice and are folded together. ``reborn`` marks one track as begun 5 s later
    (as a track that took a lost track's id by stitching is). Returns the ids left and the
    merges reported."""
    fusion = FusionTracker(FRAME, TrackerConfig.for_sector())
    merges: list[tuple[str, str]] = []
    for k in range(90):
        gap = 80.0 * max(0.0, 1.0 - max(k - 15, 0) / 30.0)  # together from 45 s on
        fusion.ingest(camera_detection("c1", k, 0.0, 1.2 * k))
        fusion.ingest(camera_detection("c2", k + 0.5, gap, 1.2 * (k + 0.5)))
        fusion.flush()
        if k == 10 and reborn is not None:
            tr = fusion.tracker
            slot = int(np.flatnonzero(tr._id[: tr.n] == int(reborn[1:]))[0])
            tr._t_first[slot] += 5.0
        merges += fusion.take_merges()
    return {m.track_id for m in fusion.track_messages() if m.state != "ended"}, merges


def test_of_two_tracks_on_one_group_the_longer_running_stays() -> None:
    left, merges = _two_tracks_converge(None)
    assert left == {"T1"} and merges[0] == ("T2", "T1")  # begun together: the older id
    # T1 reborn later (a stitched id on a new track): the group's current track T2 stays
    left, merges = _two_tracks_converge("T1")
    assert left == {"T2"} and merges[0] == ("T1", "T2")


def _sight_line_covariance(tower, body, along_m: float, across_m: float) -> np.ndarray:
    """A tower detection's covariance: loose along the line of sight, tight across it."""
    u = np.subtract(body, tower) / np.hypot(*np.subtract(body, tower))
    U = np.column_stack([u, [-u[1], u[0]]])
    return U @ np.diag([along_m**2, across_m**2]) @ U.T


def test_a_group_seen_as_two_blobs_is_merged_between_them_not_beyond() -> None:
    # Two bodies 2.4-2.5 km from a tower (t03 of the demo deployment and two of its
    # detections, 110 m apart along its sight lines); each placed to 0.75 m across its
    # sight line and 52-58 m along it. Their information-weighted fusion is where the two
    # thin ellipses agree best: 170 m nearer the tower than the nearer body.
    tower = (5086.0, 1195.0)
    a, b = (5804.0, -1133.0), (5861.0, -1242.0)
    z = np.array([a, b])
    R = np.array(
        [_sight_line_covariance(tower, a, 52.4, 0.75), _sight_line_covariance(tower, b, 57.8, 0.78)]
    )
    lik = np.ones((2, 3))
    labels = group_clusters(z, R, 15.0)
    assert labels.tolist() == [0, 0]  # one group by the gate
    zs, Rs, ls = merge_group(z, R, lik, labels, 15.0)
    assert zs.shape == (1, 2) and ls.tolist() == [[1.0, 1.0, 1.0]]
    # on the segment between the two detections
    ab = np.subtract(b, a)
    f = float((zs[0] - a) @ ab / (ab @ ab))
    assert 0.0 <= f <= 1.0 and np.hypot(*(zs[0] - (a + f * ab))) < 1e-6
    # as loose along the sight line as the members, plus the group's extent across it
    sd = np.sqrt(np.linalg.eigvalsh(Rs[0]))
    assert sd[1] >= 52.0 and sd[0] >= 7.5
    # the old information-weighted centre, for the record
    W = np.linalg.inv(R)
    tri = np.linalg.solve(W.sum(axis=0), np.einsum("kab,kb->a", W, z))
    assert np.hypot(*(tri - np.asarray(a))) > 150.0


def test_a_cow_grazing_south_past_a_group_walking_north_keeps_her_own_track() -> None:
    # 40 m apart as they pass: well inside the merge's position gate, and 1.4 m/s apart,
    # which the velocity gate's (0.5 m/s)^2 floor lets by; their mean velocities over the
    # last minutes say they are two bodies
    rng = np.random.default_rng(3)
    fusion = FusionTracker(FRAME, TrackerConfig.for_sector())
    merges: list[tuple[str, str]] = []
    for k in range(600):
        group = (0.0, -300.0 + 0.9 * k) + rng.normal(0, 4, 2)
        cow = (40.0, 300.0 - 0.5 * (k + 0.5)) + rng.normal(0, 4, 2)
        fusion.ingest(camera_detection("c1", k, *group, "person", 0.5))
        fusion.ingest(camera_detection("c2", k + 0.5, *cow, "animal", 0.5))
        fusion.flush()
        merges += fusion.take_merges()
    assert merges == []
    ends = {"group": (0.0, -300.0 + 0.9 * 599), "cow": (40.0, 300.0 - 0.5 * 599.5)}
    followed = {}
    for m in fusion.track_messages():
        if m.state != "ended":
            x, y = FRAME.to_local([m.lat], [m.lon])
            for who, (bx, by) in ends.items():
                if np.hypot(x[0] - bx, y[0] - by) < 20.0:
                    followed.setdefault(who, []).append(m.track_id)
    assert len(followed["group"]) == len(followed["cow"]) == 1
    assert followed["group"] != followed["cow"]
