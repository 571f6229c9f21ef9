"""``vigil alerts``: the agent's console driven through pipes against a real Mosquitto, alone
and in front of the sector service."""

from __future__ import annotations

import time

import pytest
from broker import SERVICE_USER
from test_cli_connection import Lines

from vigil.config import load_default
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.schema import Alert, AlertAction, AlertEvent, SensorStatus, topic_for

pytestmark = pytest.mark.broker


def settings_for(broker) -> MqttSettings:
    return MqttSettings(
        host=broker.host, port=broker.port, username=SERVICE_USER, password=f"pw-{SERVICE_USER}"
    )


class Console(Lines):
    """``vigil alerts`` on the test broker, read line by line, typed into."""

    def __init__(self, broker, *args: str) -> None:
        super().__init__("alerts", "--broker", f"{broker.host}:{broker.port}", *args)

    def expect(self, text: str, timeout: float = 30.0) -> str:
        """The first line from now on that contains ``text``."""
        return super().expect(text, timeout)

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()


def alert(n: int, *, units=(), assigned=None, state="new", t=None) -> Alert:
    t = time.time() if t is None else t
    return Alert(
        alert_id=f"tucson-A{n:06d}",
        time=t,
        kind="crossing",
        priority=2,
        segment_id="tucson-0012",
        lat=31.334,
        lon=-110.9,
        units=list(units),
        assigned_unit=assigned,
        state=state,
        history=[AlertEvent(time=t, state=state, note="test")],
        summary=f"alert {n}",
    )


def test_console_shows_the_units_alerts_and_publishes_actions(broker, tmp_path):
    actions: list[AlertAction] = []
    bus = MqttBus("tucson", settings_for(broker), "test-dispatcher")
    bus.subscribe("vigil/v1/tucson/alerts/actions/+", lambda topic, m: actions.append(m))
    bus.connect(15.0)
    console = Console(broker, "--unit", "p01")
    try:
        console.expect("alerts of sector tucson for p01")
        for a in (
            alert(1, units=["p01", "p02"]),  # recommended
            alert(2, units=["p03"]),  # someone else's
            alert(3, assigned="p01"),  # assigned
        ):
            bus.publish(topic_for("tucson", a), a)
        first = console.expect("tucson-A000001")
        assert "#1" in first and "NEW" in first and "units p01,p02" in first
        third = console.expect("tucson-A000003")
        assert "#2" in third and "assigned p01" in third
        console.type("a")  # a key: acknowledge the newest
        console.expect("sent: acknowledge tucson-A000003")
        console.type("s #1 p02")
        console.expect("sent: assign to p02 tucson-A000001")
        console.type("c 1 seen it")
        console.expect("sent: close tucson-A000001")
        console.type("a 99")
        console.expect("no alert '99' here")
        console.type("l")
        console.expect("#2 tucson-A000003")
        deadline = time.monotonic() + 10
        while len(actions) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        status = console.close()
        bus.close()
    assert status == 0
    assert not any("tucson-A000002" in line for line in console.seen)
    by = f"p01@{SERVICE_USER}"  # issue 18: the unit, vouched for by its broker user
    assert [(a.alert_id, a.action, a.by, a.unit, a.note) for a in actions] == [
        ("tucson-A000003", "acknowledge", by, None, ""),
        ("tucson-A000001", "assign", by, "p02", ""),
        ("tucson-A000001", "close", by, None, "seen it"),
    ]


def test_console_acknowledges_through_the_sector_service(broker, tmp_path):
    """A tampered sensor -> the service's alert -> the console -> acknowledge -> the service
    publishes the acknowledged version -> the console shows it."""
    from vigil.service import SectorService

    site = load_default().site
    service = SectorService(site, settings_for(broker), tmp_path / "state", hold_s=0.5, idle_s=0.5)
    service.start(15.0)
    publisher = MqttBus("tucson", settings_for(broker), "test-gateway").connect(15.0)
    console = Console(broker, "--unit", "p01", "--all")
    try:
        console.expect("alerts of sector tucson for every unit")
        sensor = site.sensors[0].id
        now = time.time()
        st = SensorStatus(sensor=sensor, time=now, battery=0.9, tamper=True, last_heard=now)
        publisher.publish(topic_for("tucson", st), st)
        line = console.expect(f"sensor {sensor} reports tampering")
        assert "NEW" in line and "sensor_health" in line
        console.type("a")
        console.expect("sent: acknowledge")
        acked = console.expect(" ACK ")
        assert "sensor_health" in acked
    finally:
        status = console.close()
        publisher.close()
        service.close()
    assert status == 0


def test_console_refuses_an_unknown_unit(broker):
    console = Console(broker, "--unit", "nobody")
    assert console.proc.wait(30) == 2
    assert "nobody" in console.expect("--unit")
