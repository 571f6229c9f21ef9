"""A snapshot restores the sector runner exactly, whenever it is taken (issue 19, item 4).

No broker and no SIGKILL: a runner takes a stream, a snapshot of it (:func:`vigil.snapshot.
capture`) is taken between two messages, restored into a runner built afresh (as a restart
does), and the fresh runner takes the rest of the stream. What it publishes must be, message
for message and bit for bit, what the runner that was never snapshotted published after the
same point. The moments: right after a tick (where commit 7814f59 put the service's
snapshots), right before one, in the middle of the reorder buffer's hold, after an idle
advance of the clock, and a snapshot of a runner that was itself restored from one.

Also here: why tests/test_restart_kill.py failed with 7814f59. It was not the snapshot. The
test stopped its feed while the "stall" start began its first snapshot; a service without
input for ``idle_s`` (2 s there) advances its clock to the newest message time (155.0 s into
the feed), logs the advance and replays it after the restart, so the three messages sent next,
also at 155.0 s, came in late: the aircraft's telemetry reached fusion before its detection of
the same time, which then took the newer footprint into its error (with the detection first,
the outputs are the same). Track 208 (T3 at 155 s) then differs, as in the failure. With
7814f59 the stall start waited for a tick (none came without input) and the advance could come
first; without it, a pause of 1 s before that kill (the service snapshots everything in it,
and the stall start, with nothing new, snapshots only after an idle advance) failed at cf2db26
in 2 runs of 2, with 3 late messages each. The last test shows it here.
"""

from __future__ import annotations

import random

import pytest
from test_service import make_feeds  # the same four minutes as the restart tests

from vigil import snapshot
from vigil.config import load_default
from vigil.runner import SectorRunner

HOLD_S = 2.0  # as the service in tests/test_restart_kill.py


@pytest.fixture(scope="module")
def site():
    return load_default().site


@pytest.fixture(scope="module")
def sent(site):
    """The restart tests' four minutes, as tests/test_restart_kill.py sends them: in time
    order (ground sensors, their status, the aircraft's telemetry and detections)."""
    return sorted(make_feeds(site), key=lambda tm: tm[1].time)


def outputs(runner: SectorRunner) -> list:
    return [(o.topic, o.message) for o in runner.log]


def first_difference(got: list, want: list) -> int | None:
    """Where two output lists first differ (length included), or ``None``."""
    for i, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return i
    return None if len(got) == len(want) else min(len(got), len(want))


def run(site, messages, *, advance_after: int | None = None) -> SectorRunner:
    """A runner that took ``messages``; ``advance_after``: the clock is advanced on idle (to
    the newest message time, as the service does after ``idle_s`` without input) right after
    that message."""
    r = SectorRunner(site, hold_s=HOLD_S, keep_log=True)
    for i, (topic, msg) in enumerate(messages):
        r.handle(topic, msg)
        if i == advance_after:
            r.advance_to(r.max_time)
    return r


def restored(site, body: bytes) -> SectorRunner:
    """A runner built afresh with the state of the snapshot ``body`` (as a restart)."""
    r = SectorRunner(site, hold_s=HOLD_S, keep_log=True)
    snapshot.restore(snapshot.roots(r), body)
    return r


