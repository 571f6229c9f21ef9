"""Issue 18: Vigil's processes with and without broker credentials, each instance under a
client id of its own, and the state files only their owner may read.

Runs ``vigil run`` and ``vigil serve`` as processes against real Mosquitto: the one
``vigil broker init`` writes, and the test broker of ``tests/broker.py``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from broker import SECTOR, SERVICE_USER, Broker, free_port, missing_reason, sector_broker
from test_security_broker import init_folder, password

from vigil.cli import main
from vigil.config import default_deployment_path, load_default
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.service import SectorService

REPO = Path(__file__).resolve().parents[1]
needs_broker = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
CRED_VARS = ("VIGIL_MQTT_USER", "VIGIL_MQTT_PASSWORD")


def deployment_on(tmp_path: Path, port: int) -> Path:
    """The demo deployment with its ``[broker]`` on ``port``."""
    text = default_deployment_path().read_text()
    text = text.replace('[broker]\nhost = "127.0.0.1"\nport = 1883', f"[broker]\nport = {port}")
    assert f"port = {port}" in text
    path = tmp_path / "tucson.toml"
    path.write_text(text)
    return path


def env_with(user: str | None = None, pw: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CRED_VARS}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    if user is not None and pw is not None:
        env.update(VIGIL_MQTT_USER=user, VIGIL_MQTT_PASSWORD=pw)
    return env


def vigil(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", *args], cwd=REPO, env=env,
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def serve(
    deployment: Path, tmp_path: Path, name: str, env: dict[str, str], *extra: str
) -> subprocess.Popen:
    """``vigil serve`` on a free port with its own users and audit files."""
    from vigil.maps.live.auth import add_user

    add_user(tmp_path / f"{name}-users.sqlite", "cmdr", "commander", "a long pass phrase 0618")
    return vigil(
        ["serve", "--deployment", str(deployment), "--port", str(free_port()),
         "--users", str(tmp_path / f"{name}-users.sqlite"),
         "--audit", str(tmp_path / f"{name}-audit.sqlite"), *extra],
        env, tmp_path / f"{name}.log",
    )  # fmt: skip


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def stop_all(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# -- credentials missing: refuse, unless --insecure --------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--seconds", "1"],
        ["serve", "--port", "1"],
        ["alerts", "--all"],
        ["edge", "ugs", "-", "--broker", "127.0.0.1:1"],
    ],
    ids=lambda a: a[0],
)
def test_no_credentials_refuses_to_start(argv, monkeypatch, capsys) -> None:
    for var in CRED_VARS:
        monkeypatch.delenv(var, raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "VIGIL_MQTT_USER" in err and "VIGIL_MQTT_PASSWORD" in err and "--insecure" in err


def test_insecure_warns_and_goes_on(monkeypatch, capsys, tmp_path) -> None:
    for var in CRED_VARS:
        monkeypatch.delenv(var, raising=False)
    argv = ["run", "--insecure", "--broker", f"127.0.0.1:{free_port()}", "--state-dir",
            str(tmp_path / "state"), "--seconds", "0.5", "--connect-timeout", "0.5"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "warning: --insecure" in err and "without credentials" in err


# -- processes under their own identities -------------------------------------------------------


@needs_broker
def test_vigil_run_and_two_maps_connect_with_the_generated_credentials(tmp_path) -> None:
    folder, port = init_folder("--maps", "2")
    b = Broker.from_folder(folder, port).start()
    deployment = deployment_on(tmp_path, port)
    procs = []
    try:
        svc = vigil(
            ["run", "--deployment", str(deployment), "--state-dir", str(tmp_path / "state")],
            env_with(SERVICE_USER, password(folder, SERVICE_USER)),
            tmp_path / "run.log",
        )
        procs.append(svc)
        for n in (1, 2):
            user = f"vigil-{SECTOR}-map-{n}"
            procs.append(
                serve(deployment, tmp_path, f"map{n}", env_with(user, password(folder, user)))
            )
        users = [SERVICE_USER, f"{SERVICE_USER}-out", "vigil-tucson-map-1", "vigil-tucson-map-2"]
        assert wait_for(lambda: all(f"as {u} (" in b.log_path.read_text() for u in users)), (
            b.log_tail(40)
        )
        time.sleep(3.0)  # long enough for two maps under one id to knock each other off
        log = b.log_path.read_text()
        assert "already connected, closing old connection" not in log, b.log_tail(40)
        assert all(p.poll() is None for p in procs), [p.returncode for p in procs]
    finally:
        stop_all(*procs)
        b.cleanup()
        subprocess.run(["rm", "-rf", str(folder.parent)], check=True)


@needs_broker
def test_a_gateway_reaches_the_service_only_for_its_own_sensors(tmp_path) -> None:
    """``vigil edge ugs`` with gateway g1's credentials: its sensor's event reaches ``vigil
    run`` through the generated broker; another gateway's sensor is refused by the broker."""
    import json

    from vigil.ingest.schema import SensorEvent, encode

    folder, port = init_folder()
    b = Broker.from_folder(folder, port).start()
    d = load_default()
    g1, g2 = d.config.gateways[0], d.config.gateways[1]
    state = tmp_path / "state"
    procs = []
    try:
        svc = vigil(
            ["run", "--deployment", str(deployment_on(tmp_path, port)), "--state-dir",
             str(state), "--idle", "60"],
            env_with(SERVICE_USER, password(folder, SERVICE_USER)), tmp_path / "run.log",
        )  # fmt: skip
        procs.append(svc)
        assert wait_for(lambda: f"as {SERVICE_USER} (" in b.log_path.read_text())
        time.sleep(1.0)  # subscribed
        now = time.time()
        lines = tmp_path / "ugs.jsonl"
        lines.write_bytes(
            b"".join(
                encode(SensorEvent(sensor=x, time=now, modality="seismic", strength=1.0)) + b"\n"
                for x in (g1.sensors[0], g2.sensors[0])
            )
        )
        user = f"ugs-{g1.id}"
        edge = vigil(
            ["edge", "ugs", str(lines), "--broker", f"127.0.0.1:{port}", "--state-dir",
             str(tmp_path / "edge")],
            env_with(user, password(folder, user)), tmp_path / "edge.log",
        )  # fmt: skip
        assert edge.wait(60) == 0, (tmp_path / "edge.log").read_text()

        def accepted() -> int:
            try:
                status = json.loads((state / "status.json").read_text())
            except (OSError, ValueError):
                return -1
            return status["input_bus"].get("accepted", 0)

        assert wait_for(lambda: accepted() >= 1, 20.0)
        time.sleep(1.0)
        assert accepted() == 1
        assert "Not authorized" in (tmp_path / "edge.log").read_text()
    finally:
        stop_all(*procs)
        b.cleanup()
        subprocess.run(["rm", "-rf", str(folder.parent)], check=True)


