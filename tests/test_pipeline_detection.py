"""The demo chain builds each tower's detector from the deployment's detection settings
(``[detection]`` with the camera's ``[[cameras]]`` override), as ``vigil edge camera`` does."""

from __future__ import annotations

from collections import Counter

import pytest

from vigil.config import load_default
from vigil.demo import DEMO_START_UTC, demo_settings
from vigil.detection.settings import DetectionSettings
from vigil.pipeline import Pipeline


def _detections_by_tower(detection) -> tuple[Pipeline, Counter]:
    sim = demo_settings(start_time=DEMO_START_UTC, crossing_rate_scale=20.0, fps=2.0)
    pipe = Pipeline(load_default().site, sim, 1, detection=detection)
    seen: Counter = Counter()
    pipe.bus.subscribe(
        "vigil/v1/+/cam/+/detections", lambda topic, m: seen.update([topic.split("/")[4]])
    )
    try:
        pipe.run(60.0)
    finally:
        pipe.close()
    return pipe, seen


@pytest.mark.slow
def test_each_tower_gets_its_own_detection_settings() -> None:
    d = load_default()
    _, plain = _detections_by_tower(None)
    busy = max(plain, key=plain.get)
    assert plain[busy] > 0

    def settings(tower: str) -> DetectionSettings:
        base = d.detection_for(tower)
        if tower != busy:
            return base
        # the busy tower watches nothing: one ignore polygon over its whole image
        whole = [[-1, -1], [5000, -1], [5000, 5000], [-1, 5000]]
        return DetectionSettings(ignore=[whole]).over(base)

    pipe, masked = _detections_by_tower(settings)
    assert masked[busy] == 0, masked
    assert sum(masked.values()) > 0
    # the shipped file's override: t03 learns its background for 60 frames, the rest 35
    assert pipe.detectors["t03"].config.warmup_frames == 60
    others = [t for t in pipe.detectors if t != "t03"]
    assert others and all(pipe.detectors[t].config.warmup_frames == 35 for t in others)
