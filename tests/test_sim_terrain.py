"""The simulator on relief (issue 21 item 5): bodies stand on the DEM, the ground hides them,
the tower cameras point off by errors the frames do not carry, sensors and aircraft see over
the same ground; without relief, nothing changes."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.config import load_default
from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel
from vigil.geo.site import GroundSensor
from vigil.sim import SimError, SimSettings, World
from vigil.sim.movers import MoverStates
from vigil.sim.terrain import SimTerrain
from vigil.sim.thermal import Terrain, TowerView
from vigil.sim.ugs import SensorField

START = SimSettings().start_time
CELL = 10.0


def _dem(edit=None) -> ElevationModel:
    """Flat ground at 0 m, 4 x 4 km around the origin, changed by ``edit(x, y, z)``."""
    xs = np.arange(-2000.0, 2000.0 + CELL, CELL)
    gx, gy = np.meshgrid(xs, xs)
    z = np.zeros_like(gx)
    if edit is not None:
        edit(gx, gy, z)
    return ElevationModel(z, -2000.0, -2000.0, CELL)


def _wash(gx, gy, z):
    z[(gy >= 1500.0) & (gy <= 1560.0)] = -8.0  # a wash 8 m deep, 60 m wide, running east


def _plateau(gx, gy, z):
    z[gy >= 900.0] = 20.0


def _people(xy: list[tuple[float, float]]) -> MoverStates:
    n = len(xy)
    x = np.array([p[0] for p in xy], float)
    y = np.array([p[1] for p in xy], float)
    return MoverStates(
        0.0, [f"m{i}" for i in range(n)], ["person"] * n, ["person"] * n, [""] * n,
        x, y, np.zeros(n), np.zeros(n), np.full(n, 0.6), np.full(n, 1.7), np.full(n, 60.0),
    )  # fmt: skip


def _view(relief: SimTerrain | None) -> TowerView:
    cam = PinholeCamera(x=0.0, y=0.0, height_m=25.0, pan_deg=0.0, tilt_deg=0.9, hfov_deg=24.0)
    return TowerView("t01", cam, SimSettings(shake=False), 3, 0, Terrain(3), relief)


def test_a_body_in_a_wash_is_not_drawn_and_one_on_open_ground_is() -> None:
    people = _people([(0.0, 1000.0), (0.0, 1530.0)])
    flat = _view(None)
    _, _, seen = flat.frame(START, 0, 23.0, people, render=False)
    assert sorted(o.mover_id for o in seen) == ["m0", "m1"]
    relief = SimTerrain(_dem(_wash), pointing_sigma_deg=0.0)
    view = _view(relief)
    _, _, seen = view.frame(START, 0, 23.0, people, render=False)
    assert [o.mover_id for o in seen] == ["m0"]
    # a body standing on the wash's far rim is seen again
    _, _, seen = view.frame(START, 1, 23.0, _people([(0.0, 1575.0)]), render=False)
    assert [o.mover_id for o in seen] == ["m0"]


def test_bodies_stand_on_the_dem() -> None:
    relief = SimTerrain(_dem(_plateau), pointing_sigma_deg=0.0)
    view = _view(relief)
    cam, _, seen = view.frame(START, 0, 23.0, _people([(0.0, 1200.0)]), render=False)
    (body,) = seen
    drop = relief.seen_z(cam.centre, 0.0, 1200.0) - 20.0
    _, v_foot, _ = cam.project(0.0, 1200.0, 20.0 + drop)
    assert body.foot[1] == pytest.approx(float(v_foot), abs=1e-6)
    # 20 m up at 1.2 km is about 20 pixels higher in the image than on flat ground
    _, v_flat, _ = cam.project(0.0, 1200.0, 0.0)
    assert float(v_flat) - body.foot[1] > 15.0


def test_the_camera_points_off_by_an_error_the_frames_do_not_carry() -> None:
    error = (0.1, 0.05, 0.02)
    relief = SimTerrain(_dem(), pointing_error_deg={"t01": error})
    view = _view(relief)
    cam, _, seen = view.frame(START, 0, 23.0, _people([(100.0, 1000.0)]), render=False)
    assert (cam.pan_deg, cam.tilt_deg, cam.roll_deg) == (0.0, 0.9, 0.0)  # as deployed
    (body,) = seen
    nominal_u, _, _ = cam.project(100.0, 1000.0, 0.0)
    # drawn where the truly pointed camera sees it: 0.1 degree of pan is about 2.6 px
    shift = body.foot[0] - float(nominal_u)
    assert shift == pytest.approx(-cam.focal_px * np.radians(0.1), abs=0.5)
    # the drawn error is repeatable and drawn per tower when not given
    drawn = SimTerrain(_dem(), pointing_sigma_deg=0.05)
    assert drawn.pointing_error("t01", 3, 0) == drawn.pointing_error("t01", 3, 0)
    assert drawn.pointing_error("t01", 3, 0) != drawn.pointing_error("t02", 3, 1)
    with pytest.raises(SimError, match="pointing_sigma_deg"):
        SimTerrain(_dem(), pointing_sigma_deg=-1.0)
    with pytest.raises(SimError, match="pointing_error_deg"):
        SimTerrain(_dem(), pointing_error_deg={"t01": (0.0, float("nan"), 0.0)})


def test_the_background_shows_sky_above_a_ridge() -> None:
    def ridge(gx, gy, z):
        z[(gy >= 1000.0) & (gy <= 1100.0)] = 80.0

    flat_view, ridge_view = _view(None), _view(SimTerrain(_dem(ridge), pointing_sigma_deg=0.0))
    people = _people([])
    _, flat_img, _ = flat_view.frame(START, 0, 23.0, people, render=True)
    _, ridge_img, _ = ridge_view.frame(START, 0, 23.0, people, render=True)
    assert flat_img is not None and ridge_img is not None
    # the ridge (80 m up at 1 km) rises above the flat horizon (row ~216): ground where flat
    # ground shows sky
    row = 180
    assert ridge_img[row].mean() > flat_img[row].mean() + 10.0


def test_infrared_sensors_see_over_the_ground_and_seismic_ones_feel_through_it() -> None:
    site = load_default().site
    frame = site.frame()
    x0, y0 = (float(a[0]) for a in frame.to_local([site.sector.centre[0]], [site.sector.centre[1]]))

    def berm(gx, gy, z):
        z[(gx >= x0 + 8.0) & (gx <= x0 + 12.0)] = 3.0

    settings = SimSettings(ugs_holdoff_s=0.0, wind_nuisance_per_hour=0.0, malformed_rate=0.0,
                           skewed_rate=0.0)  # fmt: skip
    people = _people([(x0 + 20.0, y0)])
    rates = {}
    for modality in ("pir", "seismic"):
        sensor = GroundSensor(id="s1", lat=site.sector.centre[0], lon=site.sector.centre[1],
                              modality=modality, radius_m=40.0)  # fmt: skip
        for name, relief in (("flat", None), ("berm", SimTerrain(_dem(berm)))):
            field = SensorField([sensor], frame, settings, 7, relief)
            hits = sum(
                sum(1 for m in field.step(START + k, people, 1.0) if m.cause == ("m0",))
                for k in range(200)
            )
            rates[modality, name] = hits / 200
    assert rates["pir", "flat"] > 0.3 and rates["pir", "berm"] == 0.0
    assert rates["seismic", "berm"] == rates["seismic", "flat"] > 0.3


def test_a_world_on_relief_runs_and_a_flat_world_is_unchanged() -> None:
    site = load_default().site
    settings = SimSettings(cameras="truth", ugs=True, uas=True, crossing_rate_scale=20.0)
    flat_a = World(site, settings, 5)
    flat_b = World(site, settings, 5, terrain=None)
    items_a = [(type(i).__name__, i.time) for i in flat_a.run(10.0)]
    items_b = [(type(i).__name__, i.time) for i in flat_b.run(10.0)]
    assert items_a == items_b
    xs = np.arange(-30000.0, 30000.0, 200.0)
    gx, gy = np.meshgrid(xs, xs)
    z = 1000.0 + 40.0 * np.sin(gx / 700.0) * np.cos(gy / 900.0)
    relief = SimTerrain(ElevationModel(z, -30000.0, -30000.0, 200.0), pointing_sigma_deg=0.05)
    world = World(site, settings, 5, terrain=relief)
    frames = [i for i in world.run(10.0) if type(i).__name__ == "CameraFrame"]
    assert frames
    tower = site.towers[0]
    cam = world.camera(tower.id)
    assert cam.pan_deg == tower.pan_deg  # the hidden error is not told
    assert cam.ground_z == pytest.approx(float(relief.ground_z(cam.x, cam.y)))


def test_the_aircraft_sees_a_body_only_over_a_clear_line() -> None:
    from vigil.sim.uas import Orbiter

    site = load_default().site
    frame = site.frame()
    aircraft = site.aircraft[0]
    cx, cy = (float(a[0]) for a in frame.to_local([aircraft.orbit_centre[0]],
                                                  [aircraft.orbit_centre[1]]))  # fmt: skip
    xs = np.arange(cx - 3000.0, cx + 3000.0, CELL)
    ys = np.arange(cy - 3000.0, cy + 3000.0, CELL)
    gx, gy = np.meshgrid(xs, ys)
    ring = np.hypot(gx - cx, gy - cy)
    walled = np.where((ring > 50.0) & (ring < 80.0), 150.0, 0.0)
    person = _people([(cx, cy)])
    found = {}
    for name, z in (("flat", np.zeros_like(gx)), ("walled", walled)):
        relief = SimTerrain(ElevationModel(z, xs[0], ys[0], CELL))
        orbiter = Orbiter(aircraft, 0, frame, SimSettings(), 3, relief)
        found[name] = sum(len(orbiter.detect(START + k, person)) for k in range(30))
    assert found["flat"] > 10 and found["walled"] == 0
