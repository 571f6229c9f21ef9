"""`vigil demo --serve`: the simulator drives the live map; a commander sees tracks move."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


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


def test_commander_sees_simulated_tracks_move(served: str, offline_page) -> None:
    page = offline_page.page
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
    assert offline_page.blocked == []
