"""Vigil's tracker against Stone Soup on walkers in clutter: time per scan, OSPA, MOTA, IDF1.

Scenario (same data for both trackers): ``N`` walkers on a 10 km x 10 km plane, nearly
constant velocity (0.5 to 2 m/s, acceleration noise 0.05 m^2/s^3), reflected at the edges;
a scan every 1 s with detection probability 0.9 and 5 m noise per axis, plus ``C`` clutter
points uniform over the plane; 300 scans.

Stone Soup (PyPI) runs as its documentation builds a tracker: Kalman predictor and updater
with a constant-velocity model, ``DistanceHypothesiser`` (Mahalanobis, missed distance at the
same chi-square gate), ``GNNWith2DAssignment``, ``MultiMeasurementInitiator`` (3 points,
holding tracks deleted after 2 steps without update) and ``UpdateTimeStepsDeleter`` (6
steps); its association is the kd-tree gated ``DetectionKDTreeGNN2D`` (its fastest here;
``--ss-plain`` for the plain ``GNNWith2DAssignment``). Vigil is set to the same
initiation (:data:`CONFIG`: confirmed at 3 detections with no window, a tentative track
dropped after two missed scans); its default 3-of-4 window also drops a track with hits at
scans 0, 2 and 4, which Stone Soup's initiator confirms.
Both get the same process noise, measurement noise and velocity prior. Each Stone Soup
configuration runs **full length** (all 300 scans) at every size that finishes within the
budget (``--budget-s`` seconds per run, stopped there otherwise and larger sizes with the same
clutter skipped): fewer walkers rather than fewer scans. The ratio is Stone Soup's fastest
finished configuration's median per scan over Vigil's median over the same full run; the
smallest ratio over the sizes is the headline. Accuracy is compared over the full runs.
``--vigil track-defaults``: Vigil's side runs with ``vigil track``'s settings instead
(:meth:`TrackerConfig.for_track`: the interacting multiple model, evidence-based track
management), Stone Soup's still with :data:`CONFIG`'s.

``--process``: the whole ``vigil track`` process (a subprocess: start-up, imports, CSV read,
tracking, CSV write) per scan on the 1,000-walker, 100-clutter scenario written as a
``t,x,y,sigma`` CSV, its start-up alone (a one-row file) and ``run_track`` in a warm process.

Accuracy: OSPA (c = 100 m, p = 1) averaged over scans; MOTA and IDF1 from motmetrics with a
20 m match threshold. Tracks scored are the confirmed ones (coasting included) at each scan.

Run: ``python -m benchmarks tracking`` or ``python -m benchmarks.bench_tracking --help``.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from vigil.tracks.config import TrackerConfig
from vigil.tracks.imm import make_tracker

PLANE_M = 10_000.0
NOISE_M = 5.0
PD = 0.9
TRUE_Q = 0.05
#: (walkers, clutter per scan), smallest first: a size Stone Soup cannot finish within the
#: budget ends that configuration's runs at that clutter.
DEFAULT_CASES: tuple[tuple[int, int], ...] = (
    (20, 10),
    (20, 100),
    (50, 10),
    (50, 100),
    (100, 10),
    (100, 100),
    (200, 10),
    (200, 100),
    (500, 10),
    (500, 100),
    (1000, 10),
    (1000, 100),
)
#: Stone Soup's configurations: its kd-tree gated GNN (the fastest) and its plain GNN.
SS_CONFIGS = ("kd-tree GNN", "plain GNN")


@dataclass(frozen=True)
class Scenario:
    """Truth positions ``(scans, walkers, 2)`` and per-scan detection arrays ``(m, 2)``."""

    truth: NDArray[np.float64]
    detections: list[NDArray[np.float64]]
    clutter: int


def make_scenario(walkers: int, clutter: int, scans: int = 300, seed: int = 0) -> Scenario:
    """Walkers, detections and clutter as in the module docstring (metres, 1 s scans)."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0.0, PLANE_M, (walkers, 2))
    heading = rng.uniform(0.0, 2.0 * math.pi, walkers)
    speed = rng.uniform(0.5, 2.0, walkers)
    vel = np.c_[speed * np.cos(heading), speed * np.sin(heading)]
    truth = np.empty((scans, walkers, 2))
    dets = []
    for k in range(scans):
        if k:
            acc = rng.normal(0.0, math.sqrt(TRUE_Q), vel.shape)
            pos = pos + vel + 0.5 * acc
            vel = vel + acc
            for axis in range(2):
                low, high = pos[:, axis] < 0, pos[:, axis] > PLANE_M
                pos[low, axis] = -pos[low, axis]
                pos[high, axis] = 2 * PLANE_M - pos[high, axis]
                vel[low | high, axis] *= -1
        truth[k] = pos
        seen = rng.random(walkers) < PD
        z = pos[seen] + rng.normal(0.0, NOISE_M, (int(seen.sum()), 2))
        z = np.vstack([z, rng.uniform(0.0, PLANE_M, (clutter, 2))])
        dets.append(z[rng.permutation(len(z))])
    return Scenario(truth, dets, clutter)


