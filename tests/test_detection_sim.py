"""Issue 4 on simulated towers: recall of people and false detections per camera-minute.

One tower (``t03``, 640x480, the demo deployment's camera, looking at corridor c3's
crossing point) at night (23:00 local), seed 7, crossings scaled up 40 times so that a
few dozen people are in view, 5 frames per second (half the tower's rate, to keep the test
short), 210 s simulated. Every camera nuisance of the simulator is on at its default size:
sensor noise, gain drift, heat shimmer, brush flicker and camera shake, the last made
frequent (120 events an hour instead of 4, so that about seven fall in the window).

Protocol (:mod:`vigil.sim.eval_detection` has it in full):

* the first 30 s of frames warm the detector up (background, shake reference) and are
  not scored; 3 camera-minutes are scored;
* a detection matches a truth body when the body's box (moved into the detector's
  shake-registered image) grown by 2 pixels overlaps the detection's box; a blob may
  match several members of a group, which at 2 km are a pixel or two apart;
* **people**: every person within the camera's rated range (4 km) whom the simulator
  draws at all (his brightest pixel at least 2 grey levels above the ground, the
  simulator's own floor), however dim and however slowly his image moves: groups walking
  nearly straight at the tower 2-3 km away move a few hundredths of a pixel a second, a
  fifth or more of the person-frames here, and count like everyone else (people standing
  still count too). By day half of them stand under 8 grey levels above the ground;
* **per-object recall**: a person in range for at least 2 s of scored frames counts, and
  is detected if a detection matches him in at least one of those frames; acceptance is
  >= 95 %;
* **false detections**: detections matching no truth body of any class, counted once per
  detector object (one number of the follower's, as one false track downstream); the
  acceptance is <= 1 per camera-minute;
* the same frames run through a detector without the persistence filter, which must
  exceed the false limit, and one without the slow background (the sample-consensus
  model alone learns the slow walkers as they go), which must fall short of the recall:
  the test can tell.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from vigil.config import load_default
from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.objects import CameraGeometry
from vigil.sim.eval_detection import NIGHT_START, night_settings, score_towers

pytestmark = pytest.mark.slow

SEED = 7
TOWER = "t03"
FPS = 5.0
DURATION_S = 210.0
WARMUP_S = 30.0
SETTINGS = night_settings((TOWER,), FPS, crossing_rate_scale=40.0, shake_per_hour=120.0)
# 14:00 local: contrast 0.45 of the night's, shimmer 2.5 and brush flicker 2.5 times stronger.
DAY_SEED = 11
DAY_TOWER = "t01"
DAY_DURATION_S = 150.0
#: Every body the simulator draws counts, however dim (its own truth floor, grey levels).
EVERY_BODY_DN = 2.0
DAY_SETTINGS = night_settings(
    (DAY_TOWER,), FPS, crossing_rate_scale=40.0, shake_per_hour=120.0,
    start_time=NIGHT_START - 9 * 3600.0,
)  # fmt: skip


def tower_detectors(configs: dict[str, DetectorConfig]) -> dict:
    """Each setting as a factory of detectors placed on their tower's camera model."""

    def factory(config: DetectorConfig):
        return lambda tower, camera, frame: MotionDetector(
            (camera.height, camera.width), config, CameraGeometry(camera, frame, tower)
        )

    return {name: factory(cfg) for name, cfg in configs.items()}


@pytest.fixture(scope="module")
def scores():
    base = DetectorConfig.for_tower()
    configs = {
        "for_tower": base,
        "no_persistence": replace(base, objects=replace(base.objects, min_hits=1, window=1)),
        "no_slow": replace(base, slow=None),
    }
    return score_towers(
        load_default().site, SETTINGS, SEED, DURATION_S, tower_detectors(configs),
        warmup_s=WARMUP_S, min_peak_dn=EVERY_BODY_DN,
    )  # fmt: skip


@pytest.fixture(scope="module")
def day_scores():
    base = DetectorConfig.for_tower()
    configs = {"for_tower": base, "no_slow": replace(base, slow=None)}
    return score_towers(
        load_default().site, DAY_SETTINGS, DAY_SEED, DAY_DURATION_S, tower_detectors(configs),
        warmup_s=WARMUP_S, min_peak_dn=EVERY_BODY_DN,
    )  # fmt: skip


