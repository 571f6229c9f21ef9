"""Record and replay: raw bytes kept exactly, timing scaled, from a bus or from a broker."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest
from broker import SECTOR, SERVICE_USER, Broker

from vigil.ingest.bus import InProcessBus
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.recording import Recorder, read_recording, record, replay
from vigil.ingest.schema import SensorEvent, encode

NOW = 1_790_000_000.0
EVENTS = f"vigil/v1/{SECTOR}/ugs/u117/events"


def event(i: int) -> SensorEvent:
    return SensorEvent(sensor="u117", time=NOW + i, modality="seismic", strength=float(i))


def write_recording(path: Path, times: list[float]) -> None:
    rec = Recorder(path, SECTOR, started=NOW)
    for i, t in enumerate(times):
        rec.write(EVENTS, encode(event(i)), NOW + t)
    rec.write(EVENTS, b"\xff\xfe not utf-8", NOW + times[-1])
    rec.write(f"vigil/v1/{SECTOR}/quarantine", b'{"reason":"x"}', NOW + times[-1])
    rec.close()


class FakeTime:
    """A monotonic clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.now += dt


def test_replay_scales_the_recorded_gaps_and_keeps_raw_bytes(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_recording(path, [0.0, 1.0, 3.0, 3.0])
    bus = InProcessBus(SECTOR, clock=lambda: NOW + 10)
    got: list[tuple[float, float]] = []
    fake = FakeTime()
    bus.subscribe("#", lambda t, m: got.append((fake.now, m.strength)))
    summary = replay(path, bus, speed=2.0, clock=fake.clock, sleep=fake.sleep)
    assert got == [(0.0, 0.0), (0.5, 1.0), (1.5, 2.0), (1.5, 3.0)]
    assert bus.quarantine_counts == {"not_json": 1}  # the bad bytes came back exactly as sent
    assert bus.quarantined[0].raw == b"\xff\xfe not utf-8"
    assert summary.messages == 5 and summary.skipped == 1  # the old quarantine report
    assert summary.recorded_span_s == pytest.approx(3.0)
    fast = replay(path, InProcessBus(SECTOR, clock=lambda: NOW + 10), speed=math.inf)
    assert fast.messages == 5
    with pytest.raises(ValueError, match="speed = 0"):
        replay(path, bus, speed=0)


def test_record_from_a_bus_keeps_valid_and_quarantined_messages(tmp_path: Path) -> None:
    bus = InProcessBus(SECTOR, clock=lambda: NOW + 10)
    stop, ready = threading.Event(), threading.Event()
    result = {}
    t = threading.Thread(
        target=lambda: result.update(
            s=record(bus, SECTOR, tmp_path / "r.jsonl", stop=stop, ready=ready)
        )
    )
    t.start()
    assert ready.wait(5)
    bus.publish(EVENTS, event(1))
    bus.publish(EVENTS, b"garbage")
    bus.publish("vigil/v1/yuma/tracks", b"other sector")
    stop.set()
    t.join(5)
    header, messages = read_recording(tmp_path / "r.jsonl")
    lines = list(messages)
    assert header.sector == SECTOR
    assert [m.raw for m in lines] == [encode(event(1)), b"garbage"]
    assert result["s"].messages == 2 and result["s"].topics == {EVENTS: 2}


def test_read_recording_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_recording(path, [0.0])
    with open(path, "ab") as f:
        f.write(b"{not a message}\n")
    _, messages = read_recording(path)
    with pytest.raises(ValueError, match="line 5"):
        list(messages)
    (tmp_path / "x.jsonl").write_text("hello\n")
    with pytest.raises(ValueError, match="line 1 is not a Vigil recording header"):
        read_recording(tmp_path / "x.jsonl")


@pytest.mark.broker
def test_record_from_the_broker_and_replay_onto_it(broker: Broker, tmp_path: Path) -> None:
    now = time.time()
    creds = {"username": SERVICE_USER, "password": f"pw-{SERVICE_USER}"}
    settings = MqttSettings(host=broker.host, port=broker.port, **creds)
    ready = threading.Event()
    result = {}
    path = tmp_path / "r.jsonl"
    t = threading.Thread(
        target=lambda: result.update(
            s=record(settings, SECTOR, path, max_messages=4, duration_s=20, ready=ready)
        )
    )
    t.start()
    assert ready.wait(10)
    pub = MqttBus(SECTOR, settings, "pub", tmp_path / "pub.sqlite").connect(5)
    sent = [
        SensorEvent(sensor="u117", time=now, modality="pir", strength=float(i)) for i in range(3)
    ]
    for e in sent:
        pub.publish(EVENTS, e)
    pub.publish(EVENTS, b"\x00\x01 raw")
    t.join(20)
    assert result["s"].messages == 4
    _, messages = read_recording(path)
    assert [m.raw for m in messages] == [encode(e) for e in sent] + [b"\x00\x01 raw"]
    # replay through the broker to a service bus: same messages, same verdicts
    svc = MqttBus(SECTOR, settings, "svc", tmp_path / "svc.sqlite", publish_quarantine=False)
    got: list[float] = []
    svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(m.strength))
    svc.connect(5)
    summary = replay(path, pub, speed=math.inf)
    assert summary.messages == 4
    assert pub.flush(10) and svc.wait_idle(10)
    deadline = time.monotonic() + 5
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [0.0, 1.0, 2.0]
    assert svc.quarantine_counts == {"not_json": 1}
    pub.close()
    svc.close()
