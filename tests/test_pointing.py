"""Ground-position covariance from pixel error, pointing error and slope (closed form on
planes, Monte Carlo through the ray caster on hills), and pointing calibration from landmarks."""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace
from pathlib import Path

import msgspec
import numpy as np
import pytest

from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel, SyntheticRelief, TerrainError
from vigil.geo.pointing import calibrate_pointing, ground_covariance
from vigil.geo.raycast import camera_on_terrain, cast_rays, curvature_factor, pixels_to_terrain
from vigil.geo.relief import synthetic_relief
from vigil.geo.site import Site, tower_camera

CHI2_2_95 = 5.991  # 95 % quantile of chi-square with 2 degrees of freedom


def plane(slope_north: float) -> ElevationModel:
    """Ground rising ``slope_north`` metres per metre northward, through 0 at y = 0."""
    x = np.arange(-100.0, 100.0 + 1, 10.0)
    y = np.arange(-100.0, 6000.0 + 1, 10.0)
    return ElevationModel(slope_north * y[:, None] + 0.0 * x[None, :], x[0], y[0], 10.0)


@pytest.mark.parametrize("slope", [0.0, 0.05, -0.01], ids=["flat", "facing", "falling-away"])
def test_tilt_error_along_the_line_of_sight_matches_the_closed_form(slope: float) -> None:
    # A camera H above the plane at y = 0 looking north with depression theta meets ground
    # rising s per metre at R = H / (tan(theta) + s): dR/dtheta = -H sec^2(theta) / (tan + s)^2
    dem = plane(slope)
    cam = PinholeCamera(x=0.0, y=0.0, height_m=25.0, pan_deg=0.0, tilt_deg=1.2, hfov_deg=20.0)
    hits, cov = ground_covariance(
        cam, dem, [320.0], [240.0], pixel_sigma=0.0, tilt_sigma_deg=0.05, curvature_coeff=0.0
    )
    theta = math.radians(1.2)
    r = 25.0 / (math.tan(theta) + slope)
    assert hits.range_m[0] == pytest.approx(r, rel=1e-9)
    d_r = 25.0 / math.cos(theta) ** 2 / (math.tan(theta) + slope) ** 2
    assert math.sqrt(cov[0, 1, 1]) == pytest.approx(d_r * math.radians(0.05), rel=0.01)
    assert math.sqrt(cov[0, 0, 0]) < 1e-6 * math.sqrt(cov[0, 1, 1])


def test_pixel_error_on_flat_ground_matches_the_pinhole_model() -> None:
    dem = ElevationModel.flat((-3000.0, -100.0, 3000.0, 6000.0), 20.0)
    cam = PinholeCamera(x=0.0, y=0.0, height_m=25.0, pan_deg=0.0, tilt_deg=1.0, hfov_deg=20.0)
    hits, cov = ground_covariance(cam, dem, [100.0], [250.0], pixel_sigma=1.0, curvature_coeff=0)
    # finite differences of the camera's own flat-ground projection
    h = 1e-3
    x0, y0, _ = cam.to_ground([100.0], [250.0])
    xu, yu, _ = cam.to_ground([100.0 + h], [250.0])
    xv, yv, _ = cam.to_ground([100.0], [250.0 + h])
    jac = np.array([[xu[0] - x0[0], xv[0] - x0[0]], [yu[0] - y0[0], yv[0] - y0[0]]]) / h
    assert np.allclose(cov[0], jac @ jac.T, rtol=1e-4)
    assert hits.x[0] == pytest.approx(x0[0])


@pytest.fixture(scope="module")
def smooth_hills() -> ElevationModel:
    spec = SyntheticRelief(seed=4, ridge_share=0.0, wash_depth_m=0.0, relief_m=30.0, hurst=1.0)
    return synthetic_relief(spec, (-4000.0, -4000.0, 4000.0, 4000.0), 30.0)


