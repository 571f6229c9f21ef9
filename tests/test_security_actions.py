"""Issue 18 (info): an alert action's ``by`` was self-asserted: the map and every agent wrote
the one ``alerts/actions`` topic, so any agent could act in another's name.

Now each broker identity writes actions only on its own ``alerts/actions/{user}`` (the ACL
``vigil broker init`` writes), and the service and the map accept an action only when its
``by`` (``{person}@{user}`` or ``{user}``) names that topic's user. Tested against Mosquitto
started from ``vigil broker init``'s own folder, the sector service and the live map.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from broker import SECTOR, SERVICE_USER, Broker, missing_reason
from live_client import FAST_HASH, PASSWORDS, Client
from test_security_broker import RawClient, init_folder, password

from vigil.config import load_default
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.schema import AlertAction, SensorStatus, encode, topic_for
from vigil.maps.live import AuditLog, LiveMapApp, ServerThread, UserStore
from vigil.service import SectorService

BASE = f"vigil/v1/{SECTOR}"
MAP = f"vigil-{SECTOR}-map-1"
WATCH = f"vigil-{SECTOR}-map-2"

needs_broker = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))


def agent(unit: str) -> str:
    return f"vigil-{SECTOR}-agent-{unit}"


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def generated():
    """Mosquitto started from a ``vigil broker init --maps 2`` folder."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    folder, port = init_folder("--maps", "2")
    b = Broker.from_folder(folder, port)
    try:
        b.start()
        yield b, folder
    finally:
        b.cleanup()
        shutil.rmtree(folder.parent, ignore_errors=True)


def raw(b: Broker, folder: Path, user: str) -> RawClient:
    c = RawClient(b, user, password(folder, user), user)
    assert c.connack == "Success", (user, c.connack)
    return c


def settings(b: Broker, folder: Path, user: str) -> MqttSettings:
    return MqttSettings(
        host=b.host, port=b.port, username=user, password=password(folder, user),
        reconnect_max_delay_s=0.5,
    )  # fmt: skip


def act(alert_id: str, action: str, by: str) -> bytes:
    return encode(AlertAction(alert_id=alert_id, time=time.time(), action=action, by=by))


@needs_broker
def test_an_agent_cannot_publish_an_action_as_another_identity(generated) -> None:
    b, folder = generated
    units = [u.id for u in load_default().config.units]
    a, other = units[0], units[1]
    watcher = raw(b, folder, WATCH)
    watcher.client.subscribe(f"{BASE}/alerts/actions/#", qos=1)
    time.sleep(0.3)
    clients = {u: raw(b, folder, u) for u in (agent(a), MAP, "cam-t03")}
    try:
        ok = [
            (agent(a), f"{BASE}/alerts/actions/{agent(a)}"),
            (MAP, f"{BASE}/alerts/actions/{MAP}"),
        ]
        refused = [
            (agent(a), f"{BASE}/alerts/actions/{agent(other)}"),  # another agent's topic
            (agent(a), f"{BASE}/alerts/actions/{MAP}"),  # the map's
            (agent(a), f"{BASE}/alerts/actions"),  # the old shared topic
            (MAP, f"{BASE}/alerts/actions/{agent(a)}"),
            ("cam-t03", f"{BASE}/alerts/actions/cam-t03"),  # devices never act
        ]
        for user, topic in ok:
            assert clients[user].publish(topic, act("A1", "close", user)) == "Success", topic
        got = {
            topic: clients[user].publish(topic, act("A1", "close", agent(other)))
            for user, topic in refused
        }
        assert set(got.values()) == {"Not authorized"}, got
        time.sleep(0.5)
        assert sorted(watcher.received) == sorted(topic for _u, topic in ok)
    finally:
        for c in (watcher, *clients.values()):
            c.close()


