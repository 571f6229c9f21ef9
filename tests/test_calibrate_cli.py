"""``vigil calibrate tower``: landmarks seen by a camera with a known pointing error, on the
synthetic relief, give that error back through the command line; bad input is named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vigil.cli import main
from vigil.config import default_deployment_path, load
from vigil.geo.dem import load_terrain
from vigil.geo.landmarks import read_pointing_file
from vigil.geo.raycast import camera_on_terrain, pixels_to_terrain
from vigil.geo.site import tower_camera

TOWER = "t03"
#: The camera's true pointing error (pan, tilt, roll), degrees: what calibration must find.
TRUE_OFFSETS = (0.3, -0.06, 0.2)
HEADER = "name,u,v,lat,lon,height_m\n"


@pytest.fixture(scope="module")
def sector(tmp_path_factory) -> tuple[Path, object, object]:
    """The demo deployment on synthetic relief, and its ground."""
    folder = tmp_path_factory.mktemp("calibrate")
    path = folder / "sector.toml"
    text = default_deployment_path().read_text(encoding="utf-8")
    path.write_text(text + "\n[terrain]\nsynthetic = { seed = 2 }\n", encoding="utf-8")
    d = load(path)
    dem = load_terrain(d.config.terrain, d.site, folder)
    return path, d, dem


def write_landmarks(d, dem, path: Path, noise_px: float = 0.3) -> None:
    """Eight landmarks that the tower's camera, truly pointed off by TRUE_OFFSETS, sees at
    the pixels written (with ``noise_px`` of pixel noise): surveyed where its rays meet the
    ground."""
    nominal = camera_on_terrain(tower_camera(d.site.towers[2], d.site.frame()), dem)
    assert d.site.towers[2].id == TOWER
    true = replace(
        nominal,
        pan_deg=nominal.pan_deg + TRUE_OFFSETS[0],
        tilt_deg=nominal.tilt_deg + TRUE_OFFSETS[1],
        roll_deg=nominal.roll_deg + TRUE_OFFSETS[2],
    )
    columns = np.linspace(20.0, true.width - 20.0, 12)
    rows = np.linspace(true.height / 2, true.height - 5, 40)
    u, v = (a.ravel() for a in np.meshgrid(columns, rows))
    hits = pixels_to_terrain(true, dem, u, v)
    ok = np.flatnonzero(hits.hit & (hits.range_m > 300.0))
    ok = ok[np.argsort(u[ok] + 1e-3 * v[ok], kind="stable")]  # spread across the image
    pick = ok[np.linspace(0, ok.size - 1, 8).astype(int)]
    lat, lon = d.site.frame().to_wgs84(hits.x[pick], hits.y[pick])
    rng = np.random.default_rng(21)
    lines = [HEADER]
    for k, i in enumerate(pick):
        du, dv = rng.normal(0.0, noise_px, 2)
        lines.append(
            f"bm{k},{u[i] + du:.3f},{v[i] + dv:.3f},{lat[k]:.9f},{lon[k]:.9f},{hits.z[i]:.3f}\n"
        )
    path.write_text("".join(lines), encoding="utf-8")


def test_calibrate_tower_recovers_a_known_pointing_error(sector, tmp_path: Path, capsys) -> None:
    deployment, d, dem = sector
    marks = tmp_path / "landmarks.csv"
    write_landmarks(d, dem, marks)
    out = tmp_path / "pointing.toml"
    argv = ["calibrate", "tower", TOWER, "--landmarks", str(marks)]
    assert main([*argv, "--deployment", str(deployment), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    entry = read_pointing_file(out)[TOWER]
    got = (entry.pan_offset_deg, entry.tilt_offset_deg, entry.roll_offset_deg)
    sigma = (entry.pan_sigma_deg, entry.tilt_sigma_deg, entry.roll_sigma_deg)
    for g, want, s in zip(got, TRUE_OFFSETS, sigma, strict=True):
        assert 0.0 < s < 0.05
        assert abs(g - want) <= 3.0 * s + 1e-3, (got, sigma)
    assert entry.landmarks == 8 and 0.1 < entry.rms_px < 0.7
    # a line per landmark with its residuals in pixels and metres, and the offsets printed
    rows = [line.split() for line in printed.splitlines() if line.startswith("bm")]
    assert [r[0] for r in rows] == [f"bm{k}" for k in range(8)]
    resid_px = np.array([float(r[3]) for r in rows])
    resid_m = np.array([float(r[4]) for r in rows])
    assert np.all(resid_px < 2.0) and np.median(resid_m) < 25.0
    assert f"pan_offset_deg = {entry.pan_offset_deg:+.4f} +- {entry.pan_sigma_deg:.4f}" in printed
    assert "tilt_offset_deg" in printed and "roll_offset_deg" in printed
    # the focal length too, and the file keeps one entry per tower
    assert main([*argv, "--deployment", str(deployment), "--out", str(out), "--focal"]) == 0
    again = read_pointing_file(out)
    assert list(again) == [TOWER] and again[TOWER].hfov_deg is not None
    assert again[TOWER].hfov_deg == pytest.approx(d.site.towers[2].hfov_deg, rel=0.02)


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("bad,1,x,31.3,-110.9,1200", "line 3: column v"),
        ("bad,1,2,31.3,-110.9", "line 3: 5 columns"),
        ("bad,1,2,131.3,-110.9,1200", "line 3: column lat"),
    ],
    ids=["not-a-number", "columns", "lat-range"],
)
def test_a_bad_landmarks_file_is_named_by_line(
    sector, tmp_path: Path, capsys, row: str, match: str
) -> None:
    deployment, _, _ = sector
    marks = tmp_path / "landmarks.csv"
    marks.write_text(HEADER + "good,10,300,31.33,-110.88,1200\n" + row + "\n")
    out = tmp_path / "pointing.toml"
    argv = ["calibrate", "tower", TOWER, "--landmarks", str(marks), "--out", str(out)]
    assert main([*argv, "--deployment", str(deployment)]) == 3
    err = capsys.readouterr().err
    assert f"error: {marks}: {match}" in err
    assert not out.exists()


def test_unknown_tower_and_no_output_are_refused(sector, tmp_path: Path, capsys) -> None:
    deployment, d, dem = sector
    marks = tmp_path / "landmarks.csv"
    write_landmarks(d, dem, marks)
    base = ["calibrate", "tower", "--landmarks", str(marks), "--deployment", str(deployment)]
    assert main([*base, "t99", "--out", str(tmp_path / "p.toml")]) == 3
    assert "tower 't99' is not in the deployment" in capsys.readouterr().err
    assert main([*base, TOWER]) == 3
    assert "give --out FILE" in capsys.readouterr().err


def test_help_explains_the_landmarks_file(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["calibrate", "tower", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "name,u,v,lat,lon,height_m" in text and "line and column" in text
