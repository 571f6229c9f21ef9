"""The planners' report: files, the real USBP table, and drawing in an offline browser."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyogrio
import pytest

from vigil.geo.border import Border
from vigil.geo.frames import LocalFrame
from vigil.geo.patterns.coverage import sensor_disc
from vigil.geo.patterns.synthetic import corridor_rates, night_schedule, simulate_crossings
from vigil.maps.report import analyze_counts, analyze_crossings

TZ = "America/Phoenix"
USBP = "patterns/usbp_monthly_apprehensions_by_sector_fy2000_fy2020.csv"


@pytest.fixture(scope="module")
def border() -> Border:
    return Border(
        "tucson", LocalFrame(31.33, -110.94), start=(31.333, -111.15), end=(31.333, -110.73)
    )


@pytest.fixture(scope="module")
def crossing_report(border, tmp_path_factory):
    rates = corridor_rates(len(border.segments), [(25, 10.0, 1.5), (8, 4.0, 2.0)])
    after = rates.copy()
    after[25] *= 0.2
    after[27] += 5.0
    table, _ = simulate_crossings(
        border, days=150, rates=rates, rates_after=after, change_day=90,
        hourly=night_schedule(2), timezone=TZ, seed=5,
    )  # fmt: skip
    root = tmp_path_factory.mktemp("crossings")
    table.to_csv(root / "crossings.csv", index=False)
    footprints = [sensor_disc(*border.segments[i].line.centroid.coords[0], 700) for i in (3, 15)]
    candidates = {
        f"s{i:02d}": sensor_disc(*border.segments[i].line.centroid.coords[0], 1200)
        for i in (10, 26, 33)
    }
    out = root / "report"
    summary = analyze_crossings(
        root / "crossings.csv", out, border=border, timezone=TZ, footprints=footprints,
        candidates=candidates,
    )  # fmt: skip
    return out, summary


def test_crossing_report_files(crossing_report, border):
    out, summary = crossing_report
    assert {p.name for p in out.iterdir()} >= {
        "report.html",
        "segments.gpkg",
        "hotspots.gpkg",
        "summary.json",
    }
    segs = gpd.read_file(out / "segments.gpkg")
    assert segs["segment_id"].tolist() == border.segment_ids
    assert segs.crs.to_epsg() == 4326 and segs.geometry.notna().all()
    assert {"crossings", "per_day", "gi_z", "class", "covered"} <= set(segs.columns)
    layers = {name for name, _ in pyogrio.list_layers(out / "hotspots.gpkg")}
    assert layers == {"segments", "cells", "corridors"}
    hot = gpd.read_file(out / "hotspots.gpkg", layer="segments")
    assert "tucson-0025" in set(hot.segment_id)
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["top_hotspot"]["segment_id"] == summary["top_hotspot"]["segment_id"]
    assert on_disk["peak_hour"] == 2
    assert on_disk["drops"][0]["segment_id"] == "tucson-0025"
    assert on_disk["displacement"][0]["to"] == "tucson-0027"
    assert on_disk["best_new_tower"]["candidate"] == "s26"


@pytest.mark.browser
def test_crossing_report_draws_offline(crossing_report, offline_page):
    out, _ = crossing_report
    page = offline_page.page
    page.goto((out / "report.html").resolve().as_uri())
    page.wait_for_selector(".leaflet-pane", state="attached", timeout=15000)
    page.wait_for_function(
        "document.querySelectorAll('.leaflet-overlay-pane path').length > 40", timeout=15000
    )
    size = page.evaluate(
        "(() => { const r = document.querySelector('.folium-map').getBoundingClientRect();"
        " return [r.width, r.height]; })()"
    )
    assert size[0] > 500 and size[1] > 300
    widths = page.evaluate(
        "Array.from(document.querySelectorAll('img.plot')).map(i => i.complete && i.naturalWidth)"
    )
    assert len(widths) == 4 and all(w and w > 100 for w in widths), widths
    assert offline_page.blocked == []
    assert "Strongest Gi* hotspot" in page.inner_text("body")


@pytest.fixture(scope="module")
def usbp(shared_data):
    path = shared_data / USBP
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return path


def test_usbp_southwest_peaks_in_march_and_troughs_in_december(usbp, tmp_path):
    s = analyze_counts(usbp, "date", "border", "apprehensions", tmp_path)
    season = json.loads((tmp_path / "seasonality.json").read_text())
    sw = season["southwest"]
    assert sw["peak_month"] == "Mar" and sw["trough_month"] == "Dec"
    profile = np.array(list(sw["monthly_profile"].values()))
    assert profile.mean() == pytest.approx(1.0, abs=0.01)
    assert sw["peak_ratio"] == pytest.approx(1.38, abs=0.05)
    assert sw["trough_ratio"] == pytest.approx(0.70, abs=0.03)
    assert sw["trend"]["direction"] == "falling"
    assert s["peaks"]["southwest"] == "Mar"


def test_usbp_busiest_sector_moves_from_tucson_to_rio_grande_valley(usbp, tmp_path):
    s = analyze_counts(
        usbp, "date", "sector", "apprehensions", tmp_path, busiest_year_start_month=10
    )
    assert s["busiest_by_year"]["2000"]["group"] == "tucson"
    assert s["busiest_by_year"]["2019"]["group"] == "rio_grande_valley"
    season = json.loads((tmp_path / "seasonality.json").read_text())
    assert len(season) == 21


def test_usbp_dask_equals_memory(usbp, tmp_path):
    pytest.importorskip("dask.dataframe", reason="the Dask path needs the bench extra")
    mem = analyze_counts(usbp, "date", "sector", "apprehensions", tmp_path / "m")
    dsk = analyze_counts(usbp, "date", "sector", "apprehensions", tmp_path / "d", "synchronous")
    for key in ("files", "input"):
        mem.pop(key), dsk.pop(key)
    assert mem == dsk
    a = json.loads((tmp_path / "m" / "seasonality.json").read_text())
    b = json.loads((tmp_path / "d" / "seasonality.json").read_text())
    assert a == b


@pytest.mark.browser
def test_counts_report_draws_offline(usbp, tmp_path, offline_page):
    analyze_counts(usbp, "date", "sector", "apprehensions", tmp_path)
    page = offline_page.page
    page.goto((tmp_path / "report.html").resolve().as_uri())
    page.wait_for_selector(".leaflet-pane", state="attached", timeout=15000)
    widths = page.evaluate(
        "Array.from(document.querySelectorAll('img.plot')).map(i => i.complete && i.naturalWidth)"
    )
    assert len(widths) == 3 and all(w and w > 100 for w in widths), widths
    assert offline_page.blocked == []