@needs_broker
def test_a_forged_by_on_the_agents_own_topic_is_quarantined_and_ignored(
    generated, tmp_path: Path
) -> None:
    b, folder = generated
    d = load_default()
    site = d.site
    unit = d.config.units[0].id
    heard: list[tuple[str, dict]] = []  # what the service publishes: quarantine and alerts
    watcher = raw(b, folder, WATCH)
    watcher.client.on_message = lambda cl, u, m: heard.append((m.topic, json.loads(m.payload)))
    watcher.client.subscribe([(f"{BASE}/quarantine", 1), (f"{BASE}/alerts", 1)])

    def quarantined() -> list[dict]:
        return [p for t, p in heard if t.endswith("/quarantine")]

    def service_said(alert_id: str, state: str) -> list[str]:
        """The ``by`` of each version of the alert in ``state`` that the service published."""
        return [
            p["history"][-1]["by"]
            for t, p in heard
            if t == f"{BASE}/alerts" and p["alert_id"] == alert_id and p["state"] == state
        ]

    service = SectorService(
        site, settings(b, folder, SERVICE_USER), tmp_path / "state", hold_s=0.3, idle_s=0.3
    )
    service.start(15.0)
    map_bus = MqttBus(SECTOR, settings(b, folder, MAP), MAP)
    users = UserStore(tmp_path / "users.sqlite", hasher=FAST_HASH)
    users.add("cmd", "commander", PASSWORDS["cmd"])
    long_name = "c" * 60  # a valid user name, but "{name}@{map user}" is over 64 characters
    users.add(long_name, "commander", PASSWORDS["cmd"])
    app = LiveMapApp(site, map_bus, users, AuditLog(tmp_path / "audit.sqlite"), tick_s=0.05)
    map_bus.connect(15.0)
    g = d.config.gateways[0]
    gateway = raw(b, folder, f"ugs-{g.id}")
    me = raw(b, folder, agent(unit))
    server = ServerThread(app).start()
    try:
        now = time.time()
        st = SensorStatus(sensor=g.sensors[0], time=now, battery=0.9, tamper=True, last_heard=now)
        assert gateway.publish(topic_for(SECTOR, st), encode(st)) == "Success"
        assert wait_for(lambda: len(app.live.alerts) == 1)
        (alert_id,) = app.live.alerts
        own = f"{BASE}/alerts/actions/{agent(unit)}"
        # the broker lets the agent write its own topic, but the by names the map's commander
        assert me.publish(own, act(alert_id, "close", f"cmd@{MAP}")) == "Success"
        assert wait_for(lambda: any(q["topic"] == own for q in quarantined()))
        (q,) = [q for q in quarantined() if q["topic"] == own]
        assert (q["reason"], q["field"]) == ("wrong_source", "by")
        assert wait_for(lambda: app.live.counts["refused_wrong_source"] >= 1)
        time.sleep(0.5)
        assert app.live.alerts[alert_id]["state"] == "new"  # neither the map nor the service
        # closed it; the agent acting in its own name is applied (the check is not vacuous)
        assert me.publish(own, act(alert_id, "acknowledge", f"{unit}@{agent(unit)}")) == "Success"
        assert wait_for(lambda: app.live.alerts[alert_id]["state"] == "acknowledged")
        assert app.live.alerts[alert_id]["by"] == f"{unit}@{agent(unit)}"
        assert wait_for(lambda: service_said(alert_id, "acknowledged"))
        assert service_said(alert_id, "acknowledged") == [f"{unit}@{agent(unit)}"]
        # the map acts as its own identity, for its logged-in user, and the service applies it
        longer = Client(server.url)
        assert longer.login(long_name, PASSWORDS["cmd"]).status == 303
        reply = longer.act(alert_id, "close")
        assert reply.status == 400 and b"too long" in reply.body, reply.body
        cmd = Client(server.url)
        assert cmd.login("cmd", PASSWORDS["cmd"]).status == 303
        reply = cmd.act(alert_id, "close")
        assert reply.status == 200, reply.body
        assert wait_for(lambda: service_said(alert_id, "closed"))
        # one close, the map's: the forged one was never applied
        assert service_said(alert_id, "closed") == [f"cmd@{MAP}"]
    finally:
        server.stop()
        for c in (watcher, gateway, me):
            c.close()
        app.close()
        map_bus.close()
        users.close()
        service.close()
    assert len(quarantined()) == 1, quarantined()


def test_identities_write_actions_only_on_their_own_topic() -> None:
    from vigil.broker import acl_text, identities

    ids = identities(load_default(), maps=2)
    for i in ids:
        actions = [t for t in i.write if "/alerts/actions" in t]
        if i.role in ("map", "agent"):
            assert actions == [f"{BASE}/alerts/actions/{i.user}"], i
        else:
            assert actions == [], i
        if i.role in ("service", "map"):
            assert f"{BASE}/alerts/actions/+" in i.read, i
    acl = acl_text(SECTOR, ids)
    assert f"topic write {BASE}/alerts/actions\n" not in acl
