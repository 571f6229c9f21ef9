"""Crossing detection as tracks arrive: the streaming twin of :mod:`geo.crossings`.

:func:`geo.crossings.detect_crossings` works on whole paths; a live sector sees one position
per track per update. :class:`CrossingMonitor` keeps each track's hysteresis state between
updates and reports a crossing the moment a track gets ``hysteresis_m`` onto the far side,
with the time and place interpolated at the last sign change, exactly as the batch version
does (a test runs both on the same paths).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from geo.border import Border
from geo.crossings import NORTHBOUND, SOUTHBOUND, _us_is_north


@dataclass
class _State:
    side: int = 0
    t: float = 0.0
    x: float = 0.0
    y: float = 0.0
    d: float = 0.0
    zero: tuple[float, float, float] | None = None
    seen: bool = False


@dataclass(frozen=True)
class CrossingEvent:
    """A committed crossing: track, interpolated time (UTC s) and place (local m), segment."""

    track_id: str
    time: float
    x: float
    y: float
    segment_id: str
    chainage_km: float
    direction: str
    entering_us: bool


class CrossingMonitor:
    """Per-track hysteresis over positions that arrive one update at a time.

    Parameters
    ----------
    border
        The sector's border and segments.
    hysteresis_m
        How far onto the far side a track must get for a crossing to count, metres.
    """

    def __init__(self, border: Border, hysteresis_m: float = 10.0) -> None:
        if not (np.isfinite(hysteresis_m) and hysteresis_m > 0):
            raise ValueError(f"hysteresis_m={hysteresis_m!r}; expected a positive distance")
        self.border = border
        self.h = float(hysteresis_m)
        self.states: dict[str, _State] = {}
        self.outside_stretch = 0

    def update(
        self, track_ids: list[str], t: ArrayLike, x: ArrayLike, y: ArrayLike
    ) -> list[CrossingEvent]:
        """Feed one position per track (times may differ); return the crossings committed."""
        tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
        xx = np.atleast_1d(np.asarray(x, dtype=np.float64))
        yy = np.atleast_1d(np.asarray(y, dtype=np.float64))
        if not (len(track_ids) == tt.size == xx.size == yy.size):
            raise ValueError("track_ids, t, x and y must have the same length")
        if not len(track_ids):
            return []
        d = self.border.signed_distance(xx, yy)
        out: list[CrossingEvent] = []
        for i, tid in enumerate(track_ids):
            st = self.states.get(tid)
            if st is None:
                st = self.states[tid] = _State()
            di = float(d[i])
            if st.seen and tt[i] < st.t:
                continue  # an older position than one already used: ignore
            if st.seen and st.d != 0.0 and di != 0.0 and (st.d > 0) != (di > 0):
                f = st.d / (st.d - di)
                st.zero = (
                    st.t + f * (tt[i] - st.t),
                    st.x + f * (xx[i] - st.x),
                    st.y + f * (yy[i] - st.y),
                )
            if st.side == 0:
                if abs(di) >= self.h:
                    st.side = 1 if di > 0 else -1
            elif di * st.side <= -self.h:
                zt, zx, zy = st.zero if st.zero is not None else (tt[i], xx[i], yy[i])
                event = self._event(tid, zt, zx, zy, entering_us=st.side < 0)
                if event is not None:
                    out.append(event)
                st.side = -st.side
                st.zero = None
            st.t, st.x, st.y, st.d, st.seen = float(tt[i]), float(xx[i]), float(yy[i]), di, True
        return out

    def forget(self, track_id: str) -> None:
        """Drop an ended track's state."""
        self.states.pop(track_id, None)

    def _event(
        self, tid: str, t: float, x: float, y: float, entering_us: bool
    ) -> CrossingEvent | None:
        import shapely

        chain = float(self.border.line.project(shapely.Point(x, y)))
        if (chain <= 1e-6 or chain >= self.border.length_m - 1e-6) and float(
            self.border.distance([x], [y])[0]
        ) > self.h:
            self.outside_stretch += 1
            return None
        seg = self.border.segments[int(self.border.segment_at([chain])[0])]
        north = bool(_us_is_north(self.border, np.array([chain]))[0])
        direction = NORTHBOUND if entering_us == north else SOUTHBOUND
        return CrossingEvent(
            tid,
            float(t),
            float(x),
            float(y),
            seg.segment_id,
            chain / 1000.0,
            direction,
            entering_us,
        )
