"""Operators' labels in headless Chromium (issue 22 item 4): a commander clicks a track on the
live map, labels it animal, then vehicle, through the track's popup; the marker and the popup
show the label; the store holds both labels with their audit entries; a new server on the same
files shows the label on the track again, to a planner too, who is offered no label control.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

import browser_checks  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from test_live_browser import GROUP, PASSWORDS, Scenario, login, wait_live  # noqa: E402

from vigil.ingest.bus import InProcessBus  # noqa: E402
from vigil.maps.live import AuditLog, LiveMapApp, ServerThread, UserStore  # noqa: E402

pytestmark = pytest.mark.browser

checked_page = browser_checks.checked_page

MARKER = f'.vigil-track[data-track-id="{GROUP}"]'


def label_through_the_popup(page, label: str) -> None:
    """Pick ``label`` in the group's popup (opened with a click on the track when it is not
    open: a click on the track closes an open one) and press "label"."""
    popup = page.locator(f'.vigil-track-popup[data-track-id="{GROUP}"]')
    if not popup.is_visible():
        page.locator(MARKER).click()
    popup.wait_for(timeout=5_000)
    popup.locator("select.label-choice").select_option(label)
    popup.locator("button.label-set").click()
    page.wait_for_selector(f'{MARKER}[data-label="{label}"]', state="attached", timeout=5_000)
    page.wait_for_selector(
        f'.vigil-track-popup .operator-label[data-label="{label}"]', timeout=5_000
    )


def test_commander_labels_a_track_on_the_map_and_it_persists(tmp_path: Path, checked_page):
    s = Scenario(tmp_path)
    page = checked_page.page
    try:
        login(page, s.server.url, "cmd", PASSWORDS["cmd"])
        wait_live(page)
        first = s.group_at(0)
        page.locator(MARKER).wait_for(state="attached", timeout=10_000)
        page.evaluate(f"VigilLive.map.setView([{first.lat}, {first.lon}], 15, {{animate: false}})")
        page.locator(MARKER).click()
        popup = page.locator(f'.vigil-track-popup[data-track-id="{GROUP}"]')
        popup.wait_for(timeout=5_000)
        assert popup.locator(".operator-label").inner_text() == "no operator label"
        assert popup.locator("select.label-choice option").all_inner_texts() == [
            "person", "animal", "vehicle", "unknown",
        ]  # fmt: skip
        popup.locator("select.label-choice").select_option("animal")
        popup.locator("button.label-set").click()
        page.wait_for_selector(f'{MARKER}[data-label="animal"]', state="attached", timeout=5_000)
        shown = page.locator(".vigil-track-popup .operator-label").inner_text()
        # who and when, in the sector's local time with its offset
        assert shown.startswith("operator label animal (cmd, ") and shown.endswith("-07:00)")
        label_through_the_popup(page, "vehicle")

        rows = s.app.labels.history(GROUP)
        assert [(x.label, x.user, x.previous, x.track_class) for x in rows] == [
            ("animal", "cmd", None, "person"),
            ("vehicle", "cmd", "animal", "person"),
        ]
        audited = [(e.user, e.target, e.detail.split(" at ")[0])
                   for e in s.audit.entries(action="track_label")]  # fmt: skip
        assert audited == [("cmd", GROUP, "(none) -> animal"), ("cmd", GROUP, "animal -> vehicle")]
        site = s.site
        page.goto("about:blank")  # the page stops reconnecting to the server that stops
    finally:
        s.close()

    # a new server on the same users and audit files: the label is on the track again
    users = UserStore(
        tmp_path / "users.sqlite",
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )
    audit = AuditLog(tmp_path / "store.sqlite")
    bus = InProcessBus(site.sector.name)
    app = LiveMapApp(site, bus, users, audit, tick_s=0.1)
    try:
        with ServerThread(app) as server:
            page.context.clear_cookies()
            login(page, server.url, "cmd", PASSWORDS["cmd"])
            wait_live(page)
            s.bus = bus  # the scenario's group, on the new server's bus
            s.group_at(1)
            page.wait_for_selector(
                f'{MARKER}[data-label="vehicle"]', state="attached", timeout=10_000
            )
            text = page.evaluate(
                "id => VigilLive.tracks[id].marker.getTooltip()._content().textContent", GROUP
            )
            assert "operator label vehicle (cmd, " in text
            # a planner sees the label in the popup but is offered no control
            page.context.clear_cookies()
            login(page, server.url, "plan", PASSWORDS["plan"])
            wait_live(page)
            page.wait_for_selector(f'{MARKER}[data-label="vehicle"]', state="attached")
            page.evaluate(
                f"VigilLive.map.setView([{first.lat}, {first.lon}], 15, {{animate: false}})"
            )
            page.locator(MARKER).click()
            popup = page.locator(f'.vigil-track-popup[data-track-id="{GROUP}"]')
            popup.wait_for(timeout=5_000)
            assert (
                popup.locator(".operator-label")
                .inner_text()
                .startswith("operator label vehicle (cmd, ")
            )
            assert popup.locator("select.label-choice").count() == 0
            page.goto("about:blank")
    finally:
        app.close()
        audit.close()
        users.close()
