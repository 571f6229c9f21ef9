"""The array-level tracker: predict, gate, associate, update, manage, initiate, per batch.

Like Stone Soup's ``MultiTargetTracker``, a set of parts (predictor, gater, associator, updater,
initiator, deleter), each a numba kernel on all tracks at once (:mod:`vigil.tracks.kernels`);
:meth:`Tracker.update` takes one batch of detections at one time, local metres east, north.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vigil.tracks.aot import kernels
from vigil.tracks.config import CLASSES, TrackerConfig
from vigil.tracks.evidence import ClutterDensity, cost_offset
from vigil.tracks.measurement import BatchError, position_measurements
from vigil.tracks.slots import LiveSlots
from vigil.tracks.table import CONFIRMED, DELETED, TENTATIVE, TrackerSnapshot, TrackTable

if TYPE_CHECKING:  # the polar model (numba) is imported when a batch has tower rows
    from vigil.tracks.polar import PolarBatch

kern = kernels()  # ahead-of-time compiled when built (vigil.tracks.aot), else numba's

#: Grid cells never smaller than this (m), nor more than this many per side.
_MIN_CELL_M = 5.0
_MAX_CELLS_PER_SIDE = 1024
#: The per-slot arrays, in the order :func:`vigil.tracks.kernels.compact` takes them.
_ARRAYS = ("_id", "_status", "_x", "_P", "_t_est", "_t_hit", "_t_first", "_hits", "_scans",
           "_n_updates", "_class", "_cev", "_llr")  # fmt: skip


def _median(values: NDArray[np.float64]) -> float:
    """``np.median(values)``, without its cost when every value is the same (one sigma)."""
    lo = float(values.min())
    return lo if lo == float(values.max()) else float(np.median(values))


class Tracker:
    """Multi-target tracker over batches of position detections.

    Parameters
    ----------
    config
        Filter, gating and track-management settings.

    Examples
    --------
    >>> import numpy as np
    >>> tracker = Tracker()
    >>> for t in range(4):
    ...     _ = tracker.update(float(t), np.array([[1.5 * t, 0.0]]))
    >>> table = tracker.tracks().confirmed()
    >>> len(table), int(table.track_id[0])
    (1, 1)
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = (config or TrackerConfig()).check()
        prior = np.asarray(self.config.class_prior, dtype=np.float64)
        self._prior = prior / prior.sum()
        self._log_prior = np.log(self._prior)
        c = self.config
        self._gamma = -2.0 * math.log(1.0 - c.gate_probability)
        pd = c.detection_probability
        self._cost_offset = cost_offset(c.clutter_density_per_m2, pd)
        self._clutter = ClutterDensity(c.clutter_memory_s)
        self._max_var = c.max_position_sigma_m**2
        self.n = 0
        self.next_id = 1
        self.time = -math.inf
        self._alloc(256)
        self._pairs = 4096
        self._pair_track = np.empty(self._pairs, dtype=np.int64)
        self._pair_det = np.empty(self._pairs, dtype=np.int64)
        self._pair_cost = np.empty(self._pairs)
        self._cell_start = np.empty(1, dtype=np.int64)
        #: Per detection of the last batch: the id of the track it updated or started.
        self.last_det_track_id: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        #: Per detection of the last batch: whether it started a new tentative track.
        self.last_det_new: NDArray[np.bool_] = np.empty(0, dtype=np.bool_)
        self.last_clusters = 0

    # -- storage ------------------------------------------------------------------------------

    def _alloc(self, cap: int) -> None:
        self.cap = cap
        self._id = np.zeros(cap, dtype=np.int64)
        self._status = np.zeros(cap, dtype=np.int8)
        self._x = np.zeros((cap, 4))
        self._P = np.zeros((cap, 4, 4))
        self._t_est = np.zeros(cap)
        self._t_hit = np.zeros(cap)
        self._t_first = np.zeros(cap)
        self._hits = np.zeros(cap, dtype=np.int64)
        self._scans = np.zeros(cap, dtype=np.int64)
        self._n_updates = np.zeros(cap, dtype=np.int64)
        self._class = np.full((cap, len(CLASSES)), 1.0 / len(CLASSES))
        #: Class evidence: log-likelihood sum per class, informative guesses, last time (s).
        self._cev = np.zeros((cap, len(CLASSES) + 2))
        #: Track score (log-likelihood ratio) and its peak, with ``track_score``.
        self._llr = np.zeros((cap, 2))

    def _grow(self, need: int) -> None:
        cap = self.cap
        while cap < need:
            cap *= 2
        old = {name: getattr(self, name) for name in _ARRAYS}
        self._alloc(cap)
        for name, arr in old.items():
            getattr(self, name)[: self.n] = arr[: self.n]

    def snapshot(self) -> TrackerSnapshot:
        """A copy of the tracker's state, to :meth:`restore` later."""
        arrays = tuple(getattr(self, name)[: self.n].copy() for name in _ARRAYS)
        arrays += (self._clutter.state.copy(),)
        return TrackerSnapshot(self.n, self.next_id, self.time, arrays)

    def restore(self, snap: TrackerSnapshot) -> None:
        """Go back to a :meth:`snapshot`."""
        if snap.n > self.cap:
            self._grow(snap.n)
        for name, arr in zip(_ARRAYS, snap.arrays[: len(_ARRAYS)], strict=True):
            getattr(self, name)[: snap.n] = arr
        self._clutter.state[:] = snap.arrays[len(_ARRAYS)]
        self.n = snap.n
        self.next_id = snap.next_id
        self.time = snap.time

    def delete(self, track_ids: ArrayLike) -> int:
        """Delete the tracks with these ids (a fusion stage merging duplicates); returns how
        many were found."""
        ids = np.asarray(track_ids, dtype=np.int64)
        n = self.n
        drop = np.isin(self._id[:n], ids)
        found = int(drop.sum())
        if found:
            self.n = kern.compact(~drop, n, *(getattr(self, a) for a in _ARRAYS))
        return found

    def add_class_evidence(
        self, i: int | NDArray[np.int64], likelihood: NDArray[np.float64], t: float
    ) -> None:
        """Add class likelihoods (person, vehicle, animal) at time ``t`` (s) to track slot
        ``i``'s evidence, as a detection's class guess is added (see
        :func:`vigil.tracks.kernels.add_class_evidence`), and recompute its class probabilities.
        ``i`` may be distinct slots ``(k,)`` with one likelihood row each ``(k, classes)``."""
        c, n = self.config, self.n
        slots = np.asarray(i, dtype=np.int64).reshape(-1)
        lik = np.ascontiguousarray(likelihood, dtype=np.float64).reshape(slots.size, len(CLASSES))
        row = np.full(n, -1, dtype=np.int64)  # each slot's row of ``lik``: one kernel call
        row[slots] = np.arange(slots.size)
        kern.fuse_class(self._class, self._cev, n, row, lik, c.class_floor, float(t),
                        c.class_memory_s, c.class_max_evidence, self._log_prior)  # fmt: skip

    def absorb_class(self, i: int, evidence: NDArray[np.float64]) -> None:
        """Add another track's class evidence row (a stitched or merged duplicate of track
        slot ``i``) to slot ``i``'s, both faded to the later of their times."""
        k = len(CLASSES)
        mem = self.config.class_memory_s
        ev = self._cev[i]
        t = max(float(ev[k + 1]), float(evidence[k + 1]))
        a, b = 1.0, 1.0
        if mem > 0.0:
            a = math.exp(-(t - float(ev[k + 1])) / mem)
            b = math.exp(-(t - float(evidence[k + 1])) / mem)
        ev[: k + 1] = a * ev[: k + 1] + b * evidence[: k + 1]
        ev[k + 1] = t
        c = self.config
        kern.class_from_evidence(
            self._class, self._cev, i, c.class_floor, c.class_max_evidence, self._log_prior
        )

    def tracks(self) -> TrackTable:
        """A copy of every live track (tentative, confirmed, coasting) at the last batch."""
        n = self.n
        cols = ("_id", "_status", "_x", "_P", "_t_hit", "_n_updates", "_class")
        return TrackTable(self.time, *(getattr(self, a)[:n].copy() for a in cols))

    # -- the live slots, for other parts (fusion, stitching, merging) ------------------------
    # Read-only views of slots 0..n-1, valid until the next call that changes the tracker
    # (update, delete, restore); a slot is a track's row in them.

    ids = LiveSlots("_id", "``(n,)`` each live slot's track id.")
    status = LiveSlots("_status", "``(n,)`` each live slot's state (``TENTATIVE``, ...).")
    x = LiveSlots("_x", "``(n, 4)`` each live slot's state ``[east, north, v_east, v_north]``.")
    P = LiveSlots("_P", "``(n, 4, 4)`` each live slot's state covariance.")
    t_est = LiveSlots("_t_est", "``(n,)`` the time of each live slot's state, s.")
    t_hit = LiveSlots("_t_hit", "``(n,)`` the time of each live slot's last detection, s.")
    t_first = LiveSlots("_t_first", "``(n,)`` the time each live slot's track began, s.")
    n_updates = LiveSlots("_n_updates", "``(n,)`` the detections each track has absorbed.")
    class_evidence = LiveSlots(
        "_cev",
        "``(n, 5)`` each live slot's class evidence: log-likelihood sum per class of "
        ":data:`vigil.tracks.config.CLASSES`, informative guesses, time of the last one (s).",
    )

    @property
    def clutter_density(self) -> float:
        """Estimated density of false detections, per m^2 per batch (``track_score``)."""
        return self._clutter.density(self.config.clutter_density_per_m2)

    @property
    def confirm_raise(self) -> float:
        """How far the confirmation threshold is raised now, log-likelihood ratio units."""
        return self._clutter.confirm_raise()

    def slots_of(self, track_ids: ArrayLike) -> NDArray[np.int64]:
        """The live slots whose track id is among ``track_ids``, in slot order."""
        return np.flatnonzero(np.isin(self._id[: self.n], track_ids))

    def relabel(self, slot: int, track_id: int) -> None:
        """Give live slot ``slot`` the id ``track_id`` (a new track found to continue a lost
        one takes back its id); the id must not be live already."""
        if (self._id[: self.n] == track_id).any():
            raise ValueError(f"track id {track_id} is live already; expected a free one")
        self._id[slot] = track_id

    def absorb(self, slot: int, class_evidence: NDArray[np.float64] | None, n_updates: int) -> None:
        """Fold another track (a merged or stitched duplicate) into live slot ``slot``: its
        class evidence row (see :attr:`class_evidence`; ``None`` to keep the slot's class as
        it is) and its count of detections."""
        if class_evidence is not None:
            self.absorb_class(slot, class_evidence)
        self._n_updates[slot] += n_updates

    # -- one batch ----------------------------------------------------------------------------

    def update(
        self,
        t: float,
        z: ArrayLike,
        R: ArrayLike | None = None,
        *,
        sigma: ArrayLike | float | None = None,
        class_likelihood: ArrayLike | None = None,
        in_view: NDArray[np.bool_] | None = None,
        can_initiate: ArrayLike | bool = True,
        position_only: ArrayLike | bool = False,
        polar: PolarBatch | None = None,
    ) -> TrackTable:
        """Absorb one batch of detections made at time ``t``; return the tracks afterwards.

        Parameters
        ----------
        t
            Time of the batch, seconds; not before the previous batch.
        z
            ``(m, 2)`` detected positions, metres east and north in the local frame.
        R
            ``(m, 2, 2)`` measurement covariances, m^2. When omitted, ``sigma`` (m, one per
            detection or one for all) or the config's ``default_sigma_m`` gives ``sigma^2 I``.
        class_likelihood
            ``(m, 3)`` likelihood of each detection's class guess under person, vehicle,
            animal; omitted means no class information.
        in_view
            ``(n,)`` which current tracks (in :meth:`tracks` order) this batch's sensor
            could have seen; a track out of view does not count a miss. Default: all.
        can_initiate
            Whether unassociated detections start tentative tracks (one flag per detection
            or one for all).
        position_only
            Whether a detection updates a track's position alone, leaving its velocity as
            it was (one flag per detection or one for all): for sensors that say a target is
            near them, not where, such as ground sensors (see
            :func:`vigil.tracks.kernels.kalman_update`).
        polar
            Tower detections' own model (:mod:`vigil.tracks.polar`), one row per detection:
            its polar rows gate on the polar innovation and update by EKF; ``z``, ``R`` hold
            their converted positions (:func:`vigil.tracks.polar.to_position`).
        """
        t = float(t)
        if not math.isfinite(t):
            raise BatchError(f"batch time {t!r}; expected a finite number of seconds")
        if t < self.time:
            raise BatchError(
                f"batch time {t!r} is before the previous batch ({self.time!r}); "
                "feed batches in time order (FusionTracker reorders late ones)"
            )
        zz, RR = position_measurements(z, R, sigma, self.config.default_sigma_m, polar)
        m = zz.shape[0]
        lik = None
        if class_likelihood is not None:
            lik = np.ascontiguousarray(class_likelihood, dtype=np.float64)
            if lik.shape != (m, len(CLASSES)) or not np.all(np.isfinite(lik)) or np.any(lik < 0):
                raise BatchError(
                    f"class_likelihood has shape {lik.shape}; expected ({m}, {len(CLASSES)}) "
                    "finite non-negative values"
                )
        n = self.n
        view = np.ones(n, dtype=np.bool_) if in_view is None else np.asarray(in_view, np.bool_)
        if view.shape != (n,):
            raise BatchError(f"in_view has shape {view.shape}; expected ({n},), one per track")
        x, P = self._x, self._P
        c = self.config

        kern.predict_cv(x, P, self._t_est, n, t, c.process_noise)
        if c.track_score:
            lam = self._clutter.density(c.clutter_density_per_m2)
            self._cost_offset = cost_offset(lam, c.detection_probability)
        track_det = np.full(n, -1, dtype=np.int64)
        det_track = np.full(m, -1, dtype=np.int64)
        self.last_clusters = 0
        if n and m:
            # Confirmed and coasting tracks choose first; tentative tracks take what is left,
            # so a track being born never takes a detection from an established one.
            tentative = self._status[:n] == TENTATIVE
            free = np.ones(m, dtype=np.bool_)
            if not tentative.all():
                self.last_clusters += self._associate(
                    zz, RR, ~tentative, free, track_det, det_track
                )
            if tentative.any() and (det_track < 0).any():
                free = det_track < 0
                self.last_clusters += self._associate(zz, RR, tentative, free, track_det, det_track)
        if polar is not None:
            from vigil.tracks.polar import polar_gate, polar_step
        if polar is not None and n and m:
            polar_gate(x, P, n, track_det, det_track, polar, self._gamma)
        pos_only = np.ascontiguousarray(
            np.broadcast_to(np.asarray(position_only, dtype=np.bool_), (m,))
        )
        if c.track_score:
            hit_ll = np.empty(n)
            kern.hit_loglik(P, n, track_det, RR, x, zz, hit_ll)
            was_tentative = self._status[:n] == TENTATIVE
            sig = math.sqrt(_median(RR[:, 0, 0] + RR[:, 1, 1]) / 2.0) if m else 0.0
        pos_det = track_det if polar is None else polar_step(x, P, n, track_det, polar)
        kern.kalman_update(x, P, n, pos_det, zz, RR, pos_only)
        if lik is not None:
            kern.fuse_class(
                self._class,
                self._cev,
                n,
                track_det,
                lik,
                c.class_floor,
                t,
                c.class_memory_s,
                c.class_max_evidence,
                self._log_prior,
            )
        if c.track_score:
            pd = c.detection_probability
            kern.manage_score(
                self._status,
                self._llr,
                self._n_updates,
                self._t_hit,
                P,
                n,
                track_det,
                hit_ll,
                view,
                t,
                math.log(pd),
                math.log(1.0 - pd),
                math.log(lam),
                c.confirm_llr + self._clutter.confirm_raise(),
                c.delete_llr,
                c.tentative_max_gap_s,
                c.max_coast_s,
                self._max_var,
                (c.report_coast_sigma_ratio * sig) ** 2,
            )
            # a tentative track that dies unconfirmed: its detections were false alarms
            died = was_tentative & (self._status[:n] == DELETED)
            born = was_tentative & (self._status[:n] == CONFIRMED)
            false = int(self._n_updates[:n][died].sum())
            self._clutter.add(t, zz, sig, false, int(died.sum()), int(born.sum()))
        else:
            self._manage(track_det, view, t)
        det_id = np.full(m, -1, dtype=np.int64)
        hit = det_track >= 0
        det_id[hit] = self._id[det_track[hit]]
        keep = self._status[:n] != DELETED
        if not keep.all():
            self.n = n = kern.compact(keep, n, *(getattr(self, a) for a in _ARRAYS))
        new = ~hit & np.broadcast_to(np.asarray(can_initiate, dtype=np.bool_), (m,))
        det_id[new] = self._initiate(t, zz[new], RR[new], None if lik is None else lik[new])
        self.last_det_track_id = det_id
        self.last_det_new = new
        self.time = t
        return self.tracks()

    def _manage(self, track_det: NDArray[np.int64], view: NDArray[np.bool_], t: float) -> None:
        """M-of-N confirmation and coasting in seconds (without ``track_score``)."""
        P, n, c = self._P, self.n, self.config
        kern.manage(
            self._status, self._hits, self._scans, self._n_updates, self._t_hit, P, n,
            track_det, view, t, c.confirm_m, c.confirm_n, c.tentative_max_gap_s, c.max_coast_s,
            self._max_var,
        )  # fmt: skip

    def _associate(
        self,
        z: NDArray[np.float64],
        R: NDArray[np.float64],
        track_sel: NDArray[np.bool_],
        det_free: NDArray[np.bool_],
        track_det: NDArray[np.int64],
        det_track: NDArray[np.int64],
    ) -> int:
        """Gate and assign the selected tracks to the free detections (GNN per cluster)."""
        n, m = self.n, z.shape[0]
        x0, y0, x1, y1, r_var_max = kern.batch_extent(z, R)
        radius = np.empty(n)
        kern.gate_radius(self._P, n, r_var_max, self._gamma, radius)
        extent = max(x1 - x0, y1 - y0)
        # cells about a gate wide, but never many more cells than detections: zeroing and
        # summing the grid must stay O(m) however wide the scene
        area_cell = math.sqrt(max((x1 - x0) * (y1 - y0), 1.0) / (2.0 * m))
        cell = max(
            kern.mean_selected(radius, track_sel, n),
            _MIN_CELL_M,
            area_cell,
            extent / _MAX_CELLS_PER_SIDE,
        )
        nx = int(min((x1 - x0) / cell, _MAX_CELLS_PER_SIDE - 1)) + 1
        ny = int(min((y1 - y0) / cell, _MAX_CELLS_PER_SIDE - 1)) + 1
        if self._cell_start.shape[0] < nx * ny + 1:
            self._cell_start = np.empty(nx * ny + 1, dtype=np.int64)
        order = np.empty(m, dtype=np.int64)
        inv = 1.0 / cell
        kern.grid_index(z, m, x0, y0, inv, nx, ny, self._cell_start, order)
        while True:
            npairs = kern.gate_pairs(
                self._x, self._P, n, track_sel, radius, z, R, det_free, x0, y0, inv, nx, ny,
                self._cell_start, order, self._gamma, self._cost_offset, self._pair_track,
                self._pair_det, self._pair_cost,
            )  # fmt: skip
            if npairs >= 0:
                break
            self._pairs *= 4
            self._pair_track = np.empty(self._pairs, dtype=np.int64)
            self._pair_det = np.empty(self._pairs, dtype=np.int64)
            self._pair_cost = np.empty(self._pairs)
        return kern.assign_gnn(
            n, m, self._pair_track, self._pair_det, self._pair_cost, npairs, track_det, det_track
        )

    def _initiate(
        self,
        t: float,
        z: NDArray[np.float64],
        R: NDArray[np.float64],
        lik: NDArray[np.float64] | None,
    ) -> NDArray[np.int64]:
        """Start a tentative track at each detection: zero velocity, wide velocity prior."""
        k = z.shape[0]
        if k == 0:
            return np.empty(0, dtype=np.int64)
        n = self.n
        if n + k > self.cap:
            self._grow(n + k)
        s = slice(n, n + k)
        ids = np.arange(self.next_id, self.next_id + k, dtype=np.int64)
        self.next_id += k
        self._id[s] = ids
        self._status[s] = CONFIRMED if self.config.confirm_m <= 1 else TENTATIVE
        self._x[s, :2] = z
        self._x[s, 2:] = 0.0
        self._P[s] = 0.0
        self._P[s, :2, :2] = R
        v = self.config.initial_speed_sigma_mps**2
        self._P[s, 2, 2] = v
        self._P[s, 3, 3] = v
        self._t_est[s] = t
        self._t_hit[s] = t
        self._t_first[s] = t
        self._hits[s] = 1
        self._scans[s] = 1
        self._n_updates[s] = 1
        self._class[s] = self._prior
        self._cev[s] = 0.0
        self._cev[s, -1] = t
        self._llr[s] = 0.0
        if lik is not None:  # each new track takes its own detection's guess
            c = self.config
            kern.fuse_class(
                self._class[s],
                self._cev[s],
                k,
                np.arange(k, dtype=np.int64),
                lik,
                c.class_floor,
                t,
                c.class_memory_s,
                c.class_max_evidence,
                self._log_prior,
            )
        self.n = n + k
        return ids
