"""The camera edge on hilly ground: with a DEM (and the tower's pointing calibration) the
detector places a walker where its ray meets the relief; on the flat plane it lands where
the geometry says it must, hundreds of metres off; without ``[terrain]`` nothing changes."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import cv2
import msgspec
import numpy as np
import pytest

from vigil.config import default_deployment_path, load
from vigil.detection.detector import DetectorConfig
from vigil.detection.objects import CameraGeometry
from vigil.detection.terrain import TerrainGeometry
from vigil.edge import TowerDetector, TowerGround, deployment_detector
from vigil.geo.dem import ElevationModel
from vigil.geo.landmarks import TowerPointing, format_pointing_file
from vigil.geo.raycast import camera_on_terrain, curvature_factor
from vigil.geo.site import Site, tower_camera

T0 = 1_714_532_400.0
#: The ground rises this many metres per metre north of the tower (it looks north).
SLOPE = 0.01
#: The walker's distance north of the tower, metres.
DIST_M = 1000.0
#: The camera's true pointing error, degrees: what the calibration file says.
PAN_ERR, TILT_ERR = 0.3, 0.1
CONFIG = replace(DetectorConfig.for_tower(), warmup_frames=0)


@pytest.fixture(scope="module")
def scene():
    site = msgspec.convert(
        {
            "sector": {"name": "t", "centre": [31.33, -110.94]},
            "towers": [
                {"id": "t01", "lat": 31.33, "lon": -110.94, "pan_deg": 0.0, "tilt_deg": 0.8,
                 "hfov_deg": 10.0, "range_m": 2000.0, "mast_height_m": 25.0},
            ],
        },
        Site,
    )  # fmt: skip
    frame = site.frame()
    nominal = tower_camera(site.towers[0], frame)
    cell = 30.0
    xs = np.arange(-2500.0, 2500.0 + cell, cell)
    ys = np.arange(-2500.0, 3500.0 + cell, cell)
    z = 1200.0 + SLOPE * (ys[:, None] - nominal.y) + 0.0 * xs[None, :]
    dem = ElevationModel(z, float(xs[0]), float(ys[0]), cell, frame)
    cal = TowerPointing(
        id="t01", pan_offset_deg=PAN_ERR, tilt_offset_deg=TILT_ERR, roll_offset_deg=0.0,
        pan_sigma_deg=0.005, tilt_sigma_deg=0.005, roll_sigma_deg=0.01,
    )  # fmt: skip
    return site, dem, cal


def render_walker(site: Site, dem: ElevationModel, n_empty: int = 40, n_walk: int = 40):
    """Frames of warm textured ground; after ``n_empty`` a walker 1.7 m tall, seen by the
    truly pointed camera, walks east at 1.4 m/s (10 frames a second) ``DIST_M`` north."""
    true = camera_on_terrain(tower_camera(site.towers[0], site.frame()), dem)
    true = replace(true, pan_deg=true.pan_deg + PAN_ERR, tilt_deg=true.tilt_deg + TILT_ERR)
    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (480, 640)).astype(np.float32), (0, 0), 6.0)
    base = cv2.normalize(noise, None, 60, 160, cv2.NORM_MINMAX)
    frames, truth = [], []
    y = true.y + DIST_M
    for k in range(n_empty + n_walk):
        f = base.copy()
        if k >= n_empty:
            x = true.x - 20.0 + 1.4 * (k - n_empty) * 0.1
            drop = curvature_factor() * ((x - true.x) ** 2 + (y - true.y) ** 2)
            foot = float(dem.elevation_at(x, y)) - drop - true.ground_z
            u, v_bot, _ = true.project(x, y, foot)
            _, v_top, _ = true.project(x, y, foot + 1.7)
            rows = slice(round(float(v_top)), round(float(v_bot)))
            cols = slice(round(float(u) - 1.0), round(float(u) + 1.0))
            f[rows, cols] += 60.0
            truth.append((x, y))
        else:
            truth.append(None)
        frames.append(np.clip(f + rng.normal(0, 1.5, f.shape), 0, 255).astype(np.uint8))
    return frames, truth


def run(detect: TowerDetector, frames, truth) -> list[tuple[float, float, float, float, tuple]]:
    """``(dx, dy, x, y, cov)`` of each detection from the walker's truth, local metres."""
    out = []
    for k, f in enumerate(frames):
        for d in detect(f, T0 + 0.1 * k, k + 1):
            assert truth[k] is not None, f"a detection before the walker came, frame {k}"
            gx, gy = detect.frame_of_reference.to_local([d.lat], [d.lon])
            gx, gy = float(gx[0]), float(gy[0])
            out.append((gx - truth[k][0], gy - truth[k][1], gx, gy, d.cov))
    return out


def test_terrain_places_the_walker_within_a_cell_and_flat_is_off_as_expected(scene) -> None:
    site, dem, cal = scene
    frames, truth = render_walker(site, dem)
    on_dem = run(TowerDetector(site, "t01", CONFIG, ground=TowerGround(dem, cal)), frames, truth)
    flat = run(TowerDetector(site, "t01", CONFIG, ground=TowerGround(None, cal)), frames, truth)
    uncalibrated = run(TowerDetector(site, "t01", CONFIG, ground=TowerGround(dem)), frames, truth)
    assert len(on_dem) >= 20 and len(flat) >= 20 and len(uncalibrated) >= 20
    err = np.array([math.hypot(d[0], d[1]) for d in on_dem])
    assert np.median(err) < dem.cell_m and np.max(err) < 2 * dem.cell_m, err
    # flat: the body's centre, DIST_M out and `rise` above the mast's foot, is placed where
    # its ray comes down to the centre height above the plane through the foot: further out
    h = 25.0 - CONFIG.objects.centre_height_m
    rise = SLOPE * DIST_M - curvature_factor() * DIST_M**2
    expected = DIST_M * h / (h - rise) - DIST_M  # about +700 m along the line of sight
    along = np.median([d[1] for d in flat])
    assert along == pytest.approx(expected, rel=0.1), (along, expected)
    # without the calibration, the unknown tilt error puts it tens of metres off
    off = np.median([math.hypot(d[0], d[1]) for d in uncalibrated])
    assert off > 1.5 * np.median(err) and off > dem.cell_m
    # the covariance on the relief covers the error: chi-square with 2 degrees of freedom
    d2 = []
    for dx, dy, *_, cov in on_dem:
        c = np.array(cov).reshape(2, 2)
        d2.append(float(np.array([dx, dy]) @ np.linalg.solve(c, [dx, dy])))
    assert np.median(d2) < 5.99, d2


