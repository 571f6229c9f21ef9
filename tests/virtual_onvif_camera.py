"""A virtual ONVIF PTZ camera for the tests: ipycam (PyPI) serving simulator frames.

Run as a program (``python tests/virtual_onvif_camera.py --onvif-port P --rtsp-port Q ...``):
a third-party virtual IP camera, ``ipycam``, answers ONVIF (device, media and PTZ services,
WS-Security digest) and serves H.264 over RTSP through its native server (FFmpeg). Its
digital PTZ crop is off: the pan and tilt a client sets over ONVIF choose where the
simulator's tower camera looks, through the same documented mapping the adapter reads
back (:class:`vigil.hardware.ptz.PtzMapping`), and each frame is the simulator's thermal
render of one walker in the sector, seen from there.

The test imports the simulator here, in the camera's process; the adapter under test reads
only RTSP and ONVIF.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np


def walker_at(t: float, x0: float, y0: float, vx: float, vy: float, period: float):
    """Where the walker is at simulated time ``t``: from ``(x0, y0)`` along ``v`` for half a
    ``period``, back for the other half, and again (local metres, m/s, seconds)."""
    phase = (t % period) / period
    k = 2.0 * phase if phase < 0.5 else 2.0 - 2.0 * phase  # 0 -> 1 -> 0
    dt = k * period / 2.0
    return x0 + vx * dt, y0 + vy * dt


def walker_states(t: float, x0: float, y0: float, vx: float, vy: float, period: float):
    """One person pacing along a line (see :func:`walker_at`)."""
    from vigil.sim.movers import MoverStates

    x, y = walker_at(t, x0, y0, vx, vy, period)
    return MoverStates(
        time=t,
        ids=["w1"],
        kinds=["group"],
        classes=["person"],
        groups=["g1"],
        x=np.array([x]),
        y=np.array([y]),
        vx=np.array([vx]),
        vy=np.array([vy]),
        width_m=np.array([0.5]),
        height_m=np.array([1.75]),
        contrast_dn=np.array([45.0]),
    )


#: The scene of the tests: tower t03's camera, turned from home toward ground sensor u030
#: (498 m out, 43 degrees left of its home pointing), where one person paces 50 m across the
#: line of sight and back at 1.5 m/s, at 02:00 local on the simulator's first night.
TOWER = "t03"
SENSOR = "u030"
WIDTH, HEIGHT = 480, 360
USER, PASSWORD = "vigil", "ptz-secret"
NIGHT = 1_780_272_000.0 + 9 * 3600


def scene(site):
    """``(home camera, sensor x, y, walker line)`` in the sector's local frame."""
    from vigil.geo.site import tower_camera

    frame = site.frame()
    tower = next(t for t in site.towers if t.id == TOWER)
    home = tower_camera(tower, frame)
    sensor = next(u for u in site.sensors if u.id == SENSOR)
    sx, sy = (float(v[0]) for v in frame.to_local([sensor.lat], [sensor.lon]))
    across = math.atan2(sx - home.x, sy - home.y) + math.pi / 2
    vx, vy = 1.5 * math.sin(across), 1.5 * math.cos(across)
    walker = (sx - 25 * math.sin(across), sy - 25 * math.cos(across), vx, vy, 2 * 50 / 1.5)
    return home, sx, sy, walker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VirtualCamera:
    """The ipycam process (this program): started, killed and started again on the same ports.

    ``walker`` is :func:`walker_at`'s line, ``offset`` simulated minus wall time, seconds.
    """

    def __init__(self, workdir: Path, walker: tuple[float, ...], offset: float) -> None:
        self.workdir = workdir
        self.onvif_port = free_port()
        self.rtsp_port = free_port()
        self.walker = walker
        self.offset = offset
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.workdir / f"camera-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable, str(Path(__file__).resolve()),
                "--onvif-port", str(self.onvif_port), "--rtsp-port", str(self.rtsp_port),
                "--workdir", str(self.workdir), "--tower", TOWER,
                "--sim-offset", repr(self.offset),
                "--width", str(WIDTH), "--height", str(HEIGHT),
                "--walker", ",".join(repr(v) for v in self.walker),
                "--user", USER, "--password", PASSWORD,
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        end = time.monotonic() + 30.0
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.rtsp_port), 0.5).close()
                socket.create_connection(("127.0.0.1", self.onvif_port), 0.5).close()
                return
            except OSError:
                assert self.proc.poll() is None, self.log_text()
                time.sleep(0.2)
        raise AssertionError(f"the virtual camera did not start: {self.log_text()}")

    def kill(self) -> None:
        """Kill the camera and its encoders at once (a power cut, not a shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def toggle_freeze(self) -> None:
        """Make the camera send its last picture over and over (again: live once more)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGUSR1)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in self.workdir.glob("*.log"))


