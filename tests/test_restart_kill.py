"""SIGKILL of a snapshotting, pruning sector service on a real Mosquitto, at random moments and
once in the middle of writing a snapshot: what it publishes is, per topic, exactly what a run
that was never killed publishes (nothing lost, nothing twice).

The service runs in its own process (:data:`CHILD`) with a snapshot every few messages and
nothing kept behind the snapshots, so restarts load snapshots and the journal is pruned all
along. For the kill during a write, the child's snapshot module gets an ``os`` whose
``fsync`` says ``writing`` and waits: the real write is under way (temporary file written,
not yet renamed) when the test kills it.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest
from broker import SERVICE_USER
from test_restart import make_feeds

from vigil import snapshot
from vigil.config import load_default
from vigil.ingest.journal import Journal
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.service import OUTPUT_TOPICS, SectorRunner

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[1]
HOLD_S = 2.0

CHILD = """
import sys, time, types, os
from pathlib import Path
import vigil.snapshot as S
from vigil.config import load_default
from vigil.ingest.mqtt import MqttSettings
from vigil.service import SectorService
port, state, mode = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if mode == "stall":  # the first snapshot write stalls after its data, before its rename
    real = os
    def fsync(fd):
        real.fsync(fd)
        print("writing", flush=True)
        time.sleep(600)
    names = [k for k in dir(real) if not k.startswith("__")]
    S.os = types.SimpleNamespace(**{k: getattr(real, k) for k in names})
    S.os.fsync = fsync
settings = MqttSettings(host="127.0.0.1", port=port, username="vigil-tucson",
                        password="pw-vigil-tucson", reconnect_max_delay_s=0.5)
svc = SectorService(load_default().site, settings, state, hold_s=2.0, idle_s=2.0,
                    snapshot_every=40, snapshot_s=0.5, snapshot_keep=2, journal_keep=0)
import signal, threading
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
r = svc.start(30)
print("started", r.snapshot_handled, r.replayed, r.outputs_skipped, flush=True)
print("ready", flush=True)
while not stop.wait(0.2):
    pass
svc.close()
"""


def settings_for(broker) -> MqttSettings:
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        username=SERVICE_USER,
        password=f"pw-{SERVICE_USER}",
        reconnect_max_delay_s=0.5,
    )


class Child:
    """The service process; its stdout read by a thread (lines kept)."""

    def __init__(self, broker, state: Path, mode: str = "plain") -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(broker.port), str(state), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def has(self, word: str) -> bool:
        return any(line.startswith(word) for line in list(self.lines))

    def wait_for(self, word: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(word):
                    return line
            assert self.proc.poll() is None, "\n".join(self.lines[-30:])
            time.sleep(0.02)
        raise AssertionError(f"no {word!r} from the service:\n" + "\n".join(self.lines[-30:]))

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class Collector:
    """The service's outputs as an agent receives them (transport copies dropped by key)."""

    def __init__(self, broker, folder: Path) -> None:
        self.journal = Journal(folder / "collector.sqlite")
        self.bus = MqttBus(
            "tucson", settings_for(broker), "test-collector", journal=self.journal,
            publish_quarantine=False,
        )  # fmt: skip
        self.got: dict[str, list] = defaultdict(list)
        self._lock = threading.Lock()
        for pattern in OUTPUT_TOPICS:
            self.bus.subscribe(f"vigil/v1/tucson/{pattern}", self._on)
        self.bus.connect(15.0)

    def _on(self, topic, msg) -> None:
        with self._lock:
            self.got[topic].append(msg)

    def have(self) -> dict[str, int]:
        with self._lock:
            return {k: len(v) for k, v in self.got.items()}

    def close(self) -> None:
        self.bus.close()
        self.journal.close()


