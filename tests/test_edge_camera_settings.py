"""Issue 24 item 2: ``vigil edge camera`` reports the detection settings in effect, and the
start-up calibration's choices, in the camera's status on ``cam/{id}/status`` (and logs them
once at INFO), for a file and for a live stream's health."""

from __future__ import annotations

import logging
import threading
import time

import msgspec
import pytest
from broker import SECTOR, SERVICE_USER

from vigil.cli import main
from vigil.config import load_default, parse
from vigil.edge import deployment_detector
from vigil.hardware.camera import run_camera_edge
from vigil.hardware.camera_health import StreamHealth, camera_status_topic
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import MessageError, SensorStatus, decode, encode
from vigil.sim import SimSettings
from vigil.sim.files import simulate_to_files

FPS = 4.0
NIGHT = SimSettings().start_time + 9 * 3600


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Fifteen seconds of tower t03 at 160x120 (60 frames: the calibration takes 30)."""
    folder = tmp_path_factory.mktemp("cam")
    st = SimSettings(
        start_time=NIGHT,
        towers=("t03",),
        frame_width=160,
        frame_height=120,
        frame_rate_hz=FPS,
        ugs=False,
        uas=False,
    )
    manifest = simulate_to_files(load_default().site, st, 0.25, 7, folder, progress=False)
    return folder / "cameras" / "t03.avi", manifest["start_time"]


@pytest.fixture(scope="module")
def calibrating(tmp_path_factory):
    """The shipped deployment with t03's camera calibrating itself at start-up."""
    text = load_default().text.replace(
        'tower = "t03"\nwarmup_frames = 60', 'tower = "t03"\nwarmup_frames = 60\ncalibrate = true'
    )
    assert "calibrate = true" in text
    path = tmp_path_factory.mktemp("dep") / "tucson.toml"
    path.write_text(text)
    return path


def statuses(got: list) -> list[SensorStatus]:
    return [m for t, m in got if t == camera_status_topic(SECTOR, "t03")]


def test_a_file_run_reports_the_settings_then_the_calibration(clip, calibrating, caplog):
    path, start = clip
    d = parse(calibrating.read_text(), calibrating)
    detect = deployment_detector(d, "t03")
    bus = InProcessBus(SECTOR)  # validates every message as the service's bus would
    got: list = []
    bus.subscribe(f"vigil/v1/{SECTOR}/#", lambda topic, msg: got.append((topic, msg)))
    with caplog.at_level(logging.INFO, logger="vigil.hardware.camera"):
        counts = run_camera_edge(
            str(path), bus, SECTOR, "t03", detect, fps=FPS, start_time=start,
            detection=detect.detection_settings,
        )  # fmt: skip
    assert counts.frames == 60
    first, second = statuses(got)  # one for the settings, one when calibration is done
    want = d.detection_for("t03").effective(thermal=True, shape=(120, 160))
    assert first.detection == want and first.time == start and first.state == "ok"
    assert first.detection["warmup_frames"] == 60 and first.detection["calibrate"] is True
    cal = second.detection["calibration"]
    assert cal == detect.detector.calibration_report and cal["frames"] == 30
    assert second.time == pytest.approx(start + 30 / FPS)  # the frame that finished it
    # logged once each at INFO
    lines = [r.getMessage() for r in caplog.records if "detection settings" in r.getMessage()]
    assert len(lines) == 2 and "radius_min" in lines[1] and "radius_min" not in lines[0]


def test_without_calibration_one_status_carries_the_settings(clip):
    path, start = clip
    d = load_default()
    detect = deployment_detector(d, "t03")
    bus = InProcessBus(SECTOR)
    got: list = []
    bus.subscribe(f"vigil/v1/{SECTOR}/#", lambda topic, msg: got.append((topic, msg)))
    run_camera_edge(str(path), bus, SECTOR, "t03", detect, fps=FPS, start_time=start,
                    detection=detect.detection_settings)  # fmt: skip
    (only,) = statuses(got)
    assert only.detection["calibrate"] is False and "calibration" not in only.detection


def test_live_health_sends_a_change_of_settings_at_once():
    bus = InProcessBus(SECTOR)
    got: list = []
    bus.subscribe(f"vigil/v1/{SECTOR}/#", lambda topic, msg: got.append((topic, msg)))
    health = StreamHealth(bus, SECTOR, "t03", clock=lambda: NIGHT).start()
    try:
        health.set_detection({"threshold_grey": 8})
        health.set_detection({"calibration": {"radius_min": 11, "noise_grey": 4.5}})
    finally:
        health.stop()
    sent = statuses(got)
    assert sent[-1].detection == {
        "threshold_grey": 8,
        "calibration": {"radius_min": 11, "noise_grey": 4.5},
    }
    assert any(s.detection == {"threshold_grey": 8} for s in sent)


@pytest.mark.parametrize(
    "detection, field",
    [
        ({f"k{i}": i for i in range(17)}, "detection"),  # too many settings
        ({"calibration": {"a": {"b": {"c": 1}}}}, "detection"),  # three tables deep
        ({"Bad-Name": 1}, "detection"),  # not a setting's name
        ({"note": "x" * 501}, "detection"),  # text too long
    ],
)
def test_the_status_field_is_bounded(detection, field):
    raw = msgspec.json.decode(
        encode(SensorStatus(sensor="t03", time=NIGHT, battery=1.0, last_heard=NIGHT))
    )
    raw["detection"] = detection
    with pytest.raises(MessageError) as err:
        decode(camera_status_topic(SECTOR, "t03"), msgspec.json.encode(raw), now=NIGHT)
    assert err.value.field.startswith(field)


@pytest.mark.broker
def test_vigil_edge_camera_publishes_the_settings_over_mqtt(clip, calibrating, broker, monkeypatch):
    """The command itself, to a real Mosquitto as tower t03's own identity."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    path, start = clip
    got: list[SensorStatus] = []
    subscribed = threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="watcher", protocol=paho.MQTTv5)
    c.username_pw_set(SERVICE_USER, f"pw-{SERVICE_USER}")
    c.on_connect = lambda cl, *_: cl.subscribe(f"vigil/v1/{SECTOR}/cam/t03/status", qos=1)
    c.on_subscribe = lambda *_: subscribed.set()
    c.on_message = lambda cl, u, m: got.append(decode(m.topic, m.payload, now=NIGHT + 3600))
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        assert subscribed.wait(10.0)
        monkeypatch.setenv("VIGIL_MQTT_USER", "t03")
        monkeypatch.setenv("VIGIL_MQTT_PASSWORD", "pw-t03")
        code = main(
            ["edge", "camera", str(path), "--deployment", str(calibrating), "--id", "t03",
             "--fps", str(FPS), "--start", repr(start), "--broker",
             f"{broker.host}:{broker.port}", "--client-id", "t03",
             "--state-dir", str(path.parent / "edge")]
        )  # fmt: skip
        assert code == 0
        deadline = time.monotonic() + 10.0
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        c.loop_stop()
        c.disconnect()
    assert len(got) == 2, got
    assert got[0].detection["calibrate"] is True and got[0].detection["warmup_frames"] == 60
    assert got[1].detection["calibration"]["frames"] == 30
