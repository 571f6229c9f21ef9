"""Cueing in the simulator: a ground-sensor hit turns the nearest tower, which then sees the
group that set the sensor off (issue 7)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from vigil.config import load_default
from vigil.demo import DEMO_START_UTC
from vigil.ingest.schema import CameraCommand, CameraDetection
from vigil.pipeline import Pipeline
from vigil.sim import SimSettings

TOWER = "t03"


@pytest.fixture(scope="module")
def cued_run():
    site = load_default().site
    # Tower t03 alone, at night, groups on its corridor; no wind alarms, so that every hit
    # is a group's. The tower starts looking away from its corridor.
    sim = SimSettings(
        start_time=DEMO_START_UTC,
        towers=(TOWER,),
        frame_rate_hz=1.0,
        crossing_rate_scale=40.0,
        animals=False,
        road_traffic=False,
        uas=False,
        wind_nuisance_per_hour=0.0,
    )
    pipe = Pipeline(site, sim, seed=3)
    home = pipe.world.camera(TOWER)
    pipe.world.point_camera(TOWER, (home.pan_deg + 90.0) % 360.0, home.tilt_deg)
    commands: list[CameraCommand] = []
    pipe.bus.subscribe(
        "vigil/v1/+/cam/+/commands", lambda topic, m: commands.append(m)
    )  # what the tower was told
    detections: list[CameraDetection] = []
    pipe.bus.subscribe(f"vigil/v1/+/cam/{TOWER}/detections", lambda topic, m: detections.append(m))
    cue = None
    for _ in range(40):  # at most 20 minutes, in 30 s steps, until the tower is cued
        pipe.run(30.0)
        cue = next((c for c in commands if c.camera == TOWER and c.reason.startswith("cue")), None)
        if cue is not None:
            break
    assert cue is not None, "no ground-sensor hit cued the tower in 20 simulated minutes"
    pipe.run(60.0)  # within the dwell: the tower keeps looking
    yield pipe, cue, commands, detections
    pipe.close()


def test_hit_turns_the_nearest_tower_to_the_sensor(cued_run) -> None:
    pipe, cue, _, _ = cued_run
    engine = pipe.core.engine
    sensor_id = cue.reason.split()[-1]
    sx, sy, _, _ = engine.sensor_xy[sensor_id]
    nearest = min(
        engine.cameras, key=lambda k: math.hypot(engine.cameras[k].x - sx, engine.cameras[k].y - sy)
    )
    assert cue.camera == nearest == TOWER
    assert pipe.stats.cues >= 1
    # the simulated tower now points where it was told, and the sensor is in its picture
    cam = pipe.world.camera(TOWER)
    want = engine.cameras[TOWER].pointed_at(sx, sy)
    assert cam.pan_deg == pytest.approx(want.pan_deg, abs=0.01)
    assert cam.footprint().contains(shapely.Point(sx, sy))


def test_cued_tower_detects_the_group(cued_run) -> None:
    pipe, cue, _, detections = cued_run
    frame = pipe.frame
    before = [d for d in detections if d.time < cue.time]
    after = [d for d in detections if d.time >= cue.time]
    states = pipe.world.states(pipe.now)  # the group is still near the line of sensors
    people = np.array([c == "person" for c in states.classes])
    assert people.any()

    def near_people(dets) -> int:
        n = 0
        for d in dets:
            x, y = frame.to_local([d.lat], [d.lon])
            s = pipe.world.states(d.time)
            p = np.array([c == "person" for c in s.classes])
            if p.any() and np.hypot(s.x[p] - x[0], s.y[p] - y[0]).min() <= 80.0:
                n += 1
        return n

    # looking away, the tower saw none of the walkers; turned, it sees them
    assert near_people(before) == 0
    assert near_people(after) >= 10
    # and fusion follows a person track there that the tower contributes to
    tracks = [m for m, _, _ in pipe.core.live if TOWER in m.sensors]
    assert any(m.class_guess == "person" for m in tracks)
