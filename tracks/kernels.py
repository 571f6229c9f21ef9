"""numba kernels of the tracker: batch predict and update, gating, clustering, assignment.

Every kernel is a pure loop over arrays (struct-of-arrays track table), compiled ``nopython``,
``nogil`` and cached, writing into preallocated outputs. The Python wrappers in
:mod:`vigil.tracks.tracker` and :mod:`vigil.tracks.measurement` validate inputs.

State per track: ``x = [east, north, v_east, v_north]`` (m, m/s), ``P`` its 4x4 covariance.
Measurements are positions ``z = [east, north]`` with a 2x2 covariance ``R`` each.
"""

from __future__ import annotations

import math

import numba
import numpy as np

ngjit = numba.njit(nogil=True, cache=True)

TENTATIVE = np.int8(0)
CONFIRMED = np.int8(1)
COASTING = np.int8(2)
DELETED = np.int8(3)


# -- filtering --------------------------------------------------------------------------------


@ngjit
def predict_cv(x, P, t_est, n, t, q):  # pragma: no cover - compiled
    """Predict tracks ``0..n-1`` to time ``t`` in place (nearly constant velocity).

    ``q`` is the acceleration noise spectral density (m^2/s^3); ``t_est`` holds each track's
    estimate time and is set to ``t``. A track already at or after ``t`` is left as it is.
    """
    for i in range(n):
        dt = t - t_est[i]
        if dt <= 0.0:
            continue
        x[i, 0] += dt * x[i, 2]
        x[i, 1] += dt * x[i, 3]
        # F P F^T with F = [[I, dt I], [0, I]], written out by blocks
        for a in range(2):
            for b in range(4):
                P[i, a, b] += dt * P[i, a + 2, b]
        for a in range(4):
            for b in range(2):
                P[i, a, b] += dt * P[i, a, b + 2]
        q3 = q * dt * dt * dt / 3.0
        q2 = q * dt * dt / 2.0
        q1 = q * dt
        for a in range(2):
            P[i, a, a] += q3
            P[i, a, a + 2] += q2
            P[i, a + 2, a] += q2
            P[i, a + 2, a + 2] += q1
        t_est[i] = t


@ngjit
def kalman_update(x, P, n, track_det, z, R, position_only):  # pragma: no cover - compiled
    """Update each track ``i < n`` with detection ``track_det[i]`` (skip when -1), in place.

    Position measurement ``H = [I 0]``; the covariance update is the symmetric
    ``P - K S K^T`` form, then symmetrised. A detection ``j`` with ``position_only[j]``
    updates the position alone (a Schmidt "consider" update: the velocity rows of the gain
    are zero, so the velocity and its variance stay as they were, and the position-velocity
    covariance shrinks by ``I - K_p``): a ground sensor reports where it is, not where in its
    radius the target is, and a run of its reports would otherwise read as a target
    standing at the sensor.
    """
    K = np.empty((4, 2))
    HP = np.empty((2, 4))
    for i in range(n):
        j = track_det[i]
        if j < 0:
            continue
        s00 = P[i, 0, 0] + R[j, 0, 0]
        s01 = P[i, 0, 1] + 0.5 * (R[j, 0, 1] + R[j, 1, 0])
        s11 = P[i, 1, 1] + R[j, 1, 1]
        det = s00 * s11 - s01 * s01
        i00 = s11 / det
        i01 = -s01 / det
        i11 = s00 / det
        rows = 2 if position_only[j] else 4
        for a in range(4):
            K[a, 0] = P[i, a, 0] * i00 + P[i, a, 1] * i01 if a < rows else 0.0
            K[a, 1] = P[i, a, 0] * i01 + P[i, a, 1] * i11 if a < rows else 0.0
        v0 = z[j, 0] - x[i, 0]
        v1 = z[j, 1] - x[i, 1]
        for a in range(4):
            x[i, a] += K[a, 0] * v0 + K[a, 1] * v1
        # P <- P - K H P  (H P is the first two rows of P, copied before P changes); with
        # zero velocity rows of K this is the Joseph form's result for this gain too
        for b in range(4):
            HP[0, b] = P[i, 0, b]
            HP[1, b] = P[i, 1, b]
        for a in range(4):
            for b in range(a, 4):
                P[i, a, b] -= K[a, 0] * HP[0, b] + K[a, 1] * HP[1, b]
        for a in range(4):
            for b in range(a):
                P[i, a, b] = P[i, b, a]


@ngjit
def class_from_evidence(
    class_probs, ev, i, floor, max_evidence, log_prior
):  # pragma: no cover - compiled
    """Track ``i``'s class probabilities from its evidence row ``ev[i]`` and the classes'
    log prior probabilities ``log_prior``.

    ``ev[i, :k]`` sums the log-likelihoods of the class guesses and ``ev[i, k]`` counts the
    informative ones. When the count exceeds ``max_evidence`` (> 0) the sums are scaled down
    to that many guesses' worth: their mean decides, so a long run of guesses of one body in
    one pose (far from independent) cannot outvote the track's whole history. The result is
    mixed with ``floor`` of uniform so that no class is ever ruled out.
    """
    k = class_probs.shape[1]
    scale = 1.0
    if max_evidence > 0.0 and ev[i, k] > max_evidence:
        scale = max_evidence / ev[i, k]
    top = -1e300
    for c in range(k):
        top = max(top, log_prior[c] + ev[i, c] * scale)
    s = 0.0
    for c in range(k):
        class_probs[i, c] = math.exp(log_prior[c] + ev[i, c] * scale - top)
        s += class_probs[i, c]
    for c in range(k):
        class_probs[i, c] = (1.0 - floor) * class_probs[i, c] / s + floor / k


@ngjit
def add_class_evidence(ev, i, lik, t, memory_s):  # pragma: no cover - compiled
    """Add one class likelihood ``lik`` (per class) at time ``t`` (s) to evidence row ``i``.

    Older evidence fades with time constant ``memory_s`` (0: never), so a track that has
    taken over another body's detections recovers. A flat likelihood adds nothing.
    """
    k = lik.shape[0]
    lo, hi = lik[0], lik[0]
    for c in range(1, k):
        lo = min(lo, lik[c])
        hi = max(hi, lik[c])
    if hi <= 0.0 or lo >= hi * (1.0 - 1e-9):
        return
    if memory_s > 0.0:
        fade = math.exp(-max(t - ev[i, k + 1], 0.0) / memory_s)
        for c in range(k + 1):
            ev[i, c] *= fade
    for c in range(k):
        ev[i, c] += math.log(max(lik[c] / hi, 1e-12))
    ev[i, k] += 1.0
    ev[i, k + 1] = t


@ngjit
def fuse_class(
    class_probs, ev, n, track_det, class_lik, floor, t, memory_s, max_evidence, log_prior
):  # pragma: no cover - compiled
    """Fold each associated detection's class likelihood into its track's evidence (see
    :func:`add_class_evidence`) and recompute the track's class probabilities (see
    :func:`class_from_evidence`). Rows of ``ev``: log-likelihood per class, count, time."""
    for i in range(n):
        j = track_det[i]
        if j < 0:
            continue
        add_class_evidence(ev, i, class_lik[j], t, memory_s)
        class_from_evidence(class_probs, ev, i, floor, max_evidence, log_prior)


# -- gating -----------------------------------------------------------------------------------


