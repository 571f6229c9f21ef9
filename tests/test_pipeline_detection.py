"""The demo chain builds each tower's detector from the deployment's detection settings
(``[detection]`` with the camera's ``[[cameras]]`` override), as ``vigil edge camera`` does."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from vigil.config import load_default
from vigil.demo import DEMO_START_UTC, demo_settings
from vigil.detection.settings import DetectionSettings
from vigil.pipeline import Pipeline

#: The demo chain's outputs with one detector setting for every tower (seed 1, 20x crossings,
#: 2 fps), stored by tests/test_refactor_golden.py.
GOLDEN_DEMO = Path(__file__).parent / "data" / "golden" / "demo.json.gz"
MASKED = "t02"  # the busiest tower in the first minute of that run


@pytest.mark.slow
def test_each_tower_gets_its_own_detection_settings() -> None:
    d = load_default()

    def settings(tower: str) -> DetectionSettings:
        base = d.detection_for(tower)
        if tower != MASKED:
            return base
        # this tower watches nothing: one ignore polygon over its whole image
        whole = [[-1, -1], [5000, -1], [5000, 5000], [-1, 5000]]
        return DetectionSettings(ignore=[whole]).over(base)

    sim = demo_settings(start_time=DEMO_START_UTC, crossing_rate_scale=20.0, fps=2.0)
    pipe = Pipeline(d.site, sim, 1, detection=settings)
    seen: Counter = Counter()
    pipe.bus.subscribe(
        "vigil/v1/+/cam/+/detections", lambda topic, m: seen.update([topic.split("/")[4]])
    )
    try:
        pipe.run(60.0)
    finally:
        pipe.close()
    with gzip.open(GOLDEN_DEMO, "rt", encoding="utf-8") as f:
        plain = Counter(
            topic.split("/")[4]
            for topic, kind, msg in json.load(f)
            if kind == "CameraDetection" and msg["time"] <= pipe.now
        )
    assert plain[MASKED] > 100, plain  # the tower had plenty to report with one setting
    assert seen[MASKED] == 0, seen
    assert all(seen[t] > 0 for t in plain if t not in (MASKED, "t06")), seen
    # the shipped file's override: t03 learns its background for 60 frames, the rest 35
    assert pipe.detectors["t03"].config.warmup_frames == 60
    others = [t for t in pipe.detectors if t != "t03"]
    assert others and all(pipe.detectors[t].config.warmup_frames == 35 for t in others)