def _wait_for_snapshot(state: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not list(state.glob("snapshot-*.bin")):
        assert time.monotonic() < deadline, "the service wrote no snapshot"
        time.sleep(0.05)


def test_sigkill_at_random_moments_and_mid_snapshot_loses_and_duplicates_nothing(broker, tmp_path):
    site = load_default().site
    sent = sorted(make_feeds(site), key=lambda tm: tm[1].time)  # one publisher, in time order
    ref = SectorRunner(site, hold_s=HOLD_S, keep_log=True)
    for topic, msg in sent:
        ref.handle(topic, msg)
    expected: dict[str, list] = defaultdict(list)
    for o in ref.log:
        expected[o.topic].append(o.message)
    n = len(sent)
    rng = random.Random(19)
    kills = sorted(rng.sample(range(n // 8, n - n // 8), 3))
    stall_at = kills[1]  # the second kill waits for a snapshot write and hits it there

    state = tmp_path / "state"
    collector = Collector(broker, tmp_path)
    child = Child(broker, state)
    child.wait_for("ready")
    publisher = MqttBus(
        "tucson",
        msgspec.structs.replace(settings_for(broker), resend_unrouted=True),
        "test-publisher",
        outbox_path=tmp_path / "pub.outbox",
    ).connect(15.0)
    starts: list[str] = []
    killed_mid_write = stalled = False

    def restart() -> Child:
        new = Child(broker, state)
        starts.append(new.wait_for("started"))
        new.wait_for("ready")
        return new

    try:
        for i, (topic, msg) in enumerate(sent):
            publisher.publish(topic, msg)
            time.sleep(0.004)
            if stalled and (child.has("writing") or i in kills):
                # The feed goes on while the stalling start begins its snapshot: a service
                # left without input for idle_s advances its clock to the newest message
                # time, which makes the messages sent next with that time late (and the
                # outputs those of another input than the uninterrupted run's).
                child.wait_for("writing")
                assert list(state.glob("snapshot-*.bin.tmp")), "no write under way"
                child.kill()
                killed_mid_write, stalled = True, False
                child = restart()
            if i in kills:
                # a slow machine may reach the first kill before the service has taken its
                # first snapshot; the kill still lands at a random message, once one exists
                _wait_for_snapshot(state)
                child.kill()
                if i == stall_at:  # the next start stalls in its first snapshot write
                    child = Child(broker, state, "stall")
                    child.wait_for("ready")
                    stalled = True
                else:
                    child = restart()
        if stalled:  # (the feed ended first)
            child.wait_for("writing")
            assert list(state.glob("snapshot-*.bin.tmp")), "no write under way"
            child.kill()
            killed_mid_write = True
            child = restart()
        assert publisher.flush(30.0), "publisher's outbox did not drain"
        deadline = time.monotonic() + 90
        status: dict = {}
        while time.monotonic() < deadline:
            try:
                status = json.loads((state / "status.json").read_text())
            except (OSError, ValueError):
                status = {}
            have = collector.have()
            if status.get("watermark", -math.inf) >= ref.max_time and all(
                have.get(t, 0) >= len(v) for t, v in expected.items()
            ):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"not caught up: {status}, {collector.have()}")
        # a clean stop (SIGTERM) snapshots last: the next start replays nothing
        child.proc.terminate()
        child.proc.wait(60)
        child = Child(broker, state)
        clean = child.wait_for("started").split()
        assert int(clean[2]) == 0, clean
    finally:
        child.kill()
        publisher.close()
    assert killed_mid_write
    # first: a late message (the clock advanced on idle in a pause of the feed) changes the
    # outputs without anything lost or sent twice (tests/test_snapshot_exact.py)
    assert status["runner"].get("late", 0) == 0, f"late messages: {status['runner']}"
    for topic, want in expected.items():
        got = collector.got[topic][: len(want)]
        assert got == want, f"{topic}: {len(got)} of {len(want)}, first difference at " + str(
            next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
        )
    # the restarts came from snapshots, and the journal was pruned behind them
    assert all(int(s.split()[1]) > 0 for s in starts), starts
    journal = Journal(state / "journal.sqlite")
    assert journal.pruned_through > 0 and journal.count() < n
    journal.close()
    assert not list(state.glob("snapshot-*.bin.tmp"))  # the half-written one was cleared
    assert 1 <= len(snapshot.listing(state)) <= 2
    collector.close()