@ngjit
def gate_radius(P, n, r_var_max, gamma, out):  # pragma: no cover - compiled
    """Radius (m) that contains every detection gated to each track: ``sqrt(gamma lam_max)``.

    ``lam_max`` bounds the innovation covariance's largest eigenvalue with the largest
    measurement variance ``r_var_max`` in the batch.
    """
    for i in range(n):
        a = P[i, 0, 0]
        b = P[i, 0, 1]
        c = P[i, 1, 1]
        half = 0.5 * (a - c)
        lam = 0.5 * (a + c) + math.sqrt(half * half + b * b) + r_var_max
        out[i] = math.sqrt(gamma * lam)


@ngjit
def batch_extent(z, R):  # pragma: no cover - compiled
    """Bounding box of the detections and their largest measurement variance."""
    x0 = y0 = np.inf
    x1 = y1 = -np.inf
    r = 0.0
    for j in range(z.shape[0]):
        x0 = min(x0, z[j, 0])
        x1 = max(x1, z[j, 0])
        y0 = min(y0, z[j, 1])
        y1 = max(y1, z[j, 1])
        r = max(r, R[j, 0, 0], R[j, 1, 1])
    return x0, y0, x1, y1, r


@ngjit
def mean_selected(values, sel, n):  # pragma: no cover - compiled
    """Mean of ``values[:n]`` where ``sel``; 0 when none is selected."""
    s = 0.0
    k = 0
    for i in range(n):
        if sel[i]:
            s += values[i]
            k += 1
    return s / k if k else 0.0


@ngjit
def grid_index(z, m, x0, y0, inv_cell, nx, ny, cell_start, order):  # pragma: no cover
    """Counting-sort detections into a ``nx`` by ``ny`` grid of square cells.

    Afterwards the detections in cell ``c`` are ``order[cell_start[c]:cell_start[c + 1]]``.
    """
    cell_of = np.empty(m, dtype=np.int64)
    for c in range(nx * ny + 1):
        cell_start[c] = 0
    for j in range(m):
        cx = min(max(int((z[j, 0] - x0) * inv_cell), 0), nx - 1)
        cy = min(max(int((z[j, 1] - y0) * inv_cell), 0), ny - 1)
        c = cy * nx + cx
        cell_of[j] = c
        cell_start[c + 1] += 1
    for c in range(nx * ny):
        cell_start[c + 1] += cell_start[c]
    fill = cell_start[:-1].copy()
    for j in range(m):
        c = cell_of[j]
        order[fill[c]] = j
        fill[c] += 1


@ngjit
def gate_pairs(
    x,
    P,
    n,
    track_sel,
    radius,
    z,
    R,
    det_free,
    x0,
    y0,
    inv_cell,
    nx,
    ny,
    cell_start,
    order,
    gamma,
    cost_offset,
    out_track,
    out_det,
    out_cost,
):  # pragma: no cover - compiled
    """Track-detection pairs inside the Mahalanobis gate, with their assignment cost.

    Candidates come from the grid cells that the track's gate radius overlaps, so the work
    grows with the pairs near each other, not with tracks times detections. The cost is the
    negative log-likelihood ratio of "track ``i`` made detection ``j``" against "track missed
    and detection is clutter or new": ``d^2/2 + ln|S|/2 + cost_offset``. Only pairs with
    ``d^2 <= gamma`` and a negative cost are kept; only tracks with ``track_sel`` and
    detections with ``det_free`` take part. Returns the number of pairs, or ``-1`` when
    the outputs are too small (the caller grows them and calls again).
    """
    cap = out_track.shape[0]
    k = 0
    for i in range(n):
        if not track_sel[i]:
            continue
        r = radius[i]
        px = x[i, 0]
        py = x[i, 1]
        cx0 = max(int((px - r - x0) * inv_cell), 0)
        cx1 = min(int((px + r - x0) * inv_cell), nx - 1)
        cy0 = max(int((py - r - y0) * inv_cell), 0)
        cy1 = min(int((py + r - y0) * inv_cell), ny - 1)
        if cx0 > cx1 or cy0 > cy1:
            continue
        p00 = P[i, 0, 0]
        p01 = P[i, 0, 1]
        p11 = P[i, 1, 1]
        for cy in range(cy0, cy1 + 1):
            for cx in range(cx0, cx1 + 1):
                c = cy * nx + cx
                for s in range(cell_start[c], cell_start[c + 1]):
                    j = order[s]
                    if not det_free[j]:
                        continue
                    v0 = z[j, 0] - px
                    v1 = z[j, 1] - py
                    if abs(v0) > r or abs(v1) > r:
                        continue
                    s00 = p00 + R[j, 0, 0]
                    s01 = p01 + 0.5 * (R[j, 0, 1] + R[j, 1, 0])
                    s11 = p11 + R[j, 1, 1]
                    det = s00 * s11 - s01 * s01
                    if det <= 0.0:
                        continue
                    d2 = (s11 * v0 * v0 - 2.0 * s01 * v0 * v1 + s00 * v1 * v1) / det
                    if d2 > gamma:
                        continue
                    cost = 0.5 * d2 + 0.5 * math.log(det) + cost_offset
                    if cost >= 0.0:
                        continue
                    if k >= cap:
                        return -1
                    out_track[k] = i
                    out_det[k] = j
                    out_cost[k] = cost
                    k += 1
    return k


@ngjit
def near_pairs(x, y, reach, order, out_i, out_j):  # pragma: no cover - compiled
    """Index pairs ``i < j`` of points ``(x, y)`` (m) at most ``reach`` (m) apart, found by a
    sweep along ``x`` in ``order`` (the indices sorted by ``x``); a pair at exactly ``reach``
    may or may not be listed. Writes ``out_i``, ``out_j`` (in no particular order) and returns
    how many, or -1 when they hold too few (call again with room for ``m (m - 1) / 2``)."""
    m = order.shape[0]
    r2 = reach * reach
    k = 0
    for a in range(m):
        i = order[a]
        for b in range(a + 1, m):
            j = order[b]
            dx = x[j] - x[i]
            if dx > reach:
                break
            dy = y[j] - y[i]
            if dx * dx + dy * dy <= r2:
                if k >= out_i.shape[0]:
                    return -1
                out_i[k] = min(i, j)
                out_j[k] = max(i, j)
                k += 1
    return k


# -- assignment -------------------------------------------------------------------------------


@ngjit
def lsap(cost, col4row):  # pragma: no cover - compiled
    """Minimum-cost assignment of every row of ``cost`` (rows <= columns); True if feasible.

    The shortest augmenting path method of Jonker-Volgenant as in Crouse (2016), the
    algorithm behind :func:`scipy.optimize.linear_sum_assignment`. ``inf`` marks a
    forbidden pair. ``col4row[i]`` receives row ``i``'s column.
    """
    nr, nc = cost.shape
    u = np.zeros(nr)
    v = np.zeros(nc)
    spc = np.empty(nc)
    path = np.full(nc, -1, dtype=np.int64)
    row4col = np.full(nc, -1, dtype=np.int64)
    remaining = np.empty(nc, dtype=np.int64)
    sr = np.zeros(nr, dtype=np.bool_)
    sc = np.zeros(nc, dtype=np.bool_)
    for i in range(nr):
        col4row[i] = -1
    for cur in range(nr):
        min_val = 0.0
        num_rem = nc
        for it in range(nc):
            remaining[it] = nc - it - 1
        sr[:] = False
        sc[:] = False
        spc[:] = np.inf
        sink = -1
        i = cur
        while sink == -1:
            index = -1
            lowest = np.inf
            sr[i] = True
            for it in range(num_rem):
                j = remaining[it]
                r = min_val + cost[i, j] - u[i] - v[j]
                if r < spc[j]:
                    path[j] = i
                    spc[j] = r
                if spc[j] < lowest or (spc[j] == lowest and row4col[j] == -1):
                    lowest = spc[j]
                    index = it
            min_val = lowest
            if min_val == np.inf:
                return False
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            sc[j] = True
            num_rem -= 1
            remaining[index] = remaining[num_rem]
        u[cur] += min_val
        for r_ in range(nr):
            if sr[r_] and r_ != cur:
                u[r_] += min_val - spc[col4row[r_]]
        for c in range(nc):
            if sc[c]:
                v[c] -= min_val - spc[c]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            prev = col4row[i]
            col4row[i] = j
            j = prev
            if i == cur:
                break
    return True


