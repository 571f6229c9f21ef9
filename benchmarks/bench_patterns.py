"""Crossings per segment and hour over 10 million crossings: in memory and on Dask.

The anchor is a plain numpy count (``np.unique`` over a combined segment-hour key); the
in-memory path is :func:`vigil.geo.patterns.segment_period_counts` on pandas; the Dask path is the
same function on partitioned Parquet read lazily by Dask's threaded scheduler (reading the
parts from disk is part of its time). All three must give the same table.

Also: crossing detection throughput (points a second) against the cost of the border's
signed distance alone, which the detector needs for every sample.

Usage: ``python -m benchmarks patterns [--crossings N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.geo.border import Border
from vigil.geo.crossings import detect_crossings
from vigil.geo.frames import LocalFrame
from vigil.geo.patterns.aggregate import segment_period_counts
from vigil.geo.patterns.synthetic import corridor_rates, night_schedule, simulate_crossings


def _border() -> Border:
    return Border(
        "tucson", LocalFrame(31.33, -110.94), start=(31.333, -111.15), end=(31.333, -110.73)
    )


def _numpy_anchor(table: pd.DataFrame) -> pd.DataFrame:
    codes, ids = pd.factorize(table["segment_id"].to_numpy(), sort=True)
    hour = (np.floor(table["time"].to_numpy() / 3600.0) * 3600).astype(np.int64)
    h0 = hour.min()
    span = (hour.max() - h0) // 3600 + 1
    key = codes.astype(np.int64) * span + (hour - h0) // 3600
    uniq, counts = np.unique(key, return_counts=True)
    seg, h = np.divmod(uniq, span)
    return pd.DataFrame(
        {
            "segment_id": np.asarray(ids, dtype=object)[seg].astype(str),
            "period": h * 3600 + h0,
            "count": counts.astype(np.int64),
        }
    )


def _time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its table and return the medians (seconds) and ratios."""
    ap = argparse.ArgumentParser(prog="bench_patterns")
    ap.add_argument("--crossings", type=float, default=10e6, help="about how many crossings")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=16)
    args = ap.parse_args(argv)

    import dask
    import dask.dataframe as dd

    border = _border()
    n_seg = len(border.segments)
    # One year of crossings, the rates scaled to give about the number asked for.
    days = 365
    rates = corridor_rates(n_seg, [(25, 40.0, 1.5), (8, 20.0, 2.0)], background=5.0)
    rates *= args.crossings / (rates.sum() * days)
    t0 = time.perf_counter()
    table, _ = simulate_crossings(
        border, days=days, rates=rates, hourly=night_schedule(2), timezone="America/Phoenix",
        positions=False, seed=0,
    )  # fmt: skip
    table = table[["time", "segment_id"]]
    t_sim = time.perf_counter() - t0
    print(f"{len(table):,} crossings over {days} days, {n_seg} segments (drawn in {t_sim:.1f} s)")

    anchor_s, anchor = _time(lambda: _numpy_anchor(table), args.repeats)
    memory_s, memory = _time(lambda: segment_period_counts(table), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        parts = Path(tmp) / "crossings"
        dd.from_pandas(table, npartitions=args.partitions).to_parquet(str(parts))
        with dask.config.set(scheduler="threads"):
            dask_s, on_dask = _time(
                lambda: segment_period_counts(dd.read_parquet(str(parts))), args.repeats
            )
    same = anchor.equals(memory) and memory.equals(on_dask)

    # Detection throughput: walkers across the line, 5 s samples.
    rng = np.random.default_rng(1)
    n_tracks, n_pts = 2000, 100
    c = rng.uniform(200.0, border.length_m - 200.0, n_tracks)
    p = [border.line.interpolate(v) for v in c]
    x = np.concatenate([np.full(n_pts, q.x) + rng.normal(0, 2, n_pts) for q in p])
    y = np.concatenate([q.y + np.linspace(-300.0, 300.0, n_pts) for q in p])
    tid = np.repeat(np.arange(n_tracks), n_pts)
    t = np.tile(np.arange(n_pts) * 5.0, n_tracks)
    detect_crossings(tid[:200], t[:200], x[:200], y[:200], border)  # compile / load the kernel
    sd_s, _ = _time(lambda: border.signed_distance(x, y), args.repeats)
    det_s, ev = _time(lambda: detect_crossings(tid, t, x, y, border), args.repeats)

    rows = [
        ("numpy unique (anchor)", anchor_s, 1.0),
        ("pandas, in memory", memory_s, memory_s / anchor_s),
        (f"dask threads, {args.partitions} parquet parts", dask_s, dask_s / anchor_s),
    ]
    print(f"\nCrossings per segment and hour, {len(table):,} rows, {os.cpu_count()} CPUs")
    print(f"{'path':<36}{'median s':>10}{'x anchor':>10}{'M rows/s':>10}")
    for name, s, r in rows:
        print(f"{name:<36}{s:>10.2f}{r:>10.2f}{len(table) / s / 1e6:>10.1f}")
    print(f"identical tables: {same} ({len(memory):,} segment-hours)")
    print(f"\nCrossing detection, {len(t):,} points in {n_tracks} tracks")
    print(f"{'border signed distance alone':<36}{sd_s:>10.2f}{1.0:>10.2f}")
    print(f"{'detect_crossings (all of it)':<36}{det_s:>10.2f}{det_s / sd_s:>10.2f}")
    print(f"{len(t) / det_s:,.0f} points/s; {len(ev.crossings)} crossings found")
    return {
        "rows": len(table),
        "anchor_s": anchor_s,
        "memory_s": memory_s,
        "dask_s": dask_s,
        "memory_vs_anchor": memory_s / anchor_s,
        "dask_vs_anchor": dask_s / anchor_s,
        "identical": same,
        "detect_points_per_s": len(t) / det_s,
        "detect_vs_signed_distance": det_s / sd_s,
    }


if __name__ == "__main__":
    main()
