"""``vigil track`` input with tower (polar) columns: rows mixed with position rows, the same
tracks as the array-level tracker given the same measurements, and errors naming line and
column."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from vigil.cli import main
from vigil.tracks.config import TrackerConfig
from vigil.tracks.csvfile import CsvError, read_detections, run_track
from vigil.tracks.imm import make_tracker
from vigil.tracks.polar import polar_batch, to_position

HEADER = "t,x,y,sensor,sigma,sensor_x,sensor_y,sensor_height,bearing_deg,range_m,sigma_bearing_deg,sigma_range_m"  # noqa: E501


def _scene(tmp_path: Path, seed: int = 7) -> tuple[Path, np.ndarray]:
    """A walker seen by a tower 1.5 km away (bearing 0.05 deg, range 6 %) and a second
    walker seen by a ground sensor as positions with a 5 m sigma; 1 s scans."""
    rng = np.random.default_rng(seed)
    lines = [HEADER]
    truth = []
    for s in range(30):
        p = np.array([900.0 + 1.2 * s, 1200.0 - 0.5 * s])
        truth.append(p)
        dx, dy = p[0] - 50.0, p[1] + 20.0
        b = math.degrees(math.atan2(dx, dy)) + 0.05 * rng.standard_normal()
        r = math.hypot(math.hypot(dx, dy), 30.0) * (1 + 0.06 * rng.standard_normal())
        lines.append(f"{s},,,tower,,50,-20,30,{b!r},{r!r},0.05,{0.06 * r!r}")
        q = np.array([-300.0 + 1.0 * s, 100.0]) + 5.0 * rng.standard_normal(2)
        lines.append(f"{s},{float(q[0])!r},{float(q[1])!r},ugs,5,,,,,,,")
    path = tmp_path / "det.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, np.array(truth)


def test_tower_rows_track_like_the_array_tracker(tmp_path):
    """``vigil track`` on a mixed file writes the tracks that ``Tracker.update(polar=...)``
    gives on the same batches, and the tower walker's track ends near the truth."""
    src, truth = _scene(tmp_path)
    out = tmp_path / "tracks.csv"
    assert main(["track", str(src), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len({r["track_id"] for r in rows}) == 2
    # the same batches by hand (the file's canonical order: sensor name within a time)
    det = read_detections(src)
    tr = make_tracker(TrackerConfig.for_track())  # vigil track's: the IMM
    for s in range(30):
        b = polar_batch([[50.0, -20.0, 30.0]], *det.polar.meas[2 * s], *det.polar.sigma[2 * s])
        z, R = to_position(b)
        zz = np.r_[z, [[det.a[2 * s + 1], det.b[2 * s + 1]]]]
        RR = np.r_[R, [25.0 * np.eye(2)]]
        pol = polar_batch(
            np.r_[b.sensor, [[0.0, 0.0, 0.0]]],
            np.r_[b.meas[:, 0], 0.0],
            np.r_[b.meas[:, 1], 1.0],
            np.r_[b.sigma[:, 0], 1.0],
            np.r_[b.sigma[:, 1], 1.0],
            valid=[True, False],
        )
        # batches per (t, sensor) in sensor name order: (t, tower) then (t, ugs)
        tr.update(float(s), zz[:1], RR[:1], polar=pol.take(slice(0, 1)))
        tab = tr.update(float(s), zz[1:], RR[1:], polar=pol.take(slice(1, 2)))
    last = [r for r in rows if float(r["t"]) == 29.0]
    by_id = {int(r["track_id"]): (float(r["x"]), float(r["y"])) for r in last}
    for i, tid in enumerate(tab.track_id.tolist()):
        assert by_id[tid] == pytest.approx(tuple(tab.x[i, :2]), abs=1e-3)
    err = min(math.dist(p, truth[-1]) for p in by_id.values())
    assert err < 0.06 * 1500 / 2  # well under one detection's range sigma


@pytest.mark.parametrize(
    ("cells", "column", "what"),
    [
        ("1,,,tower,,50,-20,30,north,900,0.05,50", "bearing_deg", "not a number"),
        ("1,,,tower,,50,-20,30,10,20,0.05,50", "range_m", "sensor_height"),
        ("1,,,tower,,50,-20,30,10,900,0,50", "sigma_bearing_deg", "degrees > 0"),
        ("1,,,tower,,50,,30,10,900,0.05,50", "sensor_y", "blank"),
        ("1,5,5,ugs,5,,,,,900,,", "range_m", "without bearing_deg"),
        ("1,,,tower,,50,-20,-3,10,900,0.05,50", "sensor_height", "metres >= 0"),
        ("1,,,tower,,50,-20,30,10,nan,0.05,50", "range_m", "expected"),
        ("1,,,tower,,50,-20,30,10,900,0.05", None, "fields"),
    ],
)
def test_bad_tower_cells_name_line_and_column(tmp_path, cells, column, what):
    src = tmp_path / "bad.csv"
    src.write_text(f"{HEADER}\n0,1,2,ugs,5,,,,,,,\n{cells}\n")
    with pytest.raises(CsvError, match=what) as exc:
        read_detections(src)
    assert exc.value.line == 3 and exc.value.column == column


def test_tower_columns_need_the_local_frame(tmp_path, capsys):
    src = tmp_path / "w.csv"
    src.write_text("t,lat,lon,bearing_deg\n0,31.3,-110.9,\n")
    out = tmp_path / "o.csv"
    assert main(["track", str(src), "--out", str(out), "--frame", "wgs84"]) == 3
    assert "column 'bearing_deg'" in capsys.readouterr().err
    with pytest.raises(CsvError, match="local frame"):
        run_track(src, out, "wgs84")


def test_relative_range_sigma_column(tmp_path):
    """``sigma_range_frac`` makes a relative-range row; giving it with ``sigma_range_m`` is
    refused, naming the column."""
    head = "t,x,y,sensor_x,sensor_y,bearing_deg,range_m,sigma_bearing_deg,sigma_range_m,sigma_range_frac"  # noqa: E501
    src = tmp_path / "rel.csv"
    src.write_text(f"{head}\n0,,,0,0,45,1000,0.05,,0.08\n1,3,4,,,,,,,\n")
    det = read_detections(src)
    assert det.polar.valid.tolist() == [True, False]
    assert int(det.polar.mode[0]) == 2 and det.polar.sigma[0, 1] == pytest.approx(0.08)
    assert det.polar.meas[0, 0] == pytest.approx(math.pi / 4)
    src.write_text(f"{head}\n0,,,0,0,45,1000,0.05,50,0.08\n")
    with pytest.raises(CsvError, match="one of them") as exc:
        read_detections(src)
    assert (exc.value.line, exc.value.column) == (2, "sigma_range_m")
