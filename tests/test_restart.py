"""Restart from a snapshot: only the journal after it is replayed, the outputs are those of a run
without a restart, a damaged snapshot falls back, and the journal is pruned behind snapshots.

The service is driven without a broker here: its journal is filled as the input bus fills it,
and its core is run as its core thread runs it (the MQTT runs, with SIGKILL, are in
tests/test_restart_kill.py). What it publishes lands in its output outbox, which is read back.
"""

from __future__ import annotations

import logging
import os
import sqlite3

import pytest
from test_service import make_feeds  # the same four minutes of sensor feeds

from vigil import snapshot
from vigil.config import load_default
from vigil.ingest.journal import Arrival
from vigil.ingest.mqtt import MqttSettings
from vigil.ingest.schema import encode
from vigil.service import SectorRunner, SectorService

HOLD_S = 2.0


@pytest.fixture(scope="module")
def site():
    return load_default().site


@pytest.fixture(scope="module")
def feeds(site):
    """Four simulated minutes of ground sensors and the aircraft, in the order made."""
    return make_feeds(site)


@pytest.fixture(scope="module")
def reference(site, feeds) -> list[tuple[str, bytes]]:
    """What a service that never restarts publishes for the feeds (no finish: it is live)."""
    r = SectorRunner(site, hold_s=HOLD_S, keep_log=True)
    for topic, msg in feeds:
        r.handle(topic, msg)
    return [(o.topic, encode(o.message)) for o in r.log]


def service(site, state, **kw) -> SectorService:
    kw.setdefault("snapshot_every", 0)  # taken by hand below
    kw.setdefault("snapshot_s", 0.0)
    settings = MqttSettings(host="127.0.0.1", port=1)  # never connected
    return SectorService(site, settings, state, hold_s=HOLD_S, **kw)


def journal(svc: SectorService, messages, start: int) -> None:
    """Journal messages as the input bus does (accepted, keyed)."""
    svc.journal.append_many(
        [
            Arrival(key=f"k{start + i}", topic=t, payload=encode(m), received=float(start + i))
            for i, (t, m) in enumerate(messages)
        ]
    )


def live(svc: SectorService, messages) -> None:
    """Messages as they reach the core thread after the bus journaled them."""
    journal(svc, messages, svc.journal.last_seq)
    for topic, msg in messages:
        svc._handle(svc.runner, topic, msg)  # as the core thread does (outputs committed)


def published(state) -> list[tuple[str, bytes]]:
    db = sqlite3.connect(state / "out.outbox")
    rows = db.execute("SELECT topic, payload FROM outbox ORDER BY seq").fetchall()
    db.close()
    return [(t, bytes(p)) for t, p in rows]


def crash(svc: SectorService) -> None:
    """Stop without a clean close: no final snapshot, nothing flushed."""
    svc.runner.core.tracks_store.close()
    svc.runner.core.events.close()
    svc.out_bus.outbox.close()
    svc.journal.close()
    svc.advances.close()


def pages(path) -> int:
    """The SQLite file's size in pages, its write-ahead log included."""
    db = sqlite3.connect(path)
    n = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    return n


def alert_versions(state) -> int:
    db = sqlite3.connect(state / "events.sqlite")
    n = db.execute("SELECT COUNT(*) FROM alert_version").fetchone()[0]
    db.close()
    return n


