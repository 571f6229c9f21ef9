"""Each track's trail: where it was over its last minutes, for its mean velocity.

A filtered velocity follows the last few updates, which may be a group's members seen in
turn or a ground sensor's reports; the mean velocity over minutes says where a body is
really going. Stitching looks for a lost track along it (:mod:`vigil.tracks.reacquire`) and
duplicate merging keeps apart tracks whose trails disagree (:mod:`vigil.tracks.groups`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: A position every this many seconds at most, kept this long, and spanning at least this
#: long to give a velocity.
TRAIL_STEP_S, TRAIL_S, TRAIL_MIN_S = 30.0, 300.0, 60.0

#: One trail: ``(t, x, y)`` positions, UTC s and local metres, oldest first.
Trail = tuple[tuple[float, float, float], ...]


class Trails:
    """The trails of the live tracks (and of those just lost), by track id."""

    def __init__(self) -> None:
        self._trails: dict[int, Trail] = {}

    def extend(self, t: float, track_ids: NDArray[np.int64], xy: NDArray[np.float64]) -> None:
        """Note where each track is, once a :data:`TRAIL_STEP_S` at most, keeping
        :data:`TRAIL_S` of them.

        Parameters
        ----------
        t
            Time of the positions, UTC s.
        track_ids, xy
            ``(k,)`` track ids and ``(k, 2)`` their positions, local metres.
        """
        trails = self._trails
        for k, (x, y) in zip(np.asarray(track_ids).tolist(), np.asarray(xy).tolist(), strict=True):
            trail = trails.get(k, ())
            if trail and t - trail[-1][0] < TRAIL_STEP_S:
                continue
            kept = tuple(p for p in trail if t - p[0] <= TRAIL_S)
            trails[k] = (*kept, (t, float(x), float(y)))

    def velocity(self, track_id: int) -> NDArray[np.float64] | None:
        """A track's mean velocity over its trail (m/s), or None when it spans too little."""
        trail = self._trails.get(track_id, ())
        if len(trail) < 2 or trail[-1][0] - trail[0][0] < TRAIL_MIN_S:
            return None
        (t0, x0, y0), (t1, x1, y1) = trail[0], trail[-1]
        return np.array([(x1 - x0) / (t1 - t0), (y1 - y0) / (t1 - t0)])

    def rename(self, old_id: int, new_id: int) -> None:
        """Give track ``old_id``'s trail to ``new_id`` (a stitched track's id)."""
        self._trails[new_id] = self._trails.pop(old_id, ())

    def keep_only(self, live: set[int]) -> None:
        """Forget the trails of tracks not in ``live``."""
        for track_id in [k for k in self._trails if k not in live]:
            del self._trails[track_id]

    def snapshot(self) -> dict[int, Trail]:
        """A copy, to :meth:`restore` later."""
        return dict(self._trails)

    def restore(self, snap: dict[int, Trail]) -> None:
        """Go back to a :meth:`snapshot`."""
        self._trails = dict(snap)