@ngjit
def _find(parent, a):  # pragma: no cover - compiled
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@ngjit
def assign_gnn(n, m, pair_track, pair_det, pair_cost, npairs, track_det, det_track):
    """Global-nearest-neighbour assignment on the gate graph's connected clusters.

    Tracks and detections joined by gated pairs form clusters (union-find); each cluster is
    solved on its own: one-to-many clusters by the cheapest pair, others by :func:`lsap` on
    the cluster's matrix augmented with one "missed" column per track (cost 0, since pair
    costs are log-likelihood ratios against a miss). Sets ``track_det`` (detection of each
    track) and ``det_track`` (track of each detection) for the pairs chosen, leaving the other
    entries as they were (-1 from the caller); returns the cluster count.
    """  # pragma: no cover - compiled
    if npairs == 0:
        return 0
    parent = np.arange(n + m)
    for k in range(npairs):
        a = _find(parent, pair_track[k])
        b = _find(parent, n + pair_det[k])
        if a != b:
            parent[b] = a
    root = np.empty(npairs, dtype=np.int64)
    for k in range(npairs):
        root[k] = _find(parent, pair_track[k])
    by_root = np.argsort(root, kind="mergesort")
    local_t = np.full(n, -1, dtype=np.int64)
    local_d = np.full(m, -1, dtype=np.int64)
    tracks = np.empty(n, dtype=np.int64)
    dets = np.empty(m, dtype=np.int64)
    clusters = 0
    s = 0
    while s < npairs:
        e = s
        r = root[by_root[s]]
        while e < npairs and root[by_root[e]] == r:
            e += 1
        clusters += 1
        nt = 0
        nd = 0
        for q in range(s, e):
            k = by_root[q]
            i = pair_track[k]
            j = pair_det[k]
            if local_t[i] < 0:
                local_t[i] = nt
                tracks[nt] = i
                nt += 1
            if local_d[j] < 0:
                local_d[j] = nd
                dets[nd] = j
                nd += 1
        if nt == 1 or nd == 1:
            best = by_root[s]
            for q in range(s, e):
                k = by_root[q]
                if pair_cost[k] < pair_cost[best]:
                    best = k
            track_det[pair_track[best]] = pair_det[best]
            det_track[pair_det[best]] = pair_track[best]
        else:
            C = np.full((nt, nd + nt), np.inf)
            for a in range(nt):
                C[a, nd + a] = 0.0
            for q in range(s, e):
                k = by_root[q]
                C[local_t[pair_track[k]], local_d[pair_det[k]]] = pair_cost[k]
            col = np.empty(nt, dtype=np.int64)
            lsap(C, col)
            for a in range(nt):
                if col[a] < nd:
                    i = tracks[a]
                    j = dets[col[a]]
                    track_det[i] = j
                    det_track[j] = i
        for a in range(nt):
            local_t[tracks[a]] = -1
        for b in range(nd):
            local_d[dets[b]] = -1
        s = e
    return clusters


# -- track management -------------------------------------------------------------------------


@ngjit
def manage(
    status,
    hits,
    scans,
    n_updates,
    t_hit,
    P,
    n,
    track_det,
    in_view,
    t,
    confirm_m,
    confirm_n,
    tentative_max_gap_s,
    max_coast_s,
    max_var,
):  # pragma: no cover - compiled
    """M-of-N confirmation, coasting and deletion after a batch at time ``t``, in place.

    ``hits`` is a bit mask of the last batches in view (bit 0 the latest), ``scans`` how many
    batches in view since birth. Returns the number of tracks marked deleted.
    """
    window = (1 << confirm_n) - 1
    deleted = 0
    for i in range(n):
        hit = track_det[i] >= 0
        if hit:
            t_hit[i] = t
            n_updates[i] += 1
        if in_view[i] or hit:
            hits[i] = ((hits[i] << 1) | (1 if hit else 0)) & 0x7FFFFFFF
            scans[i] += 1
        st = status[i]
        if st == TENTATIVE:
            count = 0
            h = hits[i] & window
            while h:
                count += h & 1
                h >>= 1
            if count >= confirm_m:
                status[i] = CONFIRMED
            elif count + confirm_n - scans[i] < confirm_m or t - t_hit[i] > tentative_max_gap_s:
                # it can no longer reach m hits in its first n batches
                status[i] = DELETED
        elif hit:
            status[i] = CONFIRMED
        elif t - t_hit[i] > max_coast_s:
            status[i] = DELETED
        else:
            status[i] = COASTING
        if status[i] != DELETED and max(P[i, 0, 0], P[i, 1, 1]) > max_var:
            status[i] = DELETED
        if status[i] == DELETED:
            deleted += 1
    return deleted


@ngjit
def compact(
    keep, n, track_id, status, x, P, t_est, t_hit, t_first, hits, scans, n_updates, cp, ev, llr
):
    """Move the kept tracks to the front, in order; return how many remain."""  # pragma: no cover
    k = 0
    for i in range(n):
        if not keep[i]:
            continue
        if k != i:
            track_id[k] = track_id[i]
            status[k] = status[i]
            for a in range(4):
                x[k, a] = x[i, a]
                for b in range(4):
                    P[k, a, b] = P[i, a, b]
            t_est[k] = t_est[i]
            t_hit[k] = t_hit[i]
            t_first[k] = t_first[i]
            hits[k] = hits[i]
            scans[k] = scans[i]
            n_updates[k] = n_updates[i]
            for c in range(cp.shape[1]):
                cp[k, c] = cp[i, c]
            for c in range(ev.shape[1]):
                ev[k, c] = ev[i, c]
            for c in range(llr.shape[1]):
                llr[k, c] = llr[i, c]
        k += 1
    return k


# -- evidence-based track management (TrackerSettings.track_score) ----------------------------


@ngjit
def hit_loglik(P, n, track_det, R, x, z, out):  # pragma: no cover - compiled
    """``out[i]``: ``ln N(z_j; H x_i, H P_i H^T + R_j)`` for each track with a detection
    ``j = track_det[i]`` (predicted state, before the update), else 0."""
    for i in range(n):
        j = track_det[i]
        if j < 0:
            out[i] = 0.0
            continue
        s00 = P[i, 0, 0] + R[j, 0, 0]
        s01 = P[i, 0, 1] + 0.5 * (R[j, 0, 1] + R[j, 1, 0])
        s11 = P[i, 1, 1] + R[j, 1, 1]
        det = s00 * s11 - s01 * s01
        v0 = z[j, 0] - x[i, 0]
        v1 = z[j, 1] - x[i, 1]
        d2 = (s11 * v0 * v0 - 2.0 * s01 * v0 * v1 + s00 * v1 * v1) / det
        out[i] = -math.log(2.0 * math.pi) - 0.5 * math.log(det) - 0.5 * d2


