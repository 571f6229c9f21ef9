"""simulate_to_files: same seed, same bytes; files read back; counts match the manifest."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from vigil.config import load_default
from vigil.ingest.schema import MessageError, decode
from vigil.sim import SimSettings, World, read_manifest, read_video, simulate_to_files
from vigil.sim.files import WALL_CLOCK_KEYS

NIGHT = SimSettings().start_time + 6 * 3600  # 23:00 in Arizona
SETTINGS = SimSettings(
    start_time=NIGHT,
    towers=("t03", "t04"),
    frame_width=160,
    frame_height=120,
    frame_rate_hz=5.0,
    malformed_rate=0.05,
    skewed_rate=0.05,
    crossing_rate_scale=20.0,
)
MINUTES = 1.0


@pytest.fixture(scope="module")
def site():
    return load_default().site


@pytest.fixture(scope="module")
def runs(site, tmp_path_factory):
    a = tmp_path_factory.mktemp("run_a")
    b = tmp_path_factory.mktemp("run_b")
    ma = simulate_to_files(site, SETTINGS, MINUTES, 11, a, progress=False)
    # The second run encodes its videos in child processes: the bytes must not change.
    mb = simulate_to_files(site, SETTINGS, MINUTES, 11, b, progress=False, video_processes=True)
    return a, ma, b, mb


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_bytes(runs):
    a, ma, b, mb = runs
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    assert "cameras/t03.avi" in files_a and "uas.tlog" in files_a
    for rel in files_a:
        if rel != "manifest.json":
            assert _digest(a / rel) == _digest(b / rel), rel
    strip = lambda m: {k: v for k, v in m.items() if k not in WALL_CLOCK_KEYS}  # noqa: E731
    assert strip(ma) == strip(mb)
    assert strip(read_manifest(a)) == strip(ma)


def test_other_seed_other_world(runs, site, tmp_path):
    a, ma, _, _ = runs
    settings = SimSettings(start_time=NIGHT, cameras="off", crossing_rate_scale=20.0)
    mc = simulate_to_files(site, settings, MINUTES, 12, tmp_path, progress=False)
    assert mc["files"]["truth/movers.csv"]["sha256"] != ma["files"]["truth/movers.csv"]["sha256"]


def test_videos_read_back_exactly(runs, site):
    a, manifest, _, _ = runs
    world = World(site, SETTINGS, 11)
    frames = {"t03": [], "t04": []}
    for item in world.run(MINUTES * 60.0):
        if hasattr(item, "image"):
            frames[item.tower].append(item.image)
    world.close()
    for tower, expected in frames.items():
        got = read_video(a / "cameras" / f"{tower}.avi")
        assert len(got) == manifest["counts"]["frames"][tower] == len(expected) == 300
        for g, e in zip(got, expected, strict=True):
            assert g.shape == (120, 160)
            np.testing.assert_array_equal(g, e)


def test_camera_truth_lines_match_frames(runs):
    a, manifest, _, _ = runs
    import msgspec

    for tower in ("t03", "t04"):
        lines = (a / "truth" / "cameras" / f"{tower}.jsonl").read_bytes().splitlines()
        assert len(lines) == manifest["counts"]["frames"][tower]
        recs = [msgspec.json.decode(x) for x in lines]
        assert [r["frame"] for r in recs] == list(range(len(recs)))
        assert sum(len(r["objects"]) for r in recs) == manifest["counts"]["camera_objects"][tower]


def test_ugs_lines_decode_as_labelled(runs):
    import msgspec

    a, manifest, _, _ = runs
    lines = (a / "ugs.jsonl").read_bytes().splitlines()
    truth = [msgspec.json.decode(x) for x in (a / "truth" / "ugs.jsonl").read_bytes().splitlines()]
    assert len(lines) == len(truth) == manifest["counts"]["ugs_lines"] > 50
    labels = {"ok": 0, "malformed": 0, "skewed": 0}
    for raw, t in zip(lines, truth, strict=True):
        labels[t["label"]] += 1
        topic_kind = "status" if t["message"] == "SensorStatus" else "events"
        topic = f"vigil/v1/tucson/ugs/{t['sensor']}/{topic_kind}"
        if t["label"] == "ok":
            msg = decode(topic, raw, now=t["time"])
            assert msg.sensor == t["sensor"]
        else:
            with pytest.raises(MessageError) as err:
                decode(topic, raw, now=t["time"])
            if t["label"] == "skewed":
                assert err.value.reason == "time_future"
    assert labels["malformed"] > 0 and labels["skewed"] > 0
    assert labels == {k: manifest["counts"]["ugs"].get(k, 0) for k in labels}


def test_tlog_reads_with_pymavlink(runs):
    from pymavlink import mavutil

    a, manifest, _, _ = runs
    conn = mavutil.mavlink_connection(str(a / "uas.tlog"))
    types: dict[str, int] = {}
    last = None
    while True:
        msg = conn.recv_match()
        if msg is None:
            break
        types[msg.get_type()] = types.get(msg.get_type(), 0) + 1
        if msg.get_type() == "GLOBAL_POSITION_INT":
            last = msg
    assert sum(types.values()) == manifest["counts"]["uas_packets"]
    for name in ("GLOBAL_POSITION_INT", "ATTITUDE", "GPS_RAW_INT", "CAMERA_FOV_STATUS",
                 "MOUNT_STATUS", "HEARTBEAT"):  # fmt: skip
        assert types.get(name, 0) > 0, name
    assert types["GLOBAL_POSITION_INT"] == manifest["counts"]["uas_telemetry"]
    assert 31.3 < last.lat / 1e7 < 31.4 and -111.0 < last.lon / 1e7 < -110.9
    # the tlog's own timestamps are the simulation's UTC times
    first_stamp = struct.unpack(">Q", (a / "uas.tlog").read_bytes()[:8])[0] / 1e6
    assert first_stamp == pytest.approx(NIGHT)


def test_truth_tables(runs):
    import pandas as pd

    a, manifest, _, _ = runs
    movers = pd.read_csv(a / "truth" / "movers.csv")
    assert len(movers) == manifest["counts"]["mover_rows"]
    assert movers["id"].nunique() == manifest["counts"]["movers"]
    assert movers["time"].nunique() == 60
    crossings = pd.read_csv(a / "truth" / "crossings.csv")
    assert len(crossings) == manifest["counts"]["crossings"]
    assert set(crossings["direction"]) <= {"northbound", "southbound"}
