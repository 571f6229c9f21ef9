"""`vigil demo` runs the whole chain and writes its outputs (a short run; quality is scored in
tests/test_demo_quality.py and the 24-hour figures are in BENCHMARKS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigil.cli import main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--hours", "0.02", "--out", str(out), "--quiet", "--fps", "1"]) == 0
    return out


def test_demo_writes_every_output(demo_dir: Path, capsys) -> None:
    for name in ("map.html", "report.html", "events.gpkg", "summary.json", "tracks.sqlite"):
        assert (demo_dir / name).is_file(), name
    summary = json.loads((demo_dir / "summary.json").read_text())
    for key in ("crossings", "alerts", "latency_ms", "throughput", "quarantine"):
        assert key in summary
    assert summary["throughput"]["frames"] > 0
    assert summary["throughput"]["messages"] > summary["throughput"]["frames"]


def test_demo_geopackage_layers(demo_dir: Path) -> None:
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(demo_dir / "events.gpkg")}
    assert {"detections", "track_paths", "track_points", "crossings", "alerts"} <= layers


@pytest.mark.browser
def test_demo_map_opens_offline(demo_dir: Path, offline_page) -> None:
    page = offline_page.page
    page.goto((demo_dir / "map.html").as_uri())
    page.wait_for_selector(".vigil-tower", state="attached", timeout=20_000)
    assert page.locator(".vigil-tower").count() == 6
    assert offline_page.blocked == []
