"""Issue 19 item 1: what the deployment file says reaches what runs.

``vigil run`` (against a real Mosquitto) and ``vigil demo`` run on the file's ``[tracker]``,
``[alerts]`` and ``[service]``; a ``[service]`` key left out is the service's own default.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vigil.config import default_deployment_path, load


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    """The shipped deployment copied to a scratch folder."""
    target = tmp_path / "tucson.toml"
    shutil.copy(default_deployment_path(), target)
    return target


def _edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return path


# -- what the file says reaches what runs ----------------------------------------------------


@pytest.fixture
def mosquitto():
    from broker import service_broker

    with service_broker() as b:
        yield b


def test_file_settings_reach_vigil_run(site_copy: Path, tmp_path: Path, mosquitto) -> None:
    """``vigil run`` runs on the file's [tracker] and [alerts]: with ground sensors allowed to
    start tracks and one hit to confirm, a sensor event becomes a track (the shipped settings
    make none); a tamper report is raised at the file's tamper priority (5, not 2)."""
    import os
    import subprocess
    import sys
    import time

    import paho.mqtt.client as mqtt
    from broker import SECTOR, SERVICE_USER

    from vigil.ingest.schema import Alert, SensorEvent, SensorStatus, Track, decode, encode

    _edit(site_copy, "confirm_m = 3 ", "ugs_can_initiate = true\nconfirm_m = 1 ")
    _edit(site_copy, "confirm_n = 4 ", "confirm_n = 1 ")
    _edit(site_copy, "[alerts]\n", "[alerts]\ntamper_priority = 5\n")
    _edit(site_copy, "hold_s = 1.0 ", "hold_s = 0.0 ")
    _edit(site_copy, "idle_s = 3.0 ", "idle_s = 0.5 ")
    state, log = tmp_path / "state", tmp_path / "run.log"
    env = dict(os.environ, VIGIL_MQTT_USER=SERVICE_USER, VIGIL_MQTT_PASSWORD="pw")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "run", "--deployment", str(site_copy),
         "--broker", f"{mosquitto.host}:{mosquitto.port}", "--state-dir", str(state)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    got: list = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-dev", protocol=mqtt.MQTTv5)
    c.username_pw_set(SERVICE_USER, "pw")
    c.on_message = lambda cl, u, m: got.append(decode(m.topic, m.payload))
    c.connect(mosquitto.host, mosquitto.port)
    c.loop_start()
    try:
        c.subscribe(f"vigil/v1/{SECTOR}/alerts", qos=1)
        c.subscribe(f"vigil/v1/{SECTOR}/tracks", qos=1)
        deadline = time.monotonic() + 60
        while (
            not (state / "status.json").exists()
            or '"connected": true' not in (state / "status.json").read_text()
        ):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        now = time.time()
        hit = SensorEvent(sensor="u001", time=now, modality="seismic", strength=0.8)
        c.publish(f"vigil/v1/{SECTOR}/ugs/u001/events", encode(hit), qos=1)
        status = SensorStatus(sensor="u002", time=now, battery=0.9, tamper=True, last_heard=now)
        c.publish(f"vigil/v1/{SECTOR}/ugs/u002/status", encode(status), qos=1)
        deadline = time.monotonic() + 30
        while not (
            any(isinstance(m, Track) for m in got)
            and any(isinstance(m, Alert) and m.kind == "sensor_health" for m in got)
        ):
            assert time.monotonic() < deadline, (got, log.read_text()[-3000:])
            time.sleep(0.05)
    finally:
        c.loop_stop()
        c.disconnect()
        proc.terminate()
        proc.wait(30)
    health = next(m for m in got if isinstance(m, Alert) and m.kind == "sensor_health")
    assert health.priority == 5


def test_file_settings_reach_vigil_demo(site_copy: Path, tmp_path: Path, monkeypatch) -> None:
    """``vigil demo`` builds its chain on the file's [tracker] and [alerts] (the real chain,
    watched as it is built)."""
    import vigil.demo
    from vigil.pipeline import Pipeline

    built: list[Pipeline] = []

    class Watched(Pipeline):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(vigil.demo, "Pipeline", Watched)
    _edit(site_copy, "max_coast_s = 30.0", "max_coast_s = 45.0")
    _edit(site_copy, "cue_dwell_s = 120.0", "cue_dwell_s = 90.0")
    d = load(site_copy)
    sim = vigil.demo.demo_settings()
    vigil.demo.run_demo(d, tmp_path / "out", hours=0.0003, seed=1, sim=sim, progress=False)
    (pipe,) = built
    assert pipe.core.fusion.config.max_coast_s == 45.0
    assert pipe.core.engine.rules.cue_dwell_s == 90.0
    assert pipe.core.fusion.config.camera_class_model == d.class_model.camera


def test_service_defaults_are_the_services_own() -> None:
    """A [service] key left out runs the service as its constructor's default would (the
    two cannot drift apart); connect_timeout_s and max_payload_bytes are vigil run's."""
    import inspect

    from vigil.config_sections import ServiceSettings
    from vigil.ingest.mqtt_settings import MqttSettings
    from vigil.service import SectorService

    params = inspect.signature(SectorService.__init__).parameters
    defaults = ServiceSettings()
    shared = [name for name in ServiceSettings.__struct_fields__ if name in params]
    assert len(shared) >= 8, shared
    for name in shared:
        assert getattr(defaults, name) == params[name].default, name
    assert defaults.max_payload_bytes == MqttSettings().max_payload_bytes
