"""Record and replay (``benchmarks/bench_replay.py``): an unchanged replay reproduces the live
run's figures, changes reach the core, and files it cannot read are refused with the reason.

One short, busy live run (two towers, 120x crossings, 3 animals per km, seed 5: the
scenario of tests/test_demo_quality.py, two minutes of it) is recorded once for the module.
"""

from __future__ import annotations

import gzip
import math
import pickle
from pathlib import Path

import msgspec
import pytest

from benchmarks.bench_replay import (
    FIGURES,
    FORMAT_VERSION,
    RecordingError,
    differences,
    load,
    load_meta,
    main,
    pooled,
    record,
    replay,
    save,
)
from vigil.demo import DEMO_START_UTC
from vigil.ingest.recording import Recorder, read_header
from vigil.ingest.topics import expected_kind
from vigil.sim import SimSettings

SEED = 5
MINUTES = 2.0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, dict]:
    """(recording file, the live run's figures)."""
    path = tmp_path_factory.mktemp("replay") / "run.vrec"
    sim = SimSettings(
        start_time=DEMO_START_UTC,
        towers=("t03", "t05"),
        frame_rate_hz=2.0,
        crossing_rate_scale=120.0,
        animals_per_km=3.0,
    )
    live = record(path, hours=MINUTES / 60.0, seed=SEED, sim=sim)
    return path, live


def test_recording_keeps_the_live_run(recorded) -> None:
    path, live = recorded
    rec = load(path)
    header = read_header(path)  # Vigil's own recording file, with the benchmark's meta
    assert (header.vigil_recording, header.sector, rec.seed) == (FORMAT_VERSION, "tucson", SEED)
    assert header.started == rec.sim.start_time
    assert rec.duration_s == pytest.approx(MINUTES * 60.0)
    assert rec.live == live
    assert load_meta(path) == rec.meta
    assert live["alerted"] == rec.summary["alerts"]["alerted"]
    assert live["animal_track_seconds"] == rec.summary["animal_track_seconds"]
    times = [m.t for m in rec.stream]
    assert times == sorted(times)
    assert rec.sim.start_time <= times[0] and times[-1] <= rec.sim.start_time + rec.duration_s
    kinds = {expected_kind(m.topic) for m in rec.stream}
    assert {"camera_detection", "sensor_event", "telemetry", "alert"} <= kinds
    assert {f.tower for f in rec.footprints} == {"t03", "t05"}


def test_saved_figures_keep_nan_and_the_messages_their_bytes(recorded, tmp_path) -> None:
    path, live = recorded
    rec = load(path)
    nan = msgspec.structs.replace(rec, live={**live, "alert_recall": math.nan})
    save(nan, tmp_path / "nan.vrec")
    again = load(tmp_path / "nan.vrec")
    assert math.isnan(again.live["alert_recall"])
    assert [m.raw for m in again.stream] == [m.raw for m in rec.stream]
    assert again.truth == rec.truth and again.site == rec.site and again.sim == rec.sim


def test_unchanged_replay_reproduces_the_live_figures(recorded, capsys) -> None:
    path, live = recorded
    # a run with something to reproduce: crossings in coverage, an alert, tracked groups
    # and animals (else the comparison below could hold with everything at zero)
    assert live["inside_coverage"] >= 1, live
    assert live["crossing_alerts"] >= 1, live
    assert live["crossing_groups_tracked"] >= 1, live
    assert live["animal_track_seconds"] >= 100, live
    # the details and the range table hook every tick: they must not change the figures
    again = replay(path, verbose=True, by_range=True)
    assert differences(live, again) == [], {k: (live[k], again[k]) for k in FIGURES}
    for k in FIGURES:
        a, b = live[k], again[k]
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), k
    bins = again["animal_seconds_by_range"]
    assert sum(n for row in bins.values() for n in row.values()) == live["animal_track_seconds"]
    assert all(b % 500 == 0 for b in bins)
    # one line per crossing alert point, "ok" or "FALSE"; the new ones are the alerts
    lines = capsys.readouterr().out.splitlines()
    new = [s for s in lines if s.startswith(("ok ", "FALSE ")) and " new=True " in s]
    assert len(new) == live["crossing_alerts"]
    assert sum(s.startswith("FALSE ") for s in new) == live["false_crossing_alerts"]


