"""Fuzzing the receiving side: every random or mutated message is accepted or quarantined."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from broker import SECTOR, SERVICE_USER, Broker

from vigil.ingest.bus import InProcessBus
from vigil.ingest.fuzz import fuzz_messages
from vigil.ingest.journal import Journal
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.quarantine import read_quarantine
from vigil.ingest.schema import MessageError, decode


def expected_outcomes(n: int, seed: int, now: float) -> Counter[str]:
    """What the schema says about each fuzzed message: "accepted" or the quarantine reason."""
    out: Counter[str] = Counter()
    for topic, payload in fuzz_messages(SECTOR, n, seed=seed, now=now):
        try:
            decode(topic, payload, now=now)
            out["accepted"] += 1
        except MessageError as err:
            out[err.reason] += 1
    return out


def test_fuzz_stream_is_seeded_and_varied() -> None:
    now = 1_790_000_000.0
    a = list(fuzz_messages(SECTOR, 300, seed=7, now=now))
    assert a == list(fuzz_messages(SECTOR, 300, seed=7, now=now))
    assert a != list(fuzz_messages(SECTOR, 300, seed=8, now=now))
    outcomes = expected_outcomes(3000, 7, now)
    assert outcomes["accepted"] > 100
    assert len(outcomes) >= 10  # many different reasons, not one kind of garbage


def test_in_process_bus_survives_fuzz_and_counts_every_message() -> None:
    now = 1_790_000_000.0
    n = 20_000
    bus = InProcessBus(SECTOR, clock=lambda: now)
    got = Counter()
    bus.subscribe("#", lambda t, m: got.update(["accepted"]))
    for topic, payload in fuzz_messages(SECTOR, n, seed=11, now=now):
        bus.publish(topic, payload)
    assert got["accepted"] + sum(bus.quarantine_counts.values()) == n
    assert Counter(bus.quarantine_counts) + got == expected_outcomes(n, 11, now)


@pytest.mark.broker
def test_mqtt_service_survives_fuzz_and_counts_every_message(
    broker: Broker, tmp_path: Path
) -> None:
    n = 5000
    now = time.time()
    creds = {"username": SERVICE_USER, "password": f"pw-{SERVICE_USER}"}
    settings = MqttSettings(host=broker.host, port=broker.port, **creds)
    journal = Journal(tmp_path / "journal.sqlite", synchronous="NORMAL")
    svc = MqttBus(SECTOR, settings, "svc", tmp_path / "svc.sqlite", tmp_path / "q.jsonl", journal)
    accepted = Counter()
    svc.subscribe(f"vigil/v1/{SECTOR}/#", lambda t, m: accepted.update(["accepted"]))
    svc.connect(5)
    fuzzer = MqttBus(SECTOR, settings, "fuzzer", tmp_path / "fuzz.sqlite").connect(5)
    for topic, payload in fuzz_messages(SECTOR, n, seed=3, now=now):
        fuzzer.publish(topic, payload)
    assert fuzzer.flush(30)
    deadline = time.monotonic() + 30
    while svc.counts["accepted"] + sum(svc.quarantine_counts.values()) < n:
        assert time.monotonic() < deadline, svc.counts
        time.sleep(0.02)
    assert svc.wait_idle(30)
    assert svc.counts["received"] >= n  # plus its own quarantine reports coming back
    outcome = Counter(svc.quarantine_counts) + accepted
    assert outcome == expected_outcomes(n, 3, now)
    assert sum(outcome.values()) == n
    quarantined = sum(svc.quarantine_counts.values())
    assert len(read_quarantine(tmp_path / "q.jsonl")) == quarantined
    assert journal.count("quarantined") == quarantined
    assert journal.count("accepted") == accepted["accepted"]
    fuzzer.close()
    svc.close()
    journal.close()