def test_terrain_geometry_refuses_bad_settings(scene) -> None:
    site, dem, _ = scene
    cam = tower_camera(site.towers[0], site.frame())
    with pytest.raises(ValueError, match="pointing_sigma_deg"):
        TerrainGeometry(cam, site.frame(), "t01", dem, pointing_sigma_deg=(0.1, -1.0, 0.0))
    with pytest.raises(ValueError, match="reach_factor"):
        TerrainGeometry(cam, site.frame(), "t01", dem, reach_factor=0.5)


def test_the_deployment_decides_the_ground(tmp_path: Path) -> None:
    """Without [terrain] the edge's detector is today's flat one; with synthetic relief and
    a pointing file it stands on the relief with the tower's calibration."""
    shipped = load(default_deployment_path())
    plain = deployment_detector(shipped, "t03")
    assert plain.ground == TowerGround() and plain.base == tower_camera(
        shipped.site.towers[2], shipped.site.frame()
    )
    assert type(plain._geometry(640, 480)) is CameraGeometry
    cal = TowerPointing(id="t03", pan_offset_deg=0.2, tilt_offset_deg=-0.05, roll_offset_deg=0.1)
    (tmp_path / "pointing.toml").write_text(format_pointing_file({"t03": cal}))
    path = tmp_path / "sector.toml"
    path.write_text(
        default_deployment_path().read_text(encoding="utf-8")
        + '\n[terrain]\nsynthetic = { seed = 2 }\npointing = "pointing.toml"\n'
    )
    d = load(path)
    detect = deployment_detector(d, "t03")
    assert detect.ground.pointing == cal and detect.ground.dem is not None
    nominal = tower_camera(d.site.towers[2], d.site.frame())
    assert detect.base.tilt_deg == pytest.approx(nominal.tilt_deg - 0.05)
    geo = detect._geometry(640, 480)
    assert isinstance(geo, TerrainGeometry) and geo.pointing_sigma_deg == (0.0, 0.0, 0.0)
    assert geo.camera.ground_z == pytest.approx(
        float(detect.ground.dem.elevation_at(nominal.x, nominal.y))
    )


def test_a_ptz_report_keeps_the_calibration_offsets(scene) -> None:
    from vigil.hardware.ptz import Pointing

    site, dem, cal = scene
    detect = TowerDetector(site, "t01", CONFIG, ground=TowerGround(dem, cal))
    detect.repoint(Pointing(pan_deg=10.0, tilt_deg=1.5, hfov_deg=8.0))
    assert detect.base.pan_deg == pytest.approx(10.0 + PAN_ERR)
    assert detect.base.tilt_deg == pytest.approx(1.5 + TILT_ERR)
    assert detect.base.hfov_deg == 8.0
    plain = TowerDetector(site, "t01", CONFIG)
    plain.repoint(Pointing(pan_deg=10.0, tilt_deg=1.5, hfov_deg=8.0))
    assert (plain.base.pan_deg, plain.base.tilt_deg, plain.base.roll_deg) == (10.0, 1.5, 0.0)


def test_vigil_edge_camera_loads_the_deployments_terrain(tmp_path: Path, capsys) -> None:
    """The command builds its detector from [terrain]: ground it cannot lay out stops it with
    the deployment's name, before any frame or broker."""
    from vigil.cli import main

    path = tmp_path / "sector.toml"
    path.write_text(
        default_deployment_path().read_text(encoding="utf-8")
        + "\n[terrain]\nsynthetic = { seed = 2 }\ncell_m = 1.0\n"
    )
    video = tmp_path / "t03.avi"
    video.write_bytes(b"")
    argv = ["edge", "camera", str(video), "--id", "t03", "--deployment", str(path)]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert f"error: {path}: [terrain]: a grid of" in err and "use a larger cell_m" in err


def test_a_few_rays_cast_as_a_large_batch_does(scene) -> None:
    """A camera's few detections a frame go through the serial kernel: the same hits as the
    parallel one gives the same rays within a large batch."""
    from vigil.geo.raycast import PARALLEL_MIN_RAYS, pixels_to_terrain

    site, dem, _ = scene
    cam = camera_on_terrain(tower_camera(site.towers[0], site.frame()), dem)
    rng = np.random.default_rng(8)
    u = rng.uniform(0, cam.width, 2 * PARALLEL_MIN_RAYS)
    v = rng.uniform(cam.height / 3, cam.height, u.size)
    batch = pixels_to_terrain(cam, dem, u, v)
    few = pixels_to_terrain(cam, dem, u[:5], v[:5])
    assert batch.hit[:5].any()
    np.testing.assert_array_equal(few.x, batch.x[:5])
    np.testing.assert_array_equal(few.range_m, batch.range_m[:5])
