"""``vigil edge camera``: frames from a file or a live stream, through the tower's detector, onto
the bus; pacing on a shared clock; a lost stream reopened."""

from __future__ import annotations

import dataclasses
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from vigil.cli import main
from vigil.config import load_default
from vigil.detection.detector import DetectorConfig
from vigil.edge import tower_detector
from vigil.hardware.camera import CameraCounts, CameraSourceError, live_frames, run_camera_edge
from vigil.hardware.pacing import PacedBus, Pacer, message_time
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import SensorEvent, encode
from vigil.sim import SimSettings
from vigil.sim.files import simulate_to_files

NIGHT = SimSettings().start_time + 9 * 3600
FPS = 4.0
#: Tower settings without the warm-up: these tests count on the clutter of a model that has
#: just started (brush and shimmer on t04) to have detections to compare.
CONFIG = dataclasses.replace(DetectorConfig.for_tower(), warmup_frames=0)


@pytest.fixture(scope="module")
def site():
    return load_default().site


@pytest.fixture(scope="module")
def video(site, tmp_path_factory):
    """Half a minute of tower t04 (its vegetation and shimmer make detections) as a file."""
    folder = tmp_path_factory.mktemp("cam")
    st = SimSettings(
        start_time=NIGHT,
        towers=("t04",),
        frame_width=160,
        frame_height=120,
        frame_rate_hz=FPS,
        ugs=False,
        uas=False,
    )
    manifest = simulate_to_files(site, st, 0.75, 7, folder, progress=False)
    return folder / "cameras" / "t04.avi", manifest


def collect(bus: InProcessBus) -> list:
    got: list = []
    bus.subscribe("vigil/v1/tucson/#", lambda topic, msg: got.append((topic, msg)))
    return got


def test_file_source_publishes_what_the_detector_finds(site, video):
    path, manifest = video
    bus = InProcessBus("tucson")
    got = collect(bus)
    start = manifest["start_time"]
    counts = run_camera_edge(
        str(path),
        bus,
        "tucson",
        "t04",
        tower_detector(site, "t04", CONFIG),
        fps=FPS,
        start_time=start,
    )
    # the same frames through a detector of our own, read with OpenCV directly
    detect = tower_detector(site, "t04", CONFIG)
    cap = cv2.VideoCapture(str(path))
    want, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        want += detect(frame, start + i / FPS, i)
        i += 1
    cap.release()
    assert counts.frames == i == manifest["video"]["t04"]["frames"]
    assert len(want) > 0
    assert [m for _, m in got] == want
    assert {t for t, _ in got} == {"vigil/v1/tucson/cam/t04/detections"}
    assert counts.detections == len(want)
    assert counts.first_time == start
    assert counts.last_time == pytest.approx(start + (i - 1) / FPS)


