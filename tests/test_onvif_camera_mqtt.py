"""Over Mosquitto, processes apart: a ground-sensor hit -> ``vigil run`` -> camera command ->
``vigil edge camera onvif --onvif ...`` -> the virtual ONVIF camera turns -> detections of the
walker over RTSP -> the broker (issue 19.2).

The camera is ``ipycam`` (PyPI) with the simulator's picture (``tests/virtual_onvif_camera.py``);
the adapter is the command line, which knows the camera's ONVIF address and nothing else.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from broker import SERVICE_USER

from vigil.config import load_default
from vigil.hardware.ptz import OnvifPtz, PtzError, PtzMapping
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.schema import CameraCommand, CameraDetection, SensorEvent, SensorStatus

pytest.importorskip("onvif", reason="onvif-zeep-async is not installed")
pytest.importorskip("ipycam", reason="the virtual camera ipycam (PyPI) is not installed")
if shutil.which("ffmpeg") is None:  # pragma: no cover
    pytest.skip("ffmpeg is not installed: ipycam cannot serve RTSP", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
from virtual_onvif_camera import (  # noqa: E402
    NIGHT,
    PASSWORD,
    SENSOR,
    TOWER,
    USER,
    VirtualCamera,
    scene,
    wait_for,
    walker_at,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
BASE = "vigil/v1/tucson"
TILT_PER_UNIT = 30.0


def vigil(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def test_sensor_hit_over_mosquitto_turns_the_camera_and_detections_come_back(
    broker, tmp_path
) -> None:
    site = load_default().site
    frame = site.frame()
    tower = next(t for t in site.towers if t.id == TOWER)
    home, sx, sy, walker = scene(site)
    offset = NIGHT - time.time()
    camera = VirtualCamera(tmp_path, walker, offset)
    camera.start()
    address = f"{broker.host}:{broker.port}"
    service_env = {"VIGIL_MQTT_USER": SERVICE_USER, "VIGIL_MQTT_PASSWORD": f"pw-{SERVICE_USER}"}
    state = tmp_path / "service"
    state.mkdir()
    procs: list[subprocess.Popen] = []
    got: dict[str, list] = {"det": [], "cmd": [], "status": []}
    lock = threading.Lock()

    def on(kind: str):
        def handler(topic, msg) -> None:
            with lock:
                got[kind].append(msg)

        return handler

    settings = MqttSettings(
        host=broker.host, port=broker.port, username=SERVICE_USER,
        password=f"pw-{SERVICE_USER}", reconnect_max_delay_s=0.5,
    )  # fmt: skip
    watcher = MqttBus("tucson", settings, "test-watcher", publish_quarantine=False)
    watcher.subscribe(f"{BASE}/cam/{TOWER}/detections", on("det"))
    watcher.subscribe(f"{BASE}/cam/{TOWER}/commands", on("cmd"))
    watcher.subscribe(f"{BASE}/cam/{TOWER}/status", on("status"))
    watcher.connect(15.0)
    probe = OnvifPtz(
        "127.0.0.1", camera.onvif_port, USER, PASSWORD, timeout_s=15.0
    )  # generous: a loaded 2-core CI
    mapping = PtzMapping(
        pan_zero_deg=tower.pan_deg, tilt_zero_deg=tower.tilt_deg,
        tilt_deg_per_unit=TILT_PER_UNIT, hfov_wide_deg=tower.hfov_deg,
        hfov_tele_deg=tower.hfov_deg,
    )  # fmt: skip

    def near_walker(d: CameraDetection) -> bool:
        x, y = frame.to_local([d.lat], [d.lon])
        wx, wy = walker_at(d.time + offset, *walker)
        return math.hypot(x[0] - wx, y[0] - wy) <= 60.0

    try:
        procs.append(
            vigil(
                ["run", "--broker", address, "--state-dir", str(state), "--hold", "0.5",
                 "--idle", "1"],
                service_env, tmp_path / "run.log",
            )
        )  # fmt: skip
        wait_for(
            "vigil run to connect",
            lambda: (
                (state / "status.json").exists()
                and json.loads((state / "status.json").read_text() or "{}").get("connected")
            ),
            60,
        )
        edge_env = {
            "VIGIL_MQTT_USER": TOWER, "VIGIL_MQTT_PASSWORD": f"pw-{TOWER}",
            "VIGIL_ONVIF_USER": USER, "VIGIL_ONVIF_PASSWORD": PASSWORD,
        }  # fmt: skip
        procs.append(
            vigil(
                ["edge", "camera", "onvif", "--onvif", f"127.0.0.1:{camera.onvif_port}",
                 "--id", TOWER, "--broker", address, "--client-id", f"edge-{TOWER}",
                 "--state-dir", str(tmp_path / "edge"),
                 "--ptz-tilt-per-unit", str(TILT_PER_UNIT)],
                edge_env, tmp_path / "edge.log",
            )
        )  # fmt: skip
        # the adapter's health reaches the broker: the stream is up
        wait_for(
            "the camera's health 'ok'", lambda: any(s.state == "ok" for s in got["status"]), 40
        )
        assert all(isinstance(s, SensorStatus) and s.sensor == TOWER for s in got["status"])
        time.sleep(3.0)
        assert not [d for d in got["det"] if near_walker(d)]  # looking home: not in view

        # the walker sets the ground sensor off; the hit goes to the broker as a gateway's
        hit_at = time.time()
        hit = SensorEvent(
            sensor=SENSOR, time=hit_at, modality="seismic", strength=3.0, class_guess="person"
        )
        watcher.publish(f"{BASE}/ugs/{SENSOR}/events", hit)
        wait_for("the service's camera command", lambda: got["cmd"], 20)
        cmd = got["cmd"][0]
        assert isinstance(cmd, CameraCommand) and cmd.camera == TOWER
        want = home.pointed_at(sx, sy)
        assert cmd.pan_deg == pytest.approx(want.pan_deg, abs=0.01)

        def turned() -> bool:
            try:
                st = probe.status()
            except PtzError:
                probe.reset()
                return False
            p = mapping.pointing(st.x, st.y, st.zoom)
            return abs((p.pan_deg - want.pan_deg + 180) % 360 - 180) < 0.05

        wait_for("the camera to report the cued pointing", turned, 20)
        wait_for(
            "detections of the walker over the broker",
            lambda: sum(near_walker(d) for d in got["det"] if d.time > hit_at) >= 5,
            60,
        )
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        watcher.close()
        probe.close()
        camera.kill()
    edge_out = (tmp_path / "edge.log").read_text(errors="replace")
    assert "Traceback" not in edge_out, edge_out[-3000:]
    # stopped by SIGINT after a frame, the adapter says what it did
    assert "1 commands received (1 carried out, 0 refused)" in edge_out, edge_out[-3000:]
    assert "PTZ: 1 moves (0 failed)" in edge_out, edge_out[-3000:]