@pytest.mark.parametrize("cut", [0.3, 0.6])
def test_restart_replays_only_the_tail_and_publishes_exactly_the_rest(
    site, feeds, reference, tmp_path, cut
):
    """Snapshot at ``k``, more messages handled and published, a crash; the restart loads the
    snapshot, replays only what came after it, and together the two runs publish each output
    once, in order, as a run without a restart does."""
    k, m = int(len(feeds) * cut), int(len(feeds) * (cut + 0.2))
    state = tmp_path / "state"
    svc = service(site, state)
    svc._replay()
    live(svc, feeds[:k])
    assert svc._take_snapshot(svc.runner)
    live(svc, feeds[k:m])  # handled and published after the snapshot
    svc.runner.core.flush_stores()  # the periodic flush ran too: rows beyond the snapshot
    assert 0 < len(published(state)) < len(reference)
    crash(svc)

    svc = service(site, state)
    journal(svc, feeds[m:], svc.journal.last_seq)  # arrived while it was down
    report = svc._replay()
    assert report.snapshot is not None and report.snapshot_handled == k
    assert report.replayed == len(feeds) - k  # the tail only
    assert report.outputs_skipped > 0
    assert published(state) == reference
    svc.close(0.5)  # never connected: nothing to wait for at the broker

    # the store holds each alert version once, as after an uninterrupted run
    whole = tmp_path / "whole"
    once = service(site, whole)
    journal(once, feeds, 0)
    once._replay()
    once.close(0.5)  # never connected: nothing to wait for at the broker
    assert alert_versions(state) == alert_versions(whole) > 0


def test_a_clean_stop_snapshots_so_the_next_start_replays_nothing(site, feeds, tmp_path):
    state = tmp_path / "state"
    svc = service(site, state, snapshot_every=10_000)
    journal(svc, feeds, 0)
    first = svc._replay()
    assert first.snapshot is None and first.replayed == len(feeds)
    svc.runner.core.flush_stores()
    svc._take_snapshot(svc.runner)
    svc.close(0.5)  # never connected: nothing to wait for at the broker
    svc = service(site, state)
    again = svc._replay()
    assert again.replayed == 0 and again.snapshot_handled == len(feeds)
    svc.close(0.5)  # never connected: nothing to wait for at the broker