def test_changes_reach_the_core(recorded, capsys) -> None:
    path, live = recorded
    out = main(
        [
            "replay",
            str(path),
            "--tracker",
            '{"class_prior": [0.6, 0.2, 0.2]}',  # people first: fewer animals as animal
            "--rules",
            '{"crossing": false}',
        ]
    )
    assert out["crossing_alerts"] == 0 and out["alerted"] == 0
    assert "crossing" not in out["alert_kinds"]
    assert out["animal_classified_as_animal"] < live["animal_classified_as_animal"]
    # the truth is the same world's
    assert out["true_northbound_person_crossings"] == live["true_northbound_person_crossings"]
    assert out["inside_coverage"] == live["inside_coverage"]
    assert "replay: recall 0/" in capsys.readouterr().out


def test_score_pools_a_days_halves_and_fails_when_a_target_is_missed(
    recorded, capsys, tmp_path
) -> None:
    path, live = recorded
    rec = load(path)
    # two halves made by hand: animals 1.0 over 100 s and 0.0 over 300 s, 1 switch over 2
    # groups and 0 over 3, 1 of 1 alerted and 1 of 3, false rates 2.0 and 0.0 per 10 km
    # per day over equal durations
    figures = {"alerted": 1, "inside_coverage": 1, "id_switches": 1}
    figures |= {"crossing_groups_tracked": 2, "animal_track_seconds": 100}
    figures |= {"animal_classified_as_animal": 1.0, "false_crossing_alerts": 1}
    a = msgspec.structs.replace(rec, live={**live, **figures, "false_alerts_per_10km_day": 2.0})
    figures = {"alerted": 1, "inside_coverage": 3, "id_switches": 0}
    figures |= {"crossing_groups_tracked": 3, "animal_track_seconds": 300}
    figures |= {"animal_classified_as_animal": 0.0, "false_crossing_alerts": 0}
    b = msgspec.structs.replace(rec, live={**live, **figures, "false_alerts_per_10km_day": 0.0})
    f = pooled([a, b])
    assert f["hours"] == pytest.approx(2 * MINUTES / 60.0)
    assert (f["alerted"], f["inside_coverage"], f["alert_recall"]) == (2, 4, 0.5)
    assert (f["id_switches"], f["crossing_groups_tracked"]) == (1, 5)
    assert f["id_switches_per_crossing_group"] == pytest.approx(0.2)
    assert f["animal_classified_as_animal"] == pytest.approx(0.25)
    assert f["false_alerts_per_10km_day"] == pytest.approx(1.0)
    p99 = rec.summary["latency_ms"]["crossing_p99"]
    assert f["crossing_alert_latency_p99_ms"] == p99
    # the command: these halves miss the recall, switch and animal targets, so it exits
    # with status 1 and says which; halves that meet every target pass
    save(a, tmp_path / "a.vrec")
    save(b, tmp_path / "b.vrec")
    with pytest.raises(SystemExit) as exit_:
        main(["score", str(tmp_path / "a.vrec"), str(tmp_path / "b.vrec")])
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "animals classified as animals: 0.25 (MISSES >= 0.9)" in out
    assert "ID switches per crossing group: 0.2 (MISSES <= 0.1)" in out
    good = {"alerted": 3, "inside_coverage": 3, "id_switches": 0}
    good |= {"crossing_groups_tracked": 3, "animal_track_seconds": 300}
    good |= {"animal_classified_as_animal": 0.95, "false_crossing_alerts": 0}
    good |= {"false_alerts_per_10km_day": 0.0}
    save(msgspec.structs.replace(rec, live={**live, **good}), tmp_path / "good.vrec")
    assert main(["score", str(tmp_path / "good.vrec")])["animal_classified_as_animal"] == 0.95
    assert "MISSES" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("tracker", "rules", "named"),
    [
        ({"no_such_setting": 1.0}, None, "no_such_setting"),
        (None, {"min_person_probability": 2.0}, "min_person_probability"),
    ],
    ids=["unknown-tracker-field", "rule-out-of-bounds"],
)
def test_bad_changes_are_refused_by_name(recorded, tracker, rules, named) -> None:
    path, _ = recorded
    with pytest.raises(ValueError, match=named):
        replay(path, tracker, rules)


