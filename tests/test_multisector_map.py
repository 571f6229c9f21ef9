"""Issue 23, item 3: the national view in headless Chromium, fed through the broker layer.

Two sectors (Tucson and Swanton) publish alerts and tracks as their services do
(the service's output identity, Vigil's MQTT bus) on their own sector brokers; the bridges
carry them to the national nodes (:mod:`multisector_layer`); ``NationalApp`` reads node 2 as
a national map user. A commander logs in once, sees both sectors on the overview map with
their open-alert counts, picks a sector and gets its live map. The app subscribes to each
sector's ``alerts`` for the overview, and to a sector's map topics only once it is opened.
Nothing leaves the machine; any JavaScript error fails the test.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

import browser_checks  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from broker import missing_reason  # noqa: E402
from multisector_layer import SECTORS, build_layer  # noqa: E402

from vigil.config import load  # noqa: E402
from vigil.ingest.mqtt import MqttBus, MqttSettings  # noqa: E402
from vigil.ingest.schema import Alert, Track  # noqa: E402
from vigil.maps.live import AuditLog, ServerThread, UserStore  # noqa: E402
from vigil.maps.live.national import NationalApp  # noqa: E402
from vigil.maps.live.state import map_topics  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.broker]

checked_page = browser_checks.checked_page
PASSWORD = "commander-pass-1"
#: Open alerts each sector raises (and one more that it closes).
OPEN = {"tucson": 2, "swanton": 1}


@pytest.fixture(scope="module")
def layer():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    built = build_layer()
    yield built
    built.close()


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
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_national_view_shows_both_sectors_and_opens_one(national, checked_page):
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
