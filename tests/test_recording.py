"""Record and replay: raw bytes kept exactly, timing scaled, from a bus or from a broker; the
file bounded, versioned and refused with the file and line named; ``vigil record`` and
``vigil replay`` through the command line."""

from __future__ import annotations

import gzip
import math
import threading
import time
from pathlib import Path

import pytest
from broker import SECTOR, SERVICE_USER, Broker

from vigil.cli import main
from vigil.ingest.bus import InProcessBus
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.record_replay import record, replay
from vigil.ingest.recording import (
    FORMAT_VERSION,
    Recorder,
    RecordingError,
    read_header,
    read_recording,
)
from vigil.ingest.schema import SensorEvent, encode

NOW = 1_790_000_000.0
EVENTS = f"vigil/v1/{SECTOR}/ugs/u117/events"


def event(i: int) -> SensorEvent:
    return SensorEvent(sensor="u117", time=NOW + i, modality="seismic", strength=float(i))


def write_recording(path: Path, times: list[float], **options) -> None:
    rec = Recorder(path, SECTOR, started=NOW, **options)
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


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
def test_a_recording_reads_back_compressed_or_not(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / "r.vrec"
    write_recording(path, [0.0, 2.0], compress=compress, meta={"note": "x", "n": [1, 2.5]})
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    header, messages = read_recording(path)
    assert (header.vigil_recording, header.sector, header.started) == (FORMAT_VERSION, SECTOR, NOW)
    assert header.meta == {"note": "x", "n": [1, 2.5]}
    assert read_header(path) == header
    assert [(m.t, m.raw) for m in messages] == [
        (NOW, encode(event(0))),
        (NOW + 2.0, encode(event(1))),
        (NOW + 2.0, b"\xff\xfe not utf-8"),
        (NOW + 2.0, b'{"reason":"x"}'),
    ]


def test_read_recording_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_recording(path, [0.0], compress=False)
    with open(path, "ab") as f:
        f.write(b"{not a message}\n")
    _, messages = read_recording(path)
    with pytest.raises(RecordingError, match="line 5 is not a recorded message"):
        list(messages)
    (tmp_path / "x.jsonl").write_text("hello\n")
    with pytest.raises(RecordingError, match="x.jsonl: line 1 is not a Vigil recording header"):
        read_recording(tmp_path / "x.jsonl")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"t": 1.0, "topic": "a"}', "line 5 is not a recorded message: expected exactly one"),
        (b'{"t": 1.0, "topic": "a", "payload_b64": "*"}', "line 5 is not a recorded message"),
        (b'{"t": 1.0, "topic": "a", "payload": "' + b"x" * 600 + b'"}', "line 5 is longer than"),
    ],
    ids=["no-payload", "bad-base64", "too-long"],
)
def test_bad_message_lines_are_refused_by_line(tmp_path: Path, line: bytes, reason: str) -> None:
    path = tmp_path / "r.jsonl"
    write_recording(path, [0.0], compress=False)
    with open(path, "ab") as f:
        f.write(line + b"\n")
    _, messages = read_recording(path, max_line_bytes=512)
    with pytest.raises(RecordingError, match=reason):
        list(messages)


def test_a_cut_off_compressed_recording_gives_its_lines_then_says_so(tmp_path: Path) -> None:
    path = tmp_path / "r.vrec"
    rec = Recorder(path, SECTOR, started=NOW)  # flushed after every message
    for i in range(3):
        rec.write(EVENTS, encode(event(i)), NOW + i)
    data = path.read_bytes()  # as a recorder killed now leaves it: no gzip trailer
    rec.close()
    path.write_bytes(data)
    _, messages = read_recording(path)
    got = []
    with pytest.raises(RecordingError, match="compressed data ends inside line 5"):
        got.extend(messages)
    assert [m.raw for m in got] == [encode(event(i)) for i in range(3)]


