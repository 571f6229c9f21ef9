"""A forked snapshot writer that hangs is killed after its time and counted failed, so later
snapshots and the service's stop do not wait on it for ever (vigil.restart)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from vigil.restart import Restarts


def test_a_hung_snapshot_writer_is_killed_and_counted_failed():
    r = Restarts()
    r.snapshot_counts = {"written": 0, "failed": 0, "pruned": 0}
    r.snapshot_writer_timeout_s = 0.5
    hung = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    r._snap_child = (hung.pid, {"seq": 7}, time.monotonic())
    r._reap_snapshot()  # still within its time: left running
    assert r._snap_child is not None and r.snapshot_counts["failed"] == 0
    t0 = time.monotonic()
    r._reap_snapshot(block=True)  # waits to the deadline, then kills
    assert time.monotonic() - t0 < 5.0
    assert r._snap_child is None and r.snapshot_counts == {"written": 0, "failed": 1, "pruned": 0}
    with pytest.raises(ProcessLookupError):
        os.kill(hung.pid, 0)
