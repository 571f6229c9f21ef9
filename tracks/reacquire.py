"""Reacquisition: a new track that continues a lost one takes back its id.

A confirmed track deleted after coasting is kept aside for ``stitch_s``: a new track
confirmed somewhere along its way in that time is the same body found again and takes its
id, class evidence and detection count (stitching). Past ``stitch_s`` the lost track is
ended, yet until ``reacquire_s`` a new track on its way still takes back its id, though not
its class: which body took it up is less sure by then.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from vigil.tracks.config import TrackerConfig
from vigil.tracks.table import COASTING, CONFIRMED, TENTATIVE
from vigil.tracks.tracker import Tracker
from vigil.tracks.trails import Trails


@dataclass
class LostTrack:
    """A confirmed track deleted after coasting, kept aside for stitching (local frame)."""

    track_id: int
    t: float  # time of its state, UTC s
    t_hit: float  # its last detection, UTC s
    x: NDArray[np.float64]  # (4,) x, y, vx, vy
    P: NDArray[np.float64]  # (4, 4)
    class_evidence: NDArray[np.float64]  # its row of Tracker.class_evidence
    n_updates: int
    sensors: set[str]
    expired: bool = False
    #: Its mean velocity over its last minutes (m/s), from its trail; None when too short.
    v_trail: NDArray[np.float64] | None = None


@dataclass(frozen=True)
class BeforeBatch:
    """The settled tracks' rows before a batch (for any the batch deletes), and the ids of
    the tentative ones (those the batch may confirm)."""

    ids: NDArray[np.int64]
    t_est: NDArray[np.float64]
    t_hit: NDArray[np.float64]
    x: NDArray[np.float64]
    P: NDArray[np.float64]
    class_evidence: NDArray[np.float64]
    n_updates: NDArray[np.int64]
    tentative: NDArray[np.int64]


class LostTracks:
    """The lost tracks of one tracker, and the stitching of new tracks onto them.

    Parameters
    ----------
    config
        ``stitch_s``, ``reacquire_s``, ``stitch_speed_mps`` and ``group_radius_m`` are read.
    """

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self._lost: dict[int, LostTrack] = {}
        #: New tracks that took back a lost track's id.
        self.stitched = 0

    def before_batch(self, tracker: Tracker) -> BeforeBatch:
        """Note the settled tracks' rows and the tentative tracks' ids before a batch."""
        status = tracker.status
        settled = np.flatnonzero((status == CONFIRMED) | (status == COASTING))
        return BeforeBatch(
            tracker.ids[settled].copy(),
            tracker.t_est[settled].copy(),
            tracker.t_hit[settled].copy(),
            tracker.x[settled].copy(),
            tracker.P[settled].copy(),
            tracker.class_evidence[settled].copy(),
            tracker.n_updates[settled].copy(),
            tracker.ids[status == TENTATIVE].copy(),
        )

    def note_deleted(
        self,
        before: BeforeBatch,
        tracker: Tracker,
        sensors: Mapping[int, set[str]],
        trails: Trails,
    ) -> None:
        """Keep aside the settled tracks of ``before`` that the batch deleted, with the
        sensors that saw them and their trails' mean velocities."""
        b = before
        for j in np.flatnonzero(~np.isin(b.ids, tracker.ids)):
            k = int(b.ids[j])
            self._lost[k] = LostTrack(
                k, float(b.t_est[j]), float(b.t_hit[j]), b.x[j], b.P[j], b.class_evidence[j],
                int(b.n_updates[j]), sensors.get(k, set()), v_trail=trails.velocity(k),
            )  # fmt: skip

    def may_return(self, track_id: int) -> bool:
        """Whether a track gone from the tracker is lost and may yet be stitched (its end
        is not published yet)."""
        lost = self._lost.get(track_id)
        return lost is not None and not lost.expired

    def stitch(
        self, t: float, tracker: Tracker, tentative: NDArray[np.int64]
    ) -> list[tuple[int, LostTrack]]:
        """Give tracks confirmed by the batch at ``t`` (s) the id of a lost track they
        continue; ``tentative`` holds the track ids that were tentative before it.

        Returns ``(new_id, lost)`` for each track that took back ``lost.track_id``, for
        the caller to move what it keeps by track id.
        """
        c = self.config
        keep_s = max(c.stitch_s, c.reacquire_s)
        for k, lost in list(self._lost.items()):
            if t - lost.t_hit > keep_s:
                del self._lost[k]
            elif not lost.expired and t - lost.t_hit > c.stitch_s:
                self._lost[k] = replace(lost, expired=True)  # ``track_messages`` ends it
        if not self._lost:
            return []
        tr = tracker
        ids, x, P, first = tr.ids, tr.x, tr.P, tr.t_first
        fresh = np.flatnonzero((tr.status == CONFIRMED) & np.isin(ids, tentative))
        taken: list[tuple[int, LostTrack]] = []
        for i in fresh:
            best, best_cost = None, math.inf
            sig_new = math.sqrt(0.5 * float(np.trace(P[i, :2, :2])))
            for lost in self._lost.values():
                if first[i] < lost.t_hit:
                    continue
                # somewhere along its way: from where it was lost to where its velocity
                # (a little faster) takes it in the gap, since it may have stopped a while;
                # off that path by both positions' uncertainty and a slow sideways wander
                dt = max(t - lost.t, 0.0)
                p0 = lost.x[:2]
                q = x[i, :2] - p0
                sig_lost = math.sqrt(0.5 * float(np.trace(lost.P[:2, :2])))
                allowed = 3.0 * (sig_lost + sig_new) + c.group_radius_m + c.stitch_speed_mps * dt
                w = allowed / 3.0
                # its way by the filter's last velocity, and by its mean velocity over its
                # last minutes: a velocity a few noisy updates turned (a group's members
                # seen in turn, a ground sensor's reports) does not say where it went
                ways = [lost.x[2:]] if lost.v_trail is None else [lost.x[2:], lost.v_trail]
                cost = math.inf
                for v in ways:
                    step = 1.2 * v * dt
                    f = min(max(float(q @ step) / max(float(step @ step), 1e-9), 0.0), 1.0)
                    d = math.hypot(*(q - f * step))
                    if d > allowed:
                        continue
                    # of the lost tracks whose way passes near, the one under which the new
                    # track is likeliest: a density spread along the path and, as a normal
                    # of a third of the allowance, across it (a short, narrow way that fits
                    # beats a long-lost track's wide one)
                    way = math.log(math.hypot(*step) + 2.5 * w) + math.log(w) + 0.5 * (d / w) ** 2
                    cost = min(cost, way)
                if cost < best_cost:
                    best, best_cost = lost, cost
            if best is None:
                continue
            new_id = int(ids[i])
            tr.relabel(int(i), best.track_id)
            tr.absorb(int(i), None if best.expired else best.class_evidence, best.n_updates)
            taken.append((new_id, best))
            del self._lost[best.track_id]
            self.stitched += 1
        return taken

    def snapshot(self) -> tuple[dict[int, LostTrack], int]:
        """A copy, to :meth:`restore` later."""
        return dict(self._lost), self.stitched

    def restore(self, snap: tuple[dict[int, LostTrack], int]) -> None:
        """Go back to a :meth:`snapshot`."""
        lost, self.stitched = snap
        self._lost = dict(lost)
