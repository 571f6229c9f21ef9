"""A real PTZ camera path end to end, against a third-party virtual ONVIF camera (issue 19.2).

The camera is ``ipycam`` (PyPI) in a process of its own (``tests/virtual_onvif_camera.py``),
serving the simulator's thermal picture of one walker over RTSP and taking ONVIF PTZ
orders. The adapter under test (:func:`vigil.hardware.camera.run_camera_edge` with
:class:`~vigil.hardware.ptz.PtzControl`) knows only the camera's ONVIF address: it asks the
camera for its RTSP address, reads frames through OpenCV's FFmpeg backend, turns the camera
when a camera command comes, and places detections with the pointing the camera reports over
ONVIF. The command is the sector service's own: a hit on the ground sensor the walker paces
past goes through the service's core (:class:`~vigil.runner.SectorRunner`, its sensor-cue
rule), in process rather than over Mosquitto. No simulator object is in
its path. Then the camera is killed and started again: the adapter reports the outage as
camera health, reconnects to both services, points the camera again, and detections resume.
"""

from __future__ import annotations

import math
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from vigil.config import load_default
from vigil.edge import tower_detector
from vigil.hardware.camera import run_camera_edge
from vigil.hardware.camera_health import HealthSettings
from vigil.hardware.ptz import OnvifPtz, PtzError, PtzMapping
from vigil.hardware.ptz_control import PtzControl
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import CameraCommand, CameraDetection, SensorEvent, SensorStatus, topic_for
from vigil.runner import SectorRunner

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

pytestmark = pytest.mark.slow

SECTOR = "tucson"
NEAR_M = 60.0