@pytest.fixture(scope="module")
def captured(sent, site) -> tuple[list, dict[str, list[tuple[int, int, int, bytes]]]]:
    """One uninterrupted run's outputs, and snapshots it took on the way by kind of moment,
    each ``(message index, outputs so far, messages buffered, snapshot body)``: a few of each
    kind, drawn with a fixed seed (the first and last tenth of the stream left out)."""
    r = SectorRunner(site, hold_s=HOLD_S)
    ticked = []
    for i, (topic, msg) in enumerate(sent):
        before = r.counts["ticks"]
        r.handle(topic, msg)
        if r.counts["ticks"] != before:
            ticked.append(i)
    n = len(sent)
    inner = [i for i in ticked if n // 10 < i < n - n // 10]
    ticks = set(ticked)
    rng = random.Random(4)
    moments = {
        "after_tick": rng.sample(inner, 4),
        # the message before one that ticks, having ticked nothing itself
        "before_tick": rng.sample([i - 1 for i in inner if i - 1 not in ticks], 2),
        # a message that ticked nothing (mid-hold: released nothing or a little, no tick)
        "mid_hold": rng.sample([i for i in range(n // 10, n - n // 10) if i not in ticks], 2),
    }
    at = {k: name for name, ks in moments.items() for k in ks}
    ref = SectorRunner(site, hold_s=HOLD_S, keep_log=True)
    bodies: dict[str, list] = {name: [] for name in moments}
    for i, (topic, msg) in enumerate(sent):
        ref.handle(topic, msg)
        if i in at:
            body = snapshot.capture(snapshot.roots(ref), {})
            bodies[at[i]].append((i, len(ref.log), ref.buffered, body))
    return outputs(ref), bodies


@pytest.mark.parametrize("moment", ["after_tick", "before_tick", "mid_hold"])
def test_a_snapshot_restores_the_runner_exactly(site, sent, captured, moment):
    want, bodies = captured
    assert len(bodies[moment]) >= 2
    for k, done, buffered, body in bodies[moment]:
        assert buffered > 0  # the snapshot holds a reorder buffer to restore
        b = restored(site, body)
        assert outputs(b) == []  # the log is not state: only what comes after
        for topic, msg in sent[k + 1 :]:
            b.handle(topic, msg)
        at = first_difference(outputs(b), want[done:])
        assert at is None, f"snapshot after message {k} ({moment}): output {done + at} differs"


def test_a_snapshot_after_an_idle_advance_and_of_a_restored_runner_is_exact(site, sent):
    """The clock advanced on idle (its ticks, the buffer released), then two restarts in a
    row: the second from a snapshot of the runner the first restored."""
    n = len(sent)
    k, m = n // 3, n // 2
    a = run(site, sent[: k + 1], advance_after=k)
    before = len(outputs(a))
    b = restored(site, snapshot.capture(snapshot.roots(a), {}))
    for topic, msg in sent[k + 1 : m]:
        a.handle(topic, msg)
        b.handle(topic, msg)
    c = restored(site, snapshot.capture(snapshot.roots(b), {}))
    for topic, msg in sent[m:]:
        a.handle(topic, msg)
        c.handle(topic, msg)
    whole = outputs(run(site, sent, advance_after=k))
    assert outputs(a) == whole
    assert first_difference(outputs(b) + outputs(c), whole[before:]) is None
    assert c.counts == a.counts and c.watermark == a.watermark


def test_an_idle_advance_before_messages_of_the_same_time_changes_the_tracks(site, sent):
    """What made tests/test_restart_kill.py fail with 7814f59 (see the module docstring): the
    feed's messages 653-655 have the time of message 652 (155.0 s in), so an idle advance
    after 652 makes them late, and the uninterrupted run's tracks differ from 208 on. The
    kill test must not leave its service without input for ``idle_s`` between two messages
    of one time; the comparison above would see such a difference."""
    k = 652  # tests/test_restart_kill.py's kill in the middle of a snapshot write
    same = 0  # the messages after k with k's time
    while sent[k + 1 + same][1].time == sent[k][1].time:
        same += 1
    assert same > 0
    want = [m for t, m in outputs(run(site, sent)) if t.endswith("/tracks")]
    r = run(site, sent, advance_after=k)
    got = [m for t, m in outputs(r) if t.endswith("/tracks")]
    assert r.counts["late"] == same
    at = first_difference(got, want)
    assert at is not None and len(got) == len(want)
    assert got[at].track_id == want[at].track_id and got[at].time == want[at].time
    assert got[at].state == "coasting" and got[at].lat != want[at].lat
