"""History playback on the live map does not look like live (issue 17, item 5).

While playing, the status says "playback" with the time shown (not "live · N tracks") and the
alert queue is marked as live, not played back; tracks arriving and ending meanwhile are kept
current off the map without JavaScript errors; back to live, the map shows exactly the live
tracks, with their markers and attributes, and no history marker is left behind.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

import browser_checks  # noqa: E402
from test_live_browser import GROUP, PASSWORDS, Scenario, login, wait_live  # noqa: E402

from vigil.ingest.schema import Alert  # noqa: E402

pytestmark = pytest.mark.browser

# fails the test on any console error or uncaught exception on the page
checked_page = browser_checks.checked_page

# markers on the map that no live track accounts for, and live tracks with no marker
GHOSTS = """() => {
  const live = new Set(Object.keys(VigilLive.tracks));
  const els = [...document.querySelectorAll('.leaflet-marker-pane .vigil-track')];
  return {
    ghosts: els.map(e => e.getAttribute('data-track-id')).filter(id => !live.has(id)),
    history: document.querySelectorAll('.vigil-history-track').length,
    missing: [...live].filter(id => !els.some(e => e.getAttribute('data-track-id') === id)),
    unlabelled: els.filter(e => !e.getAttribute('data-class') || !e.getAttribute('data-state'))
      .length,
  };
}"""


@pytest.fixture
def scenario(tmp_path: Path):
    s = Scenario(tmp_path)
    yield s
    s.close()


def test_playback_is_marked_and_returning_to_live_leaves_no_ghosts(scenario, checked_page):
    s = scenario
    page = checked_page.page
    for step in range(4):
        s.group_at(step)
        s.group_at(step, track_id="g-0002", corridor=4, cls="animal")
    lat, lon = s.corridor_point(2, 1000.0)
    s.publish(
        Alert(
            alert_id="A-0001",
            time=time.time() - 5,
            kind="crossing",
            priority=1,
            segment_id="tucson-0008",
            lat=lat,
            lon=lon,
            track_id=GROUP,
            summary="group of 4 crossed northbound",
        )
    )
    login(page, s.server.url, "cmd", PASSWORDS["cmd"])
    wait_live(page)
    page.wait_for_selector('#alert-queue .alert[data-alert-id="A-0001"]', timeout=10_000)
    page.wait_for_function("() => Object.keys(VigilLive.tracks).length === 2", timeout=10_000)

    # playback: the status and the queue say so
    page.check("#history-toggle")
    page.wait_for_selector(".vigil-history-track[data-track-id='g-0001']", timeout=10_000)
    status = page.locator("#live-status")
    assert status.get_attribute("data-state") == "playback"
    assert status.inner_text().startswith("playback · ") and "live" not in status.inner_text()
    assert page.locator("#alerts-section").get_attribute("data-mode") == "playback"
    assert "not played back" in page.inner_text("#alert-mode")
    assert page.locator("#vigil-map.vigil-playback .vigil-alert-marker").count() == 1  # dimmed
    assert page.locator(".leaflet-marker-pane .vigil-track:not(.vigil-history-track)").count() == 0
    page.locator("#history-slider").fill("400")
    assert "playback · " in status.inner_text()

    # the live picture moves on meanwhile: a new track, a moved one, an ended one
    s.group_at(4)
    s.group_at(0, track_id="g-0003", corridor=0)
    ended = s.group_at(4, track_id="g-0002", corridor=4, cls="animal")
    s.publish(msgspec.structs.replace(ended, time=ended.time + 1.0, state="ended"))
    page.wait_for_function(
        "() => VigilLive.tracks['g-0003'] && !VigilLive.tracks['g-0002']", timeout=10_000
    )
    page.wait_for_timeout(500)  # several more batches while playing
    assert status.get_attribute("data-state") == "playback", "a live batch overwrote the status"

    # back to live: exactly the live tracks, labelled, nothing left of the playback
    page.uncheck("#history-toggle")
    page.wait_for_selector("#live-status[data-state=live]", timeout=10_000)
    assert status.inner_text().startswith("live · 2 tracks")
    assert page.locator("#alerts-section").get_attribute("data-mode") == "live"
    assert page.inner_text("#alert-mode") == ""
    assert page.locator("#vigil-map.vigil-playback").count() == 0
    state = page.evaluate(GHOSTS)
    assert state == {"ghosts": [], "history": 0, "missing": [], "unlabelled": 0}, state
    new = page.locator('.vigil-track[data-track-id="g-0003"]')
    assert new.get_attribute("data-class") == "person"

    # and again, switching off before the history has arrived
    page.check("#history-toggle")
    page.uncheck("#history-toggle")
    page.wait_for_timeout(500)
    assert status.get_attribute("data-state") == "live"
    assert page.evaluate(GHOSTS)["history"] == 0
