"""Issue 24 items 2-3: ``vigil edge camera --sensor`` (default auto): the sensor kind from the
camera's first frame over the deployment's, in the camera's status and on stderr."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vigil.cli import main
from vigil.cli.edge import SensorChosen
from vigil.config import load_default
from vigil.edge import deployment_detector
from vigil.hardware.camera import run_camera_edge
from vigil.hardware.camera_health import camera_status_topic
from vigil.ingest.bus import InProcessBus
from vigil.sim import SimSettings

SECTOR = "tucson"
NIGHT = SimSettings().start_time + 9 * 3600


def write_clip(path, colour: bool, n: int = 20) -> None:
    """A walking square over a textured ground, in colour or grey (MJPG)."""
    rng = np.random.default_rng(2)
    ground = cv2.GaussianBlur(rng.integers(40, 200, (120, 160, 3), dtype=np.uint8), (0, 0), 2)
    if not colour:
        ground = cv2.cvtColor(cv2.cvtColor(ground, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (160, 120))
    for i in range(n):
        f = ground.copy()
        f[50:62, 10 + 3 * i : 16 + 3 * i] = (30, 60, 220) if colour else (220, 220, 220)
        vw.write(f)
    vw.release()


@pytest.mark.parametrize(("colour", "choice", "kind", "why"), [
    (True, "auto", "daylight", "frames"),
    (False, "auto", "thermal", "frames"),
    (True, "thermal", "thermal", "--sensor"),
])  # fmt: skip
def test_the_status_carries_the_sensor_kind(tmp_path, colour, choice, kind, why) -> None:
    path = tmp_path / "clip.avi"
    write_clip(path, colour)
    d = load_default()  # its [detection] says sensor = "thermal"
    detect = SensorChosen(deployment_detector(d, "t03"), choice)
    bus = InProcessBus(SECTOR)
    got: list = []
    bus.subscribe(f"vigil/v1/{SECTOR}/#", lambda topic, msg: got.append((topic, msg)))
    run_camera_edge(str(path), bus, SECTOR, "t03", detect, fps=5.0, start_time=NIGHT,
                    detection=detect.detection_settings)  # fmt: skip
    (status,) = [m for t, m in got if t == camera_status_topic(SECTOR, "t03")]
    assert status.detection["sensor"] == kind and status.detection["sensor_from"] == why
    want = d.detection_for("t03").effective(thermal=True)
    filter_px = 5 if kind == "daylight" else want["filter_px"]
    assert status.detection["filter_px"] == filter_px
    assert status.detection["warmup_frames"] == want["warmup_frames"]  # t03's own 60 stays


def test_vigil_edge_camera_names_the_sensor_and_warns_of_a_disagreement(tmp_path, capsys):
    path = tmp_path / "clip.avi"
    write_clip(path, colour=True)
    assert main(["edge", "camera", str(path), "--id", "t03", "--fps", "5",
                 "--state-dir", str(tmp_path / "edge")]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "sensor daylight (frames): threshold_grey=18" in err
    assert "the deployment says sensor = 'thermal'" in err
