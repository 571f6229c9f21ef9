"""``vigil run`` writes its stores and starts its snapshots off the core thread
(vigil.store_writer): the stores hold what the core writing them itself gives, and a snapshot
forked before the store thread has written its rows still restarts with nothing lost or
written twice.

The service is driven without a broker, as in tests/test_restart.py.
"""

from __future__ import annotations

import os
import sqlite3

import pytest
from test_restart import HOLD_S, crash, journal, live, published, service
from test_service import make_feeds

from vigil import snapshot
from vigil.config import load_default
from vigil.ingest.schema import encode
from vigil.runner import SectorRunner

TABLES = {"tracks.sqlite": ("track", "track_state"), "events.sqlite": ("alert_version",)}


@pytest.fixture(scope="module")
def site():
    return load_default().site


@pytest.fixture(scope="module")
def feeds(site):
    return make_feeds(site)[:3000]


@pytest.fixture(scope="module")
def reference(site, feeds) -> list[tuple[str, bytes]]:
    r = SectorRunner(site, hold_s=HOLD_S, keep_log=True)
    for topic, msg in feeds:
        r.handle(topic, msg)
    return [(o.topic, encode(o.message)) for o in r.log]


def rows(folder) -> dict[str, list]:
    out = {}
    for name, tables in TABLES.items():
        db = sqlite3.connect(folder / name)
        for table in tables:
            out[table] = db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        db.close()
    return out


def test_the_store_thread_writes_what_the_core_writes_itself(site, feeds, tmp_path):
    written = {}
    for mode in ("core", "thread"):
        svc = service(site, tmp_path / mode)
        svc._replay()
        if mode == "thread":
            assert svc._stores is not None and svc._stores.attach(svc.runner.core)
        for i in range(0, len(feeds), 250):  # a flush every 250 messages
            live(svc, feeds[i : i + 250])
            svc.runner.core.flush_stores()
        assert svc._stores is not None
        svc._stores.detach()
        svc.runner.close()
        svc.close(0.5)
        written[mode] = rows(tmp_path / mode)
    assert written["core"]["track_state"] and written["core"]["alert_version"]
    assert written["thread"] == written["core"]


def test_a_snapshot_forked_before_the_stores_are_written_restarts_exactly(
    site, feeds, reference, tmp_path
):
    """The fork happens at once; the store thread sends the marks after the rows handed over
    before it are written; rows written after the fork are beyond the marks, trimmed at the
    restart and written again by its replay: once each, as in a run without a restart."""
    k, m = len(feeds) // 3, 2 * len(feeds) // 3
    state = tmp_path / "state"
    svc = service(site, state)
    svc._replay()
    assert svc._stores is not None and svc._stores.attach(svc.runner.core)
    live(svc, feeds[:k])
    svc._seq_of = (svc.handled, svc.journal.last_seq)
    assert svc._start_snapshot(svc.runner)
    live(svc, feeds[k:m])  # more rows while the child waits for the marks
    svc.runner.core.flush_stores()
    svc._reap_snapshot(block=True)
    assert svc.snapshot_counts["written"] == 1
    svc._stores.drain()  # the rows after the snapshot are in the stores too
    svc._stores.close()
    crash(svc)

    svc = service(site, state)
    journal(svc, feeds[m:], svc.journal.last_seq)  # arrived while it was down
    report = svc._replay()
    assert report.snapshot is not None and report.snapshot_handled == k
    assert published(state) == reference
    svc.close(0.5)
    whole = tmp_path / "whole"
    once = service(site, whole)
    journal(once, feeds, 0)
    once._replay()
    once.close(0.5)
    assert rows(state) == rows(whole)


def test_a_snapshot_whose_marks_never_come_is_not_written(site, tmp_path):
    r = SectorRunner(site, hold_s=HOLD_S)
    pipe = os.pipe()
    pid = snapshot.fork_write(tmp_path, 5, snapshot.roots(r), {"seq": 5}, more_meta=pipe)
    os.close(pipe[1])  # nothing sent: what the meta stands for did not come true
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1
    assert snapshot.listing(tmp_path) == []
    r.close()
