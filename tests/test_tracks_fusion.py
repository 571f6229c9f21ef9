"""Message-level fusion (cameras, ground sensors, aircraft), class fusion and the track store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from tracks_scenarios import FRAME, T0, camera_detection, walk

from vigil.ingest.schema import (
    CameraDetection,
    SensorEvent,
    Telemetry,
    Track,
    decode,
    encode,
    topic_for,
)
from vigil.tracks.calibration import calibrate_speed_model
from vigil.tracks.classes import class_likelihood, pace_factor, speed_likelihood, speed_says
from vigil.tracks.config import TrackerConfig
from vigil.tracks.fusion import FusionTracker, GroundSensorSite
from vigil.tracks.store import TrackStore


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


def test_speed_says_the_class_only_when_the_velocity_is_known() -> None:
    v = np.array([3.0, 4.0])  # 5 m/s
    tight, loose = np.eye(2) * 0.25, np.eye(2) * 4.0  # sigma 0.5 and 2 m/s per axis
    assert speed_says(v, tight, 1.0, lambda s: np.array([s, 0.0, 0.0])).tolist() == [5, 0, 0]
    assert speed_says(v, loose, 1.0, lambda s: np.ones(3)) is None
    assert speed_says(v, loose, 2.0, lambda s: np.ones(3)) is not None  # at the bound
    # walking pace, driving pace, and between them nothing
    assert pace_factor(1.5, 2.5, 5.0).tolist() == [1.0, 0.1, 1.0]
    assert pace_factor(5.0, 2.5, 5.0).tolist() == [0.05, 1.0, 0.05]
    assert pace_factor(3.0, 2.5, 5.0) is None


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