@ngjit
def manage_score(
    status,
    llr,
    n_updates,
    t_hit,
    P,
    n,
    track_det,
    hit_ll,
    in_view,
    t,
    log_pd,
    log_miss,
    log_lambda,
    confirm_llr,
    delete_llr,
    tentative_max_gap_s,
    max_coast_s,
    max_var,
    coast_var,
):  # pragma: no cover - compiled
    """Confirmation, coasting and deletion by each track's log-likelihood ratio (the
    sequential test of "a target" against "clutter"), after a batch at time ``t``, in place.

    ``llr[i] = (score, peak)``. A detection adds ``ln Pd + ln N(z; Hx, S) - ln lambda``
    (``hit_ll`` the middle term, ``log_lambda`` the clutter density's log), a miss in view
    ``ln(1 - Pd)`` (``log_miss``). A tentative track is confirmed when its score reaches
    ``confirm_llr``; any track is deleted when its score falls ``delete_llr`` below its
    peak (with a tentative track's peak at least 0, its start; a confirmed track only once
    its larger position variance exceeds ``coast_var``, m^2, so that at fast scan rates a
    few misses in a row do not end a track still sure of where it is), when it has had no detection
    for ``tentative_max_gap_s`` (tentative) or ``max_coast_s`` (confirmed) seconds, or when
    its larger position variance exceeds ``max_var`` (m^2). Returns the number deleted.
    """
    deleted = 0
    for i in range(n):
        hit = track_det[i] >= 0
        if hit:
            t_hit[i] = t
            n_updates[i] += 1
            llr[i, 0] += log_pd + hit_ll[i] - log_lambda
        elif in_view[i]:
            llr[i, 0] += log_miss
        st = status[i]
        peak = llr[i, 1]
        if st == TENTATIVE:
            peak = max(peak, 0.0)
        if llr[i, 0] > peak:
            peak = llr[i, 0]
        llr[i, 1] = peak
        sure = st != TENTATIVE and max(P[i, 0, 0], P[i, 1, 1]) <= coast_var
        if llr[i, 0] < peak - delete_llr and not sure:
            status[i] = DELETED
        elif st == TENTATIVE:
            if llr[i, 0] >= confirm_llr:
                status[i] = CONFIRMED
            elif t - t_hit[i] > tentative_max_gap_s:
                status[i] = DELETED
        elif hit:
            status[i] = CONFIRMED
        elif t - t_hit[i] > max_coast_s:
            status[i] = DELETED
        else:
            status[i] = COASTING
        if status[i] != DELETED and max(P[i, 0, 0], P[i, 1, 1]) > max_var:
            status[i] = DELETED
        if status[i] == DELETED:
            deleted += 1
    return deleted


# -- interacting multiple models (TrackerSettings.imm_process_noise) ------------------------


@numba.njit(nogil=True, cache=True, inline="always")
def _imm_mix_cov(xm, Pm, i, w0, w1, a, b, xa, xb):  # pragma: no cover - compiled
    """Entry ``(a, b)`` of the mixture of track ``i``'s models (weights ``w0``, ``w1``; means
    ``xa``, ``xb``), as :func:`_imm_combine` computes it."""
    v = w0 * (Pm[i, 0, a, b] + (xm[i, 0, a] - xa) * (xm[i, 0, b] - xb))
    v += w1 * (Pm[i, 1, a, b] + (xm[i, 1, a] - xa) * (xm[i, 1, b] - xb))
    return v


@numba.njit(nogil=True, cache=True, inline="always")
def _imm_mix(xm, Pm, i, w0, w1):  # pragma: no cover - compiled
    """Track ``i``'s models mixed with weights ``w0``, ``w1``, as :func:`_imm_combine`: the
    mean (4 values) and the covariance's upper triangle (10, row by row), as scalars."""
    x0 = w0 * xm[i, 0, 0] + w1 * xm[i, 1, 0]
    x1 = w0 * xm[i, 0, 1] + w1 * xm[i, 1, 1]
    x2 = w0 * xm[i, 0, 2] + w1 * xm[i, 1, 2]
    x3 = w0 * xm[i, 0, 3] + w1 * xm[i, 1, 3]
    p00 = _imm_mix_cov(xm, Pm, i, w0, w1, 0, 0, x0, x0)
    p01 = _imm_mix_cov(xm, Pm, i, w0, w1, 0, 1, x0, x1)
    p02 = _imm_mix_cov(xm, Pm, i, w0, w1, 0, 2, x0, x2)
    p03 = _imm_mix_cov(xm, Pm, i, w0, w1, 0, 3, x0, x3)
    p11 = _imm_mix_cov(xm, Pm, i, w0, w1, 1, 1, x1, x1)
    p12 = _imm_mix_cov(xm, Pm, i, w0, w1, 1, 2, x1, x2)
    p13 = _imm_mix_cov(xm, Pm, i, w0, w1, 1, 3, x1, x3)
    p22 = _imm_mix_cov(xm, Pm, i, w0, w1, 2, 2, x2, x2)
    p23 = _imm_mix_cov(xm, Pm, i, w0, w1, 2, 3, x2, x3)
    p33 = _imm_mix_cov(xm, Pm, i, w0, w1, 3, 3, x3, x3)
    return x0, x1, x2, x3, p00, p01, p02, p03, p11, p12, p13, p22, p23, p33


@numba.njit(nogil=True, cache=True, inline="always")
def _imm_combine(xm, Pm, w0, w1, i, x, P, o):  # pragma: no cover - compiled
    """The moment-matched mixture of track ``i``'s two models (``xm[i, m]``, ``Pm[i, m]``)
    weighted by ``w0``, ``w1`` into ``x[o]`` (4,), ``P[o]`` (4, 4), by :func:`_imm_mix`."""
    x0, x1, x2, x3, p00, p01, p02, p03, p11, p12, p13, p22, p23, p33 = _imm_mix(xm, Pm, i, w0, w1)
    x[o, 0] = x0
    x[o, 1] = x1
    x[o, 2] = x2
    x[o, 3] = x3
    P[o, 0, 0] = p00
    P[o, 0, 1] = P[o, 1, 0] = p01
    P[o, 0, 2] = P[o, 2, 0] = p02
    P[o, 0, 3] = P[o, 3, 0] = p03
    P[o, 1, 1] = p11
    P[o, 1, 2] = P[o, 2, 1] = p12
    P[o, 1, 3] = P[o, 3, 1] = p13
    P[o, 2, 2] = p22
    P[o, 2, 3] = P[o, 3, 2] = p23
    P[o, 3, 3] = p33


@numba.njit(nogil=True, cache=True, inline="always")
def _imm_predict_model(xm, Pm, i, m, dt, qm, s):  # pragma: no cover - compiled
    """Model ``m`` of track ``i`` set to the mixed state ``s`` (:func:`_imm_mix`) predicted
    over ``dt`` (s) with noise density ``qm``: ``F P F^T + Q`` element by element, with the
    same operations in the same order as :func:`predict_cv`'s loops (rows, then columns,
    then ``Q``), so the results are the same bits."""
    x0, x1, x2, x3, p00, p01, p02, p03, p11, p12, p13, p22, p23, p33 = s
    q3 = qm * dt * dt * dt / 3.0
    q2 = qm * dt * dt / 2.0
    qd = qm * dt
    u00 = p00 + dt * p02
    u01 = p01 + dt * p12
    u02 = p02 + dt * p22
    u03 = p03 + dt * p23
    u10 = p01 + dt * p03
    u11 = p11 + dt * p13
    u12 = p12 + dt * p23
    u13 = p13 + dt * p33
    Pm[i, m, 0, 0] = (u00 + dt * u02) + q3
    Pm[i, m, 0, 1] = u01 + dt * u03
    Pm[i, m, 0, 2] = u02 + q2
    Pm[i, m, 0, 3] = u03
    Pm[i, m, 1, 0] = u10 + dt * u12
    Pm[i, m, 1, 1] = (u11 + dt * u13) + q3
    Pm[i, m, 1, 2] = u12
    Pm[i, m, 1, 3] = u13 + q2
    Pm[i, m, 2, 0] = (p02 + dt * p22) + q2
    Pm[i, m, 2, 1] = p12 + dt * p23
    Pm[i, m, 2, 2] = p22 + qd
    Pm[i, m, 2, 3] = p23
    Pm[i, m, 3, 0] = p03 + dt * p23
    Pm[i, m, 3, 1] = (p13 + dt * p33) + q2
    Pm[i, m, 3, 2] = p23
    Pm[i, m, 3, 3] = p33 + qd
    xm[i, m, 0] = x0 + dt * x2
    xm[i, m, 1] = x1 + dt * x3
    xm[i, m, 2] = x2
    xm[i, m, 3] = x3


