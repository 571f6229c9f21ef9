"""Open alerts over the live map's queue cap are kept and said on the page (issue 18 H2:
open alerts are never evicted silently)."""

from __future__ import annotations

import time

import pytest
import test_live_browser as lb

from vigil.ingest.schema import Alert
from vigil.maps.live import state

pytestmark = pytest.mark.browser

checked_page = lb.checked_page
scenario = lb.scenario


def test_status_says_how_many_open_alerts_are_over_the_cap(scenario, checked_page, monkeypatch):
    monkeypatch.setattr(state, "MAX_ALERTS", 2)
    s = scenario
    page = checked_page.page
    lb.login(page, s.server.url, "cmd", lb.PASSWORDS["cmd"])
    lb.wait_live(page)
    lat, lon = s.corridor_point(2, 500.0)
    for i in range(5):
        s.publish(
            Alert(
                alert_id=f"A-{i:04d}",
                time=time.time() - 5 + i,
                kind="crossing",
                priority=1,
                segment_id="tucson-0008",
                lat=lat,
                lon=lon,
                track_id=f"g-{i:04d}",
                units=["p03"],
                summary="group crossed northbound",
            )
        )
    status = page.locator("#live-status")
    page.wait_for_function(
        "() => document.getElementById('live-status').textContent.includes("
        '"3 open alerts over the queue\'s cap")',
        timeout=10_000,
    )
    assert status.get_attribute("data-state") == "overflow"
    # every open alert is still in the queue, none dropped
    assert page.locator("#alert-queue .alert").count() == 5