def wait_for(what: str, cond, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


PTZ_NS = "http://www.onvif.org/ver20/ptz/wsdl"


def fix_ipycam_soap(onvif) -> None:
    """Two faults of ipycam 1.3.0's PTZ answers that a strict client (zeep) refuses, mended.

    - Its PTZ responses use the prefixes ``ptz:`` and ``tptz:``, which its SOAP envelope does
      not declare: the envelope gets both, bound to the PTZ service's namespace.
    - Its ``GetStatus`` template has ``{{pan_tilt_status}}``, ``{{zoom_status}}`` and
      ``{{utc_time}}``, which it never fills (it passes ``move_status``): they are filled.

    Nothing else of the camera changes: positions, moves and presets are ipycam's own.
    """
    t = onvif._templates
    t["envelope"] = t["envelope"].replace(
        'xmlns:tt="', f'xmlns:ptz="{PTZ_NS}" xmlns:tptz="{PTZ_NS}" xmlns:tt="', 1
    )
    render = onvif._render

    def _render(name: str, **kw):
        if name == "ptz_get_status":
            kw.setdefault("pan_tilt_status", kw.get("move_status", "IDLE"))
            kw.setdefault("zoom_status", "IDLE")
            kw.setdefault("utc_time", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return render(name, **kw)

    onvif._render = _render


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--onvif-port", type=int, required=True)
    p.add_argument("--rtsp-port", type=int, required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--tower", default="t03")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--fps", type=int, default=10)
    p.add_argument("--sim-offset", type=float, required=True, help="simulated minus wall time, s")
    p.add_argument("--walker", required=True, help="x0,y0,vx,vy,period: local m, m/s, s")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--pan-deg-per-unit", type=float, default=180.0)
    p.add_argument("--tilt-deg-per-unit", type=float, default=30.0)
    args = p.parse_args(argv)

    from ipycam import CameraConfig, IPCamera

    from vigil.config import load_default
    from vigil.geo.site import tower_camera
    from vigil.hardware.ptz import PtzMapping
    from vigil.sim.settings import SimSettings
    from vigil.sim.thermal import Terrain, TowerView

    os.chdir(args.workdir)  # ipycam keeps its presets in ./ptz_presets.json
    site = load_default().site
    frame_of_reference = site.frame()
    tower = next(t for t in site.towers if t.id == args.tower)
    cam = replace(tower_camera(tower, frame_of_reference), width=args.width, height=args.height)
    mapping = PtzMapping(
        pan_zero_deg=tower.pan_deg,
        pan_deg_per_unit=args.pan_deg_per_unit,
        tilt_zero_deg=tower.tilt_deg,
        tilt_deg_per_unit=args.tilt_deg_per_unit,
        hfov_wide_deg=tower.hfov_deg,
        hfov_tele_deg=tower.hfov_deg,
    )
    st = SimSettings(
        start_time=time.time() + args.sim_offset,
        towers=(args.tower,),
        frame_width=args.width,
        frame_height=args.height,
        shake=False,
        slew_deg_per_s=90.0,
    )
    view = TowerView(args.tower, cam, st, 5, 0, Terrain(5))
    walker = tuple(float(v) for v in args.walker.split(","))

    config = CameraConfig(
        name="vigil-test-ptz",
        local_ip="127.0.0.1",
        onvif_port=args.onvif_port,
        rtsp_port=args.rtsp_port,
        web_port=0,
        main_width=args.width,
        main_height=args.height,
        main_fps=args.fps,
        main_bitrate="2M",
        sub_width=args.width,
        sub_height=args.height,
        sub_fps=args.fps,
        show_timestamp=False,
    )
    if args.user:
        config.set_credentials(args.user, args.password)
    camera = IPCamera(config)
    camera.ptz.enable_digital_ptz = False  # the simulator turns; no crop of its picture
    fix_ipycam_soap(camera.onvif)
    if not camera.start():
        print("virtual camera: failed to start", file=sys.stderr)
        return 1
    done = threading.Event()
    frozen = threading.Event()  # SIGUSR1 toggles: the camera sends its last picture again
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    signal.signal(signal.SIGUSR1, lambda *a: frozen.clear() if frozen.is_set() else frozen.set())
    print(f"virtual camera: streaming as {camera.streaming_mode}", flush=True)
    tick = 0
    picture = None
    try:
        while not done.is_set():
            if frozen.is_set() and picture is not None:
                camera.stream(picture.copy())
                continue
            t = time.time() + args.sim_offset
            s = camera.ptz.get_status()
            pointing = mapping.pointing(s["pan"], s["tilt"], s["zoom"])
            view.point(pointing.pan_deg, pointing.tilt_deg)
            d = time.gmtime(t)
            hour = d.tm_hour + d.tm_min / 60.0 + d.tm_sec / 3600.0  # UTC; the sector is UTC-7
            hour = (hour - 7.0) % 24.0
            _, img, _ = view.frame(t, tick, hour, walker_states(t, *walker), True)
            assert img is not None
            picture = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            camera.stream(picture.copy())  # paces to the frame rate
            tick += 1
    finally:
        camera.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = [
    "VirtualCamera",
    "fix_ipycam_soap",
    "main",
    "scene",
    "wait_for",
    "walker_at",
    "walker_states",
]