@ngjit
def imm_predict(xm, Pm, mu, t_est, n, t, q, sojourn_s, x, P):  # pragma: no cover - compiled
    """Interacting-multiple-model prediction of tracks ``0..n-1`` to time ``t``, in place.

    Each track ``i`` holds two nearly-constant-velocity models, ``xm[i, m]`` (4,) and
    ``Pm[i, m]`` (4, 4) with probabilities ``mu[i, m]``; model ``m`` has acceleration noise
    density ``q[m]`` (m^2/s^3) and is left for the other at rate ``1 / sojourn_s[m]``
    (seconds), so that over ``dt`` a track moves from model 0 to 1 with probability
    ``a / (a + b) (1 - exp(-(a + b) dt))`` (``a``, ``b`` the two rates) and back with
    ``b / (a + b) (...)``: the same motion at any scan interval. The models are mixed by
    those transition probabilities (IMM's interaction), each predicted with its own noise,
    and the mixture's mean and covariance written to ``x``, ``P`` (what gating and reporting
    use); ``t_est`` is set to ``t``. A track already at or after ``t`` is left as it is.
    """
    ra = 1.0 / sojourn_s[0]
    rb = 1.0 / sojourn_s[1]
    last_dt = -1.0
    p01 = p10 = 0.0
    for i in range(n):
        dt = t - t_est[i]
        if dt <= 0.0:
            continue
        if dt != last_dt:  # most tracks share the batch's interval: one exp for them all
            e = 1.0 - math.exp(-(ra + rb) * dt)
            p01 = ra / (ra + rb) * e
            p10 = rb / (ra + rb) * e
            last_dt = dt
        mu0 = mu[i, 0]
        mu1 = mu[i, 1]
        c0 = (1.0 - p01) * mu0 + p10 * mu1
        c1 = p01 * mu0 + (1.0 - p10) * mu1
        # mixed starting state of each model (IMM's interaction), then each predicted
        s0 = _imm_mix(xm, Pm, i, (1.0 - p01) * mu0 / c0, p10 * mu1 / c0)
        s1 = _imm_mix(xm, Pm, i, p01 * mu0 / c1, (1.0 - p10) * mu1 / c1)
        _imm_predict_model(xm, Pm, i, 0, dt, q[0], s0)
        _imm_predict_model(xm, Pm, i, 1, dt, q[1], s1)
        mu[i, 0] = c0
        mu[i, 1] = c1
        _imm_combine(xm, Pm, c0, c1, i, x, P, i)
        t_est[i] = t


@numba.njit(nogil=True, cache=True, inline="always")
def _imm_model_update(xm, Pm, i, m, z0, z1, r00, r01, r11, rows):  # pragma: no cover
    """Kalman update of track ``i``'s model ``m`` with position ``(z0, z1)`` of covariance
    ``[[r00, r01], [r01, r11]]`` (m, m^2), as :func:`kalman_update` (``rows`` 2: position
    only); returns the innovation covariance's determinant and the squared Mahalanobis
    distance. Scalars throughout (no scratch arrays): the same operations in the same
    order as the loops they replace."""
    s00 = Pm[i, m, 0, 0] + r00
    s01 = Pm[i, m, 0, 1] + r01
    s11 = Pm[i, m, 1, 1] + r11
    det = s00 * s11 - s01 * s01
    i00 = s11 / det
    i01 = -s01 / det
    i11 = s00 / det
    v0 = z0 - xm[i, m, 0]
    v1 = z1 - xm[i, m, 1]
    d2 = i00 * v0 * v0 + 2.0 * i01 * v0 * v1 + i11 * v1 * v1
    h00 = Pm[i, m, 0, 0]  # H P: the covariance's first two rows before the update
    h01 = Pm[i, m, 0, 1]
    h02 = Pm[i, m, 0, 2]
    h03 = Pm[i, m, 0, 3]
    h10 = Pm[i, m, 1, 0]
    h11 = Pm[i, m, 1, 1]
    h12 = Pm[i, m, 1, 2]
    h13 = Pm[i, m, 1, 3]
    k00 = h00 * i00 + h01 * i01  # gain K = P H^T S^-1
    k01 = h00 * i01 + h01 * i11
    k10 = h10 * i00 + h11 * i01
    k11 = h10 * i01 + h11 * i11
    if rows > 2:
        k20 = Pm[i, m, 2, 0] * i00 + Pm[i, m, 2, 1] * i01
        k21 = Pm[i, m, 2, 0] * i01 + Pm[i, m, 2, 1] * i11
        k30 = Pm[i, m, 3, 0] * i00 + Pm[i, m, 3, 1] * i01
        k31 = Pm[i, m, 3, 0] * i01 + Pm[i, m, 3, 1] * i11
    else:
        k20 = k21 = k30 = k31 = 0.0
    xm[i, m, 0] += k00 * v0 + k01 * v1
    xm[i, m, 1] += k10 * v0 + k11 * v1
    xm[i, m, 2] += k20 * v0 + k21 * v1
    xm[i, m, 3] += k30 * v0 + k31 * v1
    Pm[i, m, 0, 0] -= k00 * h00 + k01 * h10  # P - K H P, upper triangle, then mirrored
    Pm[i, m, 0, 1] -= k00 * h01 + k01 * h11
    Pm[i, m, 0, 2] -= k00 * h02 + k01 * h12
    Pm[i, m, 0, 3] -= k00 * h03 + k01 * h13
    Pm[i, m, 1, 1] -= k10 * h01 + k11 * h11
    Pm[i, m, 1, 2] -= k10 * h02 + k11 * h12
    Pm[i, m, 1, 3] -= k10 * h03 + k11 * h13
    Pm[i, m, 2, 2] -= k20 * h02 + k21 * h12
    Pm[i, m, 2, 3] -= k20 * h03 + k21 * h13
    Pm[i, m, 3, 3] -= k30 * h03 + k31 * h13
    for a in range(4):
        for b in range(a):
            Pm[i, m, a, b] = Pm[i, m, b, a]
    return det, d2


