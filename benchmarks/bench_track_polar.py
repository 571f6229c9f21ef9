"""Tower detections (bearing-accurate, range-poor) tracked four ways: the polar model
(:mod:`vigil.tracks.polar`, iterated EKF) with the range sigma as a fraction of the
predicted range (``rel``, :data:`~vigil.tracks.polar.RANGE_RELATIVE`) or in metres from
the measured range (``polar``), the converted position with its full linearised
covariance, and the converted position with one isotropic sigma (what ``x,y,sigma`` rows
could say before). Evaluation seeds 201-220 (the tests use 101-103; nothing was tuned).

Per path: median and 90th-percentile position error of confirmed tracks after 20 scans,
median cross-range error, mean position NEES (2 for a consistent filter); the ratio of
median errors, ``rel`` over each other path, with a 95 % bootstrap interval over seeds;
per-scan update time, median over scans, as a ratio to the full-covariance path in the same run.

Run: ``python -m benchmarks track_polar``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from vigil.tracks.config import TrackerConfig
from vigil.tracks.polar import RANGE_RELATIVE, PolarBatch, polar_batch, to_position
from vigil.tracks.table import CONFIRMED
from vigil.tracks.tracker import Tracker

SEEDS = range(201, 221)
PATHS = ("rel", "polar", "full", "iso")


def simulate(seed: int, range_frac: float, k: int = 24, scans: int = 90):
    """``k`` walkers 1-3 km around a 30 m tower, 1 s scans, bearing sigma 0.05 deg, range
    sigma ``range_frac`` of the range (reported from the measured range)."""
    rng = np.random.default_rng(seed)
    sensor = np.array([0.0, 0.0, 30.0])
    ang = np.linspace(0, 2 * math.pi, k, endpoint=False) + rng.uniform(-0.05, 0.05, k)
    r0 = rng.uniform(1000.0, 3000.0, k)
    head = rng.uniform(0, 2 * math.pi, k)
    v = 1.4 * np.c_[np.sin(head), np.cos(head)]
    p = np.c_[r0 * np.sin(ang), r0 * np.cos(ang)]
    sb = math.radians(0.05)
    truth, batches = [], []
    for _ in range(scans):
        v += 0.05 * rng.standard_normal(v.shape)
        p = p + v
        truth.append(p.copy())
        dx, dy = p[:, 0], p[:, 1]
        zb = np.arctan2(dx, dy) + sb * rng.standard_normal(k)
        zr = np.hypot(np.hypot(dx, dy), 30.0) * (1.0 + range_frac * rng.standard_normal(k))
        batches.append(polar_batch(np.tile(sensor, (k, 1)), zb, zr, sb, range_frac * zr))
    return truth, batches


def run(truth, batches, how: str):
    """Errors (position, cross-range), NEES and per-scan update times of one path."""
    tr = Tracker(TrackerConfig.for_track(max_position_sigma_m=1000.0))
    err, cross, nees, dt = [], [], [], []
    owner: dict[int, int] = {}
    for s, (tru, b) in enumerate(zip(truth, batches, strict=True)):
        z, R = to_position(b)
        t0 = time.perf_counter()
        if how == "rel":  # the range sigma as a fraction of the range (the sensor's model)
            frac = b.sigma[:, 1] / b.meas[:, 1]
            mode = np.full(len(b), RANGE_RELATIVE)
            rb = PolarBatch(b.valid, b.sensor, b.meas, np.c_[b.sigma[:, 0], frac], mode)
            tab = tr.update(float(s), z, R, polar=rb)
        elif how == "polar":
            tab = tr.update(float(s), z, R, polar=b)
        elif how == "full":
            tab = tr.update(float(s), z, R)
        else:
            tab = tr.update(float(s), z, sigma=np.sqrt(np.maximum(R[:, 0, 0], R[:, 1, 1])))
        dt.append(time.perf_counter() - t0)
        for j, tid in enumerate(tr.last_det_track_id.tolist()):
            owner.setdefault(tid, j)
        if s < 20:
            continue
        for i in np.flatnonzero(tab.status == CONFIRMED):
            p = tru[owner[int(tab.track_id[i])]]
            e = tab.x[i, :2] - p
            u = np.array([p[1], -p[0]]) / math.hypot(*p)  # across the line of sight
            err.append(math.hypot(*e))
            cross.append(abs(float(e @ u)))
            nees.append(float(e @ np.linalg.solve(tab.P[i, :2, :2], e)))
    return np.array(err), np.array(cross), np.array(nees), np.array(dt)


def main(argv: list[str] | None = None) -> None:
    """Print the table (see the module docstring)."""
    rng = np.random.default_rng(0)
    for frac in (0.05, 0.10):
        per_seed = {h: [] for h in PATHS}
        for seed in SEEDS:
            truth, batches = simulate(seed, frac)
            for how in PATHS:
                per_seed[how].append(run(truth, batches, how))
        print(f"range sigma {frac:.0%}, bearing sigma 0.05 deg, {len(SEEDS)} seeds x 24 walkers")
        t_full = np.median(np.concatenate([r[3][1:] for r in per_seed["full"]]))
        for how in PATHS:
            rs = per_seed[how]
            err = np.concatenate([r[0] for r in rs])
            cross = np.concatenate([r[1] for r in rs])
            nees = np.concatenate([r[2] for r in rs])
            t = np.median(np.concatenate([r[3][1:] for r in rs]))
            line = (
                f"  {how:5s} median err {np.median(err):6.1f} m  p90 {np.quantile(err, 0.9):6.1f}"
                f" m  cross-range {np.median(cross):5.2f} m  NEES {nees.mean():5.2f}"
                f"  update {t * 1e6:6.0f} us ({t / t_full:.2f}x full)"
            )
            if how != "rel":
                med_p = np.array([np.median(r[0]) for r in per_seed["rel"]])
                med_o = np.array([np.median(r[0]) for r in rs])
                boot = rng.integers(0, len(med_p), (2000, len(med_p)))
                ratios = med_p[boot].mean(axis=1) / med_o[boot].mean(axis=1)
                lo, hi = np.quantile(ratios, [0.025, 0.975])
                line += f"  rel/{how} err {med_p.mean() / med_o.mean():.3f} [{lo:.3f}, {hi:.3f}]"
            print(line, flush=True)


if __name__ == "__main__":
    main()
