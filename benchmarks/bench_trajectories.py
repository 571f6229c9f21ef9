"""``vigil track`` against Stone Soup's GNN on real pedestrian trajectories (issue 20).

The protocol is :mod:`vigil.sim.eval_trajectories`'s: the ETH/UCY files in
``../shared/data/trajectories``, detections with Pd 0.9, 0.15 m noise and ``sigma`` per row,
3 clutter points per scan, a scan every 0.4 s, motmetrics at a 1.0 m gate. Vigil runs as
``vigil track`` does (:func:`vigil.tracks.csvfile.run_track` on a detections CSV, its
output CSV read back); Stone Soup's GNN runs with constant velocity q = 0.5, the same sigma,
3-point initiation and deletion after 5 missed scans.

Usage: ``python -m benchmarks trajectories`` or ``python -m benchmarks.bench_trajectories
[--config FILE] [--seed N] [--no-stonesoup]`` (``--config``: a ``vigil track --config`` TOML
file, ``[tracker]`` table). Prints one table per file and the pooled one.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from vigil.sim.eval_trajectories import (
    Output,
    Scan,
    Score,
    data_files,
    evaluate,
    read_tracks,
    run_stonesoup_gnn,
    write_detections,
)
from vigil.tracks.config import TrackerConfig
from vigil.tracks.csvfile import run_track

#: ``vigil track`` settings a user would pick for 0.4 s scans of walkers (see BENCHMARKS.md).
SETTINGS_0_4_S = {}


def vigil_track(config: TrackerConfig | None = None, report_max_sigma_m: float | None = None):
    """A tracker run: the scans written as a CSV and tracked by ``vigil track``'s code path
    (``vigil track detections.csv --out tracks.csv`` with these settings)."""

    def run(scans: Sequence[Scan]) -> Output:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "detections.csv", Path(tmp) / "tracks.csv"
            write_detections(scans, src)
            run_track(src, dst, config=config, report_max_sigma_m=report_max_sigma_m)
            return read_tracks(dst, scans)

    return run


def table(result: dict[str, dict[str, Score]]) -> str:
    """One line per tracker per file (and pooled): MOTA, IDF1, switches, FP, FN."""
    lines = [f"{'file':24} {'tracker':28} {'MOTA':>6} {'IDF1':>6} {'IDsw':>5} {'FP':>6} {'FN':>6}"]
    files = next(iter(result.values())).keys()
    for f in files:
        for name, per in result.items():
            s = per[f]
            lines.append(
                f"{f:24} {name:28} {s.mota:6.3f} {s.idf1:6.3f} {s.switches:5d} {s.fp:6d} {s.fn:6d}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict[str, Score]]:
    """Run and print the comparison; returns the scores (empty when the data is absent)."""
    parser = argparse.ArgumentParser(prog="bench_trajectories", description=__doc__)
    parser.add_argument("--config", type=Path, help="vigil track --config TOML file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-stonesoup", action="store_true")
    args = parser.parse_args(argv)
    files, why = data_files()
    if why:
        print(f"skipped: {why}")
        return {}
    trackers = {"vigil track (defaults)": vigil_track()}
    if args.config:
        from vigil.cli.track import load_track_config

        trackers[f"vigil track --config {args.config.name}"] = vigil_track(
            load_track_config(args.config)
        )
    if not args.no_stonesoup:
        trackers["Stone Soup GNN"] = run_stonesoup_gnn
    result = evaluate(trackers, files, args.seed)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