@ngjit
def imm_update(
    xm, Pm, mu, n, track_det, z, R, position_only, mu_floor, coast_model, x, P
):  # pragma: no cover - compiled
    """Interacting-multiple-model update of each track ``i < n`` with detection
    ``track_det[i]``, in place: every model is updated as :func:`kalman_update` updates a
    track, the model probabilities are multiplied by each model's likelihood of the
    detection, ``N(z; H xm, H Pm H^T + R)``, renormalised and held at ``mu_floor`` or more,
    and the mixture is written to ``x``, ``P``. A track without one (-1) is written to
    ``x``, ``P`` as its model ``coast_model`` predicts it (-1: left as it is).
    ``position_only`` has one flag per detection, or one for all."""
    one_flag = position_only.shape[0] == 1
    for i in range(n):
        j = track_det[i]
        if j < 0:
            if coast_model >= 0:
                for a in range(4):
                    x[i, a] = xm[i, coast_model, a]
                    for b in range(4):
                        P[i, a, b] = Pm[i, coast_model, a, b]
            continue
        r00 = R[j, 0, 0]
        r01 = 0.5 * (R[j, 0, 1] + R[j, 1, 0])
        r11 = R[j, 1, 1]
        rows = 2 if position_only[0 if one_flag else j] else 4
        z0 = z[j, 0]
        z1 = z[j, 1]
        det0, d20 = _imm_model_update(xm, Pm, i, 0, z0, z1, r00, r01, r11, rows)
        det1, d21 = _imm_model_update(xm, Pm, i, 1, z0, z1, r00, r01, r11, rows)
        # model 1 against model 0: mu1 N1 / (mu0 N0), one exp and one sqrt (no logs)
        d = 0.5 * (d20 - d21)
        if d > 600.0:
            m1 = 1.0
        elif d < -600.0:
            m1 = 0.0
        else:
            ratio = mu[i, 1] / mu[i, 0] * math.sqrt(det0 / det1) * math.exp(d)
            m1 = 1.0 / (1.0 + 1.0 / ratio) if ratio > 0.0 else 0.0  # ratio inf: 1
        m0 = max(1.0 - m1, mu_floor)
        m1 = max(m1, mu_floor)
        w0 = m0 / (m0 + m1)
        w1 = m1 / (m0 + m1)
        mu[i, 0] = w0
        mu[i, 1] = w1
        _imm_combine(xm, Pm, w0, w1, i, x, P, i)


@ngjit
def imm_follow(before, n0, after, k, det_track, xm, Pm, mu, took):  # pragma: no cover - compiled
    """After a batch: move the models of the tracks that survived it to the front, as
    :func:`compact` moved the rest, and say which detection each took.

    ``before[:n0]`` are the slots' track ids before the batch and ``after[:k]`` the
    survivors' (the same ids in the same order: compaction keeps it). ``det_track`` per
    detection: the slot (before the batch) of the track it updated, -1 for none.
    ``took[:k]`` is set to each survivor's detection (-1: none). Returns -1 when the ids are
    not in that order (then nothing is moved), else ``k``."""
    s = 0
    for i in range(n0):
        if s < k and before[i] == after[s]:
            s += 1
    if s != k:
        return -1
    moved_to = np.empty(n0, dtype=np.int64)  # each slot's survivor index, -1: deleted
    s = 0
    for i in range(n0):
        if s < k and before[i] == after[s]:
            moved_to[i] = s
            if s != i:
                for m in range(2):
                    mu[s, m] = mu[i, m]
                    for a in range(4):
                        xm[s, m, a] = xm[i, m, a]
                        for b in range(4):
                            Pm[s, m, a, b] = Pm[i, m, a, b]
            s += 1
        else:
            moved_to[i] = -1
    for r in range(k):
        took[r] = -1
    for j in range(det_track.shape[0]):
        i = det_track[j]
        if 0 <= i < n0 and moved_to[i] >= 0:
            took[moved_to[i]] = j
    return k


@ngjit
def imm_after(
    before,
    n0,
    after,
    k,
    n,
    det_track,
    collapse,
    xm,
    Pm,
    mu,
    z,
    R,
    position_only,
    mu_floor,
    coast_model,
    mu0,
    x,
    P,
    out_x,
    out_P,
):  # pragma: no cover - compiled
    """An IMM tracker's models after the tracker's batch, in one call: :func:`imm_follow`
    (survivors ``0..k-1`` of the ``n0`` slots before it); a survivor whose detection has
    ``collapse`` set (a tower's polar row, updated by the tracker's EKF: one flag per
    detection, or one for all) gets both models at its state ``x``, ``P`` and no update;
    :func:`imm_update` of the rest (the mixture into ``x``, ``P``); the batch's new tracks
    (slots ``k..n-1``) get both models at their state and probabilities ``mu0``; and the
    survivors' states are copied into ``out_x``, ``out_P`` (the batch's track table).
    Returns -1 when the ids are out of order (then nothing is done), else ``k``."""
    took = np.empty(k, dtype=np.int64)
    if imm_follow(before, n0, after, k, det_track, xm, Pm, mu, took) < 0:
        return -1
    one_flag = collapse.shape[0] == 1
    for r in range(k):
        j = took[r]
        if j >= 0 and collapse[0 if one_flag else j]:
            for m in range(2):
                for a in range(4):
                    xm[r, m, a] = x[r, a]
                    for b in range(4):
                        Pm[r, m, a, b] = P[r, a, b]
            took[r] = -1
    imm_update(xm, Pm, mu, k, took, z, R, position_only, mu_floor, coast_model, x, P)
    for i in range(k, n):
        for m in range(2):
            mu[i, m] = mu0[m]
            for a in range(4):
                xm[i, m, a] = x[i, a]
                for b in range(4):
                    Pm[i, m, a, b] = P[i, a, b]
    for i in range(k):
        for a in range(4):
            out_x[i, a] = x[i, a]
            for b in range(4):
                out_P[i, a, b] = P[i, a, b]
    return k


@ngjit
def _associate_pass(
    x, P, n, z, R, sel, free, gamma, cost_offset, pt, pdet, pc, cell_start, track_det, det_track
):  # pragma: no cover - compiled
    """:meth:`vigil.tracks.tracker.Tracker._associate` in one call: the same grid (its cell
    size by the same float operations in the same order), :func:`gate_pairs` and
    :func:`assign_gnn`. The pair and cell buffers are replaced by larger ones when too
    small (their size changes nothing else). Returns the clusters and the buffers."""
    m = z.shape[0]
    x0, y0, x1, y1, r_var_max = batch_extent(z, R)
    radius = np.empty(n)
    gate_radius(P, n, r_var_max, gamma, radius)
    extent = max(x1 - x0, y1 - y0)
    area_cell = math.sqrt(max((x1 - x0) * (y1 - y0), 1.0) / (2.0 * m))
    cell = max(max(max(mean_selected(radius, sel, n), 5.0), area_cell), extent / 1024.0)
    nx = int(min((x1 - x0) / cell, 1023.0)) + 1
    ny = int(min((y1 - y0) / cell, 1023.0)) + 1
    if cell_start.shape[0] < nx * ny + 1:
        cell_start = np.empty(nx * ny + 1, dtype=np.int64)
    order = np.empty(m, dtype=np.int64)
    inv = 1.0 / cell
    grid_index(z, m, x0, y0, inv, nx, ny, cell_start, order)
    while True:
        npairs = gate_pairs(
            x, P, n, sel, radius, z, R, free, x0, y0, inv, nx, ny, cell_start, order, gamma,
            cost_offset, pt, pdet, pc,
        )  # fmt: skip
        if npairs >= 0:
            break
        size = 4 * pt.shape[0]
        pt = np.empty(size, dtype=np.int64)
        pdet = np.empty(size, dtype=np.int64)
        pc = np.empty(size)
    clusters = assign_gnn(n, m, pt, pdet, pc, npairs, track_det, det_track)
    return clusters, pt, pdet, pc, cell_start