Output = list[tuple[NDArray[np.int64], NDArray[np.float64]]]


def run_vigil(scn: Scenario, scans: int, config: TrackerConfig) -> tuple[NDArray, Output]:
    """Seconds per scan and (track ids, positions) of confirmed tracks per scan; the
    tracker :func:`vigil.tracks.imm.make_tracker` makes for ``config`` (an interacting
    multiple model when ``config.imm_process_noise > 0``, as ``vigil track``'s defaults)."""
    tracker = make_tracker(config)
    tracker.update(0.0, scn.detections[0][:2])  # compile outside the timed loop
    tracker = make_tracker(config)
    times = np.empty(scans)
    out: Output = []
    for k in range(scans):
        t0 = time.perf_counter()
        table = tracker.update(float(k), scn.detections[k], sigma=NOISE_M)
        times[k] = time.perf_counter() - t0
        shown = table.confirmed()
        out.append((shown.track_id, shown.x[:, :2]))
    return times, out


def run_stonesoup(
    scn: Scenario,
    scans: int,
    config: TrackerConfig,
    tree: bool = False,
    budget_s: float = math.inf,
) -> tuple[NDArray, Output]:
    """The same as :func:`run_vigil` with Stone Soup's components; ``tree``: its kd-tree
    gated GNN (``DetectionKDTreeGNN2D``, its fastest association here), with a search radius
    of ``gate / noise`` times the larger predicted measurement variance, which is at least
    the Mahalanobis gate's extent for every track (variances are at least the noise's).
    Stops once its scans have taken ``budget_s`` seconds: fewer than ``scans`` times then."""
    from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
    from stonesoup.dataassociator.tree import DetectionKDTreeGNN2D
    from stonesoup.deleter.time import UpdateTimeStepsDeleter
    from stonesoup.hypothesiser.distance import DistanceHypothesiser
    from stonesoup.initiator.simple import MultiMeasurementInitiator
    from stonesoup.measures import Mahalanobis
    from stonesoup.models.measurement.linear import LinearGaussian
    from stonesoup.models.transition.linear import (
        CombinedLinearGaussianTransitionModel,
        ConstantVelocity,
    )
    from stonesoup.predictor.kalman import KalmanPredictor
    from stonesoup.tracker.simple import MultiTargetTracker
    from stonesoup.types.detection import Detection
    from stonesoup.types.state import GaussianState
    from stonesoup.updater.kalman import KalmanUpdater

    q = config.process_noise
    transition = CombinedLinearGaussianTransitionModel([ConstantVelocity(q), ConstantVelocity(q)])
    measurement = LinearGaussian(ndim_state=4, mapping=(0, 2), noise_covar=np.eye(2) * NOISE_M**2)
    predictor = KalmanPredictor(transition)
    updater = KalmanUpdater(measurement)
    gate = math.sqrt(-2.0 * math.log(1.0 - config.gate_probability))
    hypothesiser = DistanceHypothesiser(
        predictor, updater, measure=Mahalanobis(), missed_distance=gate
    )
    associator = GNNWith2DAssignment(hypothesiser)
    if tree:
        associator = DetectionKDTreeGNN2D(
            hypothesiser=hypothesiser,
            predictor=predictor,
            updater=updater,
            max_distance_covariance_multiplier=gate / NOISE_M,
        )
    v = config.initial_speed_sigma_mps**2
    prior = GaussianState(np.zeros((4, 1)), np.diag([0.0, v, 0.0, v]))
    initiator = MultiMeasurementInitiator(
        prior_state=prior,
        measurement_model=measurement,
        deleter=UpdateTimeStepsDeleter(time_steps_since_update=SS_HOLD_STEPS),
        data_associator=associator,
        updater=updater,
        min_points=config.confirm_m,
    )
    tracker = MultiTargetTracker(
        initiator=initiator,
        deleter=UpdateTimeStepsDeleter(time_steps_since_update=int(config.max_coast_s) + 1),
        detector=None,
        data_associator=associator,
        updater=updater,
    )
    start = datetime(2024, 1, 1)
    times = np.empty(scans)
    out: Output = []
    ids: dict[str, int] = {}
    began = time.perf_counter()
    for k in range(scans):
        if time.perf_counter() - began > budget_s:
            return times[:k], out
        stamp = start + timedelta(seconds=k)
        batch = {
            Detection(zz.copy().reshape(2, 1), timestamp=stamp, measurement_model=measurement)
            for zz in scn.detections[k]
        }
        t0 = time.perf_counter()
        _, tracks = tracker.update_tracker(stamp, batch)
        times[k] = time.perf_counter() - t0
        tid = np.array([ids.setdefault(tr.id, len(ids)) for tr in tracks], dtype=np.int64)
        pos = np.array([[tr.state_vector[0, 0], tr.state_vector[2, 0]] for tr in tracks])
        out.append((tid, pos.reshape(-1, 2)))
    return times, out


