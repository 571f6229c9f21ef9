"""Tracker kernels against hand-computed numbers and independent references (numpy, scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from vigil.tracks import kernels as kern


def test_filter_step_matches_hand_computed_numbers() -> None:
    # x = [0, 0, 1, 2], P = diag(4, 4, 1, 1), dt = 2 s, q = 0.5 m^2/s^3.
    # Predict: position var 4 + dt^2 * 1 + q dt^3 / 3 = 28/3, pos-vel dt * 1 + q dt^2 / 2 = 3,
    # velocity var 1 + q dt = 2; position [2, 4].
    # Update with z = [3, 3], R = I: S = 31/3, gains 28/31 (position) and 9/31 (velocity),
    # innovation [1, -1]; P after: 28/31, 9/31, 2 - 27/31 = 35/31.
    x = np.array([[0.0, 0.0, 1.0, 2.0]])
    P = np.diag([4.0, 4.0, 1.0, 1.0])[None].copy()
    t_est = np.array([10.0])
    kern.predict_cv(x, P, t_est, 1, 12.0, 0.5)
    assert x[0] == pytest.approx([2.0, 4.0, 1.0, 2.0])
    assert P[0, 0, 0] == pytest.approx(28.0 / 3.0)
    assert P[0, 0, 2] == pytest.approx(3.0)
    assert P[0, 2, 2] == pytest.approx(2.0)
    assert P[0, 0, 1] == 0.0
    assert t_est[0] == 12.0
    z = np.array([[3.0, 3.0]])
    R = np.eye(2)[None].copy()
    x0, P0 = x.copy(), P.copy()
    kern.kalman_update(x, P, 1, np.array([0]), z, R, np.zeros(1, dtype=np.bool_))
    assert x[0] == pytest.approx([2 + 28 / 31, 4 - 28 / 31, 1 + 9 / 31, 2 - 9 / 31])
    assert P[0, 0, 0] == pytest.approx(28 / 31)
    assert P[0, 1, 1] == pytest.approx(28 / 31)
    assert P[0, 0, 2] == pytest.approx(9 / 31)
    assert P[0, 2, 0] == pytest.approx(9 / 31)
    assert P[0, 2, 2] == pytest.approx(35 / 31)
    assert P[0, 0, 1] == pytest.approx(0.0)
    # Position only (a ground sensor): same position gain, velocity and its variance kept;
    # position-velocity covariance 3 (1 - 28/31) = 9/31.
    kern.kalman_update(x0, P0, 1, np.array([0]), z, R, np.ones(1, dtype=np.bool_))
    assert x0[0] == pytest.approx([2 + 28 / 31, 4 - 28 / 31, 1.0, 2.0])
    assert P0[0, 0, 0] == pytest.approx(28 / 31)
    assert P0[0, 0, 2] == pytest.approx(9 / 31)
    assert P0[0, 2, 0] == pytest.approx(9 / 31)
    assert P0[0, 2, 2] == pytest.approx(2.0)


def _random_spd(rng: np.random.Generator, n: int, dim: int, scale: float) -> np.ndarray:
    A = rng.normal(size=(n, dim, dim))
    return scale * (A @ A.transpose(0, 2, 1) + dim * np.eye(dim))


def test_batch_predict_and_update_match_numpy_kalman() -> None:
    rng = np.random.default_rng(3)
    n = 40
    x = rng.normal(0, 50, (n, 4))
    P = _random_spd(rng, n, 4, 3.0)
    t_est = rng.uniform(0, 5, n)
    t, q = 6.0, 0.3
    z = x[:, :2] + rng.normal(0, 5, (n, 2))
    R = _random_spd(rng, n, 2, 2.0)
    assoc = np.where(rng.random(n) < 0.7, np.arange(n), -1)
    pos_only = rng.random(n) < 0.3

    xr, Pr = x.copy(), P.copy()
    for i in range(n):
        dt = t - t_est[i]
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        G = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]]) * q
        Q = np.zeros((4, 4))
        Q[np.ix_([0, 2], [0, 2])] = G
        Q[np.ix_([1, 3], [1, 3])] = G
        xr[i] = F @ xr[i]
        Pr[i] = F @ Pr[i] @ F.T + Q
        if assoc[i] >= 0:
            H = np.eye(2, 4)
            S = H @ Pr[i] @ H.T + R[i]
            gain = Pr[i] @ H.T @ np.linalg.inv(S)
            if pos_only[i]:
                gain[2:] = 0.0  # consider update: Joseph form for this (suboptimal) gain
            xr[i] = xr[i] + gain @ (z[i] - H @ xr[i])
            IKH = np.eye(4) - gain @ H
            Pr[i] = IKH @ Pr[i] @ IKH.T + gain @ R[i] @ gain.T
    kern.predict_cv(x, P, t_est, n, t, q)
    kern.kalman_update(x, P, n, assoc, z, R, pos_only)
    np.testing.assert_allclose(x, xr, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(P, (Pr + Pr.transpose(0, 2, 1)) / 2, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("rows", "cols", "forbid"),
    [(5, 5, 0.0), (6, 9, 0.0), (30, 30, 0.0), (12, 40, 0.3), (1, 7, 0.0), (20, 25, 0.5)],
    ids=["square5", "wide6x9", "square30", "wide-sparse", "one-row", "half-forbidden"],
)
def test_lsap_matches_scipy_on_random_costs(rows: int, cols: int, forbid: float) -> None:
    rng = np.random.default_rng(rows * 100 + cols)
    for _ in range(20):
        cost = rng.uniform(-5.0, 10.0, (rows, cols))
        if forbid:
            cost[rng.random(cost.shape) < forbid] = np.inf
            # keep a feasible assignment: a distinct column per row stays allowed
            cols_ok = rng.permutation(cols)[:rows]
            cost[np.arange(rows), cols_ok] = rng.uniform(-5.0, 10.0, rows)
        col = np.empty(rows, dtype=np.int64)
        assert kern.lsap(cost, col)
        r, c = linear_sum_assignment(np.where(np.isinf(cost), 1e12, cost))
        assert len(set(col.tolist())) == rows
        assert cost[np.arange(rows), col].sum() == pytest.approx(cost[r, c].sum(), abs=1e-9)
        np.testing.assert_array_equal(col, c)  # continuous costs: the optimum is unique


def test_lsap_reports_infeasible() -> None:
    cost = np.array([[1.0, np.inf], [2.0, np.inf]])
    assert not kern.lsap(cost, np.empty(2, dtype=np.int64))


def _gnn_reference(n: int, m: int, pairs: list[tuple[int, int, float]]) -> float:
    """One global scipy solve on the whole augmented matrix (no clustering)."""
    big = 1e9
    C = np.full((n, m + n), big)
    C[np.arange(n), m + np.arange(n)] = 0.0
    for i, j, c in pairs:
        C[i, j] = c
    r, c = linear_sum_assignment(C)
    return float(C[r, c].sum())


@pytest.mark.parametrize("seed", range(8))
def test_clustered_gnn_matches_global_assignment(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(3, 40)), int(rng.integers(3, 40))
    k = int(rng.integers(1, n * m // 3 + 2))
    flat = rng.choice(n * m, size=min(k, n * m), replace=False)
    pt, pd = flat // m, flat % m
    pc = rng.uniform(-12.0, -0.1, len(flat))
    track_det = np.full(n, -1, dtype=np.int64)
    det_track = np.full(m, -1, dtype=np.int64)
    kern.assign_gnn(n, m, pt, pd, pc, len(flat), track_det, det_track)
    lookup = {(int(a), int(b)): float(c) for a, b, c in zip(pt, pd, pc, strict=True)}
    total = 0.0
    for i in range(n):
        j = track_det[i]
        if j >= 0:
            assert det_track[j] == i
            total += lookup[(i, int(j))]
    assert (det_track >= 0).sum() == (track_det >= 0).sum()
    ref = _gnn_reference(n, m, list(zip(pt.tolist(), pd.tolist(), pc.tolist(), strict=True)))
    assert total == pytest.approx(ref, abs=1e-9)


def test_gate_pairs_match_brute_force() -> None:
    rng = np.random.default_rng(11)
    n, m = 300, 400
    x = np.zeros((n, 4))
    x[:, :2] = rng.uniform(0, 2000, (n, 2))
    P = _random_spd(rng, n, 4, 20.0)
    z = np.vstack([x[:200, :2] + rng.normal(0, 8, (200, 2)), rng.uniform(0, 2000, (m - 200, 2))])
    R = _random_spd(rng, m, 2, 5.0)
    gamma, offset = 13.8, -12.0
    # brute force
    want = set()
    for i in range(n):
        for j in range(m):
            S = P[i, :2, :2] + R[j]
            v = z[j] - x[i, :2]
            d2 = v @ np.linalg.solve(S, v)
            cost = 0.5 * d2 + 0.5 * math.log(np.linalg.det(S)) + offset
            if d2 <= gamma and cost < 0:
                want.add((i, j, round(cost, 9)))
    radius = np.empty(n)
    r_var_max = float(np.max(np.linalg.eigvalsh(R)))
    kern.gate_radius(P, n, r_var_max, gamma, radius)
    cell = 40.0
    nx = ny = int(2000 / cell) + 2
    x0, y0 = z.min(axis=0)
    cell_start = np.empty(nx * ny + 1, dtype=np.int64)
    order = np.empty(m, dtype=np.int64)
    kern.grid_index(z, m, x0, y0, 1 / cell, nx, ny, cell_start, order)
    out_t = np.empty(10, dtype=np.int64)
    out_d = np.empty(10, dtype=np.int64)
    out_c = np.empty(10)
    sel, free = np.ones(n, dtype=np.bool_), np.ones(m, dtype=np.bool_)
    args = (x, P, n, sel, radius, z, R, free, x0, y0, 1 / cell, nx, ny, cell_start, order)
    assert kern.gate_pairs(*args, gamma, offset, out_t, out_d, out_c) == -1  # outputs too small
    out_t = np.empty(n * m, dtype=np.int64)
    out_d = np.empty(n * m, dtype=np.int64)
    out_c = np.empty(n * m)
    k = kern.gate_pairs(*args, gamma, offset, out_t, out_d, out_c)
    triples = zip(out_t[:k], out_d[:k], out_c[:k], strict=True)
    got = {(int(a), int(b), round(float(c), 9)) for a, b, c in triples}
    assert len(want) > 100
    assert got == want


# -- class evidence ----------------------------------------------------------------------------


def _evidence_after(liks, times, memory_s=0.0, max_evidence=0.0, floor=0.0, prior=(1, 1, 1)):
    """Class probabilities of one track after folding ``liks`` in at ``times`` (s)."""
    from vigil.tracks.kernels import add_class_evidence, class_from_evidence

    probs = np.full((1, 3), 1.0 / 3.0)
    ev = np.zeros((1, 5))
    log_prior = np.log(np.asarray(prior, dtype=np.float64) / sum(prior))
    for lik, t in zip(liks, times, strict=True):
        add_class_evidence(ev, 0, np.asarray(lik, dtype=np.float64), float(t), memory_s)
        class_from_evidence(probs, ev, 0, floor, max_evidence, log_prior)
    return probs[0], ev[0]


def test_class_evidence_by_hand() -> None:
    # four guesses, each twice as likely under person as under vehicle or animal
    probs, ev = _evidence_after([(1.0, 0.5, 0.5)] * 4, [0, 1, 2, 3], floor=0.03)
    assert ev[:4] == pytest.approx([0.0, -4 * np.log(2), -4 * np.log(2), 4.0])
    p = np.array([1.0, 1 / 16, 1 / 16]) / (1 + 2 / 16)
    assert probs == pytest.approx(0.97 * p + 0.01)
    # at most two guesses' worth: the mean times two, (1, 1/4, 1/4) normalised
    probs, _ = _evidence_after([(1.0, 0.5, 0.5)] * 4, [0, 1, 2, 3], max_evidence=2.0)
    assert probs == pytest.approx([2 / 3, 1 / 6, 1 / 6])
    # a prior of 1:1:2 toward animal halves the odds of person against animal
    probs, _ = _evidence_after(
        [(1.0, 0.5, 0.5)] * 4, [0, 1, 2, 3], max_evidence=2.0, prior=(1, 1, 2)
    )
    assert probs == pytest.approx(np.array([1, 1 / 4, 1 / 2]) / 1.75)
    # a flat likelihood (an "unknown" guess) is no evidence and is not counted
    probs, ev = _evidence_after([(1.0, 1.0, 1.0)] * 3, [0, 1, 2])
    assert ev[3] == 0.0 and probs == pytest.approx([1 / 3] * 3)


def test_a_run_of_person_guesses_does_not_outvote_an_animal_history() -> None:
    """Ten minutes of guesses mostly "animal", then two minutes of "person" (one pose of
    one body, frame after frame): the track stays an animal."""
    animal, person = (0.3, 0.05, 1.0), (1.0, 0.05, 0.6)
    liks = [animal] * 600 + [person] * 120
    probs, _ = _evidence_after(liks, range(720), memory_s=600.0, max_evidence=30.0, floor=0.01)
    assert probs.argmax() == 2 and probs[0] < 0.1


def test_class_evidence_fades_so_a_track_recovers() -> None:
    """An old animal history fades (memory 60 s): twenty minutes of person guesses later the
    track is a person."""
    animal, person = (0.3, 0.05, 1.0), (1.0, 0.05, 0.6)
    liks = [animal] * 600 + [person] * 1200
    faded, _ = _evidence_after(liks, range(1800), memory_s=60.0, max_evidence=30.0)
    kept, _ = _evidence_after(liks, range(1800), memory_s=0.0, max_evidence=30.0)
    assert faded[0] > 0.99
    assert kept[0] < faded[0]