@ngjit
def _clutter_add(state, t, z, sigma_m, false, died, born, memory_s):  # pragma: no cover
    """:meth:`vigil.tracks.evidence.ClutterDensity.add` on its ``state``, the same float
    operations in the same order (``z`` has at least one row)."""
    if math.isfinite(state[2]):
        keep = math.exp(-(t - state[2]) / memory_s)
        state[7] = keep * state[7] + died
        state[8] = keep * state[8] + born
    else:
        state[7] += died
        state[8] += born
    zx0 = zx1 = z[0, 0]
    zy0 = zy1 = z[0, 1]
    for j in range(1, z.shape[0]):
        zx0 = min(zx0, z[j, 0])
        zx1 = max(zx1, z[j, 0])
        zy0 = min(zy0, z[j, 1])
        zy1 = max(zy1, z[j, 1])
    state[3] = min(state[3], zx0)
    state[4] = min(state[4], zy0)
    state[5] = max(state[5], zx1)
    state[6] = max(state[6], zy1)
    if state[5] < state[3]:
        return
    first = not math.isfinite(state[2])
    fade = 0.0 if first else math.exp(-(t - state[2]) / memory_s)
    side = 10.0 * sigma_m
    area = max(state[5] - state[3], side) * max(state[6] - state[4], side)
    state[0] = fade * state[0] + false + (1.0 if first else 0.0)
    state[1] = fade * state[1] + area
    state[2] = t


@ngjit
def imm_batch(
    ids,
    status,
    x,
    P,
    t_est,
    t_hit,
    t_first,
    hits,
    scans,
    n_updates,
    cls,
    cev,
    llr,
    xm,
    Pm,
    mu,
    clutter,
    n,
    next_id,
    t,
    predict,
    z,
    sigma,
    q,
    sojourn_s,
    mu0,
    prior,
    new_status,
    f,
    pt,
    pdet,
    pc,
    cell_start,
    det_id,
    new,
    out,
):  # pragma: no cover - compiled
    """One batch of :class:`vigil.tracks.imm.ImmTracker` (its usual case: positions with a
    sigma each, ``track_score`` on, every track in view, every detection may start a track,
    no class guesses, no polar rows) in one call, the same steps as
    ``ImmTracker.update`` and ``Tracker.update`` by the same kernels in the same order: the
    models mixed and predicted (:func:`imm_predict`, when ``predict``), GNN association
    (confirmed tracks first, then tentative), :func:`hit_loglik`, :func:`kalman_update`,
    :func:`manage_score`, the clutter estimate (:func:`_clutter_add` on ``clutter``),
    :func:`compact`, new tentative tracks and :func:`imm_after`.

    The tracker's arrays (capacity at least ``n + m``) change in place. ``z`` ``(m, 2)``
    positions (m), ``sigma`` one per detection or one for all (m); ``f`` holds the
    constants and this batch's scalars, in this order: process noise, gate, cost offset,
    ``ln Pd``, ``ln(1 - Pd)``, ``ln lambda``, confirmation and deletion thresholds, tentative
    gap (s), longest coast (s), largest position variance (m^2), the coasting report
    variance (m^2), the batch's median sigma (m), the clutter memory (s), a new track's
    velocity variance (m^2/s^2) and the models' probability floor. ``det_id``, ``new`` (per
    detection: the track it updated or started, whether it started one) and ``out`` (live
    tracks, next id, clusters, pair and cell buffer sizes wanted) are written. Returns 0;
    -1, having changed nothing, when a position or sigma is not finite or a sigma not above
    0 (the caller's checks then name it); -2 when the ids came out of order.
    """
    m = z.shape[0]
    one_sigma = sigma.shape[0] == 1
    for j in range(m):
        s = sigma[0 if one_sigma else j]
        if not (math.isfinite(z[j, 0]) and math.isfinite(z[j, 1])):
            return -1
        if not (math.isfinite(s) and s > 0.0):
            return -1
    R = np.zeros((m, 2, 2))
    for j in range(m):
        s = sigma[0 if one_sigma else j]
        R[j, 0, 0] = s * s
        R[j, 1, 1] = s * s
    n0 = n
    if predict:
        imm_predict(xm, Pm, mu, t_est, n0, t, q, sojourn_s, x, P)
    before = ids[:n0].copy()
    predict_cv(x, P, t_est, n, t, f[0])
    track_det = np.full(n, -1, dtype=np.int64)
    det_track = np.full(m, -1, dtype=np.int64)
    clusters = 0
    if n > 0 and m > 0:
        tentative = np.empty(n, dtype=np.bool_)
        n_tent = 0
        for i in range(n):
            tentative[i] = status[i] == TENTATIVE
            n_tent += 1 if tentative[i] else 0
        free = np.ones(m, dtype=np.bool_)
        if n_tent < n:
            c, pt, pdet, pc, cell_start = _associate_pass(
                x, P, n, z, R, ~tentative, free, f[1], f[2], pt, pdet, pc, cell_start,
                track_det, det_track,
            )  # fmt: skip
            clusters += c
        any_free = False
        for j in range(m):
            free[j] = det_track[j] < 0
            any_free = any_free or free[j]
        if n_tent > 0 and any_free:
            c, pt, pdet, pc, cell_start = _associate_pass(
                x, P, n, z, R, tentative, free, f[1], f[2], pt, pdet, pc, cell_start,
                track_det, det_track,
            )  # fmt: skip
            clusters += c
    one_false = np.zeros(1, dtype=np.bool_)
    pos_only = np.zeros(m, dtype=np.bool_)
    hit_ll = np.empty(n)
    hit_loglik(P, n, track_det, R, x, z, hit_ll)
    was_tentative = np.empty(n, dtype=np.bool_)
    for i in range(n):
        was_tentative[i] = status[i] == TENTATIVE
    kalman_update(x, P, n, track_det, z, R, pos_only)
    view = np.ones(n, dtype=np.bool_)
    manage_score(
        status, llr, n_updates, t_hit, P, n, track_det, hit_ll, view, t, f[3], f[4], f[5],
        f[6], f[7], f[8], f[9], f[10], f[11],
    )  # fmt: skip
    false = 0
    died = 0
    born = 0
    for i in range(n):
        if was_tentative[i]:
            if status[i] == DELETED:
                died += 1
                false += n_updates[i]
            elif status[i] == CONFIRMED:
                born += 1
    _clutter_add(clutter, t, z, f[12], false, died, born, f[13])
    for j in range(m):
        i = det_track[j]
        det_id[j] = ids[i] if i >= 0 else -1
    keep = np.empty(n, dtype=np.bool_)
    kept = 0
    for i in range(n):
        keep[i] = status[i] != DELETED
        kept += 1 if keep[i] else 0
    if kept < n:
        n = compact(
            keep, n, ids, status, x, P, t_est, t_hit, t_first, hits, scans, n_updates, cls, cev,
            llr,
        )  # fmt: skip
    k = n
    last = cev.shape[1] - 1
    for j in range(m):
        new[j] = det_track[j] < 0
        if not new[j]:
            continue
        s = n
        ids[s] = next_id
        det_id[j] = next_id
        next_id += 1
        status[s] = new_status
        x[s, 0] = z[j, 0]
        x[s, 1] = z[j, 1]
        x[s, 2] = 0.0
        x[s, 3] = 0.0
        for a in range(4):
            for b in range(4):
                P[s, a, b] = 0.0
        P[s, 0, 0] = R[j, 0, 0]
        P[s, 0, 1] = R[j, 0, 1]
        P[s, 1, 0] = R[j, 1, 0]
        P[s, 1, 1] = R[j, 1, 1]
        P[s, 2, 2] = f[14]
        P[s, 3, 3] = f[14]
        t_est[s] = t
        t_hit[s] = t
        t_first[s] = t
        hits[s] = 1
        scans[s] = 1
        n_updates[s] = 1
        for c in range(cls.shape[1]):
            cls[s, c] = prior[c]
        for c in range(last):
            cev[s, c] = 0.0
        cev[s, last] = t
        for c in range(llr.shape[1]):
            llr[s, c] = 0.0
        n += 1
    done = imm_after(
        before, n0, ids, k, n, det_track, one_false, xm, Pm, mu, z, R, one_false, f[15], 1,
        mu0, x, P, x, P,
    )  # fmt: skip
    out[0] = n
    out[1] = next_id
    out[2] = clusters
    out[3] = pt.shape[0]
    out[4] = cell_start.shape[0]
    return 0 if done >= 0 else -2