def test_covariance_is_consistent_with_monte_carlo_through_the_ray_caster(smooth_hills) -> None:
    dem = smooth_hills
    cam = camera_on_terrain(
        PinholeCamera(x=0, y=-1000, height_m=25, pan_deg=10, tilt_deg=0.3, hfov_deg=24), dem
    )
    u = np.repeat(np.linspace(40.0, 600.0, 8), 2)
    v = np.tile([310.0, 330.0], 8)
    sigma = {"pixel_sigma": 1.0, "pan_sigma_deg": 0.05, "tilt_sigma_deg": 0.05}
    sigma["roll_sigma_deg"] = 0.05
    hits, cov = ground_covariance(cam, dem, u, v, **sigma)
    assert np.all(hits.hit) and np.all((hits.range_m > 250.0) & (hits.range_m < 450.0))
    rng = np.random.default_rng(1)
    samples = 1500
    xs = np.empty((samples, u.size))
    ys = np.empty((samples, u.size))
    for s in range(samples):
        c = replace(
            cam,
            pan_deg=cam.pan_deg + rng.normal(0.0, 0.05),
            tilt_deg=cam.tilt_deg + rng.normal(0.0, 0.05),
            roll_deg=rng.normal(0.0, 0.05),
        )
        d = c.rays(u + rng.normal(0.0, 1.0, u.size), v + rng.normal(0.0, 1.0, u.size))
        got = cast_rays(dem, np.broadcast_to(c.centre, d.shape), d)
        xs[s], ys[s] = got.x, got.y
    for k in range(u.size):
        e = np.column_stack([xs[:, k] - hits.x[k], ys[:, k] - hits.y[k]])
        nees = np.einsum("ni,ij,nj->n", e, np.linalg.inv(cov[k]), e)
        inside = float(np.mean(nees < CHI2_2_95))
        assert 0.92 < inside < 0.98, (k, inside)
        spread = math.sqrt(np.trace(np.cov(e.T)))
        assert spread == pytest.approx(math.sqrt(np.trace(cov[k])), rel=0.15), k


def test_sky_has_no_covariance_and_bad_sigmas_are_refused(smooth_hills) -> None:
    cam = camera_on_terrain(
        PinholeCamera(x=0, y=0, height_m=25, pan_deg=0, tilt_deg=-10, hfov_deg=24), smooth_hills
    )
    hits, cov = ground_covariance(cam, smooth_hills, [320.0], [10.0])
    assert not hits.hit[0] and np.all(np.isnan(cov[0]))
    with pytest.raises(TerrainError, match="tilt_sigma_deg"):
        ground_covariance(cam, smooth_hills, [320.0], [10.0], tilt_sigma_deg=-1.0)


@pytest.fixture(scope="module")
def hills() -> ElevationModel:
    return synthetic_relief(SyntheticRelief(seed=8), (-5000.0, -1000.0, 5000.0, 5000.0), 30.0)


def hilltop_camera(dem: ElevationModel) -> PinholeCamera:
    """A 25 m tower on the highest ground of the sector's southern kilometre, looking north."""
    rows = int(1000.0 / dem.cell_m)
    i, j = np.unravel_index(np.argmax(dem.z[:rows]), dem.z[:rows].shape)
    cam = PinholeCamera(
        x=dem.x0 + j * dem.cell_m,
        y=dem.y0 + i * dem.cell_m,
        height_m=25.0,
        pan_deg=5.0,
        tilt_deg=0.4,
        hfov_deg=24.0,
    )
    return camera_on_terrain(cam, dem)


def landmarks_seen_by(
    cam: PinholeCamera, dem: ElevationModel, rng: np.random.Generator, noise: float = 0.3
):
    """Eight ground points, spread over the image, that the camera sees at known pixels (its
    true pointing), 0.4 to 3.5 km away; the pixels with ``noise`` px of noise."""
    u, v = (a.ravel() for a in np.meshgrid(np.linspace(30.0, 610.0, 12), np.arange(200.0, 400.0)))
    hits = pixels_to_terrain(cam, dem, u, v)
    ok = np.flatnonzero(hits.hit & (hits.range_m > 400.0) & (hits.range_m < 3500.0))
    pick = ok[np.linspace(0, ok.size - 1, 8).astype(int)]
    points = np.column_stack([hits.x[pick], hits.y[pick], hits.z[pick]])
    return np.column_stack([u[pick], v[pick]]) + rng.normal(0.0, noise, (8, 2)), points


