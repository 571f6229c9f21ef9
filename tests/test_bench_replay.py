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
    FORMAT,
    FORMAT_VERSION,
    RecordingError,
    differences,
    load,
    main,
    record,
    replay,
)
from hardware.sim import SimSettings
from vigil.demo import DEMO_START_UTC

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
    assert (rec.format, rec.version, rec.seed) == (FORMAT, FORMAT_VERSION, SEED)
    assert rec.duration_s == pytest.approx(MINUTES * 60.0)
    assert rec.live == live
    assert live["alerted"] == rec.summary["alerts"]["alerted"]
    assert live["animal_track_seconds"] == rec.summary["animal_track_seconds"]
    times = [t for t, _ in rec.stream]
    assert times == sorted(times)
    assert rec.sim.start_time <= times[0] and times[-1] <= rec.sim.start_time + rec.duration_s
    kinds = {type(m).__name__ for _, m in rec.stream}
    assert {"CameraDetection", "SensorEvent", "Telemetry"} <= kinds
    assert {f.tower for f in rec.footprints} == {"t03", "t05"}


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


def test_another_format_version_is_refused(recorded, tmp_path) -> None:
    path, _ = recorded
    raw = msgspec.msgpack.decode(gzip.decompress(path.read_bytes()))
    raw["version"] = FORMAT_VERSION + 1
    bad = tmp_path / "newer.vrec"
    bad.write_bytes(gzip.compress(msgspec.msgpack.encode(raw)))
    with pytest.raises(RecordingError) as err:
        load(bad)
    text = str(err.value)
    assert f"version {FORMAT_VERSION + 1}" in text and f"version {FORMAT_VERSION} only" in text
    with pytest.raises(RecordingError, match="version"):
        replay(bad)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (pickle.dumps({"stream": [], "hours": 1.0}), "not gzip data"),
        (gzip.compress(msgspec.msgpack.encode([1, 2, 3])), "not MessagePack with a header"),
        (gzip.compress(msgspec.msgpack.encode({"format": "other"})), "format 'other'"),
    ],
    ids=["pickle", "not-a-map", "other-format"],
)
def test_files_that_are_not_recordings_are_refused(tmp_path, content, reason) -> None:
    bad = tmp_path / "bad.vrec"
    bad.write_bytes(content)
    with pytest.raises(RecordingError, match=reason):
        load(bad)


def test_record_refuses_a_missing_folder_before_running(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no folder"):
        record(tmp_path / "absent" / "run.vrec", hours=1.0, seed=1, sim=SimSettings())
