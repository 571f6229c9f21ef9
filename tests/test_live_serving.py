"""The live map server over real HTTP and WebSocket (uvicorn on a free local port): the
snapshot and batches from the bus, history from the ring and from a store, local assets, TLS,
and a local tile server. Logins, roles and actions are in ``test_live_server.py``."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")
pytest.importorskip("websockets")

from live_client import (  # noqa: E402
    PASSWORDS,
    Client,
    World,
    client,
    commander_only_app,
    running_world,
)
from websockets.exceptions import InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from vigil.ingest.bus import InProcessBus  # noqa: E402
from vigil.ingest.schema import Track  # noqa: E402
from vigil.maps.live import ServerThread, run_live  # noqa: E402
from vigil.maps.offline import remote_references  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("live")) as w:
        yield w


def test_websocket_sends_a_snapshot_then_batches_from_the_bus(world) -> None:
    c = client(world, "cmd")
    url = f"ws://127.0.0.1:{world.server.port}/ws"
    with connect(url, additional_headers={"Cookie": f"vigil_session={c.cookie}"}) as ws:
        snap = json.loads(ws.recv(timeout=5))
        assert snap["type"] == "snapshot"
        assert {s["id"] for s in snap["towers"]} == {t.id for t in world.site.towers}
        msg = Track(
            track_id="ws-1",
            time=time.time(),
            lat=31.34,
            lon=-110.9,
            vx=0.5,
            vy=1.0,
            cov=(9.0, 0.0, 0.0, 9.0),
            state="confirmed",
            class_guess="vehicle",
        )
        world.publish(msg)
        deadline = time.monotonic() + 5
        rows = []
        while not rows and time.monotonic() < deadline:
            batch = json.loads(ws.recv(timeout=5))
            rows = [r for r in batch.get("tracks", []) if r[0] == "ws-1"]
        assert rows and rows[0][1:4] == [31.34, -110.9, "vehicle"]
        assert batch["type"] == "batch" and batch["arrived"] <= batch["sent"]
    cross = {"Cookie": f"vigil_session={c.cookie}", "Origin": "http://evil.example"}
    with pytest.raises(InvalidStatus), connect(url, additional_headers=cross):
        pass


def test_history_from_the_ring_and_from_a_store(world, tmp_path) -> None:
    c = client(world, "cmd")
    t0 = time.time() - 100
    for i in range(5):
        world.publish(
            Track(
                track_id="h-1",
                time=t0 + 10 * i,
                lat=31.33 + 1e-4 * i,
                lon=-110.9,
                vx=0,
                vy=1,
                cov=(1, 0, 0, 1),
                state="confirmed",
            )
        )
    h = c.request("GET", f"/api/history?t0={t0 - 1}&t1={t0 + 25}").json()
    item = next(x for x in h["tracks"] if x["id"] == "h-1")
    assert [p[0] for p in item["points"]] == [round(t0 + 10 * i, 2) for i in range(3)]
    assert c.request("GET", "/api/history?t0=5&t1=1").status == 400
    assert c.request("GET", "/api/history?hours=100").status == 400
    assert c.request("GET", "/api/history?t0=abc").status == 400

    calls = []

    def store(a: float, b: float):
        calls.append((a, b))
        return [
            Track(
                track_id="s-1",
                time=a + 1,
                lat=31.3,
                lon=-110.9,
                vx=0,
                vy=0,
                cov=(1, 0, 0, 1),
                state="confirmed",
                class_guess="animal",
            )
        ]

    app = commander_only_app(world, tmp_path, history=store)
    with ServerThread(app) as srv:
        c2 = Client(srv.url)
        c2.login("cmd", PASSWORDS["cmd"])
        h = c2.request("GET", "/api/history?t0=1700000000&t1=1700003600").json()
    assert calls == [(1_700_000_000.0, 1_700_003_600.0)]
    assert h["tracks"] == [
        {"id": "s-1", "class": "animal", "points": [[1700000001.0, 31.3, -110.9]]}
    ]


def test_static_assets_are_served_locally(world) -> None:
    c = Client(world.server.url)
    for path in (
        "/static/live/live.js",
        "/static/live/live.css",
        "/static/leaflet/leaflet.js",
        "/static/live/icons/person.svg",
        "/static/live/admin.js",
    ):
        assert c.request("GET", path).status == 200, path
    login = c.request("GET", "/login")
    assert login.status == 200 and remote_references(login.body.decode()) == []


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed; cannot make a test certificate")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_when_given_a_certificate(world, tmp_path) -> None:
    cert, key = _self_signed(tmp_path)
    app = commander_only_app(world, tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with ServerThread(app, certfile=cert, keyfile=key) as srv:
        assert srv.url.startswith("https://")
        c = Client(srv.url, context=context)
        reply = c.login("cmd", PASSWORDS["cmd"])
        flags = {f.strip().lower() for f in reply.headers["set-cookie"].split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict"} <= flags
        assert c.request("GET", "/api/me").json()["user"] == "cmd"
        with pytest.raises(ssl.SSLError):  # plain clients are not served
            Client(srv.url, context=ssl.create_default_context()).request("GET", "/login")
    with pytest.raises(ValueError, match="both a certificate and a key"):
        ServerThread(app, certfile=cert)


def test_run_live_needs_a_user(world, tmp_path) -> None:
    with pytest.raises(RuntimeError, match="no users in .*vigil users add"):
        run_live(
            world.site,
            InProcessBus(world.sector),
            users_path=tmp_path / "none.sqlite",
            audit_path=tmp_path / "a.sqlite",
        )


def test_local_tile_server_is_drawn_and_allowed_by_the_policy(world, tmp_path) -> None:
    tiles = "http://127.0.0.1:8089/{z}/{x}/{y}.png"
    app = commander_only_app(world, tmp_path, tiles_url=tiles)
    with ServerThread(app) as srv:
        c = Client(srv.url)
        c.login("cmd", PASSWORDS["cmd"])
        page = c.request("GET", "/")
    assert tiles in page.body.decode()
    assert (
        "img-src 'self' data: blob: http://127.0.0.1:8089;"
        in page.headers["content-security-policy"]
    )
    # without one, the page draws no tile layer at all
    assert "L.tileLayer(" not in world.app.page_html
