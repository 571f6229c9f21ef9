"""The crossing report says nothing a small sample cannot support (vigil.geo.patterns.evidence):
the demo's 4 crossings give no daily rate, busiest weekday or hour, and no hot segment."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from vigil.config import load_default
from vigil.geo.patterns import evidence
from vigil.geo.patterns.analysis import analyze_crossing_table
from vigil.geo.patterns.io import normalise_crossings
from vigil.maps.report import analyze_crossings

# what `vigil demo` (default settings, seed 1) detected: 4 crossings in 6 simulated minutes
DEMO_CROSSINGS = """crossing_id,track_id,time,segment_id,direction,lat,lon
tucson-X000001,T34,1780304483.585742,tucson-0028,northbound,31.329490575332944,-111.02795930249061
tucson-X000002,T7,1780304703.2862573,tucson-0014,northbound,31.327237907617874,-110.87975852782712
tucson-X000003,T31,1780304715.0075827,tucson-0028,northbound,31.32960616115768,-111.02904744663658
tucson-X000004,T68,1780304734.6681173,tucson-0021,northbound,31.32718645244185,-110.95911072360327
"""


@pytest.fixture(scope="module")
def deployment():
    return load_default()


def head_lines(report) -> list[str]:
    text = report.read_text(encoding="utf-8")
    head = text[text.index('class="report-head"') :]
    head = head[: head.index("</ul>")]
    return [html.unescape(li) for li in re.findall(r"<li>(.*?)</li>", head)]


def test_four_demo_crossings_state_no_rate_weekday_hour_or_hotspot(deployment, tmp_path):
    (tmp_path / "crossings.csv").write_text(DEMO_CROSSINGS, encoding="utf-8")
    s = analyze_crossings(
        tmp_path / "crossings.csv",
        tmp_path / "out",
        border=deployment.site.border(),
        timezone=deployment.site.sector.timezone,
    )
    assert s["crossings"] == 4
    assert s["busiest_segments"] == []
    assert s["peak_weekday"] is None and s["peak_hour"] is None
    assert s["hot_segments"] == [] and s["top_hotspot"] is None
    withheld = {w["statement"] for w in s["withheld"]}
    assert {"crossings per day and the busiest segment", "the busiest day of the week"} <= withheld
    assert "Gi* hot and cold segments" in withheld
    lines = head_lines(tmp_path / "out" / "report.html")
    text = " ".join(lines)
    assert "a day" not in text and "busiest day of the week is" not in text
    assert "hot:" not in text and "peak at" not in text
    assert "Too little data to state (4 crossings over 0.1 hours)" in text
    assert lines[0].startswith("4 crossings from") and "(1 day)" in lines[0]


def test_no_segment_without_crossings_is_called_hot(deployment):
    # enough crossings for Gi*, all on two segments two apart: the one between is next to a
    # hotspot but has none of its own
    border = deployment.site.border()
    ids = border.segment_ids
    rng = np.random.default_rng(3)
    n = 200
    t0 = 1.78e9
    table = pd.DataFrame(
        {
            "time": t0 + np.sort(rng.uniform(0, 30 * 86400.0, n)),
            "segment_id": rng.choice([ids[10], ids[12]], n),
        }
    )
    a = analyze_crossing_table(
        normalise_crossings(table), border=border, timezone="America/Phoenix"
    )
    seg = a.segments.set_index("segment_id")
    assert seg.loc[ids[11], "crossings"] == 0
    assert seg.loc[ids[11], "class"] != "hot"
    assert (seg.loc[seg["class"] == "hot", "crossings"] > 0).all()
    assert set(a.summary["hot_segments"]) <= {ids[10], ids[12]}
    assert a.summary["hot_segments"]


def test_evidence_minimums_are_documented_in_one_place():
    doc = evidence.__doc__
    names = [n for n in dir(evidence) if n.startswith("MIN_") or n.isupper()]
    assert names
    for name in names:
        assert f"``{name}``" in doc or name == "ALPHA" and "``ALPHA``" in doc, name
    assert evidence.withheld_sentence([]) is None


def test_an_even_weekday_spread_names_no_busiest_weekday(deployment):
    # 8 weeks, the same number of crossings every day at 02:00: plenty of data, no weekday
    border = deployment.site.border()
    days = pd.date_range("2026-01-05", periods=56, freq="D", tz="America/Phoenix")
    times = [(d + pd.Timedelta(hours=2, minutes=m)).timestamp() for d in days for m in (0, 20, 40)]
    table = pd.DataFrame({"time": times, "segment_id": border.segment_ids[5]})
    a = analyze_crossing_table(
        normalise_crossings(table), border=border, timezone="America/Phoenix"
    )
    assert a.summary["peak_weekday"] is None
    assert [f["statement"] for f in a.summary["no_peak"]] == ["day of the week"]
    assert a.summary["peak_hour"] == 2  # 168 crossings all at 02:00 is a real peak