@needs_broker
@pytest.mark.parametrize("fixed_id", [None, "vigil-serve-tucson"], ids=["own-ids", "one-fixed-id"])
def test_two_vigil_serve_under_one_user_get_their_own_client_ids(fixed_id, tmp_path) -> None:
    """H3: two ``vigil serve`` of one sector knocked each other off six times a second under
    the fixed ``vigil-serve-{sector}``. On a broker that does not bind ids to users, each
    instance now picks its own; the fixed id (as before) shows what the test catches."""
    b = sector_broker()
    b.start()
    deployment = deployment_on(tmp_path, b.port)
    env = env_with(SERVICE_USER, f"pw-{SERVICE_USER}")
    extra = ["--client-id", fixed_id] if fixed_id else []
    procs = [serve(deployment, tmp_path, f"map{n}", env, *extra) for n in (1, 2)]
    try:
        assert wait_for(lambda: b.log_path.read_text().count("New client connected") >= 2), (
            b.log_tail(40)
        )
        time.sleep(3.0)
        knocked = b.log_path.read_text().count("already connected, closing old connection")
        if fixed_id is None:
            assert knocked == 0, b.log_tail(40)
            assert b.log_path.read_text().count("as vigil-tucson-map-") >= 2
        else:
            assert knocked >= 1
    finally:
        stop_all(*procs)
        b.cleanup()


# -- state files --------------------------------------------------------------------------------


def test_state_files_are_created_0600_whatever_the_umask(tmp_path) -> None:
    """Journal, outboxes, quarantine file, service.sqlite, status.json and the stores: 0600
    (were 0644)."""
    old = os.umask(0o022)
    try:
        settings = MqttSettings(port=free_port(), connect_timeout_s=0.2)
        state = tmp_path / "state"
        service = SectorService(load_default().site, settings, state)
        try:
            with pytest.raises(ConnectionError):
                service.start(0.2)
            assert wait_for(lambda: (state / "status.json").exists(), 10.0)
        finally:
            service.close(1.0)
        edge = MqttBus(SECTOR, settings, "edge-t03", outbox_path=tmp_path / "edge.outbox")
        edge.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    mine = ["journal.sqlite", "in.outbox", "out.outbox", "quarantine.jsonl", "service.sqlite",
            "status.json", "tracks.sqlite", "events.sqlite"]  # fmt: skip
    names = {p.name for p in state.iterdir()}
    assert set(mine) <= names, names
    checked = [p for p in state.iterdir() if p.name.split("-")[0] in mine]
    checked.append(tmp_path / "edge.outbox")
    assert len(checked) > len(mine)  # the SQLite -wal/-shm files are checked too
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in checked}
    assert set(modes.values()) == {"0o600"}, modes


def test_existing_state_files_are_tightened(tmp_path) -> None:
    from vigil.ingest.journal import Journal

    path = tmp_path / "journal.sqlite"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    Journal(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
