"""The camera (tower) measurement model: the EKF update against a Monte-Carlo posterior, and
tracking of simulated tower detections against the 2-D position path.

Nothing here is tuned: the tracker's settings are ``vigil track``'s defaults (with a larger
``max_position_sigma_m`` so that a 150 m range sigma starts a track); the evaluation seeds
(``EVAL_SEEDS``) are the only ones ever run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.tracks.config import TrackerConfig
from vigil.tracks.measurement import BatchError
from vigil.tracks.polar import (
    DEPRESSION,
    RANGE,
    RANGE_RELATIVE,
    PolarBatch,
    polar_batch,
    polar_update,
    to_position,
)
from vigil.tracks.table import CONFIRMED
from vigil.tracks.tracker import Tracker

EVAL_SEEDS = (101, 102, 103)


def _h(x: np.ndarray, sensor: np.ndarray, mode: int) -> np.ndarray:
    """Bearing and range or depression of ground points ``x`` (k, >=2) from ``sensor``."""
    dx, dy = x[:, 0] - sensor[0], x[:, 1] - sensor[1]
    rho = np.hypot(dx, dy)
    second = np.hypot(rho, sensor[2]) if mode != DEPRESSION else np.arctan2(sensor[2], rho)
    return np.c_[np.arctan2(dx, dy), second]


def _mc_posterior(m0, P0, sensor, z, sig, mode, rng, k=600_000):
    """Posterior mean and covariance by importance sampling from the prior."""
    xs = rng.multivariate_normal(m0, P0, size=k)
    hx = _h(xs, sensor, mode)
    d = z - hx
    d[:, 0] = (d[:, 0] + math.pi) % (2 * math.pi) - math.pi
    s = np.broadcast_to(sig, d.shape).copy()
    if mode == RANGE_RELATIVE:  # the range sigma a fraction of the range at x
        s[:, 1] = sig[1] * hx[:, 1]
    logw = -0.5 * ((d / s) ** 2).sum(axis=1) - np.log(s).sum(axis=1)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    mean = w @ xs
    c = xs - mean
    return mean, (c * w[:, None]).T @ c, 1.0 / (w * w).sum()


CASES = [
    # sensor (e, n, h), prior mean, prior position sigma (m), sigmas, mode
    ((0.0, 0.0, 30.0), (900.0, 1200.0, 1.0, -0.5), 20.0, (math.radians(0.05), 90.0), RANGE),
    ((100.0, -50.0, 40.0), (-1500.0, 800.0, 0.0, 1.4), 40.0, (math.radians(0.1), 120.0), RANGE),
    ((0.0, 0.0, 60.0), (-700.0, -700.0, 1.2, 0.0), 15.0, (math.radians(0.05), 0.0005), DEPRESSION),
    (
        (0.0, 0.0, 30.0),
        (1800.0, -900.0, 0.5, 0.5),
        60.0,
        (math.radians(0.05), 0.05),
        RANGE_RELATIVE,
    ),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("iterations", [1, 2])
def test_ekf_update_matches_monte_carlo_posterior(case: int, iterations: int) -> None:
    """One EKF update's mean and covariance (all four state components) agree with the
    importance-sampled posterior of the same prior and polar likelihood: the iterated EKF
    (2 iterations, the tracker's) within 5 % on variances, the plain EKF within 15 %."""
    sensor, m0, sp, sig, mode = CASES[case]
    rng = np.random.default_rng(EVAL_SEEDS[case % len(EVAL_SEEDS)])
    sensor, m0, sig = np.array(sensor), np.array(m0), np.array(sig)
    P0 = np.diag([sp**2, sp**2, 1.0, 1.0])
    P0[0, 1] = P0[1, 0] = 0.3 * sp**2
    P0[0, 2] = P0[2, 0] = P0[1, 3] = P0[3, 1] = 0.5 * sp  # position-velocity correlation
    truth = rng.multivariate_normal(m0, P0)
    h0 = _h(truth[None], sensor, mode)[0]
    scale = sig * (np.array([1.0, h0[1]]) if mode == RANGE_RELATIVE else 1.0)
    z = h0 + scale * rng.standard_normal(2)
    mean, cov, ess = _mc_posterior(m0, P0, sensor, z, sig, mode, rng)
    assert ess > 2_000
    x, P = m0[None].copy(), P0[None].copy()
    b = polar_batch(sensor[None], z[0], z[1], sig[0], sig[1], mode)
    nis = np.empty(1)
    td = np.zeros(1, dtype=np.int64)
    args = (b.valid, b.sensor, b.meas, b.sigma, b.mode, math.inf, iterations, nis, True)
    polar_update(x, P, 1, td, *args)
    sd = np.sqrt(np.diag(cov))
    mc = 4.0 / math.sqrt(ess)  # about 4 Monte-Carlo standard errors (mean, in sigmas)
    tol_mean, tol_var = (0.1, 0.15) if iterations == 1 else (0.05, 0.05)
    assert np.all(np.abs(x[0] - mean) <= (tol_mean + mc) * sd), (x[0], mean, sd)
    ratio = np.diag(P[0]) / np.diag(cov)
    assert np.all(np.abs(ratio - 1.0) <= tol_var + math.sqrt(2.0) * mc), ratio
    corr = P[0] / np.outer(np.sqrt(np.diag(P[0])), np.sqrt(np.diag(P[0])))
    corr_mc = cov / np.outer(sd, sd)
    np.testing.assert_allclose(corr, corr_mc, atol=0.05)
    # the prior alone is far from the posterior: the test can tell an update from none
    assert np.abs(m0 - mean).max() > 0.3 * sd.max() or np.diag(P0)[:2].min() > 4 * cov[0, 0]


def test_polar_gate_drops_a_far_detection() -> None:
    """A detection 1 degree off a well-known track's bearing fails the polar gate."""
    x = np.array([[0.0, 2000.0, 0.0, 0.0]])
    P = np.diag([4.0, 100.0, 1.0, 1.0])[None].copy()
    b = polar_batch([[0.0, 0.0, 30.0]], math.radians(1.0), 2000.0, math.radians(0.05), 100.0)
    td = np.zeros(1, dtype=np.int64)
    nis = np.empty(1)
    args = (b.valid, b.sensor, b.meas, b.sigma, b.mode, 13.8, 1, nis, True)
    assert polar_update(x, P, 1, td, *args) == 1
    assert td[0] == -1 and nis[0] > 13.8 and x[0, 0] == 0.0


def test_polar_batch_errors_name_row_and_value() -> None:
    """Hostile input is refused with the argument, the row and the value."""
    s = [[0.0, 0.0, 30.0], [0.0, 0.0, 30.0]]
    with pytest.raises(BatchError, match=r"range\[1\]"):
        polar_batch(s, [0.1, 0.2], [1000.0, 20.0], 1e-3, 50.0)
    with pytest.raises(BatchError, match=r"sigma\[0\]"):
        polar_batch(s, [0.1, 0.2], [1000.0, 900.0], [0.0, 1e-3], 50.0)
    with pytest.raises(BatchError, match=r"depression\[0\]"):
        polar_batch(s, 0.1, 2.0, 1e-3, 1e-3, DEPRESSION)
    with pytest.raises(BatchError, match="polar has 2 rows"):
        b = polar_batch(s, 0.1, 1000.0, 1e-3, 50.0)
        Tracker().update(0.0, np.zeros((1, 2)), polar=b)


def _simulate(seed: int, scans: int = 90, k: int = 24):
    """``k`` walkers 1-3 km from a 30 m tower, 1 s scans; bearing sigma 0.05 deg, range
    sigma 8 % (reported as 8 % of the measured range). Returns truth per scan and the
    polar batch per scan."""
    rng = np.random.default_rng(seed)
    sensor = np.array([0.0, 0.0, 30.0])
    ang = rng.uniform(0, 2 * math.pi, k)
    ang = np.sort(ang)  # spread out so that association is not the question here
    ang = np.linspace(0, 2 * math.pi, k, endpoint=False) + rng.uniform(-0.05, 0.05, k)
    r0 = rng.uniform(1000.0, 3000.0, k)
    head = rng.uniform(0, 2 * math.pi, k)
    v = 1.4 * np.c_[np.sin(head), np.cos(head)]
    p = np.c_[r0 * np.sin(ang), r0 * np.cos(ang)]
    truth, batches = [], []
    sb = math.radians(0.05)
    for _ in range(scans):
        v += 0.05 * rng.standard_normal(v.shape)
        p = p + v
        truth.append(np.c_[p, v])
        hz = _h(p, sensor, RANGE)
        zb = hz[:, 0] + sb * rng.standard_normal(k)
        zr = hz[:, 1] * (1.0 + 0.08 * rng.standard_normal(k))
        batches.append(polar_batch(np.tile(sensor, (k, 1)), zb, zr, sb, 0.08 * zr))
    return truth, batches


def _run(truth, batches, how: str):
    """Track the batches by the polar model, by the converted position with its full
    covariance, or by the converted position with an isotropic sigma (``vigil track``'s
    ``x,y,sigma`` today); return position errors and position NEES of confirmed tracks
    after the first 20 scans, each matched to its walker by first detection."""
    # one filter with the motion settings this comparison was made with (vigil track's
    # defaults before the interacting multiple model): the measurement models are compared,
    # so every path runs the same filter and the same gate
    cfg = TrackerConfig.for_track(
        max_position_sigma_m=1000.0, process_noise=0.1, gate_probability=0.99,
        imm_process_noise=0.0,
    )  # fmt: skip
    tr = Tracker(cfg)
    err, nees = [], []
    owner: dict[int, int] = {}
    for s, (tru, b) in enumerate(zip(truth, batches, strict=True)):
        z, R = to_position(b)
        if how == "rel":  # the sensor's model: range sigma 8 % of the (predicted) range
            mode = np.full(len(b), RANGE_RELATIVE)
            rb = PolarBatch(
                b.valid, b.sensor, b.meas, np.c_[b.sigma[:, 0], np.full(len(b), 0.08)], mode
            )
            tab = tr.update(float(s), z, R, polar=rb)
        elif how == "polar":
            tab = tr.update(float(s), z, R, polar=b)
        elif how == "full":
            tab = tr.update(float(s), z, R)
        else:
            tab = tr.update(float(s), z, sigma=np.sqrt(np.maximum(R[:, 0, 0], R[:, 1, 1])))
        for tid, j in zip(tr.last_det_track_id.tolist(), range(len(z)), strict=True):
            owner.setdefault(tid, j)
        if s < 20:
            continue
        for i in np.flatnonzero(tab.status == CONFIRMED):
            e = tab.x[i, :2] - tru[owner[int(tab.track_id[i])], :2]
            err.append(float(np.hypot(*e)))
            nees.append(float(e @ np.linalg.solve(tab.P[i, :2, :2], e)))
    return np.array(err), np.array(nees)


def test_polar_model_beats_the_position_path_on_tower_detections() -> None:
    """Bearing-accurate, range-poor tower detections (0.05 deg, 8 % range at 1-3 km): the
    polar EKF with the sensor's relative range error has a median position error at least
    10 % below both position paths' (full covariance; isotropic sigma, ``x,y,sigma`` rows)
    and a mean NEES nearer 2 (a consistent filter's); with the range sigma in metres from
    the measured range (``polar``) its error is still below the full-covariance path's."""
    res: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {
        h: [] for h in ("rel", "polar", "full", "iso")
    }
    for seed in EVAL_SEEDS:
        truth, batches = _simulate(seed)
        for how in res:
            res[how].append(_run(truth, batches, how))
    stats = {}
    for how, parts in res.items():
        err = np.concatenate([p[0] for p in parts])
        nees = np.concatenate([p[1] for p in parts])
        assert len(err) > 0.8 * 3 * 24 * 70, how  # nearly every walker confirmed throughout
        stats[how] = (float(np.median(err)), float(np.mean(nees)))
    print(stats)
    rel_err, rel_nees = stats["rel"]
    for other in ("full", "iso"):
        assert rel_err < 0.9 * stats[other][0], (other, stats)
        assert abs(rel_nees - 2.0) < abs(stats[other][1] - 2.0), (other, stats)
    assert stats["polar"][0] < stats["full"][0], stats
