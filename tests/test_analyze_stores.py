"""``vigil analyze`` reads Vigil's own stores and files (issue 17, items 12 and 13).

The sector store (``events.sqlite``, written by ``vigil run`` and the demo) keeps crossings in
the table ``crossing``; ``vigil analyze`` said "no table 'crossings'" on it. The demo's
``events.gpkg`` and GeoParquet layers, and GeoJSON, are read too, with the same result as the
CSV; a wrong input is one line naming the file, exit status 3 (bad data), no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from vigil.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stores") / "demo"
    args = ["demo", "--hours", "0.05", "--out", str(out), "--quiet", "--fps", "1"]
    assert main(args) == 0
    return out


def analyze(source: Path, out: Path) -> dict:
    assert main(["analyze", str(source), "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text())


def same_times(got: dict, expected: dict) -> None:
    """First and last crossing agree to GeoPackage's precision (milliseconds)."""
    for key in ("first", "last"):
        gap = abs(pd.Timestamp(got[key]) - pd.Timestamp(expected[key]))
        assert gap < pd.Timedelta(milliseconds=1), (key, got[key], expected[key])


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vigil.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def test_analyze_reads_the_demo_store_gpkg_and_geoparquet(demo: Path, tmp_path: Path) -> None:
    expected = analyze(demo / "crossings.csv", tmp_path / "csv")
    assert expected["crossings"] > 0, "the short demo had no crossings"
    for source in ("events.sqlite", "events.gpkg", "geoparquet/crossings.parquet"):
        got = analyze(demo / source, tmp_path / source.replace("/", "_"))
        for key in ("crossings", "segments_with_crossings", "directions"):
            assert got[key] == expected[key], (source, key, got[key], expected[key])
        same_times(got, expected)


def test_analyze_reads_geojson(demo: Path, tmp_path: Path) -> None:
    crossings = gpd.read_file(demo / "events.gpkg", layer="crossings")
    path = tmp_path / "crossings.geojson"
    crossings.to_file(path, driver="GeoJSON")
    expected = analyze(demo / "crossings.csv", tmp_path / "csv")
    got = analyze(path, tmp_path / "geojson")
    for key in ("crossings", "segments_with_crossings"):
        assert got[key] == expected[key], key
    same_times(got, expected)


def test_geojson_times_without_zone_are_refused(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"time": ["2026-06-01T09:00:00"], "segment_id": ["tucson-0003"]},
        geometry=gpd.points_from_xy([-111.0], [31.33]),
        crs="EPSG:4326",
    )
    gdf.to_file(tmp_path / "naive.geojson", driver="GeoJSON")
    run = run_cli("analyze", "naive.geojson", "--out", "rep", cwd=tmp_path)
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr and "time zone" in run.stderr, run.stderr
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize(
    ("name", "make", "words"),
    [
        (
            "tracks.sqlite",
            None,  # the demo's track store: crossings are beside it
            ["tracks.sqlite", "no table 'crossings'", "events.sqlite"],
        ),
        ("broken.geojson", b'{"type": "FeatureCollection", "features": [', ["broken.geojson"]),
        ("notsql.sqlite", b"this is not a database" * 10, ["notsql.sqlite", "SQLite"]),
        ("notgpkg.gpkg", b"plain text", ["notgpkg.gpkg", "GeoPackage"]),
        (
            "geoparquet",
            None,  # the demo's folder of layers is not a partitioned table
            ["geoparquet", "one file per layer", "crossings.parquet"],
        ),
    ],
)
def test_wrong_inputs_say_what_and_where(
    demo: Path, tmp_path: Path, name: str, make: bytes | None, words: list[str]
) -> None:
    source = demo / name if make is None else tmp_path / name
    if make is not None:
        source.write_bytes(make)
    run = run_cli("analyze", str(source), "--out", str(tmp_path / "rep"), cwd=tmp_path)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 3 and len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "rep").exists()


def test_gpkg_without_a_crossings_layer_names_its_layers(demo: Path, tmp_path: Path) -> None:
    two = tmp_path / "two.gpkg"
    for layer in ("alerts", "detections"):
        gpd.read_file(demo / "events.gpkg", layer=layer).to_file(two, layer=layer)
    run = run_cli("analyze", str(two), "--out", str(tmp_path / "rep"), cwd=tmp_path)
    assert run.returncode == 3, run.stderr
    assert "no layer 'crossings'" in run.stderr and "'alerts'" in run.stderr, run.stderr


def test_store_table_is_read_as_it_is(demo: Path) -> None:
    from vigil.geo.patterns.io import read_crossings

    table = read_crossings(demo / "events.sqlite")
    csv = pd.read_csv(demo / "crossings.csv")
    assert sorted(table["crossing_id"]) == sorted(csv["crossing_id"])
    assert table["time"].dtype == "float64"
