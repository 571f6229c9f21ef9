"""Groups: detections of one group folded into one measurement, duplicate tracks merged.

A group walking together is seen as several blobs, whose detections would start and feed
several tracks; a batch's detections that could be parts of one group are merged into one
measurement (:func:`group_clusters`, :func:`merge_group`), and two tracks that follow one
group are folded into one (:func:`merge_duplicates`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from vigil.tracks.aot import kernels
from vigil.tracks.table import TENTATIVE
from vigil.tracks.tracker import Tracker

kern = kernels()  # ahead-of-time compiled when built (vigil.tracks.aot), else numba's

#: Chi-square (2 dof) 99 % point: detections closer than this (Mahalanobis) may be one group.
_GROUP_GATE = 9.2103
#: Two tracks whose mean velocities over their trails differ by more than this (m/s) follow
#: different bodies: they are not merged, however uncertain their filtered velocities.
_MERGE_TRAIL_DV_MPS = 1.0


def group_clusters(
    z: NDArray[np.float64], R: NDArray[np.float64], radius_m: float
) -> NDArray[np.int64]:
    """Label the detections of one batch that could be parts of one group.

    Two detections are linked when their difference lies within the 99 % gate of
    ``R_i + R_j + radius_m^2 I``; clusters are the connected sets (single linkage).
    Returns one cluster label per detection, ``0 .. k-1``.
    """
    m = z.shape[0]
    if m < 2 or radius_m <= 0.0:
        return np.arange(m, dtype=np.int64)
    i, j = _near_pairs(z, R[:, 0, 0] + R[:, 1, 1], radius_m**2, _GROUP_GATE)
    d = z[i] - z[j]
    S = R[i] + R[j]
    S[:, 0, 0] += radius_m**2
    S[:, 1, 1] += radius_m**2
    det = S[:, 0, 0] * S[:, 1, 1] - S[:, 0, 1] * S[:, 1, 0]
    d2 = (S[:, 1, 1] * d[:, 0] ** 2 - 2.0 * S[:, 0, 1] * d[:, 0] * d[:, 1]
          + S[:, 0, 0] * d[:, 1] ** 2) / det  # fmt: skip
    link = d2 <= _GROUP_GATE
    if not link.any():  # each detection its own cluster, numbered in order
        return np.arange(m, dtype=np.int64)
    return _components(m, i[link], j[link])


def _components(m: int, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Connected sets of ``m`` nodes linked by the pairs ``(a[k], b[k])``, labelled ``0 ..
    k-1`` in the order of each set's lowest node (as ``scipy.sparse.csgraph``'s
    ``connected_components`` numbers them). A batch links few pairs: union-find over the
    linked nodes alone, each set's root its lowest node."""
    parent: dict[int, int] = {}

    def root_of(u: int) -> int:
        while parent.get(u, u) != u:
            u = parent[u]
        return u

    for u, v in zip(a.tolist(), b.tolist(), strict=True):
        u, v = root_of(u), root_of(v)
        if u != v:
            parent[max(u, v)] = min(u, v)
    root = np.arange(m, dtype=np.int64)
    if parent:
        linked = list(parent)
        root[linked] = [root_of(u) for u in linked]
    # a root is its set's lowest node: sets are numbered by counting roots in node order
    return (np.cumsum(root == np.arange(m)) - 1)[root].astype(np.int64)