@pytest.mark.parametrize("solve_focal", [False, True], ids=["angles", "angles-and-focal"])
def test_calibration_recovers_the_pointing_from_landmarks(hills, solve_focal: bool) -> None:
    nominal = hilltop_camera(hills)
    true = replace(
        nominal,
        pan_deg=nominal.pan_deg + 0.4,
        tilt_deg=nominal.tilt_deg - 0.07,
        roll_deg=0.3,
        hfov_deg=23.5 if solve_focal else 24.0,
    )
    pixels, points = landmarks_seen_by(true, hills, np.random.default_rng(3))
    cal = calibrate_pointing(nominal, pixels, points, solve_focal=solve_focal, dem=hills)
    # each offset within three of its own standard errors, and those small
    for got, want, sigma in zip(
        (cal.pan_offset_deg, cal.tilt_offset_deg, cal.roll_offset_deg),
        (0.4, -0.07, 0.3),
        cal.sigma_deg,
        strict=True,
    ):
        assert abs(got - want) <= 3.0 * sigma, (got, want, sigma)
    assert max(cal.sigma_deg[:2]) < 0.01 and cal.sigma_deg[2] < 0.1
    assert cal.hfov_deg == pytest.approx(true.hfov_deg, abs=0.05)
    assert 0.1 < cal.rms_px < 0.6
    # People seen at 1.5-2.5 km land where they stand after calibration, not before
    u, v = (a.ravel() for a in np.meshgrid(np.linspace(20.0, 620.0, 16), np.arange(200.0, 330.0)))
    truth = pixels_to_terrain(true, hills, u, v)
    far = truth.hit & (truth.range_m > 1500.0) & (truth.range_m < 2500.0)
    assert far.sum() >= 50
    after = pixels_to_terrain(cal.camera, hills, u[far], v[far])
    before = pixels_to_terrain(nominal, hills, u[far], v[far])
    err_after = np.hypot(after.x - truth.x[far], after.y - truth.y[far])
    err_before = np.hypot(before.x - truth.x[far], before.y - truth.y[far])
    assert np.nanmedian(err_after) <= 25.0
    assert np.nanmedian(err_before) > 4 * np.nanmedian(err_after)


def test_calibration_refuses_too_few_or_impossible_landmarks(hills) -> None:
    cam = camera_on_terrain(
        PinholeCamera(x=0.0, y=0.0, height_m=25.0, pan_deg=5.0, tilt_deg=0.6, hfov_deg=24.0), hills
    )
    with pytest.raises(TerrainError, match="at least 2"):
        calibrate_pointing(cam, [[300.0, 300.0]], [[0.0, 1000.0, 1200.0]])
    with pytest.raises(TerrainError, match="behind"):
        calibrate_pointing(
            cam, [[300.0, 300.0], [200.0, 250.0]], [[0.0, 1000.0, 1200.0], [0.0, -900.0, 1200.0]]
        )
    with pytest.raises(TerrainError, match=r"\(n, 2\)"):
        calibrate_pointing(cam, [[300.0]], [[0.0, 1000.0, 1200.0]])


def test_exact_landmarks_give_the_exact_pointing(hills) -> None:
    # Without pixel noise the solve must be exact. Landmarks far out are seen lower than their
    # surveyed height by the earth's curvature (less refraction), as the ray caster has it: a
    # solve that ignored it was off by 0.1 degree of roll here.
    nominal = hilltop_camera(hills)
    true = replace(
        nominal, pan_deg=nominal.pan_deg + 0.4, tilt_deg=nominal.tilt_deg - 0.07, roll_deg=0.3
    )
    pixels, points = landmarks_seen_by(true, hills, np.random.default_rng(3), noise=0.0)
    cal = calibrate_pointing(nominal, pixels, points, dem=hills)
    assert cal.pan_offset_deg == pytest.approx(0.4, abs=1e-4)
    assert cal.tilt_offset_deg == pytest.approx(-0.07, abs=1e-4)
    assert cal.roll_offset_deg == pytest.approx(0.3, abs=1e-3)
    assert cal.rms_px < 0.01 and np.all(cal.residual_m < 0.5)


def rough_scene(seed: int = 0):
    """The demo's tower t05 on the default (rough) synthetic relief and the people it sees at
    1.5-2.5 km: their true positions and the pixels of their feet (exact, before noise)."""
    raw = tomllib.loads(
        (Path(__file__).parent.parent / "vigil" / "data" / "tucson.toml").read_text()
    )
    site = msgspec.convert({"sector": raw["sector"], "towers": raw["towers"]}, Site)
    frame = site.frame()
    tower = next(t for t in site.towers if t.id == "t05")
    cam0 = tower_camera(tower, frame)
    bounds = (cam0.x - 3500.0, cam0.y - 3500.0, cam0.x + 3500.0, cam0.y + 3500.0)
    dem = synthetic_relief(SyntheticRelief(seed=seed), bounds, 30.0, frame)
    cam = camera_on_terrain(cam0, dem)
    rng = np.random.default_rng(17)
    az = np.radians(cam.pan_deg + rng.uniform(-11.0, 11.0, 3000))
    r = rng.uniform(1500.0, 2500.0, 3000)
    x, y = cam.x + r * np.sin(az), cam.y + r * np.cos(az)
    z = dem.elevation_at(x, y) - curvature_factor() * r**2
    d = np.column_stack([x, y, z]) - cam.centre
    seen = cast_rays(dem, np.broadcast_to(cam.centre, d.shape), d)
    u, v, _ = cam.project(x, y, z - cam.ground_z)
    keep = seen.hit & (np.abs(seen.range_m - r) < 1.0) & (u >= 0) & (u < 640) & (v >= 0)
    keep &= v < 480
    assert keep.sum() > 500
    return cam, dem, x[keep], y[keep], u[keep], v[keep]


