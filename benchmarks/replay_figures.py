"""The replay benchmark's figures: taken from a run's summary, compared, pooled and printed.

A live run and a replay report the same :data:`FIGURES`; ``score`` pools several recordings'
live figures (the halves of a day) and checks the acceptance targets of issues 5 and 7.
"""

from __future__ import annotations

import json
import math

from benchmarks.replay_recording import ReplayMeta

#: The figures a live run and a replay both report, in the order they are printed.
FIGURES = (
    "true_northbound_person_crossings",
    "inside_coverage",
    "alerted",
    "alert_recall",
    "crossing_alerts",
    "false_crossing_alerts",
    "false_alerts_per_10km_day",
    "id_switches_per_crossing_group",
    "id_switches",
    "crossing_groups_tracked",
    "animal_classified_as_animal",
    "animal_track_seconds",
    "crossings_detected",
    "alert_kinds",
    "stitched",
)


def figures(summary: dict, stitched: int) -> dict:
    """The :data:`FIGURES` of a ``Pipeline.summary`` and the fusion's count of stitched tracks."""
    a = summary["alerts"]
    return {
        "true_northbound_person_crossings": a["true_northbound_person_crossings"],
        "inside_coverage": a["inside_coverage"],
        "alerted": a["alerted"],
        "alert_recall": a["alert_recall"],
        "crossing_alerts": a["crossing_alerts"],
        "false_crossing_alerts": a["false_crossing_alerts"],
        "false_alerts_per_10km_day": a["false_alerts_per_10km_day"],
        "id_switches_per_crossing_group": summary["id_switches_per_crossing_group"],
        "id_switches": summary["id_switches"],
        "crossing_groups_tracked": summary["crossing_groups_tracked"],
        "animal_classified_as_animal": summary["animal_classified_as_animal"],
        "animal_track_seconds": summary["animal_track_seconds"],
        "crossings_detected": summary["crossings"]["detected"],
        "alert_kinds": dict(sorted(summary["alert_kinds"].items())),
        "stitched": int(stitched),
    }


def differences(live: dict, replayed: dict) -> list[str]:
    """The :data:`FIGURES` that differ between two results (NaN equals NaN), by name."""

    def same(a, b) -> bool:
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b

    return [k for k in FIGURES if not same(live.get(k), replayed.get(k))]


def pooled(recordings: list[ReplayMeta]) -> dict:
    """The live figures of several recordings of one site (the halves of a day) as one run's.

    Recall is alerted over inside coverage, switches are summed over the groups, animals
    are weighted by animal track-seconds, false alerts per 10 km per day by duration, and
    the crossing-alert p99 is the largest of the runs' (milliseconds). The keys are those
    :func:`benchmarks.bench_demo.verdicts` reads, with ``hours`` and the sums behind them.
    """
    if not recordings:
        raise ValueError("pooled: no recordings")
    lives = [r.live for r in recordings]
    hours = sum(r.duration_s for r in recordings) / 3600.0
    inside = sum(v["inside_coverage"] for v in lives)
    alerted = sum(v["alerted"] for v in lives)
    groups = sum(v["crossing_groups_tracked"] for v in lives)
    switches = sum(v["id_switches"] for v in lives)
    animal_s = sum(v["animal_track_seconds"] for v in lives)
    shares = [
        (v["animal_classified_as_animal"], v["animal_track_seconds"])
        for v in lives
        if v["animal_track_seconds"]
    ]
    p99s = [r.summary["latency_ms"]["crossing_p99"] for r in recordings]
    p99s = [p for p in p99s if p is not None]
    return {
        "hours": hours,
        "inside_coverage": inside,
        "alerted": alerted,
        "alert_recall": alerted / inside if inside else math.nan,
        "false_crossing_alerts": sum(v["false_crossing_alerts"] for v in lives),
        "false_alerts_per_10km_day": sum(
            r.live["false_alerts_per_10km_day"] * r.duration_s for r in recordings
        )
        / (hours * 3600.0),
        "crossing_alert_latency_p99_ms": max(p99s) if p99s else None,
        "id_switches": switches,
        "crossing_groups_tracked": groups,
        "id_switches_per_crossing_group": switches / groups if groups else math.nan,
        "animal_track_seconds": animal_s,
        "animal_classified_as_animal": (
            sum(a * n for a, n in shares) / animal_s if animal_s else math.nan
        ),
    }


def show(live: dict, replayed: dict) -> None:
    """Print the live and the replayed figures side by side; ``*`` marks a difference."""
    keys = (*FIGURES, "wall_s")
    width = max(len(k) for k in keys)
    col = max(12, *(len(shown(r.get(k))) for r in (live, replayed) for k in keys))
    differ = differences(live, replayed)
    print(f"{'figure':<{width}}  {'live':>{col}}  {'replay':>{col}}")
    for k in keys:
        mark = "  *" if k in differ else ""
        print(f"{k:<{width}}  {shown(live.get(k)):>{col}}  {shown(replayed.get(k)):>{col}}{mark}")


def shown(v) -> str:
    """One figure as printed: floats to three places, the rest as JSON."""
    return f"{v:.3f}" if isinstance(v, float) else json.dumps(v)


def line(r: dict) -> str:
    """One line of a result, in the field's words."""
    return (
        f"recall {r['alerted']}/{r['inside_coverage']}, crossing alerts "
        f"{r['crossing_alerts']}, false {r['false_crossing_alerts']} "
        f"({r['false_alerts_per_10km_day']:.2f} per 10 km/day), ID switches "
        f"{r['id_switches_per_crossing_group']:.2f} ({r['id_switches']} over "
        f"{r['crossing_groups_tracked']} groups), animals as animal "
        f"{r['animal_classified_as_animal']:.3f} ({r['animal_track_seconds']} s), stitched "
        f"{r['stitched']}"
    )


def score(recordings: list[ReplayMeta], names: list[str]) -> dict:
    """Print each recording's line, the pooled figures and the targets' verdicts; exit with
    status 1 when a target is missed."""
    from benchmarks.bench_demo import verdicts

    for name, rec in zip(names, recordings, strict=True):
        print(f"{name} ({rec.code}, seed {rec.seed}): {line(rec.live)}")
    f = pooled(recordings)
    width = max(map(len, f))
    for k, v in f.items():
        print(f"{k:<{width}}  {shown(v)}")
    missed = 0
    for what, value, ok, target in verdicts(f):
        print(f"{what}: {value} ({'meets' if ok else 'MISSES'} {target})")
        missed += not ok
    if missed:
        raise SystemExit(1)
    return f