def merge_group(
    z: NDArray[np.float64],
    R: NDArray[np.float64],
    lik: NDArray[np.float64],
    labels: NDArray[np.int64],
    radius_m: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """One measurement per cluster: the centre of its detections, weighted by how well each
    is placed (``1 / trace R``).

    The members are different bodies seen from one place at one time, not repeated
    measurements of one point, so their centre is a convex combination of their positions:
    weighting them by their full information matrices would triangulate. A tower places
    each body on its line of sight to within a metre but along it only to tens of metres,
    and two such thin ellipses on nearly parallel sight lines agree best far from both
    bodies: a pair 110 m apart at 2.5 km fused 170 m nearer the tower than the nearer one,
    and the track that took such measurements ran off at 5 m/s.
    The members' errors are largely shared (pointing, range from the same pixel rows), so
    the cluster's covariance is the same weighted mean of theirs, plus the group's extent
    ``(radius_m / 2)^2 I``; its class likelihood is the geometric mean of the members'.
    """
    k = int(labels.max()) + 1 if labels.size else 0
    if k == labels.size:
        return z, R, lik
    # a cluster of one keeps its detection as it is (taken for all at once); only the few
    # clusters of several are folded, one by one, each from its members in detection order
    member = np.empty(k, dtype=np.int64)
    member[labels] = np.arange(labels.size)
    zs, Rs, ls = z[member], R[member], lik[member]
    size = np.bincount(labels, minlength=k)
    by_cluster = np.argsort(labels, kind="stable")
    end = np.cumsum(size).tolist()
    extent = np.eye(2) * (radius_m / 2.0) ** 2
    for c in np.flatnonzero(size > 1).tolist():
        sel = by_cluster[end[c] - int(size[c]) : end[c]]
        weight = 1.0 / np.trace(R[sel], axis1=1, axis2=2)
        w = weight / weight.sum()
        zs[c] = w @ z[sel]
        Rs[c] = np.einsum("k,kab->ab", w, R[sel]) + extent
        gm = np.exp(np.log(np.maximum(lik[sel], 1e-12)).mean(axis=0))
        ls[c] = gm / gm.max()
    return zs, Rs, ls


def merge_duplicates(
    tracker: Tracker,
    touched: NDArray[np.int64],
    group_radius_m: float,
    trail_velocity: Callable[[int], NDArray[np.float64] | None],
) -> list[tuple[int, int]]:
    """Fold a track into an older one that follows the same group.

    Two confirmed tracks whose positions lie within the 99 % gate of ``P_i + P_j +
    group_radius^2 I`` and whose velocities agree within the gate of their velocity
    covariances plus (0.5 m/s)^2, and whose mean velocities over their trails (when both
    are known) differ by at most ``_MERGE_TRAIL_DV_MPS``, are one group seen as two: the
    one whose current run began later is deleted from ``tracker`` (ties: the higher id) and
    its class evidence and detection count go to the other. Only pairs with a track in
    ``touched`` (the track ids a batch just updated; -1 for none) are checked.

    Parameters
    ----------
    tracker
        The tracker whose tracks are merged.
    touched
        Track ids updated by the batch just applied; negative entries are ignored.
    group_radius_m
        A group's radius, m.
    trail_velocity
        Track id to its mean velocity over its trail (m/s), or None when unknown.

    Returns
    -------
    ``(merged_id, into_id)`` pairs, in the order they were merged.
    """
    tr = tracker
    ids = tr.ids
    settled = tr.status != TENTATIVE
    hit = np.isin(ids, touched[touched >= 0]) & settled
    if not hit.any() or settled.sum() < 2:
        return []
    r2 = group_radius_m**2
    x, P, first = tr.x, tr.P, tr.t_first
    merges: list[tuple[int, int]] = []
    gone: set[int] = set()
    rows = np.flatnonzero(hit)
    # Most tracks have no duplicate: a closed-form 2x2 screen over all pairs at once, with a
    # margin, passes every pair the exact test below could accept; only a track's partners
    # in such pairs go through it (so the merges are the same as testing every track).
    near = _close_pairs(x, P, np.flatnonzero(settled), r2)
    src = np.concatenate([near[0], near[1]])
    dst = np.concatenate([near[1], near[0]])
    for i in rows[np.isin(rows, src)]:
        if int(ids[i]) in gone:
            continue
        others = np.unique(dst[src == i])  # slot order, as a scan of every slot has them
        others = np.array([j for j in others.tolist() if int(ids[j]) not in gone], dtype=np.int64)
        if others.size == 0:
            continue
        dp = x[others, :2] - x[i, :2]
        S = P[others, :2, :2] + P[i, :2, :2] + np.eye(2) * r2
        dv = x[others, 2:] - x[i, 2:]
        V = P[others, 2:, 2:] + P[i, 2:, 2:] + np.eye(2) * 0.25
        d2p = np.einsum("ka,kab,kb->k", dp, np.linalg.inv(S), dp)
        d2v = np.einsum("ka,kab,kb->k", dv, np.linalg.inv(V), dv)
        ok = (d2p <= _GROUP_GATE) & (d2v <= _GROUP_GATE)
        # a filtered velocity's spread stays near 1 m/s on a track at 2 km, so the gate
        # above lets a cow grazing south by a group walking north; their mean velocities
        # over the last minutes tell them apart
        vi = trail_velocity(int(ids[i]))
        if vi is not None:
            for k in np.flatnonzero(ok):
                vj = trail_velocity(int(ids[others[k]]))
                if vj is not None and math.hypot(*(vi - vj)) > _MERGE_TRAIL_DV_MPS:
                    ok[k] = False
        if not ok.any():
            continue
        j = int(others[ok][np.argmin(d2p[ok])])
        # the one that has followed the group longer without a break stays: a track
        # reborn under an old id (stitched) gives way to the group's current track
        keep, drop = (i, j) if (first[i], ids[i]) < (first[j], ids[j]) else (j, i)
        tr.absorb(keep, tr.class_evidence[drop], int(tr.n_updates[drop]))
        kid, did = int(ids[keep]), int(ids[drop])
        merges.append((did, kid))
        gone.add(did)
    if gone:
        tr.delete(sorted(gone))
    return merges


def _near_pairs(
    pos: NDArray[np.float64], traces: NDArray[np.float64], r2: float, gate: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Index pairs ``i < j`` that may lie within ``gate`` (Mahalanobis, squared) of each
    other under ``C_i + C_j + r2 I`` for covariances with these traces; every other pair
    lies outside it.

    ``d^T S^-1 d >= |d|^2 / trace(S)`` for a positive semi-definite ``S``, so a pair within
    the gate is closer than ``sqrt(gate (2 max trace + 2 r2))``; a sweep along x finds those
    (:func:`vigil.tracks.kernels.near_pairs`; all pairs when the bound is not finite). The
    pairs come sorted as ``np.triu_indices`` orders them, so a caller's arithmetic on them is
    the same as over all pairs.
    """
    m = pos.shape[0]
    reach = math.sqrt(gate * (1.0 + 1e-6) * (2.0 * float(np.max(traces)) + 2.0 * r2))
    if (
        not math.isfinite(reach) or m < 32 or not np.isfinite(pos).all()
    ):  # few: all pairs are cheaper than a tree
        i, j = np.triu_indices(m, 1)
        return i.astype(np.int64), j.astype(np.int64)
    x, y = np.ascontiguousarray(pos[:, 0]), np.ascontiguousarray(pos[:, 1])
    by_x = np.argsort(x, kind="stable")
    room = 8 * m
    while True:
        out_i, out_j = np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64)
        k = kern.near_pairs(x, y, reach * (1.0 + 1e-9), by_x, out_i, out_j)
        if k >= 0:
            break
        room = m * (m - 1) // 2
    order = np.lexsort((out_j[:k], out_i[:k]))
    return out_i[:k][order], out_j[:k][order]


def _gate2(d: NDArray[np.float64], S: NDArray[np.float64]) -> NDArray[np.float64]:
    """``d^T S^-1 d`` for stacks of 2-vectors and 2x2 matrices, in closed form."""
    a, b, c, e = S[..., 0, 0], S[..., 0, 1], S[..., 1, 0], S[..., 1, 1]
    det = a * e - b * c
    u, v = d[..., 0], d[..., 1]
    return (e * u * u - (b + c) * u * v + a * v * v) / det


def _close_pairs(
    x: NDArray[np.float64], P: NDArray[np.float64], cols: NDArray[np.int64], r2: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Slot pairs ``(a, b)`` among ``cols`` that may pass both gates of
    :func:`merge_duplicates` (position and velocity), screened in closed form with a relative
    margin of 1e-6 over the gate so that rounding cannot hide a pair the exact test accepts;
    every other pair fails it."""
    if cols.size < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    eye = np.eye(2)
    a, b = _near_pairs(x[cols, :2], P[cols, 0, 0] + P[cols, 1, 1], r2, _GROUP_GATE)
    a, b = cols[a], cols[b]
    gate = _GROUP_GATE * (1.0 + 1e-6)
    d2p = _gate2(x[b, :2] - x[a, :2], P[b, :2, :2] + P[a, :2, :2] + eye * r2)
    d2v = _gate2(x[b, 2:] - x[a, 2:], P[b, 2:, 2:] + P[a, 2:, 2:] + eye * 0.25)
    near = ~(d2p > gate) & ~(d2v > gate)  # NaN passes: the exact test decides
    return a[near], b[near]
