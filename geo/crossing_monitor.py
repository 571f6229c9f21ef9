"""Crossing detection as tracks arrive: the streaming twin of :mod:`vigil.geo.crossings`.

:func:`vigil.geo.crossings.detect_crossings` works on whole paths; a live sector sees one position
per track per update. :class:`CrossingMonitor` keeps each track's hysteresis state between
updates and reports a crossing the moment a track gets ``hysteresis_m`` onto the far side,
with the time and place interpolated at the last sign change, exactly as the batch version
does (a test runs both on the same paths).

With ``side_probability`` set (on relief) and the tracks' covariances given
(``update(..., cov=...)``), a track's side is decided only when its position is on that side
with at least that probability (the Gaussian mass across the line, along the line's normal),
and a crossing is committed only when the far side is that sure too. On relief a track fed
by detections whose rays graze a slope can be hundreds of metres unsure across the line
(``benchmarks/bench_pointing_track.py``); by its mean alone it would be given the wrong side,
or make a crossing it did not make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtri

from vigil.geo.border import Border
from vigil.geo.crossing_fragments import (
    FragmentSettings,
    LastSeen,
    best_predecessor,
    step_crossing,
)
from vigil.geo.crossings import NORTHBOUND, SOUTHBOUND, _us_is_north

if TYPE_CHECKING:
    from vigil.geo.dem import TerrainSettings


@dataclass
class _State:
    side: int = 0
    t: float = 0.0
    x: float = 0.0
    y: float = 0.0
    d: float = 0.0
    zero: tuple[float, float, float] | None = None
    seen: bool = False
    #: first position (t, x, y, signed distance) while an entry is still undecided
    first: tuple[float, float, float, float] | None = None
    #: (t, signed distance) since the first position, for the entry's speed
    path: list[tuple[float, float]] | None = None
    #: the side the track's positions have been sure of at every update since ``sure_since``
    #: (0: not sure of either at the last update)
    sure_side: int = 0
    sure_since: float = 0.0
    #: with ``fragments``: the first position of a track born on the US side, until its
    #: predecessor on the far side is looked for
    born: LastSeen | None = None
    #: it has handed its crossing on to a track born on the US side (fragments)
    handed_on: bool = False


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
    inferred: bool = False
    #: the crossing's confidence where the monitor knows it (a crossing between two track
    #: fragments); None: the caller's (1 seen, :data:`vigil.core.INFERRED_CONFIDENCE` entries)
    confidence: float | None = None


#: The side probability the chain uses on relief (picked on bench_pointing_track's tuning
#: seeds 1, 2 and 5: 0.9 left every wrong side there, 0.99 two of three fewer).
RELIEF_SIDE_PROBABILITY = 0.99


#: How long (seconds) a track's position must stay sure of a side, at every update, before the
#: track takes that side or commits a crossing to it, when the side rule is on (relief).
#: A person whose feet are a pixel from a crest is placed, frame by frame, either where they
#: are or on the far slope up to a kilometre behind, each with an honest covariance (the
#: second moment of both places); the tracker averages the two places as if the errors were
#: independent and zero-mean, and its track is sure for a while of a side the person is not
#: on. Picked on ``bench_pointing_track``'s tuning seeds (1, 2, 5; people walking 120 s): the
#: shortest hold with >= 99 % of decided people right at every tower and no false crossing.
#: t02: no hold 200/208 right (5 false crossings), 5 s 190/194 (1), 10 s 173/175 (0), 15 s
#: 157/158 (0).
RELIEF_SIDE_HOLD_S = 15.0


def side_probability_for(terrain: TerrainSettings) -> float | None:
    """The side rule for a deployment's ``[terrain]``: on relief (a DEM or synthetic ground) a
    track takes a side of the line, and commits a crossing, only when its covariance makes
    that side :data:`RELIEF_SIDE_PROBABILITY` likely (one pixel on a grazing slope moves a
    position hundreds of metres along the sight line); on flat ground None, the hysteresis
    alone."""
    if terrain.dem is None and terrain.synthetic is None:
        return None
    return RELIEF_SIDE_PROBABILITY


class CrossingMonitor:
    """Per-track hysteresis over positions that arrive one update at a time.

    Parameters
    ----------
    border
        The sector's border and segments.
    hysteresis_m
        How far onto the far side a track must get for a crossing to count, metres.
    entry_m
        Entries (off by default): a track first seen within this distance of the line
        (metres) that then moves ``entry_rise_m`` further away from it came across the line
        unseen, a crossing *inferred* back to the line at the track's average speed. Towers
        see groups least well just south of the line, at the edge of their range; a group
        that appears a few hundred metres into the US walking north came from the south.
    entry_rise_m
        How far a new track must move away from the line for an entry to count, metres.
    side_probability
        How sure a track's position must be of a side (the normal distribution's mass on it,
        from the covariance given to :meth:`update`) for the track to be given that side, or
        to commit a crossing to it; None (the default) or no covariances: the hysteresis
        alone decides, as on flat ground. On relief :data:`RELIEF_SIDE_PROBABILITY`.
    side_hold_s
        With ``side_probability`` and covariances: how long (seconds) a track's position must
        be that sure of a side at every update before the track takes it, or commits a
        crossing to it (:data:`RELIEF_SIDE_HOLD_S`; 0: at once).
    image_only
        With ``side_z`` given to :meth:`update`: a track with an image z-score takes its side
        from the image alone (its positions wait); False: the positions decide where the
        image is unsure.
    fragments
        Crossings split across two tracks (:mod:`vigil.geo.crossing_fragments`): a track born
        on the US side takes the crossing of a track last placed on the far side within a
        walker's reach of it; None (the default): off.
    """

    def __init__(
        self,
        border: Border,
        hysteresis_m: float = 10.0,
        *,
        entry_m: float = 0.0,
        entry_rise_m: float = 30.0,
        side_probability: float | None = None,
        side_hold_s: float = RELIEF_SIDE_HOLD_S,
        image_only: bool = False,
        image_probability: float | None = None,
        fragments: FragmentSettings | None = None,
    ) -> None:
        if not (np.isfinite(hysteresis_m) and hysteresis_m > 0):
            raise ValueError(f"hysteresis_m={hysteresis_m!r}; expected a positive distance")
        if not (np.isfinite(entry_m) and entry_m >= 0):
            raise ValueError(f"entry_m={entry_m!r}; expected a distance >= 0 (0: no entries)")
        if not (np.isfinite(entry_rise_m) and entry_rise_m > 0):
            raise ValueError(f"entry_rise_m={entry_rise_m!r}; expected a positive distance")
        if side_probability is not None and not (
            np.isfinite(side_probability) and 0.5 <= side_probability < 1.0
        ):
            raise ValueError(
                f"side_probability={side_probability!r}; expected None or a probability in [0.5, 1)"
            )
        if not (np.isfinite(side_hold_s) and side_hold_s >= 0):
            raise ValueError(f"side_hold_s={side_hold_s!r}; expected a duration >= 0, seconds")
        self.border = border
        self.side_hold_s = float(side_hold_s)
        self.image_only = bool(image_only)
        if image_probability is not None and not (
            np.isfinite(image_probability) and 0.5 <= image_probability < 1.0
        ):
            raise ValueError(
                f"image_probability={image_probability!r}; expected None or a probability in "
                "[0.5, 1)"
            )
        self.image_probability = None if image_probability is None else float(image_probability)
        self.side_probability = None if side_probability is None else float(side_probability)
        self.h = float(hysteresis_m)
        self.entry_m = float(entry_m)
        self.entry_rise_m = float(entry_rise_m)
        self.states: dict[str, _State] = {}
        self.outside_stretch = 0
        self.fragments = fragments
        #: ended tracks last placed on the far side, kept ``fragments.gap_s`` for a successor
        self.departed: dict[str, LastSeen] = {}
        #: crossings inferred between two track fragments
        self.fragment_crossings = 0

    def update(
        self,
        track_ids: list[str],
        t: ArrayLike,
        x: ArrayLike,
        y: ArrayLike,
        cov: ArrayLike | None = None,
        side_z: ArrayLike | None = None,
    ) -> list[CrossingEvent]:
        """Feed one position per track (times may differ); return the crossings committed.

        ``cov``: each position's east-north covariance, ``(n, 2, 2)`` or ``(n, 4)`` as
        ``(ee, en, ne, nn)``, square metres; with ``side_probability`` set, a side then needs
        that probability.

        ``side_z``: each track's side judged in the image (a z-score, + toward the US, NaN
        where none; :class:`vigil.geo.image_side.SideEvidence`). With ``side_probability``
        set, a track whose image z-score is that sure of a side takes it (or commits a
        crossing to it) at once, whatever its position says; where the image is unsure the
        position decides as above, hold included (``image_only``: the track then waits)."""
        tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
        xx = np.atleast_1d(np.asarray(x, dtype=np.float64))
        yy = np.atleast_1d(np.asarray(y, dtype=np.float64))
        if not (len(track_ids) == tt.size == xx.size == yy.size):
            raise ValueError("track_ids, t, x and y must have the same length")
        if not len(track_ids):
            return []
        d = self.border.signed_distance(xx, yy)
        # how far from the line a position must be for its side to be sure enough, metres
        need = np.full(d.shape, self.h)
        hold = 0.0
        if cov is not None and self.side_probability is not None:
            need = np.maximum(need, self._sure_m(xx, yy, d, cov))
            hold = self.side_hold_s
        img = np.zeros(d.shape, dtype=np.int64)  # the side the image is sure of (0: none)
        img_known = np.zeros(d.shape, dtype=bool)
        if side_z is not None and self.side_probability is not None:
            z = np.atleast_1d(np.asarray(side_z, dtype=np.float64))
            if z.shape != d.shape:
                raise ValueError(f"side_z of shape {z.shape}; expected ({d.size},)")
            img_known = np.isfinite(z)
            zneed = float(ndtri(self.image_probability or self.side_probability))
            img = np.where(img_known & (np.abs(z) >= zneed), np.sign(z), 0).astype(np.int64)
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
            if not st.seen and self.fragments is not None and di > 0.0:
                st.born = LastSeen(float(tt[i]), float(xx[i]), float(yy[i]), di)
            if not st.seen and self.entry_m > 0.0 and abs(di) <= self.entry_m:
                st.first = (float(tt[i]), float(xx[i]), float(yy[i]), di)
                st.path = []
            if st.path is not None:
                st.path.append((float(tt[i]), di))
            sure = (1 if di > 0 else -1) if abs(di) >= need[i] else 0
            if img_known[i] and self.image_only:
                sure = 0
            if sure != st.sure_side:
                st.sure_side, st.sure_since = sure, float(tt[i])
            # sure of that side at every update for ``hold`` seconds (at once without a hold)
            held = sure if sure and float(tt[i]) - st.sure_since >= hold else 0
            if img[i]:  # the image's side: its errors are independent, no hold needed
                held = int(img[i])
            if st.side == 0:
                if held:
                    st.side = held
            elif held == -st.side:
                zt, zx, zy = st.zero if st.zero is not None else (tt[i], xx[i], yy[i])
                event = self._event(tid, zt, zx, zy, entering_us=st.side < 0)
                if event is not None:
                    out.append(event)
                st.side = -st.side
                st.zero = None
                st.first = st.path = None  # seen crossing: nothing to infer
                st.born = None
            if st.born is not None and st.side != 0:
                event = self._fragment(tid, st, di)
                if event is not None:
                    out.append(event)
            if st.first is not None:
                event = self._entry(tid, st, float(tt[i]), di)
                if event is not None:
                    out.append(event)
            st.t, st.x, st.y, st.d, st.seen = float(tt[i]), float(xx[i]), float(yy[i]), di, True
        return out

    def _sure_m(self, x: np.ndarray, y: np.ndarray, d: np.ndarray, cov: ArrayLike) -> np.ndarray:
        """Distance from the line at which each position's side has ``side_probability``:
        ``z`` standard deviations of the position along the line's normal (metres)."""
        c = np.asarray(cov, dtype=np.float64).reshape(d.size, -1)
        if c.shape[1] != 4:
            raise ValueError(f"cov of shape {np.shape(cov)}; expected (n, 2, 2) or (n, 4)")
        # the line's normal: the signed distance's gradient (1 m central differences)
        gx = (self.border.signed_distance(x + 1.0, y) - self.border.signed_distance(x - 1.0, y)) / 2
        gy = (self.border.signed_distance(x, y + 1.0) - self.border.signed_distance(x, y - 1.0)) / 2
        var = gx * gx * c[:, 0] + gx * gy * (c[:, 1] + c[:, 2]) + gy * gy * c[:, 3]
        var = np.where(np.isfinite(var), np.maximum(var, 0.0), np.inf)
        return float(ndtri(self.side_probability or 0.5)) * np.sqrt(var)

    def _entry(self, tid: str, st: _State, t: float, d: float) -> CrossingEvent | None:
        """Decide a new track's entry once it has moved ``entry_rise_m`` along the normal."""
        t0, x0, y0, d0 = st.first  # type: ignore[misc]
        moved = d - d0
        if abs(moved) < self.entry_rise_m:
            return None
        path = np.asarray(st.path, dtype=np.float64)
        st.first = st.path = None
        # away from the line on the far side of where it must have come from
        if (moved > 0 and d0 < -self.h) or (moved < 0 and d0 > self.h):
            return None  # walking toward the line: an ordinary crossing may follow
        if abs(d) < self.h or t <= t0:
            return None
        # the speed away from the line: a least-squares slope over the positions so far (one
        # noisy end point would put the crossing minutes off)
        tc = path[:, 0] - path[:, 0].mean()
        slope = float((tc * (path[:, 1] - path[:, 1].mean())).sum() / max((tc * tc).sum(), 1e-9))
        speed = max(abs(slope), abs(moved) / (t - t0), 0.3)
        d_start = float(path[:, 1].mean() - slope * (path[:, 0].mean() - t0))
        if d_start * d < 0:
            d_start = d0
        import shapely

        p = self.border.line.interpolate(self.border.line.project(shapely.Point(x0, y0)))
        st.side = 1 if d > 0 else -1
        st.zero = None
        event = self._event(tid, t0 - abs(d_start) / speed, p.x, p.y, entering_us=d > 0)
        if event is None:
            return None
        return CrossingEvent(**{**event.__dict__, "inferred": True})

    def _fragment(self, tid: str, st: _State, d: float) -> CrossingEvent | None:
        """A track born on the US side, now sure of its side: once it has moved
        ``fragments.rise_m`` farther in, the crossing of its best predecessor on the far side
        (:func:`vigil.geo.crossing_fragments.best_predecessor`), if it has one."""
        fs, born = self.fragments, st.born
        assert fs is not None and born is not None
        if st.side < 0:
            st.born = None  # born on the US side but sure of the far side: its own crossing
            return None
        if d - born.d < fs.rise_m:
            return None
        st.born = None
        for k in [k for k, p in self.departed.items() if born.t - p.t > fs.gap_s]:
            del self.departed[k]
        live = {
            k: LastSeen(s.t, s.x, s.y, s.d)
            for k, s in self.states.items()
            if k != tid and s.seen and s.side < 0 and not s.handed_on and s.t < born.t
        }
        in_states = set(live)
        live.update({k: p for k, p in self.departed.items() if k not in in_states})
        pred = best_predecessor(born, live, fs)
        if pred is None:
            return None
        if pred in in_states:
            self.states[pred].handed_on = True
        else:
            del self.departed[pred]
        st.first = st.path = None  # its crossing is inferred: no entry as well
        t, x, y = step_crossing(live[pred], born)
        event = self._event(tid, t, x, y, entering_us=True)
        if event is None:
            return None
        self.fragment_crossings += 1
        return CrossingEvent(**{**event.__dict__, "inferred": True, "confidence": fs.confidence})

    def merge(self, merged: str, into: str) -> None:
        """Track ``merged`` was folded into ``into``: if ``into`` has no side yet, it takes
        over the other's state (so a crossing the pair completes counts once)."""
        st = self.states.pop(merged, None)
        if st is not None and (into not in self.states or self.states[into].side == 0):
            self.states[into] = st

    def forget(self, track_id: str) -> None:
        """Drop an ended track's state (with ``fragments``, one last placed on the far side
        is kept a while for a successor born on the US side)."""
        st = self.states.pop(track_id, None)
        if self.fragments is None or st is None:
            return
        for k in [k for k, p in self.departed.items() if st.t - p.t > self.fragments.gap_s]:
            del self.departed[k]  # too old for any successor born from now on
        if st.side < 0 and not st.handed_on:
            self.departed[track_id] = LastSeen(st.t, st.x, st.y, st.d)

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
