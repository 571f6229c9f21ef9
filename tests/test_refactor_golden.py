"""Issue 16: the refactor changes structure, not behaviour.

Three checks against outputs recorded with the code before the refactor (commit 76a9e88):

- the sector core (what ``vigil run`` runs) replays a recorded sensor stream
  (``data/core_replay_8min.vrec``: the first 8 minutes of a live demo run, seed 3, the
  shipped Tucson deployment, 18,817 camera detections, ground-sensor messages and aircraft
  telemetry) and must publish the same Track, Crossing, Alert and CameraCommand messages, in
  the same order, to the bit;
- the service's runner (the reorder buffer in front of the core) takes the same stream
  arriving out of order within its hold and must publish the same messages;
- the demo chain (simulator, rendered towers, motion detection, the core) over 4 simulated
  minutes, seed 1, must publish the same camera detections, tracks, crossings, alerts and
  camera commands.

Each is compared by the SHA-256 of the messages' canonical JSON, with the per-kind counts
checked first so that a failure says what changed. A deliberate change of behaviour updates
the digests in its own commit, saying why.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from vigil.config import load_default
from vigil.ingest import schema
from vigil.ingest.bus import InProcessBus
from vigil.ingest.recording import read_recording

DATA = Path(__file__).parent / "data"

CORE_SHA256 = "12e15b69b848627ceaea567d8b172fed15461f7a3e20108c14a4ce32e2cc80c4"
CORE_COUNTS = {"Track": 5843, "CameraCommand": 11, "Alert": 37, "Crossing": 3}
RUNNER_SHA256 = "da2cc9774e4a693d1135405944dbd2920fd59d758a3f4335b3ebc4fa24c3cc1b"
RUNNER_COUNTS = {"Track": 5857, "CameraCommand": 11, "Alert": 37, "Crossing": 3}
DEMO_SHA256 = "2e2a99d9a9fd5ab0620f4df82c26d33f290360a7949258d590988fc41f773580"
DEMO_COUNTS = {
    "CameraCommand": 7,
    "Alert": 29,
    "CameraDetection": 15616,
    "Track": 4944,
    "Crossing": 1,
}


def _collector(bus, sector: str, kinds: tuple[type, ...]) -> list:
    got: list = []

    def keep(topic: str, msg) -> None:
        if isinstance(msg, kinds):
            got.append([topic, type(msg).__name__, msg])

    bus.subscribe(f"vigil/v1/{sector}/#", keep)
    return got


def _digest(got: list) -> tuple[str, dict[str, int]]:
    return (
        hashlib.sha256(msgspec.json.encode(got)).hexdigest(),
        dict(Counter(kind for _, kind, _ in got)),
    )


def _plain_site(site):
    """The layout alone, as the recording was made with."""
    return type(site)(**{f: getattr(site, f) for f in type(site).__struct_fields__})


def _recorded_stream() -> tuple[dict, list]:
    header, messages = read_recording(DATA / "core_replay_8min.vrec")
    stream = [(m.t, msgspec.json.decode(m.raw, type=schema.Message)) for m in messages]
    return header.meta, stream


def test_sector_core_replays_recorded_stream_as_before_refactor() -> None:
    from vigil.core import SectorCore

    meta, stream = _recorded_stream()
    start, end = meta["start"], meta["end"]
    site = _plain_site(load_default().site)
    sector = site.sector.name
    now = [start]
    bus = InProcessBus(sector, clock=lambda: now[0])
    core = SectorCore(site, bus)
    outputs = (schema.Track, schema.Crossing, schema.Alert, schema.CameraCommand)
    got = _collector(bus, sector, outputs)
    tick = start + 1.0
    for t, msg in stream:
        while t >= tick:
            now[0] = tick
            core.tick(tick)
            tick += 1.0
        now[0] = t
        bus.publish(schema.topic_for(sector, msg), msg)
    while tick <= end:
        now[0] = tick
        core.tick(tick)
        tick += 1.0
    core.close()
    digest, counts = _digest(got)
    assert counts == CORE_COUNTS
    assert digest == CORE_SHA256


def test_service_runner_replays_recorded_stream_as_before_refactor() -> None:
    """What ``vigil run`` does with its input: the reorder buffer in front of the core, with
    each message arriving up to 0.6 s late (deterministically) inside its 1 s hold."""
    from vigil.runner import SectorRunner

    _, stream = _recorded_stream()
    site = _plain_site(load_default().site)
    got: list = []
    runner = SectorRunner(site, lambda topic, m: got.append([topic, type(m).__name__, m]))
    late = [t + ((i * 7919) % 13) * 0.05 for i, (t, _) in enumerate(stream)]
    for i in sorted(range(len(stream)), key=lambda i: (late[i], i)):
        msg = stream[i][1]
        runner.handle(schema.topic_for(site.sector.name, msg), msg)
    runner.finish()
    runner.close()
    assert runner.counts["late"] == 0
    digest, counts = _digest(got)
    assert counts == RUNNER_COUNTS
    assert digest == RUNNER_SHA256


@pytest.mark.slow
def test_demo_chain_publishes_as_before_refactor() -> None:
    from vigil.demo import DEMO_START_UTC, demo_settings
    from vigil.pipeline import Pipeline

    sim = demo_settings(start_time=DEMO_START_UTC, crossing_rate_scale=20.0, fps=2.0)
    pipe = Pipeline(load_default().site, sim, 1)
    outputs = (
        schema.Track,
        schema.Crossing,
        schema.Alert,
        schema.CameraCommand,
        schema.CameraDetection,
    )
    got = _collector(pipe.bus, pipe.sector, outputs)
    try:
        pipe.run(4 * 60.0)
    finally:
        pipe.close()
    digest, counts = _digest(got)
    assert counts == DEMO_COUNTS
    assert digest == DEMO_SHA256