def test_other_versions_are_refused_naming_the_version(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"  # what vigil record wrote before
    old.write_bytes(b'{"vigil_recording": 1, "sector": "tucson", "started": 1.0}\n')
    with pytest.raises(RecordingError, match="old.jsonl: recording format version 1; this"):
        read_recording(old)
    bench = tmp_path / "bench.vrec"  # the replay benchmark's gzip MessagePack, before
    bench.write_bytes(gzip.compress(b"\x8f\xa6format\xb6vigil-replay-recording\xa7version\x01"))
    with pytest.raises(RecordingError, match="bench_replay recording of format version 1"):
        read_header(bench)


def test_a_recording_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "r.vrec"
    write_recording(path, [0.0])
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        Recorder(path, SECTOR)
    assert path.read_bytes() == before
    Recorder(path, "yuma", overwrite=True).close()
    assert read_header(path).sector == "yuma"


def test_vigil_record_refuses_an_existing_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "r.vrec"
    write_recording(path, [0.0])
    before = path.read_bytes()
    argv = ["record", "--sector", SECTOR, "--out", str(path), "--seconds", "1", "--insecure"]
    assert main([*argv, "--broker", "127.0.0.1:1"]) == 3  # refused before connecting
    assert f"{path} exists; add --force to replace it" in capsys.readouterr().err
    assert path.read_bytes() == before


@pytest.mark.parametrize("command", ["record", "replay"])
def test_record_and_replay_refuse_to_connect_without_credentials(
    command: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Issue 18: no anonymous connection unless --insecure is given (as run, serve, alerts)."""
    monkeypatch.delenv("VIGIL_MQTT_USER", raising=False)
    monkeypatch.delenv("VIGIL_MQTT_PASSWORD", raising=False)
    path = tmp_path / "r.vrec"
    if command == "record":
        argv = ["record", "--sector", SECTOR, "--out", str(path)]
    else:
        write_recording(path, [0.0])
        argv = ["replay", str(path)]
    assert main([*argv, "--broker", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "no broker credentials" in err and "--insecure" in err
    assert command == "replay" or not path.exists()


@pytest.mark.broker
def test_record_from_the_broker_and_replay_onto_it(broker: Broker, tmp_path: Path) -> None:
    now = time.time()
    creds = {"username": SERVICE_USER, "password": f"pw-{SERVICE_USER}"}
    settings = MqttSettings(host=broker.host, port=broker.port, **creds)
    ready = threading.Event()
    result = {}
    path = tmp_path / "r.vrec"
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


@pytest.mark.broker
def test_vigil_record_then_vigil_replay(
    broker: Broker, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("VIGIL_MQTT_USER", SERVICE_USER)
    monkeypatch.setenv("VIGIL_MQTT_PASSWORD", f"pw-{SERVICE_USER}")
    creds = {"username": SERVICE_USER, "password": f"pw-{SERVICE_USER}"}
    address = f"{broker.host}:{broker.port}"
    path = tmp_path / "r.vrec"
    argv = ["record", "--sector", SECTOR, "--out", str(path), "--broker", address]
    argv += ["--max-messages", "4", "--seconds", "30"]
    status: dict[str, int] = {}
    recorder = threading.Thread(target=lambda: status.update(record=main(argv)))
    recorder.start()
    # held by the broker's client until the recorder's subscription takes them
    held = MqttSettings(host=broker.host, port=broker.port, resend_unrouted=True, **creds)
    pub = MqttBus(SECTOR, held, "pub", tmp_path / "pub.sqlite").connect(5)
    sent = [encode(event(i)) for i in range(3)] + [b"\x00\x01 raw"]
    # the first alone until the recorder's session has taken it (an unrouted message is not
    # acknowledged): sent together, the rest could reach a subscription made between them and
    # the first come after them on its resend (what a loaded CI machine once did)
    pub.publish(EVENTS, sent[0])
    assert pub.flush(30.0), "the recorder never subscribed"
    for raw in sent[1:]:
        pub.publish(EVENTS, raw)
    recorder.join(40)
    pub.close()
    assert status == {"record": 0}
    assert "recorded 4 messages" in capsys.readouterr().out
    header, messages = read_recording(path)
    assert header.sector == SECTOR and [m.raw for m in messages] == sent
    # vigil replay takes the sector from the recording: a service hears it as it was sent
    settings = MqttSettings(host=broker.host, port=broker.port, **creds)
    svc = MqttBus(SECTOR, settings, "svc", tmp_path / "svc.sqlite", publish_quarantine=False)
    got: list[float] = []
    svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(m.strength))
    svc.connect(5)
    assert main(["replay", str(path), "--broker", address, "--speed", "0"]) == 0
    assert f"replayed 4 messages from {path}" in capsys.readouterr().out
    deadline = time.monotonic() + 10
    while (len(got) < 3 or not svc.quarantine_counts) and time.monotonic() < deadline:
        time.sleep(0.01)
    svc.close()
    assert got == [0.0, 1.0, 2.0] and svc.quarantine_counts == {"not_json": 1}
    # the recorder's session kept what was replayed meanwhile: --force records it over the file
    assert main(argv) == 3
    assert main([*argv, "--force"]) == 0
    assert [m.raw for m in read_recording(path)[1]] == sent
