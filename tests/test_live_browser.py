"""The live map in headless Chromium, every non-local request blocked and counted.

A commander logs in, watches a group's track appear and move as the bus moves it, sees the
alert in the queue and acknowledges it; the acknowledgement reaches the bus and the audit
log. A planner sees the queue but cannot acknowledge. A wrong password, no session and a
forged session are refused. Nothing leaves the machine.

The scenario is driven through the bus directly (the simulator is another stage): Track
messages that walk a group up a smuggling corridor, and an Alert on it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import LineString

pytest.importorskip("starlette")
pytest.importorskip("argon2")

import browser_checks  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402

from vigil.config import load_default  # noqa: E402
from vigil.ingest.bus import InProcessBus  # noqa: E402
from vigil.ingest.schema import (  # noqa: E402
    Alert,
    AlertAction,
    CameraCommand,
    Crossing,
    SensorEvent,
    SensorStatus,
    Telemetry,
    Track,
    topic_for,
)
from vigil.maps.live import AuditLog, LiveMapApp, ServerThread, UserStore  # noqa: E402

pytestmark = pytest.mark.browser

# fails the test on any console error or uncaught exception on the page
checked_page = browser_checks.checked_page

PASSWORDS = {"cmd": "commander-pass-1", "plan": "planner-pass-1", "agt": "agent-pass-1"}
GROUP = "g-0001"
ALERT = "A-0001"


class Scenario:
    """A sector, its bus, a running live map, and a recorder of alert actions on the bus."""

    def __init__(self, tmp: Path, site=None, **app_options) -> None:
        self.site = site if site is not None else load_default().site
        self.sector = self.site.sector.name
        self.frame = self.site.frame()
        self.bus = InProcessBus(self.sector)
        # argon2id with cheap parameters: the production ones cost about a second a login here
        self.users = UserStore(
            tmp / "users.sqlite",
            hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        )
        self.users.add("cmd", "commander", PASSWORDS["cmd"])
        self.users.add("plan", "planner", PASSWORDS["plan"])
        self.users.add("agt", "agent", PASSWORDS["agt"], unit="p07")
        self.audit = AuditLog(tmp / "store.sqlite")
        self.actions: list[AlertAction] = []
        self._lock = threading.Lock()
        self.bus.subscribe(
            f"vigil/v1/{self.sector}/alerts/actions/+", lambda _t, m: self._record(m)
        )
        self.app = LiveMapApp(
            self.site, self.bus, self.users, self.audit, tick_s=0.1, **app_options
        )
        self.server = ServerThread(self.app).start()
        self.t0 = time.time() - 40.0

    def _record(self, m: AlertAction) -> None:
        with self._lock:
            self.actions.append(m)

    def publish(self, msg) -> None:
        self.bus.publish(topic_for(self.sector, msg), msg)

    def corridor_point(self, corridor: int, d_m: float) -> tuple[float, float]:
        """``(lat, lon)`` at ``d_m`` metres along a corridor."""
        path = np.asarray(self.site.corridors[corridor].path)
        x, y = self.frame.to_local(path[:, 0], path[:, 1])
        p = LineString(np.column_stack([x, y])).interpolate(d_m)
        lat, lon = self.frame.to_wgs84(np.array([p.x]), np.array([p.y]))
        return float(lat[0]), float(lon[0])

    def group_at(self, step: int, track_id: str = GROUP, corridor: int = 2, cls="person"):
        lat, lon = self.corridor_point(corridor, 200.0 + 300.0 * step)
        msg = Track(
            track_id=track_id,
            time=self.t0 + 10.0 * step,
            lat=lat,
            lon=lon,
            vx=0.0,
            vy=1.2,
            cov=(25.0, 0.0, 0.0, 25.0),
            state="confirmed" if step > 0 else "tentative",
            class_guess=cls,
            class_probs={cls: 0.9},
            sensors=["t03", "u020"],
            count=4,
        )
        self.publish(msg)
        return msg

    def close(self) -> None:
        self.server.stop()
        self.app.close()
        self.users.close()
        self.audit.close()


@pytest.fixture
def scenario(tmp_path: Path):
    s = Scenario(tmp_path)
    yield s
    s.close()


def login(page, url: str, name: str, password: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#login-form")
    assert page.url.endswith("/login")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#login-button")


def wait_live(page) -> None:
    page.wait_for_selector("#live-status[data-state=live]", timeout=20_000)
    page.wait_for_function("() => VigilLive.stats.snapshots >= 1", timeout=10_000)


def marker_latlng(page, track_id: str):
    return page.evaluate(
        "id => { const t = VigilLive.tracks[id]; if (!t) return null;"
        " const p = t.marker.getLatLng(); return [p.lat, p.lng]; }",
        track_id,
    )


def wait_position(page, track_id: str, lat: float, lon: float) -> None:
    page.wait_for_function(
        "a => { const t = VigilLive.tracks[a[0]]; if (!t) return false;"
        " const p = t.marker.getLatLng();"
        " return Math.abs(p.lat - a[1]) < 2e-6 && Math.abs(p.lng - a[2]) < 2e-6; }",
        arg=[track_id, lat, lon],
        timeout=10_000,
    )


def decorate(s: Scenario, now: float) -> None:
    """The rest of a sector's picture: other tracks, crossings, sensors, a turned camera, the
    aircraft and its footprint, a second alert."""
    for i, (corridor, cls) in enumerate(
        [(0, "person"), (4, "person"), (5, "animal"), (3, "person")]
    ):
        for step in range(6):
            s.group_at(step, track_id=f"g-01{i}", corridor=corridor, cls=cls)
    road = np.asarray(s.site.roads[1].path)
    for i in range(3):
        f = 0.2 + 0.25 * i
        lat = float(np.interp(f, [0, 1], [road[0, 0], road[-1, 0]]))
        lon = float(np.interp(f, [0, 1], [road[0, 1], road[-1, 1]]))
        s.publish(
            Track(
                track_id=f"v-{i}",
                time=now,
                lat=lat,
                lon=lon,
                vx=-5.0,
                vy=18.0,
                cov=(16.0, 0.0, 0.0, 16.0),
                state="confirmed",
                class_guess="vehicle",
            )
        )
    for k, seg in enumerate(["tucson-0008", "tucson-0008", "tucson-0008", "tucson-0021"]):
        lat, lon = s.corridor_point(2, 1800.0)
        s.publish(
            Crossing(
                crossing_id=f"x{k}",
                track_id=GROUP,
                time=now - 600 * k,
                segment_id=seg,
                direction="northbound",
                lat=lat,
                lon=lon,
            )
        )
    for i, sensor in enumerate(s.site.sensors[:12]):
        state = ("ok", "ok", "degraded", "offline")[i % 4]
        s.publish(
            SensorStatus(
                sensor=sensor.id,
                time=now,
                battery=0.2 + 0.06 * i,
                state=state,
                last_heard=now - 30.0 * i,
            )
        )
    s.publish(
        SensorEvent(
            sensor=s.site.sensors[20].id,
            time=now,
            modality=s.site.sensors[20].modality,
            strength=3.2,
            class_guess="person",
            class_confidence=0.7,
        )
    )
    s.publish(CameraCommand(camera="t03", time=now, pan_deg=205.0, tilt_deg=1.5, reason="cue"))
    a = s.site.aircraft[0]
    lat0, lon0 = a.orbit_centre
    foot = [
        (lat0 - 0.004, lon0 - 0.005),
        (lat0 - 0.004, lon0 + 0.005),
        (lat0 + 0.004, lon0 + 0.006),
        (lat0 + 0.004, lon0 - 0.006),
    ]
    s.publish(
        Telemetry(
            aircraft=a.id,
            time=now,
            lat=lat0 + 0.02,
            lon=lon0,
            alt_m=2400.0,
            agl_m=1200.0,
            yaw_deg=270.0,
            footprint=foot,
        )
    )
    lat, lon = s.corridor_point(4, 1500.0)
    s.publish(
        Alert(
            alert_id="A-0002",
            time=now,
            kind="zone_entry",
            priority=2,
            zone="z2",
            lat=lat,
            lon=lon,
            track_id="g-011",
            units=["p07"],
            summary="group of 3 entered West ranch lands",
        )
    )


def test_commander_sees_track_move_and_acknowledges_alert(scenario, checked_page, tmp_path):
    s = scenario
    page = checked_page.page
    login(page, s.server.url, "cmd", PASSWORDS["cmd"])
    wait_live(page)
    assert page.url == s.server.url + "/"
    assert page.evaluate("L.version") == "1.9.4"
    assert page.locator("path.vigil-segment").count() == len(s.site.border().segments)
    assert page.locator("path.vigil-sensor").count() == len(s.site.sensors)
    assert page.locator(".vigil-tower").count() == len(s.site.towers)
    assert page.locator("path.vigil-fov").count() == len(s.site.towers)
    assert page.locator(".vigil-unit").count() == len(s.site.units)
    assert page.locator("path.vigil-zone").count() == len(s.site.zones)

    # a group appears ...
    first = s.group_at(0)
    marker = page.locator(f'.vigil-track[data-track-id="{GROUP}"]')
    marker.wait_for(state="attached", timeout=10_000)
    wait_position(page, GROUP, first.lat, first.lon)
    assert marker.get_attribute("data-class") == "person"
    assert marker.get_attribute("data-state") == "tentative"
    page.evaluate(f"VigilLive.map.setView([{first.lat}, {first.lon}], 15, {{animate: false}})")
    box0 = marker.bounding_box()

    # ... and moves up the corridor as the bus moves it
    boxes = [box0]
    for step in range(1, 4):
        msg = s.group_at(step)
        wait_position(page, GROUP, msg.lat, msg.lon)
        boxes.append(marker.bounding_box())
    assert marker.get_attribute("data-state") == "confirmed"
    ys = [b["y"] for b in boxes]
    assert all(b < a for a, b in zip(ys, ys[1:], strict=False)), f"marker did not move north: {ys}"
    assert ys[0] - ys[-1] > 100, ys  # 900 m at zoom 15 is a few hundred pixels
    assert page.evaluate(f"VigilLive.tracks['{GROUP}'].pts.length") == 4

    # an alert arrives in the queue
    lat, lon = s.corridor_point(2, 1100.0)
    s.publish(
        Alert(
            alert_id=ALERT,
            time=time.time() - 5,
            kind="crossing",
            priority=1,
            segment_id="tucson-0008",
            lat=lat,
            lon=lon,
            track_id=GROUP,
            units=["p03", "p04"],
            summary="group of 4 crossed northbound",
        )
    )
    item = page.locator(f'#alert-queue .alert[data-alert-id="{ALERT}"]')
    item.wait_for(timeout=10_000)
    assert "crossed northbound" in item.inner_text()
    assert item.get_attribute("data-state") == "new"
    assert s.actions == []

    # the commander acknowledges it: the action reaches the bus and the audit log
    item.locator("button.ack").click()
    page.wait_for_selector(
        f'#alert-queue .alert[data-alert-id="{ALERT}"][data-state="acknowledged"]', timeout=10_000
    )
    assert len(s.actions) == 1
    action = s.actions[0]
    assert (action.alert_id, action.action, action.by) == (ALERT, "acknowledge", "cmd")
    logged = [(e.user, e.action, e.target) for e in s.audit.entries()]
    assert ("cmd", "login", "") in logged
    assert ("cmd", "acknowledge", ALERT) in logged

    # the commander assigns a unit
    item = page.locator(f'#alert-queue .alert[data-alert-id="{ALERT}"]')
    item.locator("select.assign-unit").select_option("p04")
    item.locator("button.assign").click()
    page.wait_for_function(
        "id => document.querySelector(`#alert-queue .alert[data-alert-id='${id}'] .meta`)"
        ".textContent.includes('assigned p04')",
        arg=ALERT,
        timeout=10_000,
    )
    assert [(a.action, a.unit) for a in s.actions] == [("acknowledge", None), ("assign", "p04")]
    assert ("cmd", "assign", ALERT) in [(e.user, e.action, e.target) for e in s.audit.entries()]

    # the rest of the picture: crossings shade segments, sensors show health, the camera
    # turns, the aircraft and its footprint show
    now = time.time() - 1
    decorate(s, now)
    page.wait_for_selector(
        'path.vigil-segment[data-segment-id="tucson-0008"][data-crossings="3"]', state="attached"
    )
    page.wait_for_selector('path.vigil-sensor[data-state="offline"]', state="attached")
    page.wait_for_selector(
        'path.vigil-fov[data-tower-id="t03"][data-pan="205.0"]', state="attached"
    )
    page.wait_for_selector('.vigil-uas[data-aircraft-id="uas1"]', state="attached")
    page.wait_for_selector('path.vigil-uas-footprint[data-aircraft-id="uas1"]', state="attached")
    page.wait_for_selector(
        '.vigil-track[data-track-id="v-2"][data-class="vehicle"]', state="attached"
    )
    page.wait_for_selector(
        '.vigil-track[data-track-id="g-012"][data-class="animal"]', state="attached"
    )
    fov_moved = page.evaluate(
        "() => { const t = VigilLive.towers.t03; const c = t.fov.getBounds().getCenter();"
        " const m = t.marker.getLatLng(); return [c.lng - m.lng, c.lat - m.lat]; }"
    )
    assert fov_moved[0] < 0 and fov_moved[1] < 0, (
        f"t03 at pan 205 should look south-west: {fov_moved}"
    )
    page.evaluate("VigilLive.map.fitBounds([[31.30, -111.06], [31.40, -110.74]], {animate: false})")
    page.wait_for_timeout(400)
    out_dir = Path(os.environ.get("VIGIL_SCREENSHOT_DIR") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = page.screenshot(path=str(out_dir / "live-map.png"))
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"

    checked_page.assert_clean()


def test_planner_cannot_acknowledge(scenario, checked_page):
    s = scenario
    s.group_at(0)
    lat, lon = s.corridor_point(2, 600.0)
    s.publish(
        Alert(
            alert_id=ALERT,
            time=time.time() - 5,
            kind="crossing",
            priority=1,
            segment_id="tucson-0008",
            lat=lat,
            lon=lon,
            track_id=GROUP,
        )
    )
    page = checked_page.page
    login(page, s.server.url, "plan", PASSWORDS["plan"])
    wait_live(page)
    item = page.locator(f'#alert-queue .alert[data-alert-id="{ALERT}"]')
    item.wait_for(timeout=10_000)
    assert item.locator("button.ack").count() == 0  # the page offers no action ...
    assert page.locator('.vigil-track[data-track-id="g-0001"]').count() == 1
    # ... and the server refuses one forced with the planner's own valid CSRF token
    checked_page.allow(r"status of 403 .*/api/alerts/A-0001/acknowledge")
    status = page.evaluate(
        """id => fetch('/api/alerts/' + id + '/acknowledge', {method: 'POST',
             headers: {'Content-Type': 'application/json', 'X-CSRF-Token': VigilLive.me.csrf},
             body: '{}'}).then(r => r.status)""",
        ALERT,
    )
    assert status == 403
    assert s.actions == []
    assert ("plan", "denied") in [(e.user, e.action) for e in s.audit.entries()]
    assert page.locator(f'#alert-queue .alert[data-alert-id="{ALERT}"][data-state="new"]').count()
    # history playback is the planner's: the slider shows the group from the server's ring
    page.check("#history-toggle")
    page.wait_for_selector(".vigil-history-track[data-track-id='g-0001']", timeout=10_000)
    assert checked_page.blocked == []


def test_wrong_password_and_missing_or_forged_session_are_refused(scenario, checked_page):
    s = scenario
    page = checked_page.page
    # the refusals this test provokes, as the browser reports them
    checked_page.allow(r"status of 401 \(Unauthorized\) \(http://[^)]*/login\)")
    checked_page.allow(r"WebSocket connection to 'ws://[^']*/ws' failed: .* 403")
    login(page, s.server.url, "cmd", "not-the-password")
    page.wait_for_selector("#login-error")
    assert "wrong user name or password" in page.inner_text("#login-error")
    assert page.context.cookies() == []

    # no session: the map sends you to the login page, the API answers 401
    page.goto(s.server.url + "/")
    assert page.url == s.server.url + "/login"
    assert page.request.get(s.server.url + "/api/snapshot").status == 401

    # a forged session cookie is refused in the same way, and on the WebSocket too
    host = "127.0.0.1"
    page.context.add_cookies(
        [{"name": "vigil_session", "value": "abc.0123456789abcdef", "domain": host, "path": "/"}]
    )
    page.goto(s.server.url + "/")
    assert page.url == s.server.url + "/login"
    assert page.request.get(s.server.url + "/api/me").status == 401
    opened = page.evaluate(
        """url => new Promise(res => { const ws = new WebSocket(url);
             ws.onopen = () => res(true); ws.onerror = () => res(false); })""",
        s.server.url.replace("http", "ws") + "/ws",
    )
    assert opened is False
    assert ("cmd", "login_failed") in [(e.user, e.action) for e in s.audit.entries()]
    assert checked_page.blocked == []
