"""The planners' counts report on the real USBP table: fiscal years, partial years, subtotals
per border, yearly changes, areas without a peak, readable totals and the map."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from vigil.geo.patterns.counts_table import analyze_counts_table
from vigil.geo.patterns.seasonality import group_seasonality
from vigil.geo.patterns.years import YearBasis, start_month_from_column, year_basis
from vigil.maps.report import analyze_counts
from vigil.maps.report_page import html_table, table_cell

USBP = "patterns/usbp_monthly_apprehensions_by_sector_fy2000_fy2020.csv"


@pytest.fixture(scope="module")
def usbp(shared_data):
    path = shared_data / USBP
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return path


@pytest.fixture(scope="module")
def fiscal(usbp, tmp_path_factory):
    out = tmp_path_factory.mktemp("usbp_fiscal")
    return out, analyze_counts(usbp, "date", "sector", "apprehensions", out)


@pytest.fixture(scope="module")
def calendar_years(usbp, tmp_path_factory):
    out = tmp_path_factory.mktemp("usbp_calendar")
    return out, analyze_counts(usbp, "date", "sector", "apprehensions", out, year_start_month=1)


def head_lines(report) -> list[str]:
    text = report.read_text(encoding="utf-8")
    head = text[text.index('class="report-head"') :]
    head = head[: head.index("</ul>")]
    return [html.unescape(li) for li in re.findall(r"<li>(.*?)</li>", head)]


# -- fiscal years --------------------------------------------------------------------------
def test_usbp_years_are_fiscal_from_its_fy_column(fiscal):
    out, s = fiscal
    assert s["year_start_month"] == 10
    assert "fiscal" in s["years"] and "'fy'" in s["years"]
    assert s["whole_years"][0] == "FY2000" and s["whole_years"][-1] == "FY2020"
    assert s["partial_years"] == {}
    assert any("Years are fiscal years Oct–Sep" in line for line in head_lines(out / "report.html"))


def test_usbp_southwest_subtotal_peaks_in_march_and_troughs_in_december(fiscal):
    out, s = fiscal
    sw = s["subtotals"]["southwest"]
    assert sw["peak_month"] == "Mar" and sw["trough_month"] == "Dec"
    assert sw["peak_ratio"] == pytest.approx(1.38, abs=0.03)
    assert sw["trough_ratio"] == pytest.approx(0.70, abs=0.03)
    assert len(sw["areas"]) == 9 and "tucson" in sw["areas"]
    assert set(s["subtotals"]) == {"southwest", "northern", "coastal"}
    assert sum(v["total"] for v in s["subtotals"].values()) == s["total"]
    lines = head_lines(out / "report.html")
    assert any(line.startswith("By border: southwest 14,920,235") for line in lines)
    assert any(line.startswith("Southwest border: peak in Mar") for line in lines)


def test_usbp_reports_the_fy2019_rise_in_rio_grande_valley(fiscal):
    out, s = fiscal
    rgv = {c["label"]: c for c in s["changes"]["rio_grande_valley"]}
    assert rgv["FY2019"]["ratio"] == pytest.approx(28261.25 / 13521.83, rel=1e-3)
    assert rgv["FY2020"]["ratio"] < 0.3
    season = json.loads((out / "seasonality.json").read_text())
    trend = season["rio_grande_valley"]["trend"]
    # the last year's actual level, never a line extrapolated to 145 a month
    assert trend["last_per_month"] == pytest.approx(7517.2, abs=0.1)
    assert trend["expected_last_per_month"] > 1000
    lines = head_lines(out / "report.html")
    assert any("rio_grande_valley FY2019 ×2.09 (13,522 → 28,261 a month)" in x for x in lines)


# -- partial years, inactive areas ---------------------------------------------------------
def test_calendar_years_flag_the_partial_first_and_last_years(calendar_years):
    out, s = calendar_years
    assert s["partial_years"] == {"1999": 3, "2020": 9}
    assert s["busiest_by_year"]["1999"]["partial"] is True
    assert s["busiest_first_whole_year"]["year"] == "2000"
    assert s["busiest_last_whole_year"]["year"] == "2019"
    lines = head_lines(out / "report.html")
    assert any(x.startswith("Partial years") and "1999 (3 of 12 months)" in x for x in lines)
    assert not any("in 1999" in x for x in lines)


def test_fiscal_and_calendar_years_give_different_profiles(fiscal, calendar_years):
    _, f = fiscal
    _, c = calendar_years
    changed = [g for g in f["peaks"] if (f["peaks"][g], f["troughs"][g]) != (
        c["peaks"][g], c["troughs"][g])]  # fmt: skip
    assert len(changed) >= 3, changed


def test_a_sector_at_zero_since_fy2006_gets_no_peak_month(fiscal):
    out, s = fiscal
    assert s["peaks"]["livermore"] is None and s["troughs"]["livermore"] is None
    assert s["no_peak"]["livermore"] == "zero since FY2006"
    season = json.loads((out / "seasonality.json").read_text())
    assert season["livermore"]["inactive_since"] == "FY2006"
    assert season["livermore"]["profile_years"][-1] == "FY2005"


def test_an_all_zero_series_has_no_peak_and_no_trend_statement():
    idx = pd.date_range("2000-01-01", "2009-12-01", freq="MS")
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(
        {"quiet": np.zeros(len(idx)), "busy": rng.poisson(500 * (1 + 0.5 * (idx.month == 3)))},
        index=idx,
    ).astype(float)
    out = group_seasonality(wide, YearBasis(1, "test"))
    assert out["quiet"]["peak_month"] is None and out["quiet"]["reason"] == "nothing counted"
    assert out["quiet"]["changes"] == []
    assert out["busy"]["peak_month"] == "Mar"


def test_a_flat_noisy_series_gets_no_peak_month():
    idx = pd.date_range("2000-01-01", "2009-12-01", freq="MS")
    wide = pd.DataFrame(
        {"flat": np.random.default_rng(2).poisson(300, len(idx))}, index=idx
    ).astype(float)
    out = group_seasonality(wide, YearBasis(1, "test"))["flat"]
    assert out["peak_month"] is None and "Friedman" in out["reason"]


# -- the basis of the years ----------------------------------------------------------------
def test_year_basis_from_a_fiscal_year_column_the_span_or_calendar():
    t = pd.Series(pd.to_datetime(["1999-10-01", "2000-01-01", "2000-09-01", "2000-10-01"]))
    assert start_month_from_column(t, pd.Series([2000, 2000, 2000, 2001])) == 10
    assert start_month_from_column(t, pd.Series([1999, 2000, 2000, 2000])) == 1
    assert start_month_from_column(t, pd.Series([2000, 2001, 2000, 2001])) is None
    oct_to_sep = pd.date_range("1999-10-01", "2002-09-01", freq="MS")
    assert year_basis(oct_to_sep, column=("fy", 10)) == YearBasis(10, "from column 'fy'")
    assert year_basis(oct_to_sep, given=1).start_month == 1
    spanned = year_basis(oct_to_sep)
    assert spanned.start_month == 10 and "--year-start 1" in spanned.source
    jan = year_basis(pd.date_range("2000-01-01", "2002-06-01", freq="MS"))
    assert jan.start_month == 1 and "--year-start 10" in jan.describe()
    with pytest.raises(ValueError, match="expected 1..12"):
        year_basis(oct_to_sep, given=13)


def test_busiest_year_basis_cannot_differ_from_the_years():
    counts = pd.DataFrame(
        {
            "time": pd.date_range("2000-01-01", periods=36, freq="MS"),
            "group": "a",
            "value": 1.0,
        }
    )
    with pytest.raises(ValueError, match="busiest_year_start_month"):
        analyze_counts_table(counts, year_start_month=1, busiest_year_start_month=10)


# -- readable numbers, the map -------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5020488.0, "5,020,488"),
        (np.int64(15232636), "15,232,636"),
        (0.7096, "0.71"),
        (1.3725, "1.37"),
        (-8.85, "-8.85"),
        (float("nan"), "–"),
        (None, "–"),
        (True, "yes"),
        ("<b>x</b>", "<b>x</b>"),
    ],
    ids=["big-float", "int64", "ratio", "ratio2", "negative", "nan", "none", "bool", "text"],
)
def test_table_cells_read_as_numbers(value, text):
    assert table_cell(value) == text


def test_tables_print_no_scientific_notation_and_escape_text(fiscal):
    out, _ = fiscal
    page = out.joinpath("report.html").read_text(encoding="utf-8")
    tables = page[page.index("<h2>Areas</h2>") :]
    assert not re.search(r"\d\.\d+e[+-]\d", tables)
    assert "5,020,488" in tables
    cell = html_table(pd.DataFrame({"a": ["<script>x</script>"]}))
    assert "<script>" not in cell and "&lt;script&gt;" in cell


def test_counts_map_draws_the_sectors(fiscal):
    out, _ = fiscal
    page = out.joinpath("report.html").read_text(encoding="utf-8")
    assert page.count("L.circleMarker(") == 21
    lines = head_lines(out / "report.html")
    assert any("headquarters town" in x for x in lines)


def test_counts_map_says_when_no_place_is_known(tmp_path):
    idx = pd.date_range("2000-01-01", "2004-12-01", freq="MS")
    table = pd.DataFrame({"date": idx.repeat(2), "area": ["north", "south"] * len(idx)})
    table["n"] = 100
    table.to_csv(tmp_path / "t.csv", index=False)
    analyze_counts(tmp_path / "t.csv", "date", "area", "n", tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "L.circleMarker(" not in page
    assert any("no place is known" in x for x in head_lines(tmp_path / "out" / "report.html"))


def test_cli_year_start_sets_the_years(usbp, tmp_path, capsys):
    from vigil.cli import main

    args = ["analyze", "counts", str(usbp), "--time", "date", "--group", "sector"]
    args += ["--value", "apprehensions"]
    assert main([*args, "--out", str(tmp_path / "cal"), "--year-start", "1"]) == 0
    s = json.loads((tmp_path / "cal" / "summary.json").read_text())
    assert s["year_start_month"] == 1 and s["partial_years"] == {"1999": 3, "2020": 9}
    assert main([*args, "--out", str(tmp_path / "fy"), "--year-start", "10"]) == 0
    s = json.loads((tmp_path / "fy" / "summary.json").read_text())
    assert s["year_start_month"] == 10 and s["years"].endswith("(as asked)")
    assert "FY2019" in s["busiest_by_year"]["2019"]["label"]
