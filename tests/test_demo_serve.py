"""`vigil demo --serve`: the simulator drives the live map; a commander sees tracks move."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import browser_checks
import pytest

pytestmark = pytest.mark.browser

# fails the test on any console error or uncaught exception on the page
checked_page = browser_checks.checked_page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path: Path):
    users = tmp_path / "users.sqlite"
    env = {**os.environ, "VIGIL_PASSWORD": "watch-commander"}
    cli = [sys.executable, "-m", "vigil.cli"]
    subprocess.run(
        [*cli, "users", "add", "cmd", "--role", "commander", "--users", str(users)],
        env=env,
        check=True,
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            *cli, "demo", "--serve", "--speed", "10", "--hours", "0.3", "--rate-scale", "50",
            "--fps", "1", "--port", str(port), "--users", str(users),
            "--out", str(tmp_path / "out"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"vigil demo --serve exited: {proc.stdout.read()}")
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_commander_sees_simulated_tracks_move(served: str, checked_page) -> None:
    page = checked_page.page
    page.goto(served + "/")
    page.wait_for_selector("#login-form")
    page.fill("#username", "cmd")
    page.fill("#password", "watch-commander")
    page.click("#login-button")
    page.wait_for_selector("#live-status[data-state=live]", timeout=30_000)
    page.wait_for_function("() => Object.keys(VigilLive.tracks).length > 0", timeout=60_000)
    first = page.evaluate(
        "() => Object.fromEntries(Object.entries(VigilLive.tracks).map(([k, t]) => "
        "[k, [t.marker.getLatLng().lat, t.marker.getLatLng().lng]]))"
    )
    page.wait_for_timeout(4_000)  # 40 simulated seconds at speed 10
    later = page.evaluate(
        "() => Object.fromEntries(Object.entries(VigilLive.tracks).map(([k, t]) => "
        "[k, [t.marker.getLatLng().lat, t.marker.getLatLng().lng]]))"
    )
    moved = [k for k in first if k in later and first[k] != later[k]]
    assert moved, "no track marker moved as the simulator moved its movers"


def _login(page, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#username", "cmd")
    page.fill("#password", "watch-commander")
    page.click("#login-button")
    page.wait_for_selector("#live-status[data-state=live]", timeout=30_000)


def _tracks(page) -> int:
    return page.evaluate("() => Object.keys(VigilLive.tracks).length")


def test_commander_acts_on_alerts_and_plays_back_in_the_demo(served: str, checked_page) -> None:
    """Acknowledge, assign and close an alert and play history back, with no JavaScript
    error; the map keeps its tracks after an acknowledgement (issue 17, items 1 and 5)."""
    page = checked_page.page
    _login(page, served)
    page.wait_for_function("() => Object.keys(VigilLive.tracks).length > 0", timeout=60_000)
    first = page.locator("#alert-queue .alert").first
    first.wait_for(timeout=90_000)
    alert_id = first.get_attribute("data-alert-id")
    item = page.locator(f'#alert-queue .alert[data-alert-id="{alert_id}"]')
    assert _tracks(page) > 0

    item.locator("button.ack").click()
    page.wait_for_selector(
        f'#alert-queue .alert[data-alert-id="{alert_id}"][data-state="acknowledged"]',
        timeout=15_000,
    )
    page.wait_for_timeout(3_000)  # 30 simulated seconds: the map's clock must not jump
    assert _tracks(page) > 0, "the map lost every track after one acknowledgement"

    unit = item.locator("select.assign-unit option").first.get_attribute("value")
    item.locator("select.assign-unit").select_option(unit)
    item.locator("button.assign").click()
    page.wait_for_function(
        "a => { const m = document.querySelector("
        "`#alert-queue .alert[data-alert-id='${a[0]}'] .meta`);"
        " return m && m.textContent.includes('assigned ' + a[1]); }",
        arg=[alert_id, unit],
        timeout=15_000,
    )
    assert _tracks(page) > 0, "the map lost every track after an assignment"

    item.locator("button.close").click()
    page.wait_for_function(
        "id => !document.querySelector(`#alert-queue .alert[data-alert-id='${id}']`)",
        arg=alert_id,
        timeout=15_000,
    )
    page.wait_for_timeout(2_000)
    assert _tracks(page) > 0, "the map lost every track after a close"

    # history playback and back to live
    page.check("#history-toggle")
    page.wait_for_selector("#live-status[data-state=playback]", timeout=10_000)
    page.wait_for_function(
        "() => !document.querySelector('#history-slider').disabled", timeout=15_000
    )
    for value in ("200", "600", "1000"):
        page.locator("#history-slider").fill(value)
    assert page.locator(".vigil-history-track").count() > 0
    page.uncheck("#history-toggle")
    page.wait_for_selector("#live-status[data-state=live]", timeout=10_000)
    assert page.locator(".vigil-history-track").count() == 0
    assert _tracks(page) > 0