def test_sigma_points_keep_the_covariance_honest_on_rough_relief() -> None:
    # On rough hills a 1 px error can slip the ray over a crest onto ground far behind: the
    # first-order covariance misses that, the sigma-point one sees it.
    cam, dem, x, y, u, v = rough_scene()
    rng = np.random.default_rng(4)
    ou, ov = u + rng.normal(0.0, 1.0, u.size), v + rng.normal(0.0, 1.0, v.size)
    mean_nees = {}
    inside = {}
    for method in ("linear", "sigma-points", "quadrature"):
        est, cov = ground_covariance(cam, dem, ou, ov, pixel_sigma=1.0, method=method)
        e = np.column_stack([est.x - x, est.y - y])
        ok = est.hit
        nees = np.einsum("ni,nij,nj->n", e[ok], np.linalg.inv(cov[ok]), e[ok])
        mean_nees[method] = float(np.mean(nees))
        inside[method] = float(np.mean(nees < CHI2_2_95))
    assert mean_nees["linear"] > 5.0
    assert mean_nees["sigma-points"] < 3.0
    assert inside["sigma-points"] > 0.85
    assert inside["sigma-points"] > inside["linear"]
    # the area-weighted quadrature also sees a pixel a few sigma from a crest
    assert 1.5 < mean_nees["quadrature"] < mean_nees["sigma-points"]
    assert inside["quadrature"] > inside["sigma-points"]


def test_sigma_points_agree_with_first_order_on_smooth_ground(smooth_hills) -> None:
    cam = camera_on_terrain(
        PinholeCamera(x=0, y=-1000, height_m=25, pan_deg=10, tilt_deg=0.3, hfov_deg=24),
        smooth_hills,
    )
    u = np.repeat(np.linspace(40.0, 600.0, 8), 2)
    v = np.tile([310.0, 330.0], 8)
    kw = {"pixel_sigma": 1.0, "pan_sigma_deg": 0.05, "tilt_sigma_deg": 0.05}
    _, lin = ground_covariance(cam, smooth_hills, u, v, **kw)
    _, sp = ground_covariance(cam, smooth_hills, u, v, method="sigma-points", **kw)
    _, qd = ground_covariance(cam, smooth_hills, u, v, method="quadrature", **kw)
    for k in range(u.size):
        assert np.sqrt(np.trace(sp[k])) == pytest.approx(np.sqrt(np.trace(lin[k])), rel=0.15)
        assert np.sqrt(np.trace(qd[k])) == pytest.approx(np.sqrt(np.trace(lin[k])), rel=0.15)
    with pytest.raises(TerrainError, match="method"):
        ground_covariance(cam, smooth_hills, u, v, method="cubature")  # type: ignore[arg-type]


def test_quadrature_gives_no_weight_to_rays_into_sky() -> None:
    """A pixel on the skyline (ground rising to where the DEM ends, sky one pixel above): its
    neighbours' rays into sky meet no ground a person could stand on, so they weigh nothing;
    the spread along the sight line is the ground's (near the first-order one), not the
    distance to the rated range where a sky ray was once placed."""
    x = np.arange(-500.0, 500.0 + 1, 10.0)
    y = np.arange(-100.0, 2000.0 + 1, 10.0)
    dem = ElevationModel(0.05 * y[:, None] + 0.0 * x[None, :], x[0], y[0], 10.0)
    cam = PinholeCamera(x=0.0, y=0.0, height_m=25.0, pan_deg=0.0, tilt_deg=0.0, hfov_deg=20.0)
    u, v, _ = cam.project([0.0], [1980.0], [0.05 * 1980.0])
    up, _ = ground_covariance(cam, dem, u, v - 1.0, curvature_coeff=0.0)
    assert not up.hit[0]  # one pixel above: sky
    kw = {"pixel_sigma": 1.0, "curvature_coeff": 0.0}
    hits, quad = ground_covariance(cam, dem, u, v, method="quadrature", **kw)
    _, lin = ground_covariance(cam, dem, u, v, method="linear", **kw)
    assert hits.hit[0] and hits.y[0] == pytest.approx(1980.0, abs=1.0)
    assert 0.5 < math.sqrt(quad[0, 1, 1] / lin[0, 1, 1]) < 1.2
