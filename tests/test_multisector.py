"""Issue 23, items 2 and 3: two sectors side by side on a multi-node broker layer on
127.0.0.1, and the national view of both.

Four real Mosquitto processes written by ``vigil broker national`` and ``vigil broker init
--bridge`` (:mod:`multisector_layer`): each sector's broker bridges, over TLS, to both national
nodes. Each sector's service output identity publishes through Vigil's own MQTT publisher (the
outbox, QoS 1, the replay window: :class:`~vigil.ingest.mqtt.MqttBus`); national map
identities collect on each node with persistent sessions. Mid-run one national node is killed
with SIGKILL and restarted, then one sector broker (and with it that sector's two bridges).
Every message sent is then counted at the national layer. The national view (``vigil serve
--sector``'s app) reads a node in headless Chromium; two sector services (``vigil run``'s
``SectorService``), one per sector, run side by side on their bridged brokers; a national
action comes down to its sector once. One layer serves every test of the module.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import browser_checks
import paho.mqtt.client as mqtt
import pytest
from broker import missing_reason
from multisector_layer import (
    SECTORS,
    NodeCollector,
    build_layer,
    read_env,
    refused,
    sector_publisher,
)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vigil.broker import _gateways
from vigil.config import load
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.schema import Alert, SensorStatus, Track

pytestmark = pytest.mark.broker

# fails the browser test on any console error or uncaught exception on the page
checked_page = browser_checks.checked_page
PASSWORD = "commander-pass-1"
#: Open alerts each sector raises on the national view (and one more that it closes).
OPEN = {"tucson": 2, "swanton": 1}

PER_SECTOR = 300  # messages each sector sends
PACE_S = 0.008  # seconds between two sends of one sector: the run lasts about 2.4 s


@pytest.fixture(scope="module")
def layer():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    built = build_layer()
    yield built
    built.close()


def test_a_national_action_comes_down_to_its_sector_once(layer):
    """An alert action a national map user publishes on one node reaches that sector's broker
    once (no loop through the other node) and no other sector's; one published while the
    sector's broker (and so its bridges) is down arrives when it is back. It runs first: a
    bridge whose node session is taken over (the ACL test logs in as it) is not subscribed
    there until it reconnects, and an action sent meanwhile is not kept for it."""
    got: dict[str, list[bytes]] = {s: [] for s in SECTORS}
    readers = []
    for s in SECTORS:
        b = layer.sector_brokers[s]
        user, password = layer.sector_login(s, f"vigil-{s}-map-1")
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
        c.username_pw_set(user, password)
        c.reconnect_delay_set(0.1, 0.5)
        ready = threading.Event()
        c.on_subscribe = lambda *a, ready=ready: ready.set()
        c.on_message = lambda c_, u, m, s=s: got[s].append(bytes(m.payload))
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600  # the reader's session outlives a broker restart
        c.connect(b.host, b.port, clean_start=False, properties=props)
        c.loop_start()
        c.subscribe(f"vigil/v1/{s}/alerts/actions/+", qos=1)
        assert ready.wait(10)
        readers.append(c)
    national_map = layer.national_login("vigil-national-map-1")
    topic = "vigil/v1/tucson/alerts/actions/vigil-national-map-1"

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 15
        while len(got["tucson"]) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    try:
        # the bridges subscribe on the nodes a moment after they connect (seconds on a busy
        # machine), and an action published before that is not kept for them: probe until
        # one comes through, let any copy of the probes settle, then start counting
        deadline = time.monotonic() + 60
        while not got["tucson"] and time.monotonic() < deadline:
            assert not refused(layer, 0, *national_map, topic, b"probe")
            for _ in range(20):
                if got["tucson"]:
                    break
                time.sleep(0.05)
        assert got["tucson"], "no action came through the bridges in 60 s"
        time.sleep(1.0)
        for s in SECTORS:
            got[s].clear()
        assert not refused(layer, 0, *national_map, topic, b"live")
        wait_for(1)
        layer.sector_brokers["tucson"].stop()  # the bridges of Tucson are down
        assert not refused(layer, 0, *national_map, topic, b"while-down")
        layer.sector_brokers["tucson"].start()
        wait_for(2)
        time.sleep(1.0)  # a copy looping back through node 2 would have come by now
        actions = {k: [m for m in v if m != b"probe"] for k, v in got.items()}  # a late probe aside
        assert actions == {"tucson": [b"live", b"while-down"], "swanton": []}, "\n".join(
            b.log_tail(12) for b in layer.all_brokers()
        )
    finally:
        for c in readers:
            c.disconnect()
            c.loop_stop()
        layer.wait_bridges()


def test_the_node_acl_keeps_each_sector_to_its_own_topics(layer):
    bridge_t = layer.national_login("bridge-tucson")
    national_map = layer.national_login("vigil-national-map-1")
    log = layer.nodes[0].log_path
    before = log.read_text().count("as bridge-tucson ")
    # logging in as the bridge's user takes its session over (client id = user name)
    assert not refused(layer, 0, *bridge_t, "vigil/v1/tucson/tracks")
    assert refused(layer, 0, *bridge_t, "vigil/v1/swanton/tracks")
    assert refused(layer, 0, *bridge_t, "vigil/v1/tucson/cam/t03/detections")  # not sent up
    assert refused(layer, 1, *national_map, "vigil/v1/swanton/alerts")
    assert not refused(
        layer, 1, *national_map, "vigil/v1/swanton/alerts/actions/vigil-national-map-1"
    )
    assert refused(layer, 1, *national_map, "vigil/v1/swanton/alerts/actions/vigil-swanton-map-1")
    # so wait until the real bridge is back (three probe logins, then its own)
    deadline = time.monotonic() + 20
    while log.read_text().count("as bridge-tucson ") < before + 4:
        assert time.monotonic() < deadline, layer.nodes[0].log_tail()
        time.sleep(0.1)


def test_sigkill_of_a_node_and_of_a_bridged_sector_broker_loses_no_message(layer, tmp_path):
    collectors = [NodeCollector(layer, 0), NodeCollector(layer, 1)]
    buses = {s: sector_publisher(layer, s, tmp_path).connect(15) for s in SECTORS}
    sent: dict[str, list[bytes]] = defaultdict(list)

    def send(sector: str) -> None:
        for i in range(PER_SECTOR):
            payload = f'{{"sector":"{sector}","n":{i}}}'.encode()
            buses[sector].publish(f"vigil/v1/{sector}/tracks", payload)
            sent[sector].append(payload)  # committed to the outbox: "sent"
            time.sleep(PACE_S)

    threads = [threading.Thread(target=send, args=(s,)) for s in SECTORS]
    # node 1's reader is away: node 1 holds its messages in the session, then dies before
    # its next save (autosave every 2 s) and forgets those it took since (nothing resends)
    collectors[0].go_offline()
    try:
        for t in threads:
            t.start()
        time.sleep(PER_SECTOR * PACE_S * 0.4)
        layer.nodes[0].kill()  # national node 1, SIGKILL
        time.sleep(0.3)
        layer.nodes[0].start()
        collectors[0].come_back()
        time.sleep(PER_SECTOR * PACE_S * 0.2)
        layer.sector_brokers["swanton"].kill()  # Swanton's broker and both its bridges
        time.sleep(0.3)
        layer.sector_brokers["swanton"].start()
        for t in threads:
            t.join(30)
        # every message acknowledged by the sector brokers, the replay window past
        for s, bus in buses.items():
            assert bus.flush(20), f"{s}: the sector broker did not acknowledge everything"
        want = {p for s in SECTORS for p in sent[s]}
        assert len(want) == PER_SECTOR * len(SECTORS)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            union = collectors[0].snapshot() | collectors[1].snapshot()
            if want <= union:
                break
            time.sleep(0.2)
        per_node = [len(want & c.snapshot()) for c in collectors]
        union = collectors[0].snapshot() | collectors[1].snapshot()
        missing = sorted(want - union)
        assert not missing, (
            f"{len(missing)} of {len(want)} sent messages reached no national node "
            f"(per node {per_node}); first {missing[:5]}\n"
            + "\n".join(b.log_tail(8) for b in layer.all_brokers())
        )
        # the node that was not killed has every message of both sectors, alone
        assert collectors[1].snapshot() >= want, f"node 2 has {per_node[1]} of {len(want)}"
        assert union <= want  # nothing came that was not sent
        # the bridges carry MQTT 5 user properties: every message keeps its de-duplication key
        assert [c.unkeyed for c in collectors] == [0, 0]
        # (node 1 alone typically misses what it took in the last autosave interval)
    finally:
        for bus in buses.values():
            bus.close()
        for c in collectors:
            c.close()


def bus_for(layer, host: str, port: int, user: str, password: str, name: str, **kw) -> MqttBus:
    settings = MqttSettings(
        host=host,
        port=port,
        username=user,
        password=password,
        reconnect_max_delay_s=0.3,
        session_expiry_s=300,
        **kw,
    )
    return MqttBus(name, settings, user, publish_quarantine=False)


def alert(site, sector: str, n: int, state: str = "new") -> Alert:
    lat, lon = (float(v) for v in site.sector.centre)
    return Alert(
        alert_id=f"{sector}-A{n}",
        time=time.time(),
        kind="zone_entry",
        priority=2,
        lat=lat,
        lon=lon + 0.01 * n,
        state=state,
        summary=f"{sector} alert {n}",
    )


def track(site, track_id: str) -> Track:
    lat, lon = (float(v) for v in site.sector.centre)
    return Track(
        track_id=track_id,
        time=time.time(),
        lat=lat + 0.01,
        lon=lon,
        vx=0.0,
        vy=1.0,
        cov=(25.0, 0.0, 0.0, 25.0),
        state="confirmed",
        class_guess="person",
    )


@pytest.fixture
def national(layer, tmp_path: Path):
    pytest.importorskip("starlette")
    pytest.importorskip("argon2")
    from argon2 import PasswordHasher

    from vigil.maps.live import AuditLog, ServerThread, UserStore
    from vigil.maps.live.national import NationalApp

    sites = {s: load(layer.deployments[s]).site for s in SECTORS}
    node = layer.nodes[1]
    user, password = layer.national_login("vigil-national-map-1")
    bus = bus_for(
        layer, node.host, node.port, user, password, "national",
        tls=True, ca_file=str(layer.ca_file),
    ).connect(15)  # fmt: skip
    users = UserStore(
        tmp_path / "users.sqlite",
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )
    users.add("cmd", "commander", PASSWORD)
    audit = AuditLog(tmp_path / "audit.sqlite")
    app = NationalApp(list(sites.values()), bus, users, audit, tick_s=0.1)
    server = ServerThread(app).start()
    publishers = {}
    for s in SECTORS:
        u, p = layer.sector_login(s, f"vigil-{s}")
        b = layer.sector_brokers[s]
        publishers[s] = bus_for(layer, b.host, b.port, f"{u}-out", p, s).connect(15)
    yield app, server, sites, publishers
    for bus_ in publishers.values():
        bus_.close()
    server.stop()
    app.close()
    bus.close()
    users.close()
    audit.close()


def status(url: str) -> int:
    """The HTTP status of a GET (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.browser
def test_national_view_shows_both_sectors_and_opens_one(national, checked_page):
    """The national view in headless Chromium, fed through the layer (issue 23, item 3).

    Both sectors publish alerts and tracks as their services do (the service's output
    identity) on their own brokers; ``NationalApp`` reads national node 2. A commander logs in
    once, sees both sectors on the overview map with their open-alert counts, picks one and
    gets its live map. The app subscribes to each sector's ``alerts`` for the overview, and to
    a sector's map topics only once it is opened. Nothing leaves the machine; any JavaScript
    error fails the test."""
    from vigil.maps.live.state import map_topics

    app, server, sites, publishers = national
    page = checked_page.page
    # the overview subscribes to the sectors' alerts only
    assert sorted(app.subscribed_topics()) == sorted(f"vigil/v1/{s}/alerts" for s in SECTORS)
    for s in SECTORS:
        for n in range(OPEN[s]):
            publishers[s].publish(f"vigil/v1/{s}/alerts", alert(sites[s], s, n))
        closing = alert(sites[s], s, 9)
        publishers[s].publish(f"vigil/v1/{s}/alerts", closing)
        publishers[s].publish(f"vigil/v1/{s}/alerts", alert(sites[s], s, 9, state="closed"))
        assert publishers[s].flush(10)
    # no session: a sector's API is refused and no sector map is made (nor subscribed)
    assert status(server.url + "/s/tucson/api/snapshot") == 401
    assert app.maps == {}

    page.goto(server.url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#username", "cmd")
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#sector-rows tr[data-sector=swanton]")
    for s in SECTORS:
        page.wait_for_selector(
            f"#sector-rows tr[data-sector={s}][data-open='{OPEN[s]}']", timeout=15_000
        )
        assert page.text_content(f"#sector-rows tr[data-sector={s}] .sector-seen") == str(
            OPEN[s] + 1
        )
    assert page.text_content("#national-open") == str(sum(OPEN.values()))
    # both sectors on the map: a border line and a labelled marker each
    tips = page.locator(".leaflet-tooltip .vigil-tip").all_text_contents()
    assert sorted(tips) == sorted(f"{s}: {OPEN[s]} open alert{'s' * (OPEN[s] != 1)}"
                                  for s in SECTORS)  # fmt: skip
    assert page.locator("path.leaflet-interactive").count() >= 2 * len(SECTORS)
    assert page.evaluate("() => Object.keys(VigilNational.sectors).sort()") == sorted(SECTORS)
    assert app.maps == {}  # nothing opened yet: still only the alerts topics

    page.select_option("#sector-picker", "swanton")
    page.wait_for_url(server.url + "/s/swanton/")
    page.wait_for_selector("#live-status[data-state=live]", timeout=20_000)
    assert page.text_content("#sector-name") == "swanton"
    assert sorted(app.maps) == ["swanton"]
    assert sorted(app.subscribed_topics()) == sorted(
        [f"vigil/v1/{s}/alerts" for s in SECTORS] + map_topics("swanton")
    )
    # the sector's map draws what comes now (it subscribed when opened)
    publishers["swanton"].publish("vigil/v1/swanton/tracks", track(sites["swanton"], "n-g1"))
    publishers["swanton"].publish("vigil/v1/swanton/alerts", alert(sites["swanton"], "swanton", 5))
    publishers["tucson"].publish("vigil/v1/tucson/tracks", track(sites["tucson"], "t-g1"))
    page.wait_for_function("() => !!VigilLive.tracks['n-g1']", timeout=15_000)
    page.wait_for_selector('#alert-queue .alert[data-alert-id="swanton-A5"]', timeout=15_000)
    time.sleep(0.5)  # a Tucson track, had it been routed here, has had time to come
    assert page.evaluate("() => Object.keys(VigilLive.tracks)") == ["n-g1"]
    # and the overview counts the new alert
    page.click("#national-link")
    page.wait_for_selector("#sector-rows tr[data-sector=swanton][data-open='2']", timeout=15_000)


def test_vigil_serve_national_reaches_a_node_over_tls(layer, tmp_path, monkeypatch, capsys):
    """``vigil serve --sector A --sector B --national-ca CA`` loads both deployments, connects
    to a national node over TLS as the second national map user, and (with no users yet)
    stops with the reason rather than serve a map nobody can log in to."""
    pytest.importorskip("starlette")
    pytest.importorskip("argon2")
    from vigil.cli import main as vigil_main

    for name, value in read_env(
        layer.root / "national" / "credentials" / "vigil-national-map-2.env"
    ).items():
        monkeypatch.setenv(name, value)
    node = layer.nodes[0]
    sectors = [a for s in SECTORS for a in ("--sector", str(layer.deployments[s]))]
    args = ["serve", *sectors, "--broker", f"{node.host}:{node.port}", "--users",
            str(tmp_path / "users.sqlite")]  # fmt: skip
    # plain TCP to a TLS listener: not reached
    assert vigil_main([*args, "--connect-timeout", "1"]) != 0
    assert "national node" in capsys.readouterr().err
    assert vigil_main([*args, "--national-ca", str(layer.ca_file), "--connect-timeout", "10"]) == 2
    err = capsys.readouterr().err
    assert "no users in" in err, err
    assert "vigil-national-map-2" in node.log_path.read_text()


def test_two_sector_services_side_by_side_reach_both_national_nodes(layer, tmp_path):
    """Two sector services (``vigil run``'s :class:`~vigil.service.SectorService`), one per
    sector, side by side in this process, each on its own bridged broker with its own
    identity: a tampered ground sensor's status, sent by its gateway to each sector, comes out
    of that sector's service as retained sensor state and as a sensor-health alert, and both
    reach both national nodes, each sector on its own topics."""
    from vigil.service import SectorService

    services = {}
    got: dict[int, dict[str, list]] = {0: defaultdict(list), 1: defaultdict(list)}
    buses = []
    try:
        for s in SECTORS:
            user, password = layer.sector_login(s, f"vigil-{s}")
            b = layer.sector_brokers[s]
            settings = MqttSettings(host=b.host, port=b.port, username=user, password=password)
            site = load(layer.deployments[s]).site
            services[s] = SectorService(site, settings, tmp_path / s, hold_s=0.0, idle_s=0.5)
            services[s].start(30.0)
        for k, node in enumerate(layer.nodes):
            user, password = layer.national_login("vigil-national-map-1")
            settings = MqttSettings(
                host=node.host, port=node.port, username=user, password=password,
                tls=True, ca_file=str(layer.ca_file), session_expiry_s=60,
            )  # fmt: skip
            bus = MqttBus("national", settings, user, publish_quarantine=False).connect(15)
            buses.append(bus)
            for s in SECTORS:
                for pattern in (f"vigil/v1/{s}/state/sensors/+", f"vigil/v1/{s}/alerts"):
                    bus.subscribe(pattern, lambda t, m, k=k: got[k][t.split("/")[2]].append(m))
        sent = {}
        for s in SECTORS:
            d = load(layer.deployments[s])
            gateway, sensors = _gateways(d)[0]
            user, password = layer.sector_login(s, f"ugs-{gateway}")
            b = layer.sector_brokers[s]
            dev = MqttBus(
                s, MqttSettings(host=b.host, port=b.port, username=user, password=password),
                user, publish_quarantine=False,
            ).connect(15)  # fmt: skip
            now = time.time()
            sent[s] = SensorStatus(
                sensor=sensors[0], time=now, battery=0.5, tamper=True, last_heard=now
            )
            dev.publish(f"vigil/v1/{s}/ugs/{sensors[0]}/status", sent[s])
            assert dev.flush(10)
            dev.close()

        def arrived(k: int, s: str) -> bool:
            alerts = [m for m in got[k][s] if isinstance(m, Alert)]
            return sent[s] in got[k][s] and any(a.kind == "sensor_health" for a in alerts)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(arrived(k, s) for k in (0, 1) for s in SECTORS):
                break
            time.sleep(0.1)
        for k in (0, 1):
            for s in SECTORS:
                assert arrived(k, s), f"node {k + 1}: {s}: {dict(got[k])}"
                # nothing of the other sector under this one's topics
                other = {m.sensor for m in got[k][s] if isinstance(m, SensorStatus)}
                assert other == {sent[s].sensor}, got[k][s]
    finally:
        for bus in buses:
            bus.close()
        for service in services.values():
            service.close()


def test_broker_init_bridge_mistakes_name_the_fix(layer, tmp_path, capsys):
    """``vigil broker init --bridge`` without the credentials, with another sector's, or with
    the credentials but no ``--bridge``: refused with what to give, and nothing written."""
    from vigil.cli import main as vigil_main

    creds = layer.root / "national" / "credentials"
    base = ["broker", "init", str(tmp_path / "b"), "--deployment", str(layer.deployments["tucson"])]
    cases = [
        (["--bridge", "127.0.0.1:1884"], "--bridge-credentials"),
        (["--bridge", "127.0.0.1:1884", "--bridge-credentials", str(creds / "bridge-swanton.env")],
         "sector 'tucson' bridges as 'bridge-tucson'"),
        (["--bridge-credentials", str(creds / "bridge-tucson.env")], "need --bridge"),
    ]  # fmt: skip
    for extra, needle in cases:
        assert vigil_main([*base, *extra]) != 0
        err = capsys.readouterr().err
        assert needle in err, err
        assert not (tmp_path / "b" / "passwd").exists()
