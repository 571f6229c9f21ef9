"""Pointing calibration from a landmarks file: read and checked, solved on the sector's
ground, written to and read back from a pointing calibration file, applied to the camera."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import msgspec
import numpy as np
import pytest

from vigil.geo.dem import SyntheticRelief, TerrainError, site_bounds
from vigil.geo.landmarks import (
    MAX_FILE_BYTES,
    TowerPointing,
    apply_pointing,
    calibrate_tower,
    read_landmarks,
    read_pointing_file,
    write_pointing_file,
)
from vigil.geo.raycast import camera_on_terrain, pixels_to_terrain
from vigil.geo.relief import synthetic_relief
from vigil.geo.site import Site, tower_camera

HEADER = "name,u,v,lat,lon,height_m\n"


@pytest.fixture(scope="module")
def sector():
    site = msgspec.convert(
        {
            "sector": {"name": "t", "centre": [31.33, -110.94]},
            "towers": [
                {"id": "t01", "lat": 31.345, "lon": -110.94, "pan_deg": 180.0, "tilt_deg": 0.5},
                {"id": "t02", "lat": 31.345, "lon": -110.90},
            ],
        },
        Site,
    )
    dem = synthetic_relief(SyntheticRelief(seed=2), site_bounds(site, 500.0), 30.0, site.frame())
    return site, dem


def write_landmarks(site: Site, dem, path: Path, offsets=(0.3, -0.06, 0.2), noise=0.3) -> None:
    """Landmarks that t01's camera, truly pointed ``offsets`` off, sees at known pixels."""
    nominal = camera_on_terrain(tower_camera(site.towers[0], site.frame()), dem)
    true = replace(
        nominal,
        pan_deg=nominal.pan_deg + offsets[0],
        tilt_deg=nominal.tilt_deg + offsets[1],
        roll_deg=offsets[2],
    )
    u, v = (a.ravel() for a in np.meshgrid(np.linspace(30.0, 610.0, 10), np.arange(240.0, 470.0)))
    hits = pixels_to_terrain(true, dem, u, v)
    ok = np.flatnonzero(hits.hit & (hits.range_m > 300.0))
    ok = ok[np.argsort(u[ok] + 1e-3 * v[ok], kind="stable")]  # spread across the image
    pick = ok[np.linspace(0, ok.size - 1, 8).astype(int)]
    lat, lon = site.frame().to_wgs84(hits.x[pick], hits.y[pick])
    rng = np.random.default_rng(5)
    lines = [HEADER]
    for k, i in enumerate(pick):
        du, dv = rng.normal(0.0, noise, 2)
        lines.append(
            f"bm{k},{u[i] + du:.3f},{v[i] + dv:.3f},{lat[k]:.9f},{lon[k]:.9f},{hits.z[i]:.3f}\n"
        )
    path.write_text("".join(lines))


def test_calibrate_a_tower_from_a_landmarks_file(sector, tmp_path: Path) -> None:
    site, dem = sector
    path = tmp_path / "landmarks.csv"
    write_landmarks(site, dem, path)
    marks = read_landmarks(path)
    assert len(marks.names) == 8 and marks.pixels.shape == (8, 2)
    entry, cal = calibrate_tower(site, "t01", marks, dem)
    for got, want, sigma in zip(
        (entry.pan_offset_deg, entry.tilt_offset_deg, entry.roll_offset_deg),
        (0.3, -0.06, 0.2),
        (entry.pan_sigma_deg, entry.tilt_sigma_deg, entry.roll_sigma_deg),
        strict=True,
    ):
        assert abs(got - want) <= 3.0 * sigma + 1e-3
    assert entry.landmarks == 8 and entry.hfov_deg is None and 0.1 < entry.rms_px < 0.7
    # on the ground: metres, larger where a landmark's slope runs along the line of sight
    assert np.median(cal.residual_m) < 10.0
    out = tmp_path / "pointing.toml"
    write_pointing_file(out, entry)
    other = TowerPointing(id="t02", pan_offset_deg=-1.0, tilt_offset_deg=0.1, roll_offset_deg=0)
    write_pointing_file(out, other)
    back = read_pointing_file(out)
    assert back == {"t01": entry, "t02": other}
    cam = apply_pointing(tower_camera(site.towers[0], site.frame()), back["t01"])
    assert cam.pan_deg == pytest.approx(180.0 + entry.pan_offset_deg)
    assert cam.tilt_deg == pytest.approx(0.5 + entry.tilt_offset_deg)
    assert cam.roll_deg == pytest.approx(entry.roll_offset_deg)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("u,v,lat,lon\n", "line 1: header"),
        (HEADER + "a,10,20,31.3,-110.9\n", "line 2: 5 columns"),
        (HEADER + "a,10,20,31.3,-110.9,1200\nb,10,x,31.3,-110.9,1200\n", "line 3: column v"),
        (HEADER + "a,10,20,95.0,-110.9,1200\n", "line 2: column lat"),
        (HEADER + "a,10,20,31.3,-110.9,nan\n", "line 2: column height_m"),
        (HEADER + ",10,20,31.3,-110.9,1200\n", "line 2: column name"),
    ],
    ids=["header", "columns", "not-a-number", "lat-range", "nan", "no-name"],
)
def test_bad_landmarks_files_name_line_and_column(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "landmarks.csv"
    path.write_text(text)
    with pytest.raises(TerrainError, match=match):
        read_landmarks(path)


def test_oversized_files_and_bad_towers_are_refused(sector, tmp_path: Path) -> None:
    site, dem = sector
    big = tmp_path / "big.csv"
    big.write_text(HEADER + "x" * MAX_FILE_BYTES)
    with pytest.raises(TerrainError, match="bytes"):
        read_landmarks(big)
    path = tmp_path / "landmarks.csv"
    write_landmarks(site, dem, path)
    marks = read_landmarks(path)
    with pytest.raises(TerrainError, match="not in the deployment"):
        calibrate_tower(site, "t99", marks, dem)
    marks.pixels[3, 0] = 700.0
    with pytest.raises(TerrainError, match="outside tower 't01'"):
        calibrate_tower(site, "t01", marks, dem)


def test_bad_pointing_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pointing.toml"
    entry = (
        '[[towers]]\nid = "t01"\npan_offset_deg = 0.1\ntilt_offset_deg = 0\nroll_offset_deg = 0\n'
    )
    path.write_text(entry + entry)
    with pytest.raises(TerrainError, match="twice"):
        read_pointing_file(path)
    path.write_text(entry + "colour = 1\n")
    with pytest.raises(TerrainError, match="colour"):
        read_pointing_file(path)
    path.write_text(entry.replace("0.1", "90.0"))
    with pytest.raises(TerrainError, match="pan_offset_deg"):
        read_pointing_file(path)
    path.write_text("[[towers]\n")
    with pytest.raises(TerrainError, match="not TOML"):
        read_pointing_file(path)
