"""The array-level tracker, out-of-sequence replay, the CSV command and the config."""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec
import numpy as np
import pytest

from vigil.geo.frames import LocalFrame
from vigil.tracks.config import TrackerConfig
from vigil.tracks.csvfile import CsvError, read_detections, run_track
from vigil.tracks.oosm import TimeOrderedReplay
from vigil.tracks.tracker import CONFIRMED, BatchError, Tracker


def walkers_scene(walkers: int, clutter: int, scans: int, seed: int, extent: float = 2000.0):
    """Walkers in a square (m), 1 s scans, Pd 0.9, 5 m noise, uniform clutter."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, extent, (walkers, 2))
    ang = rng.uniform(0, 2 * np.pi, walkers)
    vel = np.c_[np.cos(ang), np.sin(ang)] * rng.uniform(0.5, 2.0, (walkers, 1))
    truth, dets = [], []
    for k in range(scans):
        if k:
            pos = pos + vel
        truth.append(pos.copy())
        seen = rng.random(walkers) < 0.9
        z = np.vstack(
            [pos[seen] + rng.normal(0, 5, (seen.sum(), 2)), rng.uniform(0, extent, (clutter, 2))]
        )
        dets.append(z[rng.permutation(len(z))])
    return truth, dets


@pytest.fixture(scope="module")
def scene():
    return walkers_scene(walkers=12, clutter=20, scans=40, seed=5)


def _match(truth: np.ndarray, table) -> dict[int, int]:
    """Truth index -> track id of the confirmed track within 20 m (nearest)."""
    shown = table.confirmed()
    out = {}
    for i, p in enumerate(truth):
        if len(shown) == 0:
            continue
        d = np.hypot(*(shown.x[:, :2] - p).T)
        if d.min() < 20.0:
            out[i] = int(shown.track_id[int(d.argmin())])
    return out


def test_tracker_follows_walkers_in_clutter_with_stable_ids(scene) -> None:
    truth, dets = scene
    tracker = Tracker()
    ids_seen: dict[int, set[int]] = {}
    false_tracks = []
    for k, z in enumerate(dets):
        table = tracker.update(float(k), z)
        if k >= 5:
            match = _match(truth[k], table)
            assert len(match) >= len(truth[k]) - 1, f"scan {k}: only {len(match)} matched"
            for i, tid in match.items():
                ids_seen.setdefault(i, set()).add(tid)
            false_tracks.append(len(table.confirmed()) - len(set(match.values())))
    assert all(len(v) == 1 for v in ids_seen.values()), ids_seen
    assert np.mean(false_tracks) < 0.5
    # velocity estimates close to the walkers' (0.5..2 m/s)
    last = tracker.tracks().confirmed()
    assert np.all(np.hypot(last.x[:, 2], last.x[:, 3]) < 3.5)


def test_tracker_is_deterministic(scene) -> None:
    _, dets = scene
    a, b = Tracker(), Tracker()
    for k, z in enumerate(dets):
        ta = a.update(float(k), z)
        tb = b.update(float(k), z.copy())
    np.testing.assert_array_equal(ta.track_id, tb.track_id)
    np.testing.assert_array_equal(ta.x, tb.x)


def test_coasting_keeps_the_id_across_a_gap_and_deletes_after_max_coast() -> None:
    config = TrackerConfig(max_coast_s=5.0)
    tracker = Tracker(config)
    for t in range(6):
        tracker.update(float(t), [[1.5 * t, 0.0]])
    (tid,) = tracker.tracks().confirmed().track_id
    for t in range(6, 9):  # a 3 s gap: coasting
        table = tracker.update(float(t), np.empty((0, 2)))
        assert table.status.tolist() == [2]
    table = tracker.update(9.0, [[13.5, 0.0]])
    assert table.track_id.tolist() == [tid] and table.status.tolist() == [CONFIRMED]
    for t in range(10, 16):
        table = tracker.update(float(t), np.empty((0, 2)))
    assert len(table) == 0


def test_m_of_n_confirmation() -> None:
    tracker = Tracker(TrackerConfig(confirm_m=3, confirm_n=4))
    hits = [True, False, True, True]
    for t, hit in enumerate(hits):
        table = tracker.update(float(t), [[0.0, 0.0]] if hit else np.empty((0, 2)))
        if t < 3:
            assert table.status.tolist() == [0]
    assert table.status.tolist() == [CONFIRMED]
    tracker = Tracker(TrackerConfig(confirm_m=3, confirm_n=4))
    for t, hit in enumerate([True, False, False, True]):
        table = tracker.update(float(t), [[0.0, 0.0]] if hit else np.empty((0, 2)))
    assert CONFIRMED not in table.status.tolist()  # the first track died, a new one started


def test_snapshot_restore_round_trip(scene) -> None:
    _, dets = scene
    tracker = Tracker()
    for k in range(10):
        tracker.update(float(k), dets[k])
    snap = tracker.snapshot()
    for k in range(10, 20):
        after = tracker.update(float(k), dets[k])
    tracker.restore(snap)
    for k in range(10, 20):
        again = tracker.update(float(k), dets[k])
    np.testing.assert_array_equal(after.track_id, again.track_id)
    np.testing.assert_array_equal(after.P, again.P)


def test_out_of_sequence_batches_give_the_same_tracks_as_in_order(scene) -> None:
    _, dets = scene
    config = TrackerConfig(out_of_sequence_lag_s=5.0)

    def run(order: list[int]):
        tracker = Tracker(config)
        outputs = {}

        def apply(t: float, z: np.ndarray) -> None:
            outputs[t] = tracker.update(t, z)

        replay = TimeOrderedReplay(
            apply, tracker.snapshot, tracker.restore, config.out_of_sequence_lag_s
        )
        for k in order:
            replay.submit(float(k), dets[k])
        return tracker.tracks(), outputs, replay

    in_order, out_a, _ = run(list(range(len(dets))))
    rng = np.random.default_rng(0)
    shuffled = list(range(len(dets)))
    for start in range(0, len(dets), 4):  # shuffle within windows of 4 s (< the 5 s lag)
        chunk = shuffled[start : start + 4]
        rng.shuffle(chunk)
        shuffled[start : start + 4] = chunk
    assert shuffled != sorted(shuffled)
    late, out_b, replay = run(shuffled)
    assert replay.replayed > 0 and replay.dropped_late == 0
    np.testing.assert_array_equal(in_order.track_id, late.track_id)
    np.testing.assert_allclose(in_order.x, late.x)
    for t in out_a:
        np.testing.assert_array_equal(out_a[t].track_id, out_b[t].track_id)


def test_batches_later_than_the_lag_are_dropped_and_counted() -> None:
    applied = []
    replay = TimeOrderedReplay(lambda t, b: applied.append(t), lambda: None, lambda s: None, 5.0)
    for t in (10.0, 11.0, 3.0, 7.0):
        replay.submit(t, None)
    assert replay.dropped_late == 1
    assert applied == [10.0, 11.0, 7.0, 10.0, 11.0]


def test_live_slots_are_read_only_views_and_change_only_through_methods(scene) -> None:
    _, dets = scene
    tracker = Tracker()
    for k in range(8):
        table = tracker.update(float(k), dets[k])
    np.testing.assert_array_equal(tracker.ids, table.track_id)
    np.testing.assert_array_equal(tracker.x, table.x)
    for view in (tracker.ids, tracker.status, tracker.x, tracker.P, tracker.t_first):
        with pytest.raises(ValueError, match="read-only"):
            view[0] = 0
    a, b = (int(k) for k in table.track_id[[2, 5]])
    assert tracker.slots_of([b, a, 10_000]).tolist() == [2, 5]
    with pytest.raises(ValueError, match="is live already"):
        tracker.relabel(2, b)
    tracker.relabel(2, 10_000)
    n_before = int(tracker.n_updates[2])
    tracker.absorb(2, None, 4)
    assert int(tracker.ids[2]) == 10_000 and int(tracker.n_updates[2]) == n_before + 4


#: Modules that may hold a tracker: every stage folder above it, the app, the tools, tests.
_SCANNED = ("tracks", "alerts", "maps", "vigil", "benchmarks", "tests")


def test_only_the_tracker_touches_its_private_attributes(repo_root: Path) -> None:
    # ``x._name`` where ``_name`` is one of the tracker's private attributes or methods and
    # ``x`` is not ``self`` (another class's own attribute of that name), or any
    # ``<...>.tracker._name``: other parts go through the tracker's public interface
    private = {k for k in vars(Tracker()) if k.startswith("_")}
    private |= {k for k in vars(Tracker) if k.startswith("_") and not k.startswith("__")}
    assert {"_id", "_x", "_P", "_cev", "_t_first", "_associate"} <= private
    found = []
    for folder in _SCANNED:
        for path in sorted((repo_root / folder).rglob("*.py")):
            if path == repo_root / "tracks" / "tracker.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                    continue
                on = node.value
                of_self = isinstance(on, ast.Name) and on.id == "self"
                # a subclass (vigil.tracks.imm.ImmTracker) extending its own storage
                of_self |= isinstance(on, ast.Call) and ast.unparse(on.func) == "super"
                via_tracker = isinstance(on, ast.Attribute) and on.attr == "tracker"
                if (node.attr in private and not of_self) or via_tracker:
                    rel = path.relative_to(repo_root)
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "private tracker attributes used outside tracks/tracker.py:\n" + "\n".join(
        found
    )


def test_bad_batches_are_rejected() -> None:
    tracker = Tracker()
    with pytest.raises(BatchError, match=r"z has shape \(3,\)"):
        tracker.update(0.0, [1.0, 2.0, 3.0])
    with pytest.raises(BatchError, match=r"z\[1\]"):
        tracker.update(0.0, [[0.0, 0.0], [np.nan, 1.0]])
    with pytest.raises(BatchError, match="positive-definite"):
        tracker.update(0.0, [[0.0, 0.0]], R=[[[1.0, 2.0], [2.0, 1.0]]])
    tracker.update(5.0, [[0.0, 0.0]])
    with pytest.raises(BatchError, match="before the previous batch"):
        tracker.update(4.0, [[0.0, 0.0]])


def test_config_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="confirm_m"):
        TrackerConfig(confirm_m=5, confirm_n=3).check()
    with pytest.raises(ValueError, match="detection_probability"):
        TrackerConfig(detection_probability=1.5).check()
    with pytest.raises(msgspec.ValidationError, match="unknown"):
        msgspec.convert({"unknown_key": 1}, TrackerConfig)
    with pytest.raises(msgspec.ValidationError, match="max_coast_s"):
        msgspec.convert({"max_coast_s": -1.0}, TrackerConfig)


# -- CSV --------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("t,x,y\n0,1,2\n1,abc,3\n", 3, "x"),
        ("t,x,y\n0,1,2\n1,2,3\n2,nan,3\n", 4, "x"),
        ("t,x,y\n0,1\n", 2, None),
        ("t,x,y,sigma\n0,1,2,5\n1,1,2,-3\n", 3, "sigma"),
        ("t,x\n0,1\n", 1, "y"),
        ("t,x,y,colour\n0,1,2,red\n", 1, "colour"),
        ("t,x,y\n\n0,1,2\n,1,2\n", 4, "t"),
    ],
    ids=[
        "not-a-number",
        "nan",
        "short-row",
        "negative-sigma",
        "missing-column",
        "unknown",
        "empty-t",
    ],
)
def test_bad_csv_rows_are_rejected_with_line_and_column(
    tmp_path: Path, text: str, line: int, column: str | None
) -> None:
    src = _write(tmp_path / "d.csv", text)
    with pytest.raises(CsvError) as err:
        run_track(src, tmp_path / "out.csv")
    assert err.value.line == line
    assert err.value.column == column
    assert f"d.csv:{line}" in str(err.value)


def test_bad_wgs84_rows_are_rejected(tmp_path: Path) -> None:
    src = _write(tmp_path / "d.csv", "t,lat,lon\n0,31.3,-110.9\n1,95.0,-110.9\n")
    with pytest.raises(CsvError, match=r"d.csv:3: column 'lat'"):
        run_track(src, tmp_path / "out.csv", frame="wgs84")
    with pytest.raises(CsvError, match="use frame=wgs84"):
        run_track(src, tmp_path / "out.csv", frame="local")


def _scene_csv(path: Path, dets, frame: LocalFrame | None, shuffle: bool) -> Path:
    rows = []
    for k, z in enumerate(dets):
        for x, y in z:
            if frame is None:
                rows.append(f"{k},{float(x)!r},{float(y)!r},cam1,5")
            else:
                lat, lon = frame.to_wgs84([x], [y])
                rows.append(f"{k},{float(lat[0])!r},{float(lon[0])!r},cam1,5")
    if shuffle:
        np.random.default_rng(1).shuffle(rows)
    head = "t,x,y,sensor,sigma" if frame is None else "t,lat,lon,sensor,sigma"
    return _write(path, head + "\n" + "\n".join(rows) + "\n")


def test_run_track_local_and_unsorted_input(tmp_path: Path, scene) -> None:
    truth, dets = scene
    a = run_track(_scene_csv(tmp_path / "a.csv", dets, None, False), tmp_path / "a_out.csv")
    b = run_track(_scene_csv(tmp_path / "b.csv", dets, None, True), tmp_path / "b_out.csv")
    assert b == a
    assert a.batches == len(dets) and a.detections == sum(len(z) for z in dets)
    assert (tmp_path / "a_out.csv").read_text() == (tmp_path / "b_out.csv").read_text()
    lines = (tmp_path / "a_out.csv").read_text().splitlines()
    assert lines[0] == "t,track_id,x,y,vx,vy,time,status"
    last = [r.split(",") for r in lines[1:] if float(r.split(",")[0]) == len(dets) - 1]
    got = np.array([[float(r[2]), float(r[3])] for r in last])
    d = np.hypot(*(got[:, None, :] - truth[-1][None, :, :]).transpose(2, 0, 1))
    assert (d.min(axis=0) < 20).sum() >= len(truth[-1]) - 1


def test_run_track_wgs84_matches_local(tmp_path: Path, scene) -> None:
    _, dets = scene
    frame = LocalFrame(31.33, -110.94)
    src = _scene_csv(tmp_path / "w.csv", dets, frame, False)
    summary = run_track(src, tmp_path / "w_out.csv", frame="wgs84", centre=(31.33, -110.94))
    assert summary.centre == (31.33, -110.94)
    local = run_track(_scene_csv(tmp_path / "l.csv", dets, None, False), tmp_path / "l_out.csv")
    assert summary.rows_written == local.rows_written
    w_rows = (tmp_path / "w_out.csv").read_text().splitlines()
    assert w_rows[0] == "t,track_id,lat,lon,vx,vy,time,status"
    l_rows = (tmp_path / "l_out.csv").read_text().splitlines()
    lat, lon = (float(v) for v in w_rows[-1].split(",")[2:4])
    x, y = frame.to_local([lat], [lon])
    lx, ly = (float(v) for v in l_rows[-1].split(",")[2:4])
    assert abs(x[0] - lx) < 0.01 and abs(y[0] - ly) < 0.01
    # default centre: the mean of the input
    mean = run_track(src, tmp_path / "m_out.csv", frame="wgs84")
    assert mean.centre is not None and abs(mean.centre[0] - 31.33) < 0.02


def test_read_detections_defaults_sigma(tmp_path: Path) -> None:
    det = read_detections(_write(tmp_path / "d.csv", "t,x,y\n0,1,2\n"), default_sigma_m=7.0)
    assert det.sigma.tolist() == [7.0] and det.sensor == [""]
