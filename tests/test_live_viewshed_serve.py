"""``vigil serve`` with ``[terrain]`` draws the towers' coverage on the relief (issue 21): the
command loads the deployment's synthetic relief, the map's site says ``viewsheds`` and each
tower's view carries its coverage as GeoJSON; fed by a real Mosquitto."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from broker import SERVICE_USER, free_port

pytest.importorskip("starlette")
pytest.importorskip("argon2")

from live_client import Client  # noqa: E402

from vigil.config import default_deployment_path  # noqa: E402


def test_vigil_serve_draws_coverage_on_the_deployments_relief(tmp_path: Path, broker) -> None:
    deployment = tmp_path / "sector.toml"
    text = default_deployment_path().read_text(encoding="utf-8")
    deployment.write_text(text + "\n[terrain]\nsynthetic = { seed = 2 }\n", encoding="utf-8")
    users = tmp_path / "users.sqlite"
    env = {
        **os.environ,
        "VIGIL_PASSWORD": "watch-commander",
        "VIGIL_MQTT_USER": SERVICE_USER,
        "VIGIL_MQTT_PASSWORD": f"pw-{SERVICE_USER}",
    }
    cli = [sys.executable, "-m", "vigil.cli"]
    subprocess.run(
        [*cli, "users", "add", "cmd", "--role", "commander", "--users", str(users)],
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            *cli, "serve", "--deployment", str(deployment), "--users", str(users),
            "--broker", f"{broker.host}:{broker.port}", "--port", str(port),
        ],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"vigil serve did not serve: {proc.communicate()[0]}")
                time.sleep(0.3)
        c = Client(f"http://127.0.0.1:{port}")
        assert c.login("cmd", "watch-commander").status == 303
        assert c.request("GET", "/api/site").json()["coverage"] == "viewsheds"
        towers = c.request("GET", "/api/snapshot").json()["towers"]
        assert len(towers) == 6
        for t in towers:
            assert t["coverage"]["type"] == "MultiPolygon"
            assert t["coverage"]["coordinates"], t["id"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
