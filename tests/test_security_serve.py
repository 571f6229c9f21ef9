"""Issue 18 against ``vigil serve`` itself (a real process on a real Mosquitto): the Host
check answers to the bound address, local names and ``--allowed-host`` only (DNS rebinding
fails), and a 200 MiB login body is refused while it streams, with the server's peak memory
growing by less than 100 MiB."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

from broker import SERVICE_USER, broker, free_port  # noqa: E402, F401 (broker: a fixture)
from live_client import Client  # noqa: E402
from test_security_login import stream_post  # noqa: E402

from vigil.config import default_deployment_path  # noqa: E402
from vigil.maps.live.auth import add_user  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = "a long pass phrase 0618"


class Served:
    """A running ``vigil serve``: its process, address and memory."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.host, self.url = "127.0.0.1", f"http://127.0.0.1:{port}"

    def memory_mib(self, field: str) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
        raise KeyError(field)


@pytest.fixture
def served(broker, tmp_path: Path) -> Iterator[Served]:  # noqa: F811 (the broker fixture)
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the server's memory")
    text = default_deployment_path().read_text()
    deployment = tmp_path / "tucson.toml"
    deployment.write_text(
        text.replace('[broker]\nhost = "127.0.0.1"\nport = 1883', f"[broker]\nport = {broker.port}")
    )
    users, audit = tmp_path / "users.sqlite", tmp_path / "audit.sqlite"
    add_user(users, "cmdr", "commander", PASSPHRASE)
    port = free_port()
    env = dict(
        os.environ, PYTHONPATH=str(REPO), VIGIL_MQTT_USER=SERVICE_USER,
        VIGIL_MQTT_PASSWORD=f"pw-{SERVICE_USER}",
    )  # fmt: skip
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "serve", "--deployment", str(deployment),
         "--port", str(port), "--users", str(users), "--audit", str(audit),
         "--allowed-host", "map.sector.example"],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"vigil serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    yield Served(proc, port, log)
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_vigil_serve_answers_only_to_its_own_names(served) -> None:
    c = Client(served.url)
    for host, status in (
        (f"127.0.0.1:{served.port}", 200),
        (f"localhost:{served.port}", 200),
        (f"map.sector.example:{served.port}", 200),
        (f"rebind.example:{served.port}", 400),
        ("", 400),
    ):
        assert c.request("GET", "/login", headers={"Host": host}).status == status, host
    evil = f"rebind.example:{served.port}"
    reply = c.request(
        "POST", "/login", f"username=cmdr&password={PASSPHRASE}".encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Host": evil,
         "Origin": f"http://{evil}"},
    )  # fmt: skip
    assert reply.status == 400 and "set-cookie" not in reply.headers
    assert c.login("cmdr", PASSPHRASE).status == 303


def test_vigil_serve_refuses_a_200_mb_login_body_while_it_streams(served) -> None:
    before = served.memory_mib("VmHWM")
    for chunked in (False, True):
        status, sent = stream_post(served, "/login", 200 << 20, chunked)
        grown = served.memory_mib("VmHWM") - before
        assert grown < 100, f"vigil serve's peak memory grew {grown:.0f} MiB"
        assert status == 413 and sent < 100 << 20
    assert Client(served.url).login("cmdr", PASSPHRASE).status == 303
