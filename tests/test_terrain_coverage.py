"""Terrain-aware footprints: on flat ground they are the camera's own wedge; hills cut them;
the tower advice ranks a site behind a ridge below one with a clear view of the line."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from vigil.geo.border import Border
from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel
from vigil.geo.frames import LocalFrame
from vigil.geo.patterns.coverage import best_new_tower
from vigil.geo.raycast import camera_on_terrain
from vigil.geo.terrain_coverage import (
    aimed_on_terrain,
    terrain_footprint_at,
    visible_footprint,
)

CAMERA = PinholeCamera(x=0.0, y=0.0, height_m=25.0, pan_deg=180.0, tilt_deg=2.0, hfov_deg=24.0)


def test_on_flat_ground_the_footprint_is_the_cameras_wedge() -> None:
    dem = ElevationModel.flat((-5000.0, -5000.0, 5000.0, 5000.0), 20.0)
    cam = camera_on_terrain(CAMERA, dem)
    seen = visible_footprint(cam, dem, target_height_m=0.0, curvature_coeff=0.0)
    wedge = cam.footprint(64)
    iou = seen.intersection(wedge).area / seen.union(wedge).area
    assert iou > 0.97
    assert seen.area == pytest.approx(wedge.area, rel=0.03)


def test_a_ridge_hides_the_ground_behind_it() -> None:
    # flat ground with a 30 m ridge across the view 1 km south of the tower
    z = np.zeros((501, 501))
    y = -5000.0 + 20.0 * np.arange(501)
    z[(y > -1100.0) & (y < -1000.0), :] = 30.0
    dem = ElevationModel(z, -5000.0, -5000.0, 20.0)
    cam = camera_on_terrain(CAMERA, dem)
    seen = visible_footprint(cam, dem)
    flat = visible_footprint(cam, ElevationModel.flat((-5000.0, -5000.0, 5000.0, 5000.0), 20.0))
    before, behind = shapely.Point(0.0, -600.0), shapely.Point(0.0, -2500.0)
    assert seen.contains(before) and not seen.contains(behind)
    assert flat.contains(before) and flat.contains(behind)
    assert seen.area < 0.5 * flat.area


def test_aiming_follows_the_ground() -> None:
    # a tower on a 100 m hill aimed at a point on the plain below looks further down
    z = np.zeros((101, 101))
    z[45:56, 45:56] = 100.0
    dem = ElevationModel(z, -1000.0, -1000.0, 20.0)
    cam = aimed_on_terrain(CAMERA, dem, 0.0, -800.0)
    assert cam.ground_z == pytest.approx(100.0)
    assert cam.pan_deg == pytest.approx(180.0)
    assert cam.tilt_deg == pytest.approx(np.degrees(np.arctan2(125.0, 800.0)))


def test_tower_advice_ranks_a_site_behind_a_ridge_below_a_clear_one() -> None:
    frame = LocalFrame(31.33, -110.94)
    border = Border(
        "tucson",
        frame,
        "us_mx",
        start=(31.333, -110.98),
        end=(31.333, -110.90),
        segment_length_m=500.0,
    )
    bounds = (-4500.0, -2500.0, 4500.0, 3000.0)
    flat = ElevationModel.flat(bounds, 30.0, 0.0)
    ridge = flat.z.copy()
    ys = flat.y0 + flat.cell_m * np.arange(flat.shape[0])
    xs = flat.x0 + flat.cell_m * np.arange(flat.shape[1])
    # a 20 m ridge 300-400 m south of site A (west half only): it hides the line from A
    ridge[np.ix_((ys > 300.0) & (ys < 400.0), xs < 0.0)] = 20.0
    hills = ElevationModel(ridge, flat.x0, flat.y0, flat.cell_m)
    template = PinholeCamera(
        x=0.0, y=0.0, height_m=25.0, pan_deg=180.0, tilt_deg=1.0, hfov_deg=24.0, max_range_m=4000
    )
    weights = dict.fromkeys(border.segment_ids, 1.0)
    sites = {"A": (-1500.0, 700.0), "B": (1500.0, 700.0)}

    def ranked(dem: ElevationModel) -> dict[str, float]:
        at = terrain_footprint_at(dem, template)
        candidates = {
            name: at(
                x, y, x, float(border.line.interpolate(border.line.project(shapely.Point(x, y))).y)
            )
            for name, (x, y) in sites.items()
        }
        table = best_new_tower(border, [], weights, candidates)
        return dict(zip(table.candidate, table.gain, strict=True))

    on_flat = ranked(flat)
    assert on_flat["A"] == pytest.approx(on_flat["B"], rel=0.05) and on_flat["A"] > 0.5
    on_hills = ranked(hills)
    assert on_hills["B"] == pytest.approx(on_flat["B"], rel=0.05)
    assert on_hills["A"] < 0.2 * on_hills["B"]