def test_a_damaged_snapshot_falls_back_to_the_one_before(site, feeds, reference, tmp_path, caplog):
    state = tmp_path / "state"
    svc = service(site, state, snapshot_keep=2, journal_keep=0)
    svc._replay()
    third = len(feeds) // 3
    live(svc, feeds[:third])
    svc._take_snapshot(svc.runner)
    live(svc, feeds[third : 2 * third])
    svc._take_snapshot(svc.runner)
    crash(svc)
    newest, older = snapshot.listing(state)
    data = bytearray(newest.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.path.write_bytes(bytes(data))
    (state / "snapshot-000000000999.bin.tmp").write_bytes(b"half a snapshot")  # killed mid-write

    svc = service(site, state)
    journal(svc, feeds[2 * third :], svc.journal.last_seq)
    with caplog.at_level(logging.ERROR, logger="vigil.service"):
        report = svc._replay()
    assert "checksum mismatch" in caplog.text
    assert report.snapshot == str(older.path) and report.replayed == len(feeds) - third
    assert any("checksum" in r for r in report.rejected)
    assert published(state) == reference
    svc.close(0.5)  # never connected: nothing to wait for at the broker


def test_no_usable_snapshot_replays_the_whole_journal_when_it_is_whole(
    site, feeds, reference, tmp_path
):
    state = tmp_path / "state"
    svc = service(site, state, snapshot_keep=2)
    svc._replay()
    live(svc, feeds[:200])
    svc._take_snapshot(svc.runner)
    crash(svc)
    for s in snapshot.listing(state):
        s.path.write_bytes(s.path.read_bytes()[:100])  # truncated
    svc = service(site, state)
    journal(svc, feeds[200:], svc.journal.last_seq)
    report = svc._replay()
    assert report.snapshot is None and report.replayed == len(feeds)
    assert published(state) == reference
    svc.close(0.5)  # never connected: nothing to wait for at the broker


def test_a_snapshot_others_may_write_is_refused(site, feeds, tmp_path):
    state = tmp_path / "state"
    svc = service(site, state)
    svc._replay()
    live(svc, feeds[:100])
    svc._take_snapshot(svc.runner)
    crash(svc)
    (snap,) = snapshot.listing(state)
    os.chmod(snap.path, 0o666)
    with pytest.raises(snapshot.SnapshotError, match="writable by group or others"):
        snapshot.read(snap.path)
    svc = service(site, state)
    report = svc._replay()
    assert report.snapshot is None and report.replayed == 100
    svc.close(0.5)  # never connected: nothing to wait for at the broker


def test_the_journal_is_pruned_behind_the_oldest_snapshot_kept(site, feeds, tmp_path):
    state = tmp_path / "state"
    svc = service(site, state, snapshot_keep=2, journal_keep=50)
    svc._replay()
    half = len(feeds) // 2
    live(svc, feeds[:half])
    svc._take_snapshot(svc.runner)
    assert svc.journal.count() == half  # one snapshot: nothing behind the oldest kept yet
    live(svc, feeds[half:])
    size_before = pages(state / "journal.sqlite")
    svc._take_snapshot(svc.runner)
    # behind the older snapshot (at half), keeping the newest 50 of the journal
    assert svc.journal.pruned_through == half
    assert svc.journal.count() == len(feeds) - half
    live(svc, feeds[:10])  # a third snapshot: the first goes, the journal follows the second
    svc._take_snapshot(svc.runner)
    assert len(snapshot.listing(state)) == 2
    assert svc.journal.count() == 50
    assert pages(state / "journal.sqlite") < size_before / 2  # the space is given back
    svc.close(0.5)  # never connected: nothing to wait for at the broker


def test_a_snapshot_holds_no_static_layout(site, feeds):
    """The site, frames and bus are written as names, not copied into every snapshot."""
    r = SectorRunner(site, hold_s=HOLD_S)
    for topic, msg in feeds[:300]:
        r.handle(topic, msg)
    body = snapshot.capture(snapshot.roots(r), {"seq": 1})
    assert b"vigil.geo.site" not in body and b"InProcessBus" not in body
    fresh = SectorRunner(site, hold_s=HOLD_S)
    assert snapshot.restore(snapshot.roots(fresh), body) == {"seq": 1}
    assert fresh.core.engine.context.tracks is fresh.core.engine.tracks
    assert fresh.core.engine.site is site and fresh.bus is not r.bus


def test_a_snapshot_from_code_with_other_attributes_is_refused(site, feeds):
    """State written by another version of the classes is not loaded into these."""
    r = SectorRunner(site, hold_s=HOLD_S)
    for topic, msg in feeds[:100]:
        r.handle(topic, msg)
    body = snapshot.capture(snapshot.roots(r), {"seq": 1})
    fresh = SectorRunner(site, hold_s=HOLD_S)
    fresh.core.fusion.added_in_a_later_version = 0
    with pytest.raises(snapshot.SnapshotError, match="another version"):
        snapshot.restore(snapshot.roots(fresh), body)


def test_the_stateful_classes_make_every_attribute_in_init():
    """The snapshot's version check compares attribute names with a fresh object's: an
    attribute first set outside ``__init__`` would make every snapshot look foreign."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = ["vigil/runner.py", "vigil/core.py", "alerts/service.py", "alerts/engine.py",
             "alerts/book.py", "tracks/fusion.py", "geo/crossing_monitor.py",
             "vigil/retained.py"]  # fmt: skip
    late = {}
    for f in files:
        for cls in ast.parse((root / f).read_text()).body:
            if not isinstance(cls, ast.ClassDef):
                continue
            made: dict[bool, set[str]] = {True: set(), False: set()}
            for fn in cls.body:
                if not isinstance(fn, ast.FunctionDef):
                    continue
                for node in ast.walk(fn):
                    if (
                        isinstance(node, ast.Attribute)
                        and isinstance(node.ctx, ast.Store)
                        and isinstance(node.value, ast.Name)
                        and node.value.id == "self"
                    ):
                        made[fn.name == "__init__"].add(node.attr)
            if made[False] - made[True]:
                late[f"{f}:{cls.name}"] = sorted(made[False] - made[True])
    assert late == {}
