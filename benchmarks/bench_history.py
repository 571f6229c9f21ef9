"""Crossings per segment and hour over a 10-million-crossing history: in PostgreSQL vs in memory.

The history is loaded into a throwaway PostgreSQL 15 + PostGIS cluster
(:class:`vigil.alerts.pg_local.LocalCluster`) through the store's bulk path
(:meth:`vigil.alerts.store_pg.PgHistoryStore.write_crossings_frame`, binary COPY), then
vacuumed and analysed. Three paths count crossings per segment and UTC hour, interleaved
in each repeat so that the shared machine's load hits all of them alike:

- anchor: plain numpy (``np.unique`` over a combined key, as in ``bench_patterns``);
- in memory: :func:`vigil.geo.patterns.aggregate.segment_period_counts` on the pandas table
  already in memory (the optimistic case: no reading);
- database: :func:`vigil.maps.report_db.segment_period_counts_db` (``GROUP BY segment_id,
  hour`` in PostgreSQL; only the counts cross the wire).

All three must give the same table. With ``--report``, also the report's whole aggregation
(segment x local day, hour, weekday, direction) in the database
(:func:`~vigil.maps.report_db.aggregate_crossings_db`) against
:func:`~vigil.geo.patterns.aggregate.aggregate_crossings` in memory (one repeat, no cells).

Usage: ``python -m benchmarks history [--crossings N] [--repeats R] [--report]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd

from benchmarks.bench_patterns import _border, _numpy_anchor
from vigil.alerts.pg_local import LocalCluster
from vigil.alerts.store_pg import PgHistoryStore
from vigil.geo.patterns.aggregate import aggregate_crossings, segment_period_counts
from vigil.geo.patterns.synthetic import corridor_rates, night_schedule, simulate_crossings
from vigil.maps.report_db import aggregate_crossings_db, segment_period_counts_db

#: Server settings of the benchmark's cluster (a modest database host, not a tuned one).
SETTINGS = {
    "shared_buffers": "1GB",
    "work_mem": "256MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "4GB",
    "max_parallel_workers_per_gather": "2",
}
TZ = "America/Phoenix"


def history(crossings: float, seed: int = 0) -> pd.DataFrame:
    """About ``crossings`` crossings over one year on the Tucson border, as store rows."""
    border = _border()
    n_seg = len(border.segments)
    days = 365
    rates = corridor_rates(n_seg, [(25, 40.0, 1.5), (8, 20.0, 2.0)], background=5.0)
    rates *= crossings / (rates.sum() * days)
    table, _ = simulate_crossings(
        border, days=days, rates=rates, hourly=night_schedule(2), timezone=TZ,
        positions=False, seed=seed,
    )  # fmt: skip
    n = len(table)
    rng = np.random.default_rng(seed + 1)
    mids = [border.segments[i].line.interpolate(0.5, normalized=True) for i in range(n_seg)]
    lat0 = np.array([border.frame.to_wgs84(p.x, p.y)[0] for p in mids])
    lon0 = np.array([border.frame.to_wgs84(p.x, p.y)[1] for p in mids])
    idx = table["segment_index"].to_numpy()
    ids = pd.Series(np.arange(n)).astype(str).to_numpy()
    return pd.DataFrame(
        {
            "crossing_id": ids,
            "track_id": ids,
            "time": table["time"].to_numpy(np.float64),
            "segment_id": table["segment_id"].astype(str).to_numpy(),
            "direction": table["direction"].astype(str).to_numpy(),
            "lat": lat0[idx] + rng.normal(0.0, 1e-4, n),
            "lon": lon0[idx] + rng.normal(0.0, 1e-4, n),
            "confidence": np.ones(n),
        }
    )


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its table and return the medians (seconds) and ratios."""
    ap = argparse.ArgumentParser(prog="bench_history")
    ap.add_argument("--crossings", type=float, default=10e6, help="about how many crossings")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--report", action="store_true", help="also the report's aggregation")
    args = ap.parse_args(argv)

    t_sim, rows = _timed(lambda: history(args.crossings))
    n = len(rows)
    print(f"{n:,} crossings, one year, 40 segments (drawn in {t_sim:.1f} s)", flush=True)
    table = rows[["time", "segment_id"]]
    with LocalCluster(SETTINGS) as pg, PgHistoryStore(pg.dsn) as store:
        t_load, _ = _timed(lambda: store.write_crossings_frame(rows))
        conn = store.connection
        conn.autocommit = True
        t_vac, _ = _timed(lambda: conn.execute("VACUUM ANALYZE vigil.crossing"))
        print(f"loaded by binary COPY in {t_load:.1f} s ({n / t_load:,.0f} rows/s, indexes "
              f"included), vacuum analyze {t_vac:.1f} s", flush=True)  # fmt: skip
        times: dict[str, list[float]] = {"anchor": [], "memory": [], "database": []}
        outs: dict[str, pd.DataFrame] = {}
        for _ in range(args.repeats):
            for name, fn in (
                ("anchor", lambda: _numpy_anchor(table)),
                ("memory", lambda: segment_period_counts(table)),
                ("database", lambda: segment_period_counts_db(conn)),
            ):
                s, outs[name] = _timed(fn)
                times[name].append(s)
                print(f"  {name}: {s:.2f} s", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        same = outs["anchor"].equals(outs["memory"]) and outs["memory"].equals(outs["database"])
        report = {}
        if args.report:
            report["memory"], a = _timed(
                lambda: aggregate_crossings(rows, timezone=TZ, h3_resolution=None)
            )
            report["database"], b = _timed(
                lambda: aggregate_crossings_db(conn, timezone=TZ, h3_resolution=None)
            )
            report["same"] = all(a.tables()[k].equals(b.tables()[k]) for k in a.tables()) and (
                a.n_crossings,
                a.first_time,
                a.last_time,
            ) == (b.n_crossings, b.first_time, b.last_time)

    anchor = med["anchor"]
    print(f"\nCrossings per segment and UTC hour, {n:,} rows, {os.cpu_count()} CPUs, medians "
          f"of {args.repeats}")  # fmt: skip
    print(f"{'path':<44}{'median s':>10}{'x anchor':>10}{'x memory':>10}")
    for name, label in (
        ("anchor", "numpy unique (anchor)"),
        ("memory", "pandas, table in memory"),
        ("database", "PostgreSQL GROUP BY segment, hour"),
    ):
        s = med[name]
        print(f"{label:<44}{s:>10.2f}{s / anchor:>10.2f}{s / med['memory']:>10.2f}")
    print(f"identical tables: {same} ({len(outs['memory']):,} segment-hours)")
    if report:
        r = report["database"] / report["memory"]
        print(f"report aggregation (segment x local day/hour/weekday/direction), one run: "
              f"memory {report['memory']:.2f} s, database {report['database']:.2f} s "
              f"({r:.2f}x), identical: {report['same']}")  # fmt: skip
    return {
        "rows": n,
        "load_s": t_load,
        **{f"{k}_s": v for k, v in med.items()},
        "database_vs_memory": med["database"] / med["memory"],
        "memory_vs_anchor": med["memory"] / anchor,
        "identical": same,
        **{f"report_{k}": v for k, v in report.items()},
    }


if __name__ == "__main__":
    main()
