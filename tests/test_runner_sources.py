"""The runner's source check remembers what passed: its refusals stay those of
:func:`~vigil.ingest.sources.check_source` on every message, in any order of repeats."""

from __future__ import annotations

import random

import pytest

from vigil.config import load_default
from vigil.ingest.schema import CameraDetection, MessageError, SensorEvent, Telemetry
from vigil.ingest.sources import Devices, check_source
from vigil.runner import SectorRunner

BASE = "vigil/v1/tucson"
T0 = 1_796_000_000.0


def _detection(camera: str, t: float) -> CameraDetection:
    return CameraDetection(camera=camera, time=t, lat=31.4, lon=-110.9, cov=(25.0, 0.0, 0.0, 25.0))


def _event(sensor: str, t: float) -> SensorEvent:
    return SensorEvent(sensor=sensor, time=t, modality="seismic", strength=1.0)


def _telemetry(aircraft: str, t: float) -> Telemetry:
    return Telemetry(aircraft=aircraft, time=t, lat=31.4, lon=-110.9, alt_m=1500.0)


#: (topic, message maker): right sources, a gateway speaking for its sensor, and each way of
#: being wrong (another device's topic, an unknown device, a kind on another kind's topic).
CASES = [
    (f"{BASE}/cam/t03/detections", lambda t: _detection("t03", t)),
    (f"{BASE}/cam/t03/detections", lambda t: _detection("t05", t)),  # wrong_source
    (f"{BASE}/cam/t99/detections", lambda t: _detection("t99", t)),  # unknown_device
    (f"{BASE}/cam/t05/detections", lambda t: _detection("t05", t)),
    (f"{BASE}/ugs/u001/events", lambda t: _event("u001", t)),
    (f"{BASE}/ugs/g1/events", lambda t: _event("u001", t)),  # its gateway
    (f"{BASE}/ugs/g1/events", lambda t: _event("u999", t)),  # no such sensor
    (f"{BASE}/ugs/u002/events", lambda t: _event("u001", t)),  # wrong_source
    (f"{BASE}/cam/t03/detections", lambda t: _event("t03", t)),  # wrong kind
    (f"{BASE}/uas/uas1/telemetry", lambda t: _telemetry("uas1", t)),
    (f"{BASE}/uas/uas2/telemetry", lambda t: _telemetry("uas2", t)),  # unknown_device
]


def _expected(topic: str, msg, devices: Devices) -> str | None:
    try:
        check_source(topic, msg, devices)
    except MessageError as err:
        return err.reason
    return None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refusals_match_check_source_on_every_message(seed: int) -> None:
    site = load_default().site
    devices = Devices.of_site(site)
    refused: list[tuple[str, str]] = []
    runner = SectorRunner(
        site,
        hold_s=1.0,
        on_ahead=lambda topic, msg, err: refused.append((topic, err.reason)),
    )
    rng = random.Random(seed)
    expected: list[tuple[str, str]] = []
    try:
        for i in range(400):  # each case many times, mixed, so repeats hit remembered passes
            topic, make = rng.choice(CASES)
            msg = make(T0 + 0.01 * i)
            reason = _expected(topic, msg, devices)
            if reason is not None:
                expected.append((topic, reason))
            runner.handle(topic, msg)
    finally:
        runner.close()
    assert refused == expected
    assert {r for _, r in expected} == {"wrong_source", "unknown_device"}
    assert runner.counts["refused"] == len(expected)
