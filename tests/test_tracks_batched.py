"""The core's batched class and group steps against the one-at-a-time code they replace: the
same numbers, bit for bit (issue 19: the core thread's CPU a message).

- ``pace_weighted`` against ``speed_says`` with ``pace_factor`` per track;
- ``speed_likelihoods`` against ``speed_likelihood`` per speed;
- ``Tracker.add_class_evidence`` over many slots against one slot at a time;
- ``group_clusters``' labels against SciPy's ``connected_components`` of the same links;
- the ``near_pairs`` kernel against every pair's distance.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from vigil.tracks import kernels as jit
from vigil.tracks.aot import kernels
from vigil.tracks.classes import (
    pace_factor,
    pace_weighted,
    speed_likelihood,
    speed_likelihoods,
    speed_says,
)
from vigil.tracks.config import TrackerConfig
from vigil.tracks.groups import group_clusters
from vigil.tracks.tracker import Tracker

kern = kernels()  # the ahead-of-time module when built, else numba's


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_pace_weighted_is_speed_says_track_by_track(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    probs = rng.dirichlet([1.0, 1.0, 1.0], n)
    v = rng.normal(0.0, 3.0, (n, 2))
    a = rng.normal(0.0, 0.8, (n, 2, 2))
    Pv = a @ a.transpose(0, 2, 1)
    Pv[:5] = np.nan  # an unknown spread: speed_says reads the speed
    v[5] = np.nan  # an unknown speed: no pace
    got = pace_weighted(probs, v, Pv, 1.0, 2.5, 5.0)
    pace = partial(pace_factor, walk_max_mps=2.5, vehicle_min_mps=5.0)
    weighed = 0
    for i in range(n):
        factor = speed_says(v[i], Pv[i], 1.0, pace)
        want = probs[i] if factor is None else probs[i] * factor / (probs[i] * factor).sum()
        weighed += factor is not None
        np.testing.assert_array_equal(got[i], want, err_msg=f"track {i}")
    assert 0 < weighed < n  # both kinds of track were checked


def test_speed_likelihoods_are_speed_likelihood_one_by_one() -> None:
    rng = np.random.default_rng(7)
    rows = tuple(
        (float(lo), float(lo) + 0.75, *rng.random(3).tolist()) for lo in np.arange(0.0, 6.0, 0.5)
    )  # overlapping rows: the first that covers a speed decides
    speeds = [*rng.uniform(-1.0, 8.0, 2000).tolist(), float("nan"), 6.5]
    idx, liks = speed_likelihoods(rows, speeds, 0.3)
    want = [(i, speed_likelihood(rows, s, 0.3)) for i, s in enumerate(speeds)]
    want = [(i, lik) for i, lik in want if lik is not None]
    assert idx.tolist() == [i for i, _ in want]
    np.testing.assert_array_equal(liks, np.array([lik for _, lik in want]))
    assert speed_likelihoods((), speeds)[0].size == 0


def _tracker_with_tracks(n: int) -> Tracker:
    tr = Tracker(TrackerConfig(class_memory_s=20.0, class_max_evidence=10.0))
    z = np.column_stack([np.arange(n) * 100.0, np.zeros(n)])
    for t in range(3):
        tr.update(float(t), z + [0.0, 1.0 * t])
    return tr


def test_class_evidence_for_many_slots_is_one_slot_at_a_time() -> None:
    rng = np.random.default_rng(3)
    one, many = _tracker_with_tracks(40), _tracker_with_tracks(40)
    for t in (3.0, 9.0, 30.0):
        slots = np.sort(rng.choice(40, 25, replace=False))
        liks = rng.uniform(0.01, 1.0, (25, 3))
        liks[0] = 1.0  # a flat likelihood adds nothing
        for i, lik in zip(slots.tolist(), liks, strict=True):
            one.add_class_evidence(i, lik, t)
        many.add_class_evidence(slots, liks, t)
    np.testing.assert_array_equal(many.class_evidence, one.class_evidence)
    np.testing.assert_array_equal(many.tracks().class_probs, one.tracks().class_probs)
    assert not np.allclose(one.tracks().class_probs, 1.0 / 3.0)  # evidence was added


@pytest.mark.parametrize("m", [2, 20, 400], ids=lambda m: f"m{m}")
def test_group_clusters_label_as_connected_components(m: int) -> None:
    rng = np.random.default_rng(m)
    grouped = 0
    for _ in range(30):
        z = rng.uniform(0.0, 40.0 * np.sqrt(m), (m, 2))
        R = np.zeros((m, 2, 2))
        R[:, 0, 0], R[:, 1, 1] = rng.uniform(1.0, 60.0, m), rng.uniform(1.0, 60.0, m)
        labels = group_clusters(z, R, 15.0)
        # the reference: every pair's gate, then SciPy's components of the links
        i, j = np.triu_indices(m, 1)
        S = R[i] + R[j] + np.eye(2) * 15.0**2
        d = z[i] - z[j]
        d2 = np.einsum("ka,kab,kb->k", d, np.linalg.inv(S), d)
        link = d2 <= 9.2103
        graph = csr_matrix((np.ones(int(link.sum())), (i[link], j[link])), shape=(m, m))
        want = connected_components(graph, directed=False)[1]
        assert labels.tolist() == want.tolist()
        grouped += int(labels.max()) + 1 < m
    assert grouped > 0  # some trials had clusters of several


@pytest.mark.parametrize("compiled", [kern, jit], ids=["loaded", "jit"])
@pytest.mark.parametrize("reach", [5.0, 60.0, 1e5], ids=["few", "some", "all"])
def test_near_pairs_kernel_finds_every_close_pair(reach: float, compiled) -> None:
    rng = np.random.default_rng(11)
    x, y = rng.uniform(0.0, 800.0, 300), rng.uniform(0.0, 800.0, 300)
    x[:20] = x[20:40]  # ties in x
    order = np.argsort(x, kind="stable")
    room = 300 * 299 // 2
    out_i, out_j = np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64)
    k = compiled.near_pairs(x, y, reach, order, out_i, out_j)
    got = sorted(zip(out_i[:k].tolist(), out_j[:k].tolist(), strict=True))
    i, j = np.triu_indices(300, 1)
    d = np.hypot(x[i] - x[j], y[i] - y[j])
    want = sorted(zip(i[d <= reach].tolist(), j[d <= reach].tolist(), strict=True))
    assert got == want
    assert k > 0
    if k > 1:  # too little room: says so instead of writing past the end
        assert compiled.near_pairs(x, y, reach, order, out_i[: k - 1], out_j[: k - 1]) == -1
