"""End-to-end quality of `vigil demo` against the simulator's truth (issues 5 and 7).

A short night run at a fixed seed, with crossings and animals made frequent so that a few
minutes hold enough of both, on the two busiest towers (t03, t05) to keep the test quick;
the figures come from the run's ``summary.json``. The 24-hour (and multi-hour) figures of
the whole deployment are in BENCHMARKS.md, "End to end (vigil demo)".

Acceptance lines the chain does not meet yet are marked ``xfail(strict=True)`` with the
measured value and the cause in the reason: they turn into failures the day they pass, so
that the mark comes off.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vigil.config import load_default
from vigil.demo import DEMO_START_UTC, run_demo
from vigil.sim import SimSettings

SEED = 5  # the class table was calibrated at seeds 1, 7 and 11
MINUTES = 5.0


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("quality")
    sim = SimSettings(
        start_time=DEMO_START_UTC,
        towers=("t03", "t05"),
        frame_rate_hz=2.0,
        crossing_rate_scale=120.0,
        animals_per_km=3.0,
    )
    run_demo(load_default(), out, hours=MINUTES / 60.0, seed=SEED, sim=sim, progress=False)
    return json.loads((Path(out) / "summary.json").read_text())


def test_run_sees_crossings_and_raises_crossing_alerts(summary) -> None:
    a = summary["alerts"]
    assert a["inside_coverage"] >= 3, a
    assert summary["crossings"]["detected_northbound"] >= 1
    assert a["crossing_alerts"] >= 1
    assert a["alerted"] >= 1
    # nuisance alerts stay few: no track_lost for tracks that never crossed
    kinds = summary["alert_kinds"]
    assert kinds.get("track_lost", 0) <= a["crossing_alerts"]


def test_crossing_alert_recall(summary) -> None:
    a = summary["alerts"]
    assert a["alert_recall"] >= 0.98, a


def test_false_crossing_alerts(summary) -> None:
    # <= 1 per 10 km of border per day: in a few minutes, not one
    a = summary["alerts"]
    assert a["false_alerts_per_10km_day"] <= 1.0, a


@pytest.mark.xfail(
    strict=True,
    reason="measured: 0.33 switches per crossing group at seed 5 (2 over 6 groups): at 120x "
    "the crossing rate a corridor carries a group every half minute (0 over 18 groups on the "
    "live simulated day at real rates; 2 over 5 on a replayed 4 h evening, where two "
    "groups on one sight line 2.5 km out are one blob to a tower, BENCHMARKS.md)",
)
def test_id_switches_per_crossing_group(summary) -> None:
    ratio = summary["id_switches_per_crossing_group"]
    assert summary["crossing_groups_tracked"] >= 3
    assert ratio <= 0.1, (ratio, summary["id_switches"])


@pytest.mark.xfail(
    strict=True,
    reason="measured: 0.899 at seed 5 (80 of 792 animal-seconds missed; 0.905 over the "
    "live simulated day at real rates): beyond ~1.75 km a tower's guesses for animals "
    "and people are nearly alike, and cattle walking at 0.7-1 m/s keep a person's pace",
)
def test_animals_classified_as_animals(summary) -> None:
    share = summary["animal_classified_as_animal"]
    assert summary["animal_track_seconds"] >= 100
    assert share is not None and not math.isnan(share)
    assert share >= 0.9, share


def test_alert_processing_latency_is_recorded(summary) -> None:
    lat = summary["latency_ms"]
    assert lat["crossing_alerts"] >= 1
    assert lat["crossing_p99"] is not None and lat["crossing_p99"] > 0.0
