"""One user's writes are bounded: a token bucket in front of every POST of the live map.

The bucket alone with a test clock, then the real server (uvicorn, a real SQLite audit
database): a commander who labels a track in a loop gets 429 with ``Retry-After`` once the
burst is spent, the refused requests write no label and one audit entry for the whole run, bad
CSRF tokens spend the same budget (they are audited too), and another user is not slowed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

from live_client import client, running_world  # noqa: E402
from test_track_labels import label_rows, post_label, track  # noqa: E402

from vigil.maps.live.write_rate import WriteRate  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_bucket_allows_the_burst_then_the_refill_rate() -> None:
    clock = Clock()
    rate = WriteRate(burst=3, per_s=0.5, clock=clock)
    assert [rate.admit("cmd") for _ in range(3)] == [None, None, None]
    first = rate.admit("cmd")
    assert first is not None and first.first and first.retry_after_s == pytest.approx(2.0)
    again = rate.admit("cmd")
    assert again is not None and not again.first
    assert rate.admit("agt") is None  # another user has a bucket of their own
    clock.t += 2.0  # one write back
    assert rate.admit("cmd") is None
    assert rate.admit("cmd") is not None
    clock.t += 3600.0  # never more than the burst, however long the pause
    assert [rate.admit("cmd") is None for _ in range(4)] == [True, True, True, False]


def test_bucket_memory_is_bounded_and_bad_settings_are_refused() -> None:
    clock = Clock()
    rate = WriteRate(burst=2, per_s=1.0, max_users=5, clock=clock)
    for i in range(50):
        rate.admit(f"user{i}")
        clock.t += 0.1
    assert len(rate._buckets) <= 5
    with pytest.raises(ValueError, match="burst"):
        WriteRate(burst=0)
    with pytest.raises(ValueError, match="rate"):
        WriteRate(per_s=0.0)


def test_a_user_looping_writes_is_refused_and_audited_once(tmp_path: Path) -> None:
    with running_world(tmp_path, write_rate=WriteRate(burst=4, per_s=0.05)) as w:
        for i in range(3):
            track(w, f"T{i}")
        cmd = client(w, "cmd")
        labels = ["person", "animal", "vehicle", "person"]
        assert [post_label(cmd, "T0", x).status for x in labels] == [200] * 4
        started = time.time()
        refused = [post_label(cmd, "T1", "animal") for _ in range(30)]
        assert {r.status for r in refused} == {429}
        r = refused[0]
        assert int(r.headers["Retry-After"]) >= 1
        assert "too many changes from user 'cmd'" in r.json()["error"]
        # a bad CSRF token spends the same budget: no csrf_refused entries pile up either
        bad = post_label(cmd, "T1", "animal", **{"X-CSRF-Token": "0" * 64})
        assert bad.status == 429
        assert time.time() - started < 10  # refused at once, not queued
        rows = label_rows(Path(w.audit.path))
        assert [r[0] for r in rows] == ["T0"] * 4
        entries = [(e.user, e.action) for e in w.audit.entries()]
        assert entries.count(("cmd", "rate_limited")) == 1
        assert ("cmd", "csrf_refused") not in entries
        # another user is not slowed by the commander's loop
        agt = client(w, "agt")
        assert post_label(agt, "T2", "animal").status == 200
