"""Text is text on the live map (issue 18, H1): hostile strings from the wire and the
deployment never become markup or script in the commander's browser.

Hostile strings arrive where real data arrives: zone names in the deployment, an alert's
summary, its history's note and a tower's pointing reason published on the bus the live server
reads. Identifiers (track, alert, aircraft, unit ids) are refused by the wire schema's
identifier pattern, so to check that the page holds even if one got past it, they are handed to
the server's live state directly, behind the bus's check; from there they take the real path
to the page (WebSocket snapshot and updates, ``/api/history``). (Where the state itself
refuses an aircraft the deployment does not name, that refusal is checked instead.)

Then every tooltip is opened, markers are hovered, every alert in the queue is clicked, and
history is played back and left: no payload may run (``window.__pwned`` stays unset), no
element the payloads describe may appear (no ``on*`` attribute, no ``img``/``svg``/``script``
from them), and the text must show literally. The page must log no error at all (CSP refusals
included). The live map binds no popups; tooltips are all it has.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

import browser_checks  # noqa: E402
from test_live_browser import PASSWORDS, Scenario, login, wait_live  # noqa: E402

from vigil.config import load_default  # noqa: E402
from vigil.ingest.schema import (  # noqa: E402
    Alert,
    AlertEvent,
    CameraCommand,
    Telemetry,
    Track,
    topic_for,
)

pytestmark = pytest.mark.browser

# fails the test on any console error or uncaught exception on the page
checked_page = browser_checks.checked_page

IMG = '<img src=x onerror="window.__pwned=1">'
SVG = '<svg onload="window.__pwned=2"></svg>'
SCRIPT = '"><script>window.__pwned=3</script>'
HOSTILE_TRACK = "t" + IMG
HOSTILE_ALERT = "A" + SVG
HOSTILE_UAS = "uas" + SCRIPT
HOSTILE_UNIT = "p" + IMG

# every element or attribute a payload would make if it were parsed as HTML
INJECTED = """() => {
  const found = [];
  for (const e of document.querySelectorAll('*')) {
    for (const a of e.attributes) if (a.name.startsWith('on')) found.push(e.tagName + ' ' + a.name);
  }
  document.querySelectorAll('img[src="x"], svg[onload], script:not([src])').forEach(e => {
    if (e.id !== 'vigil-live-options') found.push(e.outerHTML.slice(0, 80));
  });
  return found;
}"""

# open every tooltip on the map and collect its text
TOOLTIPS = """() => {
  const texts = [];
  VigilLive.map.eachLayer(l => {
    if (!l.getTooltip || !l.getTooltip()) return;
    l.openTooltip();
    const el = l.getTooltip().getElement();
    if (el) texts.push(el.textContent);
    l.closeTooltip();
  });
  return texts;
}"""


def hostile_site():
    """The default deployment with every zone named by a payload."""
    site = load_default().site
    names = [IMG, SVG, SCRIPT]
    zones = [
        msgspec.structs.replace(z, name=f"zone {names[i % 3]}") for i, z in enumerate(site.zones)
    ]
    return msgspec.structs.replace(site, zones=zones)


def feed(s: Scenario) -> dict[str, str]:
    """Publish the hostile picture; returns the texts that must appear literally."""
    now = time.time() - 2.0
    zone = s.site.zones[0]
    lat, lon = s.corridor_point(2, 900.0)
    # free text through the bus, as a gateway or the service would publish it
    s.publish(
        Alert(
            alert_id="A-0101",
            time=now,
            kind="zone_entry",
            priority=1,
            zone=zone.id,
            lat=lat,
            lon=lon,
            units=["p03"],
            history=[AlertEvent(time=now, state="new", note=SCRIPT)],
            summary="sensor " + IMG + " tripped",
        )
    )
    s.publish(CameraCommand(camera="t03", time=now, pan_deg=200.0, tilt_deg=1.0, reason=SVG))
    s.group_at(0)
    s.group_at(1)
    # identifiers the schema refuses, handed to the live state behind the bus's check
    live = s.app.live
    for step in range(3):
        lat, lon = s.corridor_point(3, 300.0 + 200.0 * step)
        t = Track(
            track_id=HOSTILE_TRACK,
            time=now - 20.0 + 10.0 * step,
            lat=lat,
            lon=lon,
            vx=0.0,
            vy=1.0,
            cov=(25.0, 0.0, 0.0, 25.0),
            state="confirmed",
            class_guess="person",
        )
        live.apply(topic_for(s.sector, t), t)
    lat, lon = s.corridor_point(4, 700.0)
    a = Alert(
        alert_id=HOSTILE_ALERT,
        time=now,
        kind="crossing",
        priority=2,
        segment_id="tucson-0008",
        lat=lat,
        lon=lon,
        track_id=HOSTILE_TRACK,
        units=[HOSTILE_UNIT],
        summary=SCRIPT,
    )
    live.apply(topic_for(s.sector, a), a)
    craft = s.site.aircraft[0]
    m = Telemetry(
        aircraft=HOSTILE_UAS,
        time=now,
        lat=craft.orbit_centre[0],
        lon=craft.orbit_centre[1],
        alt_m=2400.0,
        agl_m=1200.0,
        yaw_deg=90.0,
    )
    refused = sum(v for k, v in live.counts.items() if k.startswith("refused"))
    live.apply(topic_for(s.sector, m), m)
    if HOSTILE_UAS not in live.uas:
        # the state takes aircraft only from the deployment's: refused, and counted
        assert sum(v for k, v in live.counts.items() if k.startswith("refused")) == refused + 1
    return {
        "summary": "sensor " + IMG + " tripped",
        "zone": f"zone {IMG}",
        "reason": SVG,
        "track": HOSTILE_TRACK,
        "alert": HOSTILE_ALERT,
        "aircraft": HOSTILE_UAS,
        "unit": HOSTILE_UNIT,
    }


@pytest.fixture
def hostile(tmp_path: Path):
    s = Scenario(tmp_path, site=hostile_site())
    yield s
    s.close()


def assert_not_pwned(page) -> None:
    assert page.evaluate("() => window.__pwned") is None
    assert page.evaluate(INJECTED) == []


def test_hostile_strings_stay_text_in_tooltips_queue_and_playback(hostile, checked_page):
    s = hostile
    page = checked_page.page
    login(page, s.server.url, "cmd", PASSWORDS["cmd"])
    wait_live(page)
    texts = feed(s)
    uas = HOSTILE_UAS in s.app.live.uas
    if not uas:
        del texts["aircraft"]
    page.wait_for_function(
        "a => VigilLive.tracks[a[0]] && VigilLive.alerts[a[1]] && (!a[3] || VigilLive.uas[a[2]])"
        " && VigilLive.alerts['A-0101'] && VigilLive.towers.t03.reason",
        arg=[HOSTILE_TRACK, HOSTILE_ALERT, HOSTILE_UAS, uas],
        timeout=10_000,
    )

    # hover the markers a payload rides on, as a commander would
    markers = [("tracks", HOSTILE_TRACK), ("alerts", HOSTILE_ALERT)]
    for what, ident in markers + ([("uas", HOSTILE_UAS)] if uas else []):
        ll = page.evaluate(
            "a => { const v = VigilLive[a[0]][a[1]]; const p = v.marker.getLatLng();"
            " VigilLive.map.setView(p, 15, {animate: false}); return [p.lat, p.lng]; }",
            [what, ident],
        )
        point = page.evaluate(
            "ll => { const p = VigilLive.map.latLngToContainerPoint(ll);"
            " const r = VigilLive.map.getContainer().getBoundingClientRect();"
            " return [r.left + p.x, r.top + p.y]; }",
            ll,
        )
        page.mouse.move(point[0], point[1])
        page.wait_for_timeout(150)
        assert_not_pwned(page)
    page.mouse.move(5, 5)

    # open every tooltip on the map
    page.evaluate("VigilLive.map.fitBounds([[31.25, -111.2], [31.5, -110.6]], {animate: false})")
    tips = " | ".join(page.evaluate(TOOLTIPS))
    for key in ("zone", "reason", "track", "alert", "aircraft"):
        if key not in texts:
            continue
        assert texts[key] in tips, f"{key}: {texts[key]!r} not shown literally in a tooltip"
    assert texts["summary"] in tips and SCRIPT in tips
    assert_not_pwned(page)

    # the queue shows the text literally; click every alert in it
    queue = page.locator("#alert-queue")
    shown = queue.inner_text()
    assert texts["summary"] in shown and SCRIPT in shown
    assert texts["zone"] in shown  # the zone alert names its zone
    assert texts["unit"] in shown and texts["track"] in shown
    items = page.locator("#alert-queue .alert")
    assert items.count() >= 2
    for i in range(items.count()):
        items.nth(i).locator(".summary, .meta").first.click()
        assert_not_pwned(page)

    # history playback: the hostile track id comes back from /api/history
    page.check("#history-toggle")
    page.wait_for_function(
        "id => [...document.querySelectorAll('.vigil-history-track')]"
        ".some(e => e.getAttribute('data-track-id') === id)",
        arg=HOSTILE_TRACK,
        timeout=10_000,
    )
    tips = " | ".join(page.evaluate(TOOLTIPS))
    assert "track " + HOSTILE_TRACK + " at " in tips
    page.locator("#history-slider").fill("500")
    page.locator("#history-slider").fill("1000")
    assert_not_pwned(page)
    page.uncheck("#history-toggle")
    page.wait_for_selector("#live-status[data-state=live]", timeout=10_000)
    assert_not_pwned(page)


def test_hostile_text_in_the_audit_log_stays_text_on_the_admin_page(hostile, checked_page):
    """A user's request path lands in the audit log (a refused cross-site request): the admin
    page shows it as text."""
    s = hostile
    s.users.add("adm", "admin", "admin-pass-long-1")
    page = checked_page.page
    login(page, s.server.url, "cmd", PASSWORDS["cmd"])
    wait_live(page)
    payload = IMG + '"><svg onload="window.__pwned=2">'  # no "/": the route must match
    path = "/api/alerts/" + payload + "/acknowledge"
    status = page.evaluate("p => fetch(p, {method: 'POST', body: '{}'}).then(r => r.status)", path)
    assert status in (400, 403, 404)
    checked_page.allow(r"status of (400|403|404) .*/api/alerts/")
    logged = [e.target for e in s.audit.entries()]
    assert any(payload in t for t in logged), logged
    page.context.clear_cookies()
    login(page, s.server.url, "adm", "admin-pass-long-1")
    page.goto(s.server.url + "/admin")
    page.wait_for_function(
        "p => document.querySelector('#audit') &&"
        " document.querySelector('#audit').textContent.includes(p)",
        arg=payload,
        timeout=10_000,
    )
    assert_not_pwned(page)


def test_tile_attribution_from_the_deployment_is_text(tmp_path: Path, checked_page) -> None:
    """Leaflet shows a tile layer's attribution as HTML: the page escapes it first."""
    attribution = "tiles " + IMG
    s = Scenario(
        tmp_path,
        tiles_url="http://127.0.0.1:9/{z}/{x}/{y}.png",  # nothing listens: tiles fail to load
        tiles_attribution=attribution,
    )
    try:
        checked_page.allow(r"ERR_CONNECTION_REFUSED|127\.0\.0\.1:9/")
        page = checked_page.page
        login(page, s.server.url, "cmd", PASSWORDS["cmd"])
        wait_live(page)
        assert attribution in page.inner_text(".leaflet-control-attribution")
        assert_not_pwned(page)
    finally:
        s.close()
