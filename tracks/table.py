"""The tracker's data types: track states, a table of tracks at one time, a snapshot.

Like Stone Soup's ``types``, this module imports nothing above it, so every part of the
stage (tracker, fusion, store) can share these types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

TENTATIVE, CONFIRMED, COASTING, DELETED = 0, 1, 2, 3
STATE_NAMES: tuple[str, str, str, str] = ("tentative", "confirmed", "coasting", "ended")


@dataclass(frozen=True)
class TrackTable:
    """A copy of the tracks at one time, one row per track (struct of arrays).

    Attributes
    ----------
    track_id
        Stable integer id of each track.
    status
        0 tentative, 1 confirmed, 2 coasting (see :data:`STATE_NAMES`).
    x
        ``(n, 4)`` state ``[east, north, v_east, v_north]`` in m and m/s.
    P
        ``(n, 4, 4)`` state covariance.
    t_hit
        Time of each track's last detection, seconds.
    n_updates
        Detections each track has absorbed.
    class_probs
        ``(n, 3)`` probabilities of :data:`vigil.tracks.config.CLASSES`.
    """

    time: float
    track_id: NDArray[np.int64]
    status: NDArray[np.int8]
    x: NDArray[np.float64]
    P: NDArray[np.float64]
    t_hit: NDArray[np.float64]
    n_updates: NDArray[np.int64]
    class_probs: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def select(self, mask: NDArray[np.bool_]) -> TrackTable:
        """The rows where ``mask`` is true."""
        return TrackTable(
            self.time,
            self.track_id[mask],
            self.status[mask],
            self.x[mask],
            self.P[mask],
            self.t_hit[mask],
            self.n_updates[mask],
            self.class_probs[mask],
        )

    def confirmed(self) -> TrackTable:
        """Confirmed and coasting tracks (what a user sees)."""
        return self.select((self.status == CONFIRMED) | (self.status == COASTING))


@dataclass(frozen=True)
class TrackerSnapshot:
    """Everything the tracker needs to go back to a time (for out-of-sequence batches)."""

    n: int
    next_id: int
    time: float
    arrays: tuple[NDArray, ...]