@pytest.mark.parametrize("s", [SETTINGS, DAY_SETTINGS], ids=["night", "day"])
def test_every_camera_nuisance_is_on(s) -> None:
    assert s.sensor_noise and s.noise_dn > 0
    assert s.gain_drift and s.gain_drift_fraction > 0
    assert s.shimmer and s.shimmer_px > 0
    assert s.vegetation and s.vegetation_dn > 0
    assert s.shake and s.shake_px > 0 and s.shake_per_hour > 0
    assert s.cameras == "render" and len(s.towers) == 1


def test_scored_time_and_people(scores) -> None:
    s = scores["for_tower"]
    assert s.camera_minutes == pytest.approx((DURATION_S - WARMUP_S) / 60.0, abs=0.01)
    assert s.people >= 30, s.summary()  # enough people for a percentage to mean something
    # Nobody in range is left out: not the dim, not the slow walkers.
    assert s.people == s.people_in_range and s.excluded_share == 0.0, s.summary()
    assert s.slow_share > 0.15, s.summary()  # the case has people slow in the image


def test_recall_of_people_within_rated_range(scores) -> None:
    s = scores["for_tower"]
    assert s.recall >= 0.95, (s.summary(), s.missed)
    # Frames in which a person's image moved under a pixel in 5 s are mostly detected too.
    assert s.slow_frame_recall >= 0.7, s.summary()


def test_without_the_slow_background_slow_walkers_are_missed(scores) -> None:
    s = scores["no_slow"]
    assert s.recall < 0.95 and s.slow_frame_recall < 0.5, (s.summary(), s.missed)


def test_false_detections_per_camera_minute(scores) -> None:
    s = scores["for_tower"]
    assert s.false_per_camera_minute <= 1.0, (s.summary(), s.false_at)


def test_shake_registration_follows_the_true_shake(scores) -> None:
    # The reference of the shake estimate is anchored to the frames as they come: one
    # built from registered frames drifted 4.5 px in 4 minutes as walkers crossed.
    # Unregistered, the error is the shake itself (largest 0.75 px in this window).
    s = scores["for_tower"]
    assert s.shake_max_px > 0.5, s.summary()  # shake did happen
    assert s.shift_rms_px < 0.2 and s.shift_max_px < 0.5 * s.shake_max_px, s.summary()


def test_without_persistence_the_false_rate_fails(scores) -> None:
    s = scores["no_persistence"]
    assert s.false_per_camera_minute > 1.0, s.summary()


def test_ground_positions_are_not_biased_in_range(scores) -> None:
    # From a 25 m mast a pixel of image height is ~27 m of range at 1 km and ~60 m at
    # 1.5 km. Taking the blob's lowest row as the feet put detections 38 m and 50 m short
    # (tracks crossed the line a minute early); the centroid met at half a person's
    # height is within a metre in the median here, 4-8 m in the quartiles.
    bias = scores["for_tower"].range_bias()
    for key in ("750-1250", "1250-1750"):
        median_m, count = bias[key]
        assert count >= 100 and abs(median_m) <= 8.0, bias


def test_by_day_everyone_in_range_is_detected_without_false_alarms(day_scores) -> None:
    # Half the people in range by day stand under 8 grey levels above the ground (contrast
    # is 0.45 of the night's); a group of 11 about 2 km out lifts its pixels 8-10.7 levels.
    # The sample-consensus model alone finds 4 of the 22: its radius (8 and more where
    # brush and shimmer move) is their contrast. The slow background's one-second low-pass
    # lifts them over the flicker.
    s = day_scores["for_tower"]
    assert s.people >= 20 and s.people == s.people_in_range, s.summary()
    assert s.recall >= 0.95, (s.summary(), s.missed)
    assert s.false_per_camera_minute <= 1.0, (s.summary(), s.false_at)
    assert day_scores["no_slow"].recall < 0.5, day_scores["no_slow"].summary()
