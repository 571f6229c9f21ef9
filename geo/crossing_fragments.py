"""Crossings split across track fragments: a track lost just short of the line on the far side
and a new track born on the near side within a walker's reach (issue 22).

A group the towers lose near the line (the edge of their range, a bush, a rest) is often
carried by several successive tracks, none of which goes from one side of the line to the
other by itself: the crossing happens in the gap between two of them. :class:`CrossingMonitor
<vigil.geo.crossing_monitor.CrossingMonitor>` with ``fragments`` set looks, when a track is
born on the US side of the line, for a **predecessor**: a track last placed on the far side
that stopped being updated before the new one was born, at most ``gap_s`` earlier, no farther
from where the new one was born than a walker goes in the gap (``speed_mps``) plus the
positions' spread (``slack_m``). The crossing is inferred between the two (time and place
interpolated where the straight step from one to the other meets the line) and published with
``confidence`` below 1: the two tracks may be two bodies.

Each predecessor hands its crossing on once; of several, the one whose step fits the tube
best (the smallest share of the allowed distance) is taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import msgspec
import numpy as np
from msgspec import Meta


@dataclass(frozen=True)
class FragmentSettings:
    """How a crossing split across two tracks is inferred.

    Parameters
    ----------
    gap_s
        The longest time from the predecessor's last update to the new track's first, seconds.
    speed_mps
        How fast the group may have gone in the gap, m/s (a brisk walk, not the simulator's).
    slack_m
        The positions' spread and a group's size, metres, allowed on top of the walk.
    rise_m
        How much farther from the line the new track must get (metres, along the normal)
        before the crossing is decided: a track that stays put by the line is not a group
        walking in (0: decided at the new track's first sure position).
    confidence
        The published crossing's confidence: the share of such inferences that were a group
        really crossing, measured on calibration seeds (see ``BENCHMARKS.md``).
    """

    gap_s: float = 300.0
    speed_mps: float = 2.0
    slack_m: float = 60.0
    rise_m: float = 0.0
    confidence: float = 0.5

    def __post_init__(self) -> None:
        for name in ("gap_s", "speed_mps", "slack_m", "rise_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name}={v!r}; expected a finite value >= 0")
        if not (0.0 < self.confidence <= 1.0):
            raise ValueError(f"confidence={self.confidence!r}; expected a probability in (0, 1]")


class CrossingSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The deployment's ``[crossings]`` section: whether the sector infers crossings its towers
    did not see whole (issue 22), and how.

    Attributes
    ----------
    infer
        Off by default. On: a new track born on the US side within ``entry_m`` of the line and
        walking in is taken to have crossed (confidence 0.5), and a track born there takes
        the crossing of a track lost on the far side (:class:`FragmentSettings`, the
        ``fragment_*`` keys). Recall rises where towers lose groups near the line (edges of
        range, brush, rests), at the cost of some second alerts for a group already alerted.
        The defaults were chosen on the simulator's calibration seeds (``BENCHMARKS.md``).
    entry_m
        Metres from the line within which a new track walking in counts as an entry.
    fragment_gap_s, fragment_speed_mps, fragment_slack_m, fragment_confidence
        :class:`FragmentSettings` ``gap_s`` (s), ``speed_mps`` (m/s), ``slack_m`` (m) and
        ``confidence`` (0-1, the published crossing's).
    """

    infer: bool = False
    entry_m: Annotated[float, Meta(ge=0.0, le=5_000.0)] = 200.0
    fragment_gap_s: Annotated[float, Meta(ge=0.0, le=3_600.0)] = 300.0
    fragment_speed_mps: Annotated[float, Meta(ge=0.0, le=50.0)] = 2.5
    fragment_slack_m: Annotated[float, Meta(ge=0.0, le=5_000.0)] = 300.0
    fragment_confidence: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.85

    def inference(self) -> tuple[float, FragmentSettings] | None:
        """``(entry_m, fragments)`` for :meth:`vigil.core.SectorCore.infer_crossings`, or
        ``None`` when ``infer`` is off."""
        if not self.infer:
            return None
        fragments = FragmentSettings(
            gap_s=self.fragment_gap_s,
            speed_mps=self.fragment_speed_mps,
            slack_m=self.fragment_slack_m,
            confidence=self.fragment_confidence,
        )
        return self.entry_m, fragments


@dataclass(frozen=True)
class LastSeen:
    """Where a track was last placed: time (UTC s), local position (m), signed distance to
    the line (m, + on the US side)."""

    t: float
    x: float
    y: float
    d: float


def best_predecessor(
    born: LastSeen, candidates: dict[str, LastSeen], settings: FragmentSettings
) -> str | None:
    """The candidate (last seen on the far side) whose step to ``born`` (first seen on the US
    side) fits a walker's tube best, or None when none fits."""
    best, best_share = None, math.inf
    for tid, p in candidates.items():
        dt = born.t - p.t
        if p.d >= 0.0 or dt < 0.0 or dt > settings.gap_s:
            continue
        allowed = settings.slack_m + settings.speed_mps * dt
        share = math.hypot(born.x - p.x, born.y - p.y) / allowed
        if share <= 1.0 and share < best_share:
            best, best_share = tid, share
    return best


def step_crossing(p: LastSeen, born: LastSeen) -> tuple[float, float, float]:
    """Time (UTC s) and place (local m) where the straight step from ``p`` (far side) to
    ``born`` (US side) meets the line, interpolated by signed distance."""
    f = float(np.clip(-p.d / max(born.d - p.d, 1e-9), 0.0, 1.0))
    return p.t + f * (born.t - p.t), p.x + f * (born.x - p.x), p.y + f * (born.y - p.y)
