"""End to end on a real Mosquitto: simulator files -> ``vigil edge`` adapters -> broker ->
``vigil run``, compared with the same files run in process; then the broker and the service
killed with SIGKILL mid-run, with every message and alert counted against what was sent.

The reference is :func:`vigil.edge.feeds_from_files` (the same adapters, in process) through a
:class:`~vigil.service.SectorRunner` that sees everything before it releases anything. Over
MQTT the sources publish apart and the service orders them by message time with a hold; when
nothing arrives later than the hold (the service counts ``late``; the test requires none) the
outputs are the same messages in the same order, exactly. The service then goes on ticking
after its input stops, so the reference is compared with the first messages of each topic.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest
from broker import SERVICE_USER

from vigil.config import load_default
from vigil.edge import feeds_from_files
from vigil.ingest.journal import Journal
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.service import OUTPUT_TOPICS, SectorRunner
from vigil.sim import SimSettings
from vigil.sim.files import simulate_to_files

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[1]
NIGHT = SimSettings().start_time + 9 * 3600  # 02:00 in Arizona, when crossings happen
MINUTES = 2.0
SPEED = 5.0  # simulated seconds per wall second for the paced adapters
HOLD_S = 60.0  # message seconds: covers the adapters' start-up spread at SPEED


@pytest.fixture(scope="module")
def site():
    return load_default().site


@pytest.fixture(scope="module")
def scenario(site, tmp_path_factory):
    """Simulation files, the adapters' messages from them, and the in-process reference."""
    folder = tmp_path_factory.mktemp("sim")
    st = SimSettings(
        start_time=NIGHT,
        towers=("t03", "t04"),
        frame_width=160,
        frame_height=120,
        frame_rate_hz=2.0,
        crossing_rate_scale=40.0,
    )
    manifest = simulate_to_files(site, st, MINUTES, 7, folder, progress=False)
    # the camera settings vigil edge camera takes from the deployment
    feeds = feeds_from_files(site, folder, detection=load_default().detection_for)
    ref = SectorRunner(site, hold_s=math.inf, keep_log=True)
    for topic, msg in feeds:
        ref.handle(topic, msg)
    ref.finish()
    expected: dict[str, list] = defaultdict(list)
    for o in ref.log:
        expected[o.topic].append(o.message)
    return folder, manifest, feeds, ref, expected


def settings_for(broker) -> MqttSettings:
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        username=SERVICE_USER,
        password=f"pw-{SERVICE_USER}",
        reconnect_max_delay_s=0.5,
    )


def env_for(broker) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VIGIL_MQTT_USER=SERVICE_USER,
        VIGIL_MQTT_PASSWORD=f"pw-{SERVICE_USER}",
        PYTHONPATH=str(REPO),
    )
    return env


def vigil(args: list[str], broker, log: Path) -> subprocess.Popen:
    """``vigil ...`` as its own process, output to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", *args],
        cwd=REPO,
        env=env_for(broker),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def start_service(
    broker, state: Path, log: Path, wait: bool = True, hold_s: float = HOLD_S
) -> subprocess.Popen:
    """``vigil run`` in its own process; with ``wait``, until it is subscribed (a first start
    has no session at the broker yet, so what is published before would not reach it)."""
    (state / "status.json").unlink(missing_ok=True)
    proc = vigil(
        ["run", "--broker", f"{broker.host}:{broker.port}", "--state-dir", str(state),
         "--hold", str(hold_s), "--idle", "2"],
        broker,
        log,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while wait and time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if json.loads((state / "status.json").read_text())["connected"]:
                return proc
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    if wait:
        raise AssertionError(f"vigil run not connected in 60 s:\n{log.read_text()[-3000:]}")
    return proc


class Collector:
    """What the service publishes, as an agent's client receives it (persistent session;
    transport resends recognised by their message key, as every Vigil receiver does)."""

    def __init__(self, broker, folder: Path) -> None:
        self.journal = Journal(folder / "collector.sqlite")
        self.bus = MqttBus(
            "tucson",
            settings_for(broker),
            "test-collector",
            journal=self.journal,
            publish_quarantine=False,
        )
        self.got: dict[str, list] = defaultdict(list)
        self._lock = threading.Lock()
        for pattern in OUTPUT_TOPICS:
            self.bus.subscribe(f"vigil/v1/tucson/{pattern}", self._on)
        self.bus.connect(15.0)

    def _on(self, topic, msg) -> None:
        with self._lock:
            self.got[topic].append(msg)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {k: len(v) for k, v in self.got.items()}

    def close(self) -> None:
        self.bus.close()
        self.journal.close()


def wait_until_caught_up(state: Path, ref: SectorRunner, collector: Collector, expected, timeout):
    """Until the service's clock is past the last input and the collector has the reference's
    count on every topic; returns the service's last status."""
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        try:
            status = json.loads((state / "status.json").read_text())
        except (OSError, ValueError):
            time.sleep(0.2)
            continue
        have = collector.counts()
        if (
            status.get("watermark") is not None
            and status["watermark"] >= ref.max_time
            and status["buffered"] == 0
            and all(have.get(t, 0) >= len(v) for t, v in expected.items())
        ):
            return status
        time.sleep(0.2)
    raise AssertionError(
        f"service did not catch up in {timeout} s: status {status}, received "
        f"{collector.counts()}, expected { ({t: len(v) for t, v in expected.items()}) }"
    )