def test_cli_runs_the_camera_adapter_in_process(video, capsys):
    path, manifest = video
    status = main(
        ["edge", "camera", str(path), "--id", "t04", "--fps", str(FPS),
         "--start", repr(manifest["start_time"])]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert f"{manifest['video']['t04']['frames']} frames" in out


def test_cli_refuses_a_tower_not_in_the_deployment(video, capsys):
    path, _ = video
    assert main(["edge", "camera", str(path), "--id", "t99"]) == 2
    assert "t99" in capsys.readouterr().err


def test_missing_file_names_it():
    bus = InProcessBus("tucson")
    with pytest.raises(CameraSourceError, match="nope.avi"):
        run_camera_edge("nope.avi", bus, "tucson", "t04", lambda f, t, i: [], fps=4.0)


class Clock:
    """A wall clock that moves only when slept on."""

    def __init__(self, t: float) -> None:
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_pacer_releases_message_times_on_the_shared_clock():
    clock = Clock(1000.0)
    pacer = Pacer(10.0, origin=5000.0, start_wall=1002.0, clock=clock, sleep=clock.sleep)
    for t in (5000.0, 5010.0, 5010.0, 5030.0):
        pacer.wait(t)
        assert clock.t == pytest.approx(max(1002.0 + (t - 5000.0) / 10.0, clock.t))
    assert clock.slept == pytest.approx([2.0, 1.0, 2.0])
    pacer.wait(5030.0 + 3600.0)  # a clock an hour off: released at once, the pace goes on
    assert pacer.unpaced == 1 and clock.t == pytest.approx(1005.0)


def test_paced_bus_reads_times_from_raw_lines():
    clock = Clock(0.0)
    inner = InProcessBus("tucson")
    got = collect(inner)
    bus = PacedBus(inner, Pacer(2.0, origin=NIGHT, start_wall=0.0, clock=clock, sleep=clock.sleep))
    ev = SensorEvent(sensor="u117", time=NIGHT + 8.0, modality="seismic", strength=1.0)
    assert message_time(encode(ev)) == NIGHT + 8.0
    assert message_time(b"{not json") is None
    bus.publish("vigil/v1/tucson/ugs/u117/events", encode(ev))
    assert clock.t == pytest.approx(4.0)
    assert [m for _, m in got] == [ev]


class _Mjpeg(BaseHTTPRequestHandler):
    """An IP camera's MJPEG stream that drops the connection after 15 frames."""

    served: list[int] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for i in range(15):
            img = np.full((48, 64, 3), 80, np.uint8)
            img[10:20, 2 * i : 2 * i + 6] = 220
            jpg = cv2.imencode(".jpg", img)[1].tobytes()
            head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
            try:
                self.wfile.write(head + jpg + b"\r\n")
                self.wfile.flush()
            except OSError:
                return
            type(self).served.append(i)
            time.sleep(0.01)


def test_a_lost_stream_is_reopened_and_numbering_goes_on():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Mjpeg)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
    stop = threading.Event()
    seen: list[tuple[int, float]] = []

    def detect(frame, t, index):
        seen.append((index, t))
        if len(seen) >= 40:
            stop.set()
        return []

    bus = InProcessBus("tucson")
    try:
        counts = run_camera_edge(
            url, bus, "tucson", "t04", detect, reconnect_s=0.05, max_reconnects=20, stop=stop
        )
    finally:
        server.shutdown()
        server.server_close()
    assert counts.frames == 40
    assert counts.reconnects >= 2  # 15 frames per connection
    assert [i for i, _ in seen] == list(range(40))
    times = [t for _, t in seen]
    assert times == sorted(times) and abs(times[0] - time.time()) < 60


def test_a_stream_that_never_opens_is_an_error():
    with pytest.raises(CameraSourceError, match="cannot open"):
        next(live_frames("rtsp://127.0.0.1:9/none", max_reconnects=0))


def test_cli_takes_the_towers_detection_settings_from_the_deployment(video, tmp_path, capsys):
    """A [[cameras]] override for t04 that ignores the whole picture: nothing is reported."""
    from vigil.config import default_deployment_path

    path, manifest = video
    text = default_deployment_path().read_text()
    deployment = tmp_path / "sector.toml"
    args = ["edge", "camera", str(path), "--id", "t04", "--fps", str(FPS),
            "--start", repr(manifest["start_time"]), "--deployment", str(deployment)]  # fmt: skip
    deployment.write_text(text + '\n[[cameras]]\ntower = "t04"\nwarmup_frames = 0\n')
    assert main(args) == 0
    assert " 0 detections" not in capsys.readouterr().out  # clutter of a fresh model
    everything = "[[[-5, -5], [200, -5], [200, 200], [-5, 200]]]"
    deployment.write_text(
        text + f'\n[[cameras]]\ntower = "t04"\nwarmup_frames = 0\nignore = {everything}\n'
    )
    assert main(args) == 0
    assert " 0 detections published from t04" in capsys.readouterr().out


def test_a_camera_that_comes_up_after_its_adapter_is_waited_for():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/video.mjpg"
    counts = CameraCounts()
    frames = live_frames(url, counts=counts, reconnect_s=0.1, max_reconnect_s=0.2)
    server: list = []

    def later() -> None:
        time.sleep(0.5)
        server.append(ThreadingHTTPServer(("127.0.0.1", port), _Mjpeg))
        server[0].serve_forever()

    threading.Thread(target=later, daemon=True).start()
    try:
        first = next(frames)
    finally:
        frames.close()
        if server:
            server[0].shutdown()
            server[0].server_close()
    assert first[0] == 0 and counts.reconnects == 1