# -- vigil track's input order and output -----------------------------------------------------


@ngjit
def _merge_pass(src, dst, n, width, x, y):  # pragma: no cover - compiled
    """One pass of a bottom-up merge sort of row numbers by ``(x, y)``: merges each pair
    of sorted runs of ``width`` in ``src[:n]`` into ``dst``; ties keep their order."""
    for lo in range(0, n, 2 * width):
        mid = min(lo + width, n)
        hi = min(lo + 2 * width, n)
        i = lo
        j = mid
        for k in range(lo, hi):
            if i < mid and j < hi:
                ri = src[i]
                rj = src[j]
                if x[rj] < x[ri] or (x[rj] == x[ri] and y[rj] < y[ri]):
                    dst[k] = rj
                    j += 1
                else:
                    dst[k] = ri
                    i += 1
            elif i < mid:
                dst[k] = src[i]
                i += 1
            else:
                dst[k] = src[j]
                j += 1


@ngjit
def canonical_order(t, sensor, x, y, order):  # pragma: no cover - compiled
    """``order[:] = np.lexsort((y, x, sensor, t))``: the rows by time, sensor, x, then y
    (ties by row number). Rows already in time and sensor order (the usual file) are only
    sorted within each batch (a stable merge sort on ``(x, y)``)."""
    n = t.shape[0]
    in_order = True
    for i in range(1, n):
        if t[i] < t[i - 1] or (t[i] == t[i - 1] and sensor[i] < sensor[i - 1]):
            in_order = False
            break
    if in_order:
        for i in range(n):
            order[i] = i
    else:
        by_sensor = np.argsort(sensor, kind="mergesort")
        by_time = np.argsort(t[by_sensor], kind="mergesort")
        for i in range(n):
            order[i] = by_sensor[by_time[i]]
    tmp = np.empty(n, dtype=np.int64)
    a = 0
    while a < n:
        b = a + 1
        while b < n and t[order[b]] == t[order[a]] and sensor[order[b]] == sensor[order[a]]:
            b += 1
        seg = order[a:b]
        other = tmp[a:b]
        width = 1
        passes = 0
        while width < b - a:
            if passes % 2 == 0:
                _merge_pass(seg, other, b - a, width, x, y)
            else:
                _merge_pass(other, seg, b - a, width, x, y)
            passes += 1
            width *= 2
        if passes % 2 == 1:
            seg[:] = other
        a = b


@ngjit
def track_rows(
    track_id, x, P, status, n, batch, limit_var, k, out_id, out_x, out_batch, out_status
):  # pragma: no cover - compiled
    """Append the reported tracks among slots ``0..n-1`` to the output rows from row ``k``:
    every confirmed track, and a coasting one while its larger position variance is at most
    ``limit_var`` (m^2; ``inf`` for every one). Rows take the id, the state, ``batch`` and
    the status; the outputs hold at least ``k + n`` rows. Returns the new row count."""
    for i in range(n):
        st = status[i]
        if st != CONFIRMED and (st != COASTING or max(P[i, 0, 0], P[i, 1, 1]) > limit_var):
            continue
        out_id[k] = track_id[i]
        for a in range(4):
            out_x[k, a] = x[i, a]
        out_batch[k] = batch
        out_status[k] = st
        k += 1
    return k


@ngjit
def _put_text(buf, p, text):  # pragma: no cover - compiled
    """Copy the bytes ``text`` to ``buf`` at ``p``; return the position after them."""
    for s in range(text.shape[0]):
        buf[p + s] = text[s]
    return p + text.shape[0]


@ngjit
def _put_digits(buf, p, q, point):  # pragma: no cover - compiled
    """Write ``q`` (>= 0) in decimal at ``p`` with a point before its last ``point`` digits
    (none when ``point`` is 0; zeros in front as needed: ``0.005``); return the end."""
    n = 1
    pw = 10
    while n < 18 and q >= pw:
        pw *= 10
        n += 1
    if q >= pw:  # 19 digits
        n += 1
    n = max(n, point + 1)
    end = p + n + (1 if point > 0 else 0)
    pos = end - 1
    for _ in range(point):
        buf[pos] = 48 + q % 10
        q //= 10
        pos -= 1
    if point > 0:
        buf[pos] = 46  # '.'
        pos -= 1
    while pos >= p:
        buf[pos] = 48 + q % 10
        q //= 10
        pos -= 1
    return end


@ngjit
def _put_fixed(buf, p, v, digits, scale):  # pragma: no cover - compiled
    """Write ``v`` with ``digits`` decimals (``%.3f``-like: ``|v|`` times ``scale`` =
    ``10^digits`` rounded half to even, a minus sign only when that is not 0);
    ``|v| < 1e12``."""
    y = abs(v) * scale
    r = math.floor(y)
    rest = y - r
    if rest > 0.5 or (rest == 0.5 and r % 2.0 == 1.0):
        r += 1.0
    q = int(r)
    if v < 0.0 and q > 0:
        buf[p] = 45  # '-'
        p += 1
    return _put_digits(buf, p, q, digits)


@ngjit
def format_rows(
    buf, p, n, track_id, state, status, pos_digits, vel_digits, t_text, time_text, words, off
):  # pragma: no cover - compiled
    """One batch's rows of ``vigil track``'s CSV, ``t,track_id,x,y,vx,vy,time,status``, as
    ASCII into ``buf`` from ``p`` (room enough); returns the end. Rows ``0..n-1`` of
    ``track_id``, ``state`` (``x, y, vx, vy``, each below 1e12 in size: positions with
    ``pos_digits`` decimals, velocities ``vel_digits``) and ``status`` (its text is
    ``words[off[s]:off[s + 1]]``); ``t_text`` and ``time_text`` the batch's."""
    pos_scale = 1
    for _ in range(pos_digits):
        pos_scale *= 10
    vel_scale = 1
    for _ in range(vel_digits):
        vel_scale *= 10
    for r in range(n):
        p = _put_text(buf, p, t_text)
        buf[p] = 44  # ','
        p += 1
        v = track_id[r]
        if v < 0:
            buf[p] = 45
            p += 1
            v = -v
        p = _put_digits(buf, p, v, 0)
        for a in range(4):
            buf[p] = 44
            p += 1
            if a < 2:
                p = _put_fixed(buf, p, state[r, a], pos_digits, float(pos_scale))
            else:
                p = _put_fixed(buf, p, state[r, a], vel_digits, float(vel_scale))
        buf[p] = 44
        p += 1
        p = _put_text(buf, p, time_text)
        buf[p] = 44
        p += 1
        s = status[r]
        for c in range(off[s], off[s + 1]):
            buf[p] = words[c]
            p += 1
        buf[p] = 10  # '\n'
        p += 1
    return p