def test_a_recording_of_another_world_is_refused(recorded) -> None:
    path, _ = recorded
    other = msgspec.structs.replace(load(path), seed=SEED + 1)
    with pytest.raises(RecordingError, match="no longer makes this recording's world"):
        replay(other)


def _rewrite_header(src: Path, dst: Path, change) -> None:
    """``src`` with its header line changed by ``change(dict) -> dict``."""
    first, rest = gzip.decompress(src.read_bytes()).split(b"\n", 1)
    head = change(msgspec.json.decode(first))
    dst.write_bytes(gzip.compress(msgspec.json.encode(head) + b"\n" + rest))


def test_another_format_version_is_refused(recorded, tmp_path) -> None:
    path, _ = recorded
    bad = tmp_path / "newer.vrec"
    _rewrite_header(path, bad, lambda h: {**h, "vigil_recording": FORMAT_VERSION + 1})
    with pytest.raises(RecordingError) as err:
        load(bad)
    text = str(err.value)
    assert f"version {FORMAT_VERSION + 1}" in text and f"version {FORMAT_VERSION} only" in text
    with pytest.raises(RecordingError, match="version"):
        replay(bad)
    # the gzip MessagePack files bench_replay wrote before the common format
    old = tmp_path / "old.vrec"
    fields = {"format": "vigil-replay-recording", "version": 1, "made_utc": "", "stream": []}
    old.write_bytes(gzip.compress(msgspec.msgpack.encode(fields)))
    with pytest.raises(RecordingError, match="bench_replay recording of format version 1"):
        load(old)


def test_damaged_metadata_is_refused(recorded, tmp_path) -> None:
    path, _ = recorded
    bad = tmp_path / "damaged.vrec"
    _rewrite_header(path, bad, lambda h: {**h, "meta": {**h["meta"], "seed": "one"}})
    with pytest.raises(RecordingError, match=r"line 1: damaged replay metadata .*seed"):
        load(bad)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (pickle.dumps({"stream": [], "hours": 1.0}), "line 1 is not a Vigil recording header"),
        (gzip.compress(msgspec.msgpack.encode([1, 2, 3])), "line 1 is not a Vigil recording"),
        (gzip.compress(b'{"format": "other"}\n'), "line 1 is not a Vigil recording header"),
        (b"\x1f\x8b not gzip", "damaged compressed data"),
    ],
    ids=["pickle", "msgpack", "other-json", "bad-gzip"],
)
def test_files_that_are_not_recordings_are_refused(tmp_path, content, reason) -> None:
    bad = tmp_path / "bad.vrec"
    bad.write_bytes(content)
    with pytest.raises(RecordingError, match=reason):
        load(bad)


def test_a_recording_without_the_benchmarks_metadata_is_refused(tmp_path) -> None:
    Recorder(tmp_path / "plain.vrec", "tucson").close()  # what `vigil record` writes
    with pytest.raises(RecordingError, match="without a replay's metadata"):
        load(tmp_path / "plain.vrec")


def test_record_refuses_a_missing_folder_before_running(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no folder"):
        record(tmp_path / "absent" / "run.vrec", hours=1.0, seed=1, sim=SimSettings())