def assert_prefix(collector: Collector, expected) -> None:
    for topic, want in expected.items():
        got = collector.got[topic][: len(want)]
        first_bad = next(
            (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None
        )
        assert got == want, f"{topic}: first difference at {first_bad} of {len(want)}"


def stop(proc: subprocess.Popen, log: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"process did not stop on SIGTERM:\n{log.read_text()[-3000:]}"
            ) from None


def alert_keys(alerts) -> list[tuple]:
    return [(a.alert_id, a.state, a.time, len(a.history)) for a in alerts]


def test_scenario_is_worth_comparing(scenario):
    _, manifest, feeds, ref, expected = scenario
    kinds = {t.rsplit("/", 1)[-1]: len(v) for t, v in expected.items()}
    assert kinds.get("tracks", 0) >= 10, kinds
    assert kinds.get("alerts", 0) >= 3, kinds
    assert any(t.endswith("/detections") for t, _ in feeds), "no camera detections"
    assert ref.counts["late"] == 0


def test_edge_adapters_to_vigil_run_match_in_process(scenario, broker, tmp_path):
    folder, manifest, feeds, ref, expected = scenario
    state = tmp_path / "state"
    collector = Collector(broker, tmp_path)
    service = start_service(broker, state, tmp_path / "run.log")
    t0 = manifest["start_time"]
    pace = ["--speed", str(SPEED), "--pace-origin", repr(t0),
            "--pace-start", repr(time.time() + 4.0)]  # fmt: skip
    common = ["--broker", f"{broker.host}:{broker.port}", "--state-dir", str(tmp_path / "edge")]
    edges = []
    try:
        for tower, video in sorted(manifest["video"].items()):
            edges.append(
                vigil(
                    ["edge", "camera", str(folder / video["file"]), "--id", tower,
                     "--fps", repr(video["fps"]), "--start", repr(t0), *pace, *common],
                    broker,
                    tmp_path / f"edge-{tower}.log",
                )
            )  # fmt: skip
        edges.append(
            vigil(["edge", "ugs", str(folder / "ugs.jsonl"), *pace, *common], broker,
                  tmp_path / "edge-ugs.log")
        )  # fmt: skip
        edges.append(
            vigil(["edge", "uas", str(folder / "uas.tlog"), *pace, *common], broker,
                  tmp_path / "edge-uas.log")
        )  # fmt: skip
        for p in edges:
            assert p.wait(120) == 0, Path(p.args[-1]).name
        status = wait_until_caught_up(state, ref, collector, expected, timeout=60)
        assert status["runner"].get("late", 0) == 0, status
        assert status["handled"] == len(feeds) == status["input_bus"]["accepted"]
        assert_prefix(collector, expected)
    finally:
        for p in edges:
            if p.poll() is None:
                p.kill()
        stop(service, tmp_path / "run.log")
        collector.close()


def test_broker_and_service_killed_mid_run_lose_and_duplicate_nothing(scenario, broker, tmp_path):
    _, _, feeds, ref, expected = scenario
    sent = sorted(feeds, key=lambda tm: tm[1].time)  # one publisher, in time order
    state = tmp_path / "state"
    collector = Collector(broker, tmp_path)
    logs = [tmp_path / "run-1.log", tmp_path / "run-2.log"]
    service = start_service(broker, state, logs[0], hold_s=2.0)
    # the devices' settings, as `vigil edge` has them
    device_settings = msgspec.structs.replace(settings_for(broker), resend_unrouted=True)
    publisher = MqttBus(
        "tucson", device_settings, "test-publisher", outbox_path=tmp_path / "pub.outbox"
    ).connect(15.0)
    events = []
    try:
        n = len(sent)
        for i, (topic, msg) in enumerate(sent):
            publisher.publish(topic, msg)
            time.sleep(0.01)
            if i == n // 3:
                broker.restart(hard=True)
                events.append(("broker killed", i))
            elif i == 2 * n // 3:
                service.send_signal(signal.SIGKILL)
                service.wait(10)
                events.append(("service killed", i))
                service = start_service(broker, state, logs[1], wait=False, hold_s=2.0)
        assert publisher.flush(30.0), "publisher's outbox did not drain"
        status = wait_until_caught_up(state, ref, collector, expected, timeout=60)
    finally:
        stop(service, logs[-1])
        publisher.close()
    assert events == [("broker killed", n // 3), ("service killed", 2 * n // 3)]
    started = re.search(
        r"replayed (\d+) journaled .* \((\d+) outputs already sent\)", logs[1].read_text()
    )
    assert started is not None, logs[1].read_text()[-3000:]
    replayed, skipped = int(started[1]), int(started[2])
    assert replayed > n // 3 and skipped > 0, (replayed, skipped)

    # every accepted message journaled once: what was sent, no more, no less
    db = sqlite3.connect(state / "journal.sqlite")
    rows = db.execute("SELECT topic, payload FROM messages WHERE status = 'accepted'").fetchall()
    others = db.execute(
        "SELECT status, reason, topic, substr(payload, 1, 120) FROM messages "
        "WHERE status != 'accepted'"
    ).fetchall()
    db.close()
    from collections import Counter

    from vigil.ingest.schema import encode

    got = Counter((t, bytes(p)) for t, p in rows)
    want = Counter((t, encode(m)) for t, m in sent)
    # on failure, say which messages and what became of them (the journal's other rows)
    assert got == want, (
        f"missing {[(t, p[:120]) for t, p in (want - got)][:5]}, "
        f"extra {[(t, p[:120]) for t, p in (got - want)][:5]}, not accepted {others[:5]}, "
        f"publisher {dict(publisher.counts)}"
    )
    assert status["runner"].get("late", 0) == 0

    # alerts: each version once, none missing, as the uninterrupted run has them
    topic = "vigil/v1/tucson/alerts"
    got = alert_keys(collector.got[topic])
    want = alert_keys(expected[topic])
    assert len(got[: len(want)]) == len(set(got[: len(want)])), "duplicated alert versions"
    assert got[: len(want)] == want
    assert_prefix(collector, expected)
    collector.close()
