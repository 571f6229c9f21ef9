"""Every GeoPackage Vigil writes opens in GDAL without warnings, with date-time fields and one
geometry type per layer; the event layers are also GeoParquet (issue 17, item 12).

GDAL's own ``ogrinfo`` is the reference reader (Debian 12's GDAL 3.6, what QGIS 3.28 LTR uses);
the tests that need it are skipped, with the reason, where it is not installed.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import LineString, Point, Polygon

from vigil.cli import main
from vigil.demo import track_layers
from vigil.geo.export import write_geoparquet, write_gpkg_layer

OGRINFO = shutil.which("ogrinfo")
needs_ogrinfo = pytest.mark.skipif(
    OGRINFO is None, reason="GDAL's ogrinfo is not installed (apt-get install gdal-bin)"
)

#: Layers whose time columns must be date-time fields.
TIME_FIELDS = {
    "detections": {"time"},
    "track_paths": {"start", "end"},
    "track_points": {"start", "end"},
    "crossings": {"time"},
    "alerts": {"time"},
}
EVENT_TYPES = {
    "detections": "Point",
    "track_paths": "LineString",
    "track_points": "Point",
    "crossings": "Point",
    "alerts": "Point",
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """A short demo (with crossings, so its analysis runs) and ``vigil analyze`` on its store."""
    root = tmp_path_factory.mktemp("gpkg")
    demo = root / "demo"
    args = ["demo", "--hours", "0.05", "--out", str(demo), "--quiet", "--fps", "1"]
    assert main(args) == 0
    assert (demo / "analysis" / "segments.gpkg").is_file(), "the short demo had no crossings"
    assert main(["analyze", str(demo / "events.sqlite"), "--out", str(root / "analyze")]) == 0
    return root


def gpkg_files(root: Path) -> list[Path]:
    files = sorted(root.rglob("*.gpkg"))
    names = {p.relative_to(root).as_posix() for p in files}
    assert {
        "demo/events.gpkg",
        "demo/analysis/segments.gpkg",
        "demo/analysis/hotspots.gpkg",
        "analyze/segments.gpkg",
        "analyze/hotspots.gpkg",
    } <= names, names
    return files


def ogrinfo(path: Path) -> dict[str, dict]:
    """``ogrinfo -al -so``: the layers with their geometry type and fields; fails on warnings."""
    run = subprocess.run(
        [OGRINFO, "-al", "-so", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    text = run.stdout + run.stderr
    assert run.returncode == 0, text
    bad = [ln for ln in text.splitlines() if re.match(r"\s*(Warning|ERROR)", ln)]
    assert bad == [], f"{path.name}: {bad}"
    layers: dict[str, dict] = {}
    current: dict | None = None
    for line in text.splitlines():
        if line.startswith("Layer name: "):
            current = layers.setdefault(line[len("Layer name: ") :], {"fields": {}})
        elif current is not None and line.startswith("Geometry: "):
            current["geometry"] = line[len("Geometry: ") :]
        elif current is not None and (m := re.match(r"^(\w+): (\w+) \(", line)):
            current["fields"][m.group(1)] = m.group(2)
    return layers


@needs_ogrinfo
def test_every_geopackage_opens_in_gdal_without_warnings(outputs: Path) -> None:
    for path in gpkg_files(outputs):
        layers = ogrinfo(path)
        assert layers, path
        for name, layer in layers.items():
            # one declared geometry type, never "Unknown (any)", empty layers included
            assert layer.get("geometry") in {
                "Point",
                "Line String",
                "Polygon",
                "Multi Polygon",
            }, (path.name, name, layer)
            if path.name == "events.gpkg":
                for field in TIME_FIELDS[name]:
                    assert layer["fields"][field] == "DateTime", (name, field, layer["fields"])


def test_geopackage_version_and_geometry_types(outputs: Path) -> None:
    """Without GDAL's tools: version 1.2 (GDAL 3.6 warns on 1.4) and every feature's type."""
    for path in gpkg_files(outputs):
        with sqlite3.connect(path) as con:
            assert con.execute("PRAGMA user_version").fetchone()[0] == 10200, path
        for name, _ in pyogrio.list_layers(path):
            info = pyogrio.read_info(path, layer=name)
            assert info["geometry_type"] != "Unknown", (path.name, name)
            df = pyogrio.read_dataframe(path, layer=name)
            kinds = set(df.geometry.dropna().geom_type)
            assert kinds <= {info["geometry_type"]}, (path.name, name, kinds)
            assert df.geometry.dropna().is_valid.all(), (path.name, name)


def test_event_layers_have_utc_times_and_one_type(outputs: Path) -> None:
    gpkg = outputs / "demo" / "events.gpkg"
    assert {n for n, _ in pyogrio.list_layers(gpkg)} == set(EVENT_TYPES)
    for name, geometry_type in EVENT_TYPES.items():
        df = gpd.read_file(gpkg, layer=name)
        for field in TIME_FIELDS[name]:
            assert str(df[field].dtype).startswith("datetime64"), (name, field, df[field].dtype)
            # GeoPackage keeps the zone per value (ISO-8601 with Z): an empty layer has none
            assert len(df) == 0 or str(df[field].dt.tz) == "UTC", (name, field)
        assert pyogrio.read_info(gpkg, layer=name)["geometry_type"] == geometry_type
    paths = gpd.read_file(gpkg, layer="track_paths")
    assert len(paths) > 0 and paths.is_valid.all()
    assert (paths["start"] <= paths["end"]).all()
    # the times are the wire's: 2026-06-01 09:00 UTC onwards in the demo
    crossings = gpd.read_file(gpkg, layer="crossings")
    assert (crossings["time"] >= pd.Timestamp("2026-06-01T09:00Z")).all()


def test_geoparquet_reads_back_with_same_rows_and_crs(outputs: Path) -> None:
    demo = outputs / "demo"
    for name in EVENT_TYPES:
        parquet = gpd.read_parquet(demo / "geoparquet" / f"{name}.parquet")
        gpkg = gpd.read_file(demo / "events.gpkg", layer=name)
        assert parquet.crs.to_epsg() == 4326, name
        assert len(parquet) == len(gpkg), name
        assert list(parquet.columns) == list(gpkg.columns), name
        if len(gpkg):
            assert parquet.geometry.geom_equals_exact(gpkg.geometry, 1e-9).all(), name
            for field in TIME_FIELDS[name]:
                assert (parquet[field] == gpkg[field]).all(), (name, field)
    segs = gpd.read_parquet(outputs / "analyze" / "segments.parquet")
    assert segs.crs.to_epsg() == 4326
    assert (
        segs["segment_id"].tolist()
        == gpd.read_file(outputs / "analyze" / "segments.gpkg")["segment_id"].tolist()
    )


def test_tracks_that_never_moved_are_points_not_invalid_lines() -> None:
    def to_wgs84(xs, ys):
        return np.asarray(ys, float) / 1e5 + 31.3, np.asarray(xs, float) / 1e5 - 111.0

    updates = [
        ("T1", 0.0, 0.0, 0.0, "person"),
        ("T1", 1.0, 10.0, 5.0, "person"),
        ("T2", 0.0, 50.0, 50.0, "animal"),  # several updates, one position
        ("T2", 1.0, 50.0, 50.0, "animal"),
        ("T3", 2.0, 70.0, 70.0, "vehicle"),  # one update
    ]
    paths, lines, points = track_layers(updates, to_wgs84)
    assert [r["track_id"] for r in lines] == ["T1"]
    assert [r["track_id"] for r in points] == ["T2", "T3"]
    assert all(isinstance(r["geometry"], Point) for r in points)
    assert all(r["geometry"].is_valid for r in lines + points)
    assert len(paths["T2"][1]) == 1  # the map draws no zero-length line either
    assert points[0]["updates"] == 2


def test_writer_refuses_mixed_types_and_declares_empty_layers(tmp_path: Path) -> None:
    gpkg = tmp_path / "x.gpkg"
    mixed = gpd.GeoDataFrame(
        {"time": [1.78e9, 1.78e9 + 1]},
        geometry=[Point(0, 0), LineString([(0, 0), (1, 1)])],
        crs="EPSG:4326",
    )
    with pytest.raises(ValueError, match="layer 'mixed' declared Point holds"):
        write_gpkg_layer(mixed, gpkg, "mixed", geometry_type="Point")
    empty = gpd.GeoDataFrame(
        {"time": pd.Series([], dtype="float64")}, geometry=gpd.GeoSeries([]), crs="EPSG:4326"
    )
    assert write_gpkg_layer(empty, gpkg, "empty", geometry_type="Point", time_columns=["time"]) == 0
    info = pyogrio.read_info(gpkg, layer="empty")
    assert info["geometry_type"] == "Point" and info["ogr_types"] == ["OFTDateTime"]
    poly = Polygon([(0, 0), (1, 0), (1, 1)])
    one = gpd.GeoDataFrame({"n": [1]}, geometry=[poly], crs="EPSG:4326")
    write_gpkg_layer(one, gpkg, "multi", geometry_type="MultiPolygon")
    assert set(gpd.read_file(gpkg, layer="multi").geom_type) == {"MultiPolygon"}
    out = write_geoparquet(mixed, tmp_path / "m.parquet", time_columns=["time"])
    back = gpd.read_parquet(out)
    assert str(back["time"].dt.tz) == "UTC" and back.crs.to_epsg() == 4326
    if OGRINFO:
        layers = ogrinfo(gpkg)
        assert layers["empty"]["geometry"] == "Point"
        assert layers["empty"]["fields"]["time"] == "DateTime"
