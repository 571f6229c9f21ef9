"""The live map's labels in headless Chromium (issue 17 item 8): every time shown is the
sector's local time with its UTC offset (status, alert queue, tooltips, history playback), and
a track's count says it counts updates, not people."""

from __future__ import annotations

import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

import browser_checks  # noqa: E402
from test_live_browser import GROUP, PASSWORDS, Scenario, login, wait_live  # noqa: E402

from vigil.config import load_default  # noqa: E402
from vigil.ingest.schema import Alert, AlertEvent  # noqa: E402

pytestmark = pytest.mark.browser

checked_page = browser_checks.checked_page


def local(t: float, zone: str) -> str:
    """What the page should show for ``t`` (UTC seconds): ``2026-06-01 02:14:07 -07:00``."""
    d = datetime.fromtimestamp(t, ZoneInfo(zone))
    return d.strftime("%Y-%m-%d %H:%M:%S ") + d.isoformat()[-6:]


def tooltip_of(page, track_id: str) -> str:
    return page.evaluate(
        "id => { const m = VigilLive.tracks[id].marker; m.openTooltip();"
        " const t = m.getTooltip().getElement().textContent; m.closeTooltip(); return t; }",
        track_id,
    )


def summer_time_site():
    """The default deployment placed in a time zone with summer time."""
    site = load_default().site
    return msgspec.structs.replace(
        site, sector=msgspec.structs.replace(site.sector, timezone="America/Los_Angeles")
    )


def test_times_are_local_with_offset_and_counts_say_updates(tmp_path, checked_page):
    s = Scenario(tmp_path)
    try:
        zone = s.site.sector.timezone
        page = checked_page.page
        login(page, s.server.url, "cmd", PASSWORDS["cmd"])
        wait_live(page)
        assert page.evaluate("VigilLive.timeZone") == zone
        for step in range(3):
            msg = s.group_at(step)
        s.publish(msgspec.structs.replace(msg, time=msg.time + 1.0, count=174))
        page.wait_for_function(
            "id => VigilLive.tracks[id] && VigilLive.tracks[id].row[8] === 174", arg=GROUP
        )

        # the track's tooltip: 174 updates, not "×174" (people), at a local time
        tip = tooltip_of(page, GROUP)
        assert "174 updates" in tip and "×" not in tip, tip
        assert tip.endswith(" at " + local(msg.time + 1.0, zone)), tip

        # the status clock
        page.wait_for_function(
            "() => / [-+]\\d\\d:\\d\\d$/.test(document.getElementById('live-status').textContent)"
        )
        status = page.inner_text("#live-status")
        assert status.startswith("live · ") and "Z" not in status, status

        # the alert queue: the raised time, local, kept after an acknowledgement an hour later
        raised = time.time() - 3605.0
        lat, lon = s.corridor_point(2, 1100.0)
        alert = Alert(
            alert_id="A-0009",
            time=raised,
            kind="crossing",
            priority=1,
            segment_id="tucson-0008",
            lat=lat,
            lon=lon,
            track_id=GROUP,
            summary="crossed northbound",
        )
        s.publish(alert)
        item = page.locator('#alert-queue .alert[data-alert-id="A-0009"]')
        item.wait_for(timeout=10_000)
        assert item.locator(".time").inner_text() == local(raised, zone)
        # the date, time and offset stay on one line in the narrow panel
        box = item.locator(".time").bounding_box()
        assert box is not None and box["height"] < 20, box
        acked = msgspec.structs.replace(
            alert,
            state="acknowledged",
            history=[AlertEvent(time=raised + 3600, state="acknowledged", by="x")],
        )
        s.publish(acked)  # as the sector service now publishes it: the alert's own time
        page.wait_for_selector(
            '#alert-queue .alert[data-alert-id="A-0009"][data-state="acknowledged"]'
        )
        assert item.locator(".time").inner_text() == local(raised, zone)

        # history playback: the time played and the history markers' tooltips
        page.check("#history-toggle")
        page.wait_for_selector(f".vigil-history-track[data-track-id='{GROUP}']", timeout=10_000)
        offset = local(msg.time, zone)[-6:]
        played = page.inner_text("#history-time")
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d " + re.escape(offset), played)
        assert "playback · " + played[:26] in page.inner_text("#live-status")
        tips = page.evaluate(
            "() => { const out = []; VigilLive.map.eachLayer(l => {"
            " if (l.getTooltip && l.getTooltip() && l.getElement && l.getElement() &&"
            " l.getElement().classList.contains('vigil-history-track')) {"
            " l.openTooltip(); out.push(l.getTooltip().getElement().textContent);"
            " l.closeTooltip(); } }); return out; }"
        )
        # the history ring keeps a point every few seconds: the last or the one before
        assert len(tips) == 1 and tips[0] in [
            f"track {GROUP} at " + local(t, zone) for t in (msg.time, msg.time + 1.0)
        ], tips
        page.uncheck("#history-toggle")
    finally:
        s.close()


def test_summer_and_winter_offsets_follow_the_sectors_zone(tmp_path, checked_page):
    s = Scenario(tmp_path, site=summer_time_site())
    try:
        page = checked_page.page
        login(page, s.server.url, "cmd", PASSWORDS["cmd"])
        wait_live(page)
        assert page.evaluate("VigilLive.timeZone") == "America/Los_Angeles"
        # 2026-06-01 02:34:07Z and 2026-11-30 00:53:20Z
        summer, winter = 1_780_281_247.0, 1_796_000_000.0
        shown = page.evaluate("ts => ts.map(t => VigilLive.clock(t))", [summer, winter])
        assert shown == [local(summer, "America/Los_Angeles"), local(winter, "America/Los_Angeles")]
        assert shown[0].endswith(" -07:00") and shown[1].endswith(" -08:00"), shown
        assert page.evaluate("VigilLive.clock(0)") == "–"
    finally:
        s.close()