def test_cue_turns_the_onvif_camera_and_the_walker_is_detected_over_rtsp(tmp_path) -> None:
    site = load_default().site
    frame = site.frame()
    tower = next(t for t in site.towers if t.id == TOWER)
    home, sx, sy, walker = scene(site)
    offset = NIGHT - time.time()
    camera = VirtualCamera(tmp_path, walker, offset)
    camera.start()

    mapping = PtzMapping(
        pan_zero_deg=tower.pan_deg, pan_deg_per_unit=180.0,
        tilt_zero_deg=tower.tilt_deg, tilt_deg_per_unit=30.0,
        hfov_wide_deg=tower.hfov_deg, hfov_tele_deg=tower.hfov_deg,
    )  # fmt: skip
    client = OnvifPtz(
        "127.0.0.1", camera.onvif_port, USER, PASSWORD, timeout_s=15.0
    )  # generous: a loaded 2-core CI
    client.connect()
    source = client.stream_uri()  # the adapter's RTSP address comes from the camera
    assert source.startswith("rtsp://")
    ptz = PtzControl(client, mapping, poll_s=0.3, reconnect_s=0.2, max_reconnect_s=1.0)
    detect = tower_detector(site, TOWER)
    bus = InProcessBus(SECTOR)
    detections: list[CameraDetection] = []
    health: list[SensorStatus] = []
    bus.subscribe(f"vigil/v1/{SECTOR}/cam/{TOWER}/detections", lambda t, m: detections.append(m))
    bus.subscribe(f"vigil/v1/{SECTOR}/cam/{TOWER}/status", lambda t, m: health.append(m))
    stop = threading.Event()
    result: dict = {}

    def adapter() -> None:
        try:
            result["counts"] = run_camera_edge(
                source, bus, SECTOR, TOWER, detect,
                reconnect_s=0.2, max_reconnect_s=1.0, stop=stop, ptz=ptz,
                repoint=detect.repoint,
                health=HealthSettings(dropped_after_s=2.0, frozen_after_s=3.0, interval_s=5.0),
            )  # fmt: skip
        except BaseException as exc:  # reported by the test
            result["error"] = exc

    def near_walker(d: CameraDetection) -> bool:
        x, y = frame.to_local([d.lat], [d.lon])
        wx, wy = walker_at(d.time + offset, *walker)
        return math.hypot(x[0] - wx, y[0] - wy) <= NEAR_M

    probe = OnvifPtz(
        "127.0.0.1", camera.onvif_port, USER, PASSWORD, timeout_s=15.0
    )  # generous: a loaded 2-core CI
    thread = threading.Thread(target=adapter, daemon=True)
    thread.start()
    try:
        # looking home, the camera reports its pointing and the walker is out of its view
        wait_for("the camera's reported pointing", lambda: ptz.reported is not None, 20)
        assert ptz.reported.pan_deg == pytest.approx(tower.pan_deg, abs=0.01)
        wait_for("frames", lambda: len(health) > 0 and detect.detector is not None, 20)
        time.sleep(4.0)
        assert not [d for d in detections if near_walker(d)]
        assert health[-1].state == "ok" and health[-1].sensor == TOWER

        # a command for another camera on this camera's topic is refused
        for_other = CameraCommand(camera="t04", time=time.time(), pan_deg=10.0, tilt_deg=1.0)
        bus.publish(f"vigil/v1/{SECTOR}/cam/{TOWER}/commands", for_other)
        # the walker sets off the ground sensor; the sector service's core (its alert rules)
        # turns the nearest tower to it, publishing the camera command the adapter takes
        commands: list[CameraCommand] = []

        def service_output(topic: str, msg) -> None:
            if isinstance(msg, CameraCommand):
                commands.append(msg)
                bus.publish(topic, msg)

        service = SectorRunner(site, service_output, hold_s=0.0)
        cued_at = time.time()
        hit = SensorEvent(
            sensor=SENSOR, time=cued_at, modality="seismic", strength=3.0, class_guess="person"
        )
        service.handle(topic_for(SECTOR, hit), hit)
        service.advance_to(cued_at + 1.0)
        assert [c.camera for c in commands] == [TOWER], commands
        want = home.pointed_at(sx, sy)
        assert commands[0].pan_deg == pytest.approx(want.pan_deg, abs=0.01)

        # the camera's own GetStatus shows the new pointing, and the adapter follows it
        def turned() -> bool:
            try:
                st = probe.status()
            except PtzError:  # the camera is away, or back with a new session
                probe.reset()
                return False
            p = mapping.pointing(st.x, st.y, st.zoom)
            return (
                abs((p.pan_deg - want.pan_deg + 180) % 360 - 180) < 0.05
                and abs(p.tilt_deg - want.tilt_deg) < 0.05
            )

        wait_for("GetStatus to report the cued pointing", turned, 10)
        wait_for("the adapter to take the reported pointing", lambda: detect.repoints >= 2, 10)
        assert detect.base.pan_deg == pytest.approx(want.pan_deg, abs=0.05)

        # detections of the walker arrive through RTSP, placed where the walker is
        wait_for(
            "detections of the walker",
            lambda: sum(near_walker(d) for d in detections if d.time > cued_at) >= 5,
            40,
        )
        first_run = [d for d in detections if d.time > cued_at and near_walker(d)]
        assert all(d.camera == TOWER and d.range_m is not None for d in first_run)

        # presets and relative moves through the same client, against the camera's own answers
        token = probe.set_preset("vigil-cue")
        assert probe.presets()[token] == "vigil-cue"
        at = probe.status()
        probe.relative_move(0.1, -0.05)
        moved = probe.status()
        assert (moved.x, moved.y) == (pytest.approx(at.x + 0.1), pytest.approx(at.y - 0.05))
        probe.goto_preset(token)
        back = probe.status()
        assert (back.x, back.y) == (pytest.approx(at.x), pytest.approx(at.y))

        # the camera sends one picture over and over: health says frozen, then ok again
        camera.toggle_freeze()
        wait_for("health 'degraded' (frozen)", lambda: health[-1].state == "degraded", 15)
        camera.toggle_freeze()
        wait_for("health 'ok' after the freeze", lambda: health[-1].state == "ok", 10)

        # the camera goes away: health says so; it comes back at home, and is turned again
        camera.kill()
        killed_at = time.time()
        wait_for("health 'offline'", lambda: any(h.state == "offline" for h in health), 15)
        camera.start()
        restarted_at = time.time()
        wait_for(
            "health 'ok' after the outage",
            lambda: any(h.state == "ok" and h.time > restarted_at for h in health),
            30,
        )
        wait_for("the camera pointed again after restart", turned, 20)
        wait_for(
            "detections of the walker after the restart",
            lambda: sum(near_walker(d) for d in detections if d.time > restarted_at) >= 5,
            60,
        )
        outage = [h for h in health if h.state == "offline" and h.time >= killed_at]
        assert outage  # after the last frame (the client's buffer still held some), 2 s of none
        assert outage[0].last_heard <= killed_at + 3.0
        assert outage[0].time - outage[0].last_heard >= 2.0
    finally:
        stop.set()
        thread.join(30)
        probe.close()
        camera.kill()
    assert "error" not in result, result.get("error")
    counts = result["counts"]
    assert counts.commands == 1 and counts.commands_carried == 1
    assert counts.commands_refused == 1  # the command for t04 on t03's topic
    assert counts.reconnects >= 1
    assert ptz.counts.reconnects >= 1 and ptz.counts.moves >= 2  # the cue, then again
    assert counts.health["offline"] >= 1 and counts.health["degraded"] >= 1
    # every detection is stamped in order, on the stream's clock, never after it arrived
    times = [d.time for d in detections]
    assert times == sorted(times)
