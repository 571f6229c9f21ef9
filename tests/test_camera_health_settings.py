"""Camera health carries the detection settings in effect, and the start-up calibration's choice."""

from __future__ import annotations

import logging

import numpy as np

from vigil.detection.detector import MotionDetector
from vigil.detection.settings import DetectionSettings
from vigil.hardware.camera_health import StreamHealth
from vigil.ingest.bus import InProcessBus


def test_health_reports_the_settings_and_the_calibration(caplog) -> None:
    settings = DetectionSettings(sensor="thermal", neighbour_px=1, calibrate=True)
    health = StreamHealth(
        InProcessBus("s1"), "s1", "cam1", clock=lambda: 100.0, detection=settings.effective()
    )
    det = MotionDetector((48, 64), settings.detector_config(), camera_id="cam1")
    rng = np.random.default_rng(0)
    for i in range(32):  # noise of about 6 grey levels: the calibration raises the floor
        det.process(np.clip(100 + rng.normal(0, 6, (48, 64)), 0, 255).astype(np.uint8), i / 10)
    with caplog.at_level(logging.INFO, logger="vigil.hardware.camera_health"):
        health.set_detection({"calibration": det.calibration_report})
    got = health.report()
    assert got["camera"] == "cam1"
    assert got["detection"]["neighbour_px"] == 1 and got["detection"]["calibrate"] is True
    assert got["detection"]["calibration"]["radius_min"] > 8
    assert "detection settings" in caplog.text and "radius_min" in caplog.text
