"""Ray casting on the DEM: the numba kernel against a brute-force march along each ray, flat
ground against the pinhole camera's own projection, sky, and the earth's curvature."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel, SyntheticRelief, TerrainError
from vigil.geo.raycast import (
    CURVATURE_REFRACTION,
    camera_on_terrain,
    cast_rays,
    curvature_factor,
    pixels_to_terrain,
)
from vigil.geo.relief import synthetic_relief

CELL = 30.0


@pytest.fixture(scope="module")
def hills() -> ElevationModel:
    """Rough hills (higher relief than the demo's) so that rays cross ridges and washes."""
    spec = SyntheticRelief(seed=9, relief_m=60.0, wash_depth_m=8.0)
    return synthetic_relief(spec, (-3000.0, -3000.0, 3000.0, 3000.0), CELL)


def brute_force(
    dem: ElevationModel,
    origin: np.ndarray,
    direction: np.ndarray,
    max_range: float,
    curv: float,
    step: float,
) -> tuple[float, float]:
    """First sample along the ray at or below the ground (plain numpy, fine steps): its
    horizontal range, and the smallest clearance seen (metres) for grazing rays."""
    h = math.hypot(direction[0], direction[1])
    e = direction / h
    s = np.arange(0.0, max_range, step)
    x = origin[0] + e[0] * s
    y = origin[1] + e[1] * s
    ground = dem.elevation_at(x, y) - curv * s**2
    clearance = origin[2] + e[2] * s - ground
    below = np.flatnonzero(clearance <= 0.0)
    finite = clearance[np.isfinite(clearance)]
    smallest = float(np.min(np.abs(finite))) if finite.size else math.inf
    return (float(s[below[0]]) if below.size else math.nan), smallest


@pytest.mark.parametrize("coeff", [0.0, CURVATURE_REFRACTION], ids=["flat-earth", "curved"])
def test_kernel_agrees_with_brute_force_within_one_cell(hills: ElevationModel, coeff: float):
    rng = np.random.default_rng(21)
    n = 300
    ox = rng.uniform(-2500.0, 2500.0, n)
    oy = rng.uniform(-2500.0, 2500.0, n)
    oz = hills.elevation_at(ox, oy) + rng.uniform(2.0, 60.0, n)
    az = rng.uniform(0.0, 2.0 * math.pi, n)
    # from looking 20 degrees down to 3 degrees up: ground hits near and far, grazing, sky
    dip = np.radians(rng.uniform(-3.0, 20.0, n))
    d = np.column_stack([np.sin(az) * np.cos(dip), np.cos(az) * np.cos(dip), -np.sin(dip)])
    o = np.column_stack([ox, oy, oz])
    max_range = 4000.0
    got = cast_rays(hills, o, d, max_range_m=max_range, curvature_coeff=coeff)
    curv = curvature_factor(coeff)
    step = CELL / 100.0
    hits = skies = 0
    for r in range(n):
        want, smallest = brute_force(hills, o[r], d[r], max_range, curv, step)
        if math.isnan(want) or not got.hit[r]:
            # a disagreement on hit or sky only where the ray grazes the ground
            if math.isnan(want) != (not got.hit[r]):
                assert smallest < 0.05, (r, want, got.range_m[r], smallest)
            skies += math.isnan(want) and not got.hit[r]
            continue
        hits += 1
        assert abs(got.range_m[r] - want) <= CELL, (r, want, got.range_m[r])
        # the hit is on the ground (bilinear surface less the curvature drop)
        g = hills.elevation_at(got.x[r], got.y[r])
        assert got.z[r] == pytest.approx(float(g), abs=1e-6)
        s = got.range_m[r]
        ray_z = oz[r] + d[r, 2] / math.hypot(d[r, 0], d[r, 1]) * s
        assert ray_z == pytest.approx(float(g) - curv * s * s, abs=1e-3)
    assert hits > 150 and skies > 20


def test_flat_ground_matches_the_pinhole_projection() -> None:
    dem = ElevationModel.flat((-6000.0, -6000.0, 6000.0, 6000.0), 50.0, 0.0)
    cam = PinholeCamera(x=120.0, y=-40.0, height_m=25.0, pan_deg=200.0, tilt_deg=2.0, hfov_deg=24)
    u = np.linspace(0.0, 639.0, 17)
    v = np.linspace(200.0, 479.0, 17)
    gx, gy, ok = cam.to_ground(u, v)
    got = pixels_to_terrain(cam, dem, u, v, curvature_coeff=0.0)
    near = ok & (np.hypot(gx - cam.x, gy - cam.y) < cam.max_range_m)
    assert near.sum() >= 10
    assert np.allclose(got.x[near], gx[near], atol=1e-6)
    assert np.allclose(got.y[near], gy[near], atol=1e-6)
    # rays above the horizon or past the rated range are sky
    assert not np.any(got.hit[~near])


def test_a_ridge_hides_what_is_behind_it() -> None:
    # flat ground at 0 with a 20 m wall across x = 1000 m: a ray aimed at a point beyond the
    # wall meets the wall first
    z = np.zeros((41, 101))
    z[:, 50] = 20.0  # x = 1000 m (cells of 20 m from x = 0)
    dem = ElevationModel(z, 0.0, -400.0, 20.0)
    origin = np.array([[0.0, 0.0, 10.0]])
    target = np.array([1500.0, 0.0, 0.0])
    got = cast_rays(dem, origin, target - origin, curvature_coeff=0.0)
    # the wall's bilinear flank rises 1 m per metre from x = 980 m; the ray falls from 10 m
    # by 1 m per 150 m: they meet where 10 - x / 150 = x - 980, at x = 990 * 150 / 151
    assert got.hit[0]
    assert got.x[0] == pytest.approx(990.0 * 150.0 / 151.0, abs=1e-6)
    assert got.z[0] == pytest.approx(990.0 * 150.0 / 151.0 - 980.0, abs=1e-6)
    # over it: a ray from 70 m up (23.3 m at the crest) clears the wall and lands at 1500 m
    origin = np.array([[0.0, 0.0, 70.0]])
    got = cast_rays(dem, origin, target - origin, curvature_coeff=0.0)
    assert got.x[0] == pytest.approx(1500.0, abs=1e-6)


def test_curvature_lowers_the_far_ground() -> None:
    # from 25 m above flat ground, a ray aimed at the ground 2000 m away: on a curved earth
    # the ground there is lower, and the ray lands further, where 25 - s / 80 = -curv * s**2
    dem = ElevationModel.flat((-100.0, -100.0, 6000.0, 100.0), 10.0, 0.0)
    got = cast_rays(dem, [[0.0, 0.0, 25.0]], [[2000.0, 0.0, -25.0]])
    curv = curvature_factor(CURVATURE_REFRACTION)
    want = (1 / 80 - math.sqrt(1 / 80**2 - 4 * curv * 25.0)) / (2 * curv)
    assert got.range_m[0] == pytest.approx(want, rel=1e-9)
    assert 2015.0 < want < 2030.0  # 22 m further: 0.27 m lower ground at a 1:80 grazing angle
    flat = cast_rays(dem, [[0.0, 0.0, 25.0]], [[2000.0, 0.0, -25.0]], curvature_coeff=0.0)
    assert flat.range_m[0] == pytest.approx(2000.0, rel=1e-12)
    # a level ray never comes down to a curved earth: sky
    level = cast_rays(dem, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    assert not level.hit[0]


def test_vertical_rays_and_rays_from_outside_the_grid() -> None:
    dem = ElevationModel(np.array([[0.0, 10.0], [20.0, 30.0]]), 0.0, 0.0, 10.0)
    down = cast_rays(dem, [[5.0, 5.0, 100.0]], [[0.0, 0.0, -1.0]])
    assert down.z[0] == pytest.approx(15.0) and down.range_m[0] == 0.0
    up = cast_rays(dem, [[5.0, 5.0, 100.0]], [[0.0, 0.0, 1.0]])
    assert not up.hit[0]
    # starting west of the grid, looking east and down into it
    side = cast_rays(dem, [[-20.0, 5.0, 20.0]], [[1.0, 0.0, -0.5]], curvature_coeff=0.0)
    assert side.hit[0] and 0.0 <= side.x[0] <= 10.0
    # cells with an unknown (NaN) corner do not block: the ray, below 0 m from x = 16.7 m,
    # meets the first known cell at its edge, x = 20 m
    row = [np.nan, np.nan, 0.0, 0.0]
    nan = ElevationModel(np.array([row, row]), 0.0, 0.0, 10.0)
    through = cast_rays(nan, [[0.0, 5.0, 1.0]], [[1.0, 0.0, -0.06]], curvature_coeff=0.0)
    assert through.hit[0] and through.x[0] == pytest.approx(20.0)


def test_camera_on_terrain_and_bad_rays() -> None:
    dem = ElevationModel.flat((-1000.0, -1000.0, 1000.0, 1000.0), 10.0, 1200.0)
    cam = camera_on_terrain(
        PinholeCamera(x=0.0, y=0.0, height_m=25.0, pan_deg=0.0, tilt_deg=5.0, hfov_deg=20.0), dem
    )
    assert cam.centre[2] == pytest.approx(1225.0)
    with pytest.raises(TerrainError, match="outside"):
        camera_on_terrain(
            PinholeCamera(x=5000.0, y=0.0, height_m=25.0, pan_deg=0.0, tilt_deg=5.0, hfov_deg=20),
            dem,
        )
    with pytest.raises(TerrainError, match=r"\(n, 3\)"):
        cast_rays(dem, [[0.0, 0.0]], [[1.0, 0.0]])
    with pytest.raises(TerrainError, match="NaN"):
        cast_rays(dem, [[0.0, 0.0, np.nan]], [[1.0, 0.0, 0.0]])
