"""Motion that fits people: an interacting multiple model (IMM) around the array tracker.

People on foot walk on steady headings for a while, then turn, stop or start. One
nearly-constant-velocity filter must pick one process noise for both: low, and a turning
walker's track lags and swaps with his neighbours'; high, and a steady walker's velocity
follows each detection's noise (in a group, toward the next member's detections). An IMM
keeps two filters per track, a quiet one (``process_noise``) and a manoeuvring one
(``imm_process_noise``), lets a track switch between them at rate ``1 / imm_sojourn_s``, and
weighs them by how well each predicted the detection (Blom and Bar-Shalom 1988; Stone Soup's
``IMMPredictor`` / ``IMMUpdater``). Gating, association, track management and reports use
the two filters' mixture (its mean and covariance), so the rest of the tracker is unchanged.

:class:`ImmTracker` wraps :class:`vigil.tracks.tracker.Tracker`'s batch: before it, every
track's models are mixed and predicted to the batch time and the mixture written into the
tracker's state (its own prediction then has nothing to do); after it, each track that took
a detection has every model updated with it (numba kernels
:func:`vigil.tracks.kernels.imm_predict` before, :func:`vigil.tracks.kernels.imm_after`
after: one call each a batch, no per-track Python); the usual batch (positions with a
sigma each, evidence-based management, no other option: every ``vigil track`` batch without
tower rows) runs as one kernel, :func:`vigil.tracks.kernels.imm_batch`, the same steps by
the same kernels without the Python between them (the same bits: tests/test_track_imm.py).
A track
updated by a tower's polar model (:mod:`vigil.tracks.polar`) collapses its models onto the
tracker's own update. :func:`make_tracker` gives an :class:`ImmTracker` when the settings ask
for one (``imm_process_noise > 0``), else a plain :class:`Tracker`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vigil.tracks.aot import kernels
from vigil.tracks.config import TrackerConfig
from vigil.tracks.evidence import cost_offset
from vigil.tracks.measurement import position_measurements
from vigil.tracks.table import CONFIRMED, TENTATIVE, TrackerSnapshot, TrackTable
from vigil.tracks.tracker import Tracker, _median

if TYPE_CHECKING:
    from vigil.tracks.polar import PolarBatch

kern = kernels()

#: A model's probability never falls below this after an update (it can always come back).
MU_FLOOR = 1e-6
#: ``imm_after``'s polar flags for a batch without polar rows (one flag for all: none)
_NO_COLLAPSE = np.zeros(1, dtype=np.bool_)


def make_tracker(config: TrackerConfig | None = None) -> Tracker:
    """An :class:`ImmTracker` when ``config.imm_process_noise > 0``, else a :class:`Tracker`."""
    if config is not None and config.imm_process_noise > 0.0:
        return ImmTracker(config)
    return Tracker(config)


class ImmTracker(Tracker):
    """:class:`Tracker` whose tracks each hold two constant-velocity models (an IMM).

    Parameters
    ----------
    config
        As :class:`Tracker`'s; ``imm_process_noise`` (m^2/s^3, above 0) is the manoeuvring
        model's noise, ``process_noise`` the quiet one's, ``imm_sojourn_s`` (s) the mean time
        in one model.

    Examples
    --------
    >>> import numpy as np
    >>> tracker = ImmTracker(TrackerConfig(imm_process_noise=1.0))
    >>> for t in range(4):
    ...     _ = tracker.update(float(t), np.array([[1.5 * t, 0.0]]))
    >>> len(tracker.tracks().confirmed()), tracker.model_probabilities.shape
    (1, (1, 2))
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        if c.imm_process_noise <= 0.0:
            raise ValueError(
                f"tracker config: imm_process_noise = {c.imm_process_noise!r}; expected > 0 "
                "for an interacting multiple model (0 is one filter: use Tracker)"
            )
        self._q = np.array([c.process_noise, c.imm_process_noise])
        self._sojourn = np.array([c.imm_sojourn_s, c.imm_manoeuvre_s])
        #: a new track's model probabilities: the switching chain's long-run shares
        self._mu0 = self._sojourn / self._sojourn.sum()
        #: :func:`vigil.tracks.kernels.imm_batch`'s constants (its ``f``; the per-batch
        #: entries 2, 5, 6, 11, 12 are set each batch) and outputs
        self._f = np.array([
            c.process_noise, self._gamma, 0.0, math.log(c.detection_probability),
            math.log(1.0 - c.detection_probability), 0.0, 0.0, c.delete_llr,
            c.tentative_max_gap_s, c.max_coast_s, self._max_var, 0.0, 0.0, c.clutter_memory_s,
            c.initial_speed_sigma_mps**2, MU_FLOOR,
        ])  # fmt: skip
        self._out = np.zeros(5, dtype=np.int64)
        self._new_status = CONFIRMED if c.confirm_m <= 1 else TENTATIVE
        #: set by :meth:`_associate` during a batch: its positions, covariances, and each
        #: detection's slot (before the batch) of the track it updated
        self._batch: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]] | None
        self._batch = None

    def _alloc(self, cap: int) -> None:
        super()._alloc(cap)
        self._xm = np.zeros((cap, 2, 4))
        self._Pm = np.zeros((cap, 2, 4, 4))
        self._mu = np.zeros((cap, 2))

    def _grow(self, need: int) -> None:
        old = (self._xm, self._Pm, self._mu)
        super()._grow(need)  # reallocates every array; the models' rows are copied here
        for new, arr in zip((self._xm, self._Pm, self._mu), old, strict=True):
            new[: arr.shape[0]] = arr

    @property
    def model_probabilities(self) -> NDArray[np.float64]:
        """``(n, 2)`` each live slot's probability of the quiet and the manoeuvring model."""
        return self._mu[: self.n].copy()

    def snapshot(self) -> TrackerSnapshot:
        """A copy of the tracker's state (models included), to :meth:`restore` later."""
        snap = super().snapshot()
        n = self.n
        extra = (self._xm[:n].copy(), self._Pm[:n].copy(), self._mu[:n].copy())
        return TrackerSnapshot(snap.n, snap.next_id, snap.time, snap.arrays + extra)

    def restore(self, snap: TrackerSnapshot) -> None:
        """Go back to a :meth:`snapshot`."""
        super().restore(snap)
        xm, Pm, mu = snap.arrays[-3:]
        self._xm[: snap.n], self._Pm[: snap.n], self._mu[: snap.n] = xm, Pm, mu

    def delete(self, track_ids: ArrayLike) -> int:
        """Delete the tracks with these ids; returns how many were found."""
        keep = ~np.isin(self._id[: self.n], np.asarray(track_ids, dtype=np.int64))
        k = int(keep.sum())
        if k < len(keep):  # the models of the kept slots to the front, in order
            for arr in (self._xm, self._Pm, self._mu):
                arr[:k] = arr[: len(keep)][keep]
        return super().delete(track_ids)

    def _associate(
        self,
        z: NDArray[np.float64],
        R: NDArray[np.float64],
        track_sel: NDArray[np.bool_],
        det_free: NDArray[np.bool_],
        track_det: NDArray[np.int64],
        det_track: NDArray[np.int64],
    ) -> int:
        """:meth:`Tracker._associate`, keeping for the models' update the batch's checked
        positions and covariances (``z``, ``R``: contiguous, from
        :func:`position_measurements`; not checked and converted a second time) and
        ``det_track``, each detection's track slot (filled in place by the association; the
        batch's ``last_det_track_id`` is read from it)."""
        self._batch = (z, R, det_track)
        return super()._associate(z, R, track_sel, det_free, track_det, det_track)

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
        """As :meth:`Tracker.update`, with each track's models mixed, predicted and updated."""
        if (
            R is None
            and class_likelihood is None
            and in_view is None
            and polar is None
            and can_initiate is True
            and position_only is False
            and self.config.track_score
        ):
            table = self._update_one_call(t, z, sigma)
            if table is not None:
                return table
        t = float(t)
        n0 = self.n
        if n0 and t > self.time:  # (a bad time is refused by Tracker.update below)
            kern.imm_predict(
                self._xm, self._Pm, self._mu, self._t_est, n0, t, self._q,
                self._sojourn, self._x, self._P,
            )  # fmt: skip
        before = self._id[:n0].copy()
        self._batch = None
        table = super().update(
            t, z, R, sigma=sigma, class_likelihood=class_likelihood, in_view=in_view,
            can_initiate=can_initiate, position_only=position_only, polar=polar,
        )  # fmt: skip
        if self._batch is None:  # no association ran (no tracks or no detections)
            zz, RR = position_measurements(z, R, sigma, self.config.default_sigma_m, polar)
            det_track = np.full(zz.shape[0], -1, dtype=np.int64)
        else:
            zz, RR, det_track = self._batch
            self._batch = None
        # the survivors' models to the front, which detection each took, polar rows' models
        # collapsed onto the tracker's EKF update, the rest updated (a track with no
        # detection in the batch is reported by its manoeuvring model, 1: the person not
        # seen may have turned or stopped, and a coasting track stops being written,
        # report_coast_sigma_ratio, once that model is unsure where he is), the new tracks'
        # models set, and the old tracks' new states into the table
        k = self.n - int(self.last_det_new.sum())
        done = kern.imm_after(
            before, n0, self._id, k, self.n, det_track,
            _NO_COLLAPSE if polar is None else np.ascontiguousarray(polar.valid, np.bool_),
            self._xm, self._Pm, self._mu, zz, RR,
            np.ascontiguousarray(np.asarray(position_only, dtype=np.bool_).reshape(-1)),
            MU_FLOOR, 1, self._mu0, self._x, self._P, table.x, table.P,
        )  # fmt: skip
        if done < 0:
            raise RuntimeError("track ids out of order after a batch; expected compaction's")
        return table

    def _update_one_call(
        self, t: float, z: ArrayLike, sigma: ArrayLike | float | None
    ) -> TrackTable | None:
        """:meth:`update`'s usual case (positions with a sigma each, evidence-based
        management, no other option) by one kernel, :func:`vigil.tracks.kernels.imm_batch`:
        the same steps by the same kernels in the same order as the general path, without
        its Python and numpy calls between them. ``None``, having changed nothing, for a
        batch it does not take (empty, a bad time, shape or value): the general path then
        tracks it or raises its error."""
        t = float(t)
        zz = np.ascontiguousarray(z, dtype=np.float64)
        if not (math.isfinite(t) and t >= self.time) or zz.ndim != 2 or zz.shape[1] != 2:
            return None
        m = zz.shape[0]
        s = self.config.default_sigma_m if sigma is None else sigma
        sig = np.ascontiguousarray(s, dtype=np.float64)
        if sig.ndim > 1:
            return None
        sig = sig.reshape(-1)
        if m == 0 or sig.shape[0] not in (1, m):
            return None
        c = self.config
        # the batch's median sigma as Tracker.update computes it from R = sigma^2 I
        sq = sig * sig
        med = _median(sq + sq)
        sig_med = math.sqrt(med / 2.0)
        lam = self._clutter.density(c.clutter_density_per_m2)
        cost = cost_offset(lam, c.detection_probability)
        f = self._f
        f[2] = cost
        f[5] = math.log(lam)
        f[6] = c.confirm_llr + self._clutter.confirm_raise()
        f[11] = (c.report_coast_sigma_ratio * sig_med) ** 2
        f[12] = sig_med
        n0 = self.n
        if n0 + m > self.cap:
            self._grow(n0 + m)
        det_id = np.empty(m, dtype=np.int64)
        new = np.empty(m, dtype=np.bool_)
        out = self._out
        done = kern.imm_batch(
            self._id, self._status, self._x, self._P, self._t_est, self._t_hit, self._t_first,
            self._hits, self._scans, self._n_updates, self._class, self._cev, self._llr,
            self._xm, self._Pm, self._mu, self._clutter.state, n0, self.next_id, t,
            bool(n0 and t > self.time), zz, sig, self._q, self._sojourn, self._mu0,
            self._prior, self._new_status, f, self._pair_track, self._pair_det,
            self._pair_cost, self._cell_start, det_id, new, out,
        )  # fmt: skip
        if done == -1:
            return None
        if done < 0:
            raise RuntimeError("track ids out of order after a batch; expected compaction's")
        self._cost_offset = cost
        self.n, self.next_id, self.last_clusters = int(out[0]), int(out[1]), int(out[2])
        if out[3] > self._pairs:  # the kernel needed larger buffers: keep them for next time
            self._pairs = int(out[3])
            self._pair_track = np.empty(self._pairs, dtype=np.int64)
            self._pair_det = np.empty(self._pairs, dtype=np.int64)
            self._pair_cost = np.empty(self._pairs)
        if out[4] > self._cell_start.shape[0]:
            self._cell_start = np.empty(int(out[4]), dtype=np.int64)
        self.last_det_track_id = det_id
        self.last_det_new = new
        self.time = t
        return self.tracks()
