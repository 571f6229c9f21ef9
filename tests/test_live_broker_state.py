"""The live page says when the map server loses its broker (issue 17 item 11: a map that is no
longer fed must not look like a quiet sector), against a real Mosquitto stopped and restarted."""

from __future__ import annotations

import pytest
import test_live_browser as lb
from broker import Broker, missing_reason, service_acl

from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.maps.live import AuditLog, LiveMapApp, ServerThread

pytestmark = [pytest.mark.browser, pytest.mark.broker]

checked_page = lb.checked_page
MAP_USER = "vigil-tucson-map-1"


@pytest.fixture
def fed_map(tmp_path):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    b = Broker({MAP_USER: "pw-map"}, service_acl("tucson", MAP_USER)).start()
    s = lb.Scenario(tmp_path)  # users and site; its own in-process map is not used
    s.server.stop()
    s.app.close()
    settings = MqttSettings(host=b.host, port=b.port, username=MAP_USER, password="pw-map")
    bus = MqttBus("tucson", settings, MAP_USER)
    bus.connect(10)
    app = LiveMapApp(s.site, bus, s.users, AuditLog(tmp_path / "audit.sqlite"), tick_s=0.1)
    server = ServerThread(app).start()
    try:
        yield b, server
    finally:
        server.stop()
        app.close()
        bus.close()
        s.users.close()
        s.audit.close()
        b.cleanup()


def test_page_says_when_the_broker_is_lost_and_back(fed_map, checked_page) -> None:
    b, server = fed_map
    page = checked_page.page
    # the page's WebSocket stays up; only the server's broker link drops
    lb.login(page, server.url, "cmd", lb.PASSWORDS["cmd"])
    lb.wait_live(page)
    b.stop()
    page.wait_for_selector("#live-status[data-state=disconnected]", timeout=20_000)
    assert "broker connection lost" in page.inner_text("#live-status")
    b.start()
    lb.wait_live(page)
    assert page.inner_text("#live-status").startswith("live")