def ospa(truth: NDArray, est: NDArray, c: float = 100.0, p: float = 1.0) -> float:
    """OSPA distance (m) between two point sets, cut-off ``c``, order ``p``."""
    m, n = len(truth), len(est)
    if m == 0 and n == 0:
        return 0.0
    if m == 0 or n == 0:
        return c
    d = np.minimum(np.linalg.norm(truth[:, None, :] - est[None, :, :], axis=2), c) ** p
    r, col = linear_sum_assignment(d)
    return float(((d[r, col].sum() + c**p * abs(m - n)) / max(m, n)) ** (1.0 / p))


def score(scn: Scenario, out: Output, scans: int) -> dict[str, float]:
    """Mean OSPA, MOTA, IDF1 and ID switches over the first ``scans`` scans."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    gt_ids = np.arange(scn.truth.shape[1])
    total = 0.0
    for k in range(scans):
        ids, pos = out[k]
        total += ospa(scn.truth[k], pos)
        dist = mm.distances.norm2squared_matrix(scn.truth[k], pos, max_d2=20.0**2)
        acc.update(gt_ids, ids, dist)
    summary = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches"], name="x")
    return {
        "ospa_m": total / scans,
        "mota": float(summary["mota"].iloc[0]),
        "idf1": float(summary["idf1"].iloc[0]),
        "id_switches": int(summary["num_switches"].iloc[0]),
    }


#: Vigil's settings here: Stone Soup's initiation (3 detections to confirm, dropped after
#: two scans without one: a gap over 1.5 s at one scan a second; the widest M-of-N window).
CONFIG = TrackerConfig(confirm_m=3, confirm_n=31, tentative_max_gap_s=1.5)
#: Stone Soup's holding tracks are deleted after this many steps without an update.
SS_HOLD_STEPS = 2


def process_speed(
    walkers: int = 1000,
    clutter: int = 100,
    scans: int = 300,
    repeats: int = 3,
    config_file: Path | None = None,
):
    """The whole ``vigil track`` process on :func:`make_scenario`'s detections written as a
    ``t,x,y,sigma`` CSV: ms per scan (wall and CPU, medians of ``repeats``), the start-up
    alone (the same command on a one-row file, s) and ``run_track`` in this warm process
    (ms per scan). ``config_file``: a ``vigil track --config`` TOML file for both (default:
    ``vigil track``'s defaults)."""
    import resource
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from vigil.tracks.csvfile import run_track

    config = None
    if config_file is not None:
        from vigil.cli.track import load_track_config

        config = load_track_config(config_file)

    scn = make_scenario(walkers, clutter, scans, seed=walkers * 1000 + clutter)
    with tempfile.TemporaryDirectory() as tmp:
        src, one, dst = Path(tmp) / "d.csv", Path(tmp) / "one.csv", Path(tmp) / "t.csv"
        t = np.concatenate([np.full(len(z), float(k)) for k, z in enumerate(scn.detections)])
        z = np.concatenate(scn.detections)
        body = np.c_[t, z, np.full(len(t), NOISE_M)]
        np.savetxt(src, body, fmt=("%.0f", "%.3f", "%.3f", "%.1f"), delimiter=",",
                   header="t,x,y,sigma", comments="")  # fmt: skip
        np.savetxt(one, body[:1], fmt=("%.0f", "%.3f", "%.3f", "%.1f"), delimiter=",",
                   header="t,x,y,sigma", comments="")  # fmt: skip

        # as an ordinary Python runs: the first run leaves bytecode caches for the next
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

        def whole(path: Path) -> tuple[float, float]:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            cmd = [sys.executable, "-m", "vigil.cli", "track", str(path), "--out", str(dst)]
            cmd += [] if config_file is None else ["--config", str(config_file)]
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            return wall, cpu

        whole(one)  # bytecode, numba's cache and the OS's file cache warm, as for any later run
        runs = [whole(src) for _ in range(repeats)]
        starts = [whole(one) for _ in range(repeats)]
        run_track(src, dst, config=config)  # compile and load once
        inside = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run_track(src, dst, config=config)
            inside.append(time.perf_counter() - t0)
    from vigil.tracks.aot import MODULE, kernels

    return {
        "walkers": walkers,
        "clutter": clutter,
        "scans": scans,
        "kernels": "ahead of time" if kernels().__name__.endswith(MODULE) else "numba JIT",
        "load_average": os.getloadavg()[0],
        "process_ms": float(np.median([w for w, _ in runs])) / scans * 1e3,
        "process_cpu_ms": float(np.median([c for _, c in runs])) / scans * 1e3,
        "startup_s": float(np.median([w for w, _ in starts])),
        "startup_cpu_s": float(np.median([c for _, c in starts])),
        "run_track_ms": float(np.median(inside)) / scans * 1e3,
    }


def _fmt(v: float, spec: str = ".1f") -> str:
    return "-" if v is None or not math.isfinite(v) else format(v, spec)


def main(argv: list[str] | None = None) -> dict:
    """Run the cases, print a table, return the results keyed by ``"{walkers}x{clutter}"``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_tracking")
    parser.add_argument("--scans", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="the two 20-walker cases only")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=600.0,
        help="seconds a Stone Soup run may take; a size it cannot finish is stopped there",
    )
    parser.add_argument("--no-stonesoup", action="store_true")
    parser.add_argument(
        "--cases", help="only these sizes, WALKERSxCLUTTER[,...] (e.g. 20x100,50x10)"
    )
    parser.add_argument(
        "--ss-config", choices=("both", *SS_CONFIGS), default="both", help="Stone Soup's runs"
    )
    parser.add_argument(
        "--process",
        action="store_true",
        help="the whole vigil track process per scan, 1,000 walkers + 100 clutter, instead",
    )
    parser.add_argument(
        "--process-config", type=Path, help="--process: a vigil track --config TOML file"
    )
    parser.add_argument(
        "--vigil",
        choices=("stonesoup-initiation", "track-defaults"),
        default="stonesoup-initiation",
        help=(
            "Vigil's settings in the comparison: CONFIG (one filter, Stone Soup's 3-point "
            "initiation; default) or vigil track's defaults (the interacting multiple model, "
            "evidence-based track management: TrackerConfig.for_track())"
        ),
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    if args.process:
        r = process_speed(scans=args.scans, config_file=args.process_config)
        print(
            f"vigil track, {r['walkers']} walkers + {r['clutter']} clutter, {r['scans']} scans: "
            f"whole process {r['process_ms']:.2f} ms/scan wall ({r['process_cpu_ms']:.2f} CPU), "
            f"start-up alone {r['startup_s']:.3f} s wall ({r['startup_cpu_s']:.3f} CPU), "
            f"run_track in a warm process {r['run_track_ms']:.2f} ms/scan (medians of 3; "
            f"kernels {r['kernels']}; load average {r['load_average']:.1f}; "
            f"target 2 ms/scan: {'met' if r['process_ms'] <= 2.0 else 'NOT met'})"
        )
        return {"process": r}
    from threadpoolctl import threadpool_limits

    # Stone Soup always runs with CONFIG's settings (the anchor does not change with Vigil's)
    config = CONFIG if args.vigil == "stonesoup-initiation" else TrackerConfig.for_track()
    print(f"Vigil's settings: {args.vigil}; Stone Soup's: CONFIG's (q, gate, initiation)")
    cases = DEFAULT_CASES[:2] if args.quick else DEFAULT_CASES
    if args.cases:
        cases = tuple(tuple(int(v) for v in c.split("x")) for c in args.cases.split(","))
    configs = SS_CONFIGS if args.ss_config == "both" else (args.ss_config,)
    results: dict[str, dict] = {}
    print(
        f"{'walkers':>7} {'clutter':>7} {'vigil_ms':>9} {'tree_ms':>9} {'plain_ms':>9} "
        f"{'ratio':>8} | {'ospa v/ss':>13} {'mota v/ss':>13} {'idf1 v/ss':>13} {'idsw v/ss':>9}"
    )
    given_up: set[tuple[str, int]] = set()  # (configuration, clutter) that ran out of budget
    scans = args.scans
    with threadpool_limits(limits=1):
        for walkers, clutter in cases:
            scn = make_scenario(walkers, clutter, scans, seed=walkers * 1000 + clutter)
            v_times, v_out = run_vigil(scn, scans, config)
            v_med = float(np.median(v_times)) * 1e3
            row: dict = {
                "walkers": walkers,
                "clutter": clutter,
                "scans": scans,
                "vigil_median_ms": v_med,
                "vigil_p95_ms": float(np.percentile(v_times, 95)) * 1e3,
                "vigil": score(scn, v_out, scans),
                "ss": {},
            }
            for name in () if args.no_stonesoup else configs:
                if (name, clutter) in given_up:
                    row["ss"][name] = {"finished": False, "skipped": True}
                    continue
                tree = name == "kd-tree GNN"
                s_times, s_out = run_stonesoup(scn, scans, CONFIG, tree, args.budget_s)
                done = len(s_times) == scans
                entry: dict = {"finished": done, "scans_run": len(s_times)}
                if done:
                    entry |= {
                        "median_ms": float(np.median(s_times)) * 1e3,
                        "total_s": float(s_times.sum()),
                        "accuracy": score(scn, s_out, scans),
                    }
                else:
                    given_up.add((name, clutter))
                row["ss"][name] = entry
            finished = {k: e for k, e in row["ss"].items() if e["finished"]}
            if finished:
                fastest = min(finished, key=lambda k: finished[k]["median_ms"])
                row["ss_fastest"] = fastest
                row["ratio"] = finished[fastest]["median_ms"] / v_med
            results[f"{walkers}x{clutter}"] = row
            v = row["vigil"]
            s = finished[row["ss_fastest"]]["accuracy"] if finished else {}
            tree_e, plain_e = (row["ss"].get(k, {}) for k in SS_CONFIGS)
            print(
                f"{walkers:>7} {clutter:>7} {v_med:>9.3f} "
                f"{_fmt(tree_e.get('median_ms', math.nan)):>9} "
                f"{_fmt(plain_e.get('median_ms', math.nan)):>9} "
                f"{_fmt(row.get('ratio', math.nan), '.0f'):>7}x | "
                f"{v['ospa_m']:>6.2f}/{_fmt(s.get('ospa_m', math.nan), '.2f'):<6} "
                f"{v['mota']:>6.3f}/{_fmt(s.get('mota', math.nan), '.3f'):<6} "
                f"{v['idf1']:>6.3f}/{_fmt(s.get('idf1', math.nan), '.3f'):<6} "
                f"{v['id_switches']:>4}/{s.get('id_switches', '-')!s:<4}",
                flush=True,
            )
    ratios = {k: r["ratio"] for k, r in results.items() if "ratio" in r}
    if ratios:
        low = min(ratios, key=ratios.__getitem__)
        ok = "meets" if ratios[low] >= 100.0 else "MISSES"
        print(
            f"smallest ratio to Stone Soup's fastest finished configuration over full "
            f"{scans}-scan runs: {ratios[low]:.0f}x at {low} ({ok} 100x); sizes not finished "
            f"within {args.budget_s:.0f} s: "
            + (", ".join(f"{n} at {c} clutter" for n, c in sorted(given_up)) or "none")
        )
    big = results.get("1000x100")
    if big:
        ok = "meets" if big["vigil_median_ms"] <= 5.0 else "MISSES"
        print(f"1000 walkers, 100 clutter: median {big['vigil_median_ms']:.2f} ms/scan ({ok} 5 ms)")
    return results


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
