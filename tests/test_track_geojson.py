"""``vigil track`` reads detections from GeoJSON where it reads CSV (issue 17, item 12): the
same columns rules, the same tracks, and one-line errors naming the feature and the column."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vigil.geo.frames import LocalFrame
from vigil.tracks.csvfile import CsvError, read_detections, run_track

EXAMPLE = Path(__file__).resolve().parents[1] / "vigil" / "data" / "examples" / "detections.csv"


def wgs84_rows() -> list[dict]:
    """The shipped example (local metres) placed near the Tucson sector, as lat/lon."""
    with EXAMPLE.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:400]
    frame = LocalFrame(31.33, -110.95)
    lat, lon = frame.to_wgs84([float(r["x"]) for r in rows], [float(r["y"]) for r in rows])
    return [
        {"t": float(r["t"]), "lat": float(a), "lon": float(b), "sensor": r["sensor"]}
        | {"sigma": float(r["sigma"])}
        for r, a, b in zip(rows, lat, lon, strict=True)
    ]


def feature(props: dict, lon: float, lat: float) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": props,
    }


def write_geojson(path: Path, features: list) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_geojson_gives_the_tracks_the_csv_gives(tmp_path: Path) -> None:
    rows = wgs84_rows()
    with (tmp_path / "d.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["t", "lat", "lon", "sensor", "sigma"])
        w.writeheader()
        w.writerows({k: repr(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    gj = write_geojson(
        tmp_path / "d.geojson",
        [
            feature({"t": r["t"], "sensor": r["sensor"], "sigma": r["sigma"]}, r["lon"], r["lat"])
            for r in rows
        ],
    )
    a = run_track(tmp_path / "d.csv", tmp_path / "a.csv", "wgs84")
    b = run_track(gj, tmp_path / "b.csv", "wgs84")
    assert a == b and a.tracks > 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


@pytest.mark.parametrize(
    ("features", "frame", "words"),
    [
        ([feature({"t": 1.0}, -111.0, 31.3)], "local", ["wgs84"]),
        ([feature({"sensor": "t01"}, -111.0, 31.3)], "wgs84", ["column 't'"]),
        (
            [feature({"t": 1.0}, -111.0, 31.3), feature({"t": "soon"}, -111.0, 31.3)],
            "wgs84",
            ["feature 2", "column 't'", "'soon' is not a number"],
        ),
        ([feature({"t": 1.0, "colour": "red"}, -111.0, 31.3)], "wgs84", ["column 'colour'"]),
        ([feature({"t": 1.0}, -111.0, 95.0)], "wgs84", ["feature 1", "column 'lat'"]),
        (
            [{"type": "Feature", "geometry": None, "properties": {"t": 1.0}}],
            "wgs84",
            ["feature 1", "column 'geometry'", "Point"],
        ),
        ([feature({"t": 1.0, "lat": 3}, -111.0, 31.3)], "wgs84", ["column 'lat'", "geometry"]),
        ("not a collection", "wgs84", ["FeatureCollection"]),
    ],
)
def test_bad_geojson_names_feature_and_column(
    tmp_path: Path, features, frame: str, words: list[str]
) -> None:
    path = tmp_path / "d.geojson"
    if isinstance(features, str):
        path.write_text(json.dumps(features))
    else:
        write_geojson(path, features)
    with pytest.raises(CsvError) as err:
        read_detections(path, frame)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_cli_tracks_geojson_and_refuses_broken_json(tmp_path: Path) -> None:
    rows = wgs84_rows()[:50]
    features = [feature({"t": r["t"]}, r["lon"], r["lat"]) for r in rows]
    write_geojson(tmp_path / "d.geojson", features)
    ok = subprocess.run(
        [sys.executable, "-m", "vigil.cli", "track", "d.geojson", "--out", "t.csv"]
        + ["--frame", "wgs84"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "50 detections" in ok.stdout
    (tmp_path / "bad.geojson").write_text('{"type": "FeatureCollection", "features": [')
    bad = subprocess.run(
        [sys.executable, "-m", "vigil.cli", "track", "bad.geojson", "--out", "u.csv"]
        + ["--frame", "wgs84"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )  # fmt: skip
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 3 and len(lines) == 1, bad.stderr
    assert "bad.geojson" in lines[0] and "not GeoJSON" in lines[0]
    assert "Traceback" not in bad.stderr
