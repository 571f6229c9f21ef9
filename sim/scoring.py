"""Scoring a pipeline's output against the simulator's truth.

What is scored, and how:

- **crossing-alert recall**: of the true northbound crossings by people whose crossing point
  lies inside sensor coverage (a tower footprint as the tower pointed at the time of the
  crossing, or a ground sensor's disc), the fraction with
  a crossing alert raised within ``match_radius_m`` of the crossing point and between
  ``-early_s`` and ``+late_s`` of its time. Several groups merged into one alert by design
  (one group, one alert) all count as alerted;
- **false crossing alerts**: new crossing alerts that match no true northbound person
  crossing at all (inside coverage or not), per 10 km of border per day. An update that adds
  a crossing group to an open alert ("joins the group", or merged by the segment's rate
  limit) counts towards recall like a new alert, at the update's time and place, but is
  not a separate alert;
- a match is an alert within ``match_radius_m`` (600 m) of the true crossing point and from
  ``early_s`` (60 s) before to ``late_s`` (900 s) after its time; the alert's time is the
  crossing time the system estimated (seen, or inferred back to the line for a group first
  seen north of it);
- **ID switches per crossing group**: each second, every group of people is matched to a
  confirmed track within ``track_match_m`` of its centre, as CLEAR MOT does (Bernardin and
  Stiefelhagen 2008; py-motmetrics): a group keeps last second's track while that track is
  still within the distance, and the groups and tracks left are matched one to one
  (Hungarian, nearest). A change of matched track id is a switch. Two groups walking past
  each other do not trade tracks in the score while each track stays on its group;
- **animal classification**: of the seconds an animal is matched to a confirmed track, the
  fraction in which the track's class is ``animal``; ``Scorer.animal_by_id`` keeps the same
  tally per animal (the evaluation protocol, :mod:`vigil.sim.protocol`, votes per animal).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.optimize import linear_sum_assignment
from shapely.geometry.base import BaseGeometry

from .movers import CrossingTruth, MoverStates


@dataclass
class TrackSample:
    """A confirmed track at one time, in the local frame (metres)."""

    track_id: str
    x: float
    y: float
    class_guess: str


@dataclass
class Scorer:
    """Accumulates truth-versus-track matches during a run, then scores alerts at the end."""

    track_match_m: float = 50.0
    animal_match_m: float = 30.0
    match_radius_m: float = 600.0
    early_s: float = 60.0
    late_s: float = 900.0
    group_last: dict[str, str] = field(default_factory=dict)
    group_switches: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    group_matched_s: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    animal_seconds: int = 0
    animal_as_animal: int = 0
    animal_tracks: set[str] = field(default_factory=set)
    #: by animal id: [seconds matched to a track, seconds that track was classed animal]
    animal_by_id: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def observe(self, states: MoverStates, tracks: list[TrackSample]) -> None:
        """Match groups and animals to confirmed tracks at one time."""
        if not tracks or len(states) == 0:
            return
        tx = np.array([t.x for t in tracks])
        ty = np.array([t.y for t in tracks])
        classes = np.asarray(states.classes)
        groups = np.asarray(states.groups)
        people = (classes == "person") & (groups != "")
        if people.any():
            gids, inv = np.unique(groups[people], return_inverse=True)
            gx = np.bincount(inv, weights=states.x[people]) / np.bincount(inv)
            gy = np.bincount(inv, weights=states.y[people]) / np.bincount(inv)
            for gi, ti in self._match_groups(gids, gx, gy, tracks, tx, ty):
                gid, tid = str(gids[gi]), tracks[ti].track_id
                self.group_matched_s[gid] += 1
                last = self.group_last.get(gid)
                if last is not None and last != tid:
                    self.group_switches[gid] += 1
                self.group_last[gid] = tid
        animals = classes == "animal"
        if animals.any():
            ax, ay = states.x[animals], states.y[animals]
            ids = np.asarray(states.ids)[animals]
            for ai, ti in _assign(ax, ay, tx, ty, self.animal_match_m):
                as_animal = tracks[ti].class_guess == "animal"
                self.animal_seconds += 1
                self.animal_tracks.add(tracks[ti].track_id)
                self.animal_as_animal += as_animal
                tally = self.animal_by_id[str(ids[ai])]
                tally[0] += 1
                tally[1] += as_animal

    def _match_groups(self, gids, gx, gy, tracks, tx, ty) -> list[tuple[int, int]]:
        """(group index, track index) pairs: last second's pairs still within the distance
        are kept, the rest matched by :func:`_assign`."""
        index = {t.track_id: i for i, t in enumerate(tracks)}
        kept: list[tuple[int, int]] = []
        for gi, gid in enumerate(gids):
            ti = index.get(self.group_last.get(str(gid), ""))
            if ti is None:
                continue
            if math.hypot(gx[gi] - tx[ti], gy[gi] - ty[ti]) <= self.track_match_m:
                kept.append((gi, ti))
        rows = np.setdiff1d(np.arange(len(gids)), [g for g, _ in kept])
        cols = np.setdiff1d(np.arange(len(tracks)), [t for _, t in kept])
        if rows.size == 0 or cols.size == 0:
            return kept
        rest = _assign(gx[rows], gy[rows], tx[cols], ty[cols], self.track_match_m)
        return kept + [(int(rows[g]), int(cols[t])) for g, t in rest]

    def id_switches_per_group(self, crossing_groups: set[str]) -> tuple[float, int, int]:
        """ID switches per crossing group that was tracked: (ratio, switches, groups)."""
        tracked = [g for g in crossing_groups if self.group_matched_s.get(g, 0) > 0]
        switches = sum(self.group_switches.get(g, 0) for g in tracked)
        return (switches / len(tracked) if tracked else math.nan), switches, len(tracked)


def _assign(ax, ay, tx, ty, max_m: float) -> list[tuple[int, int]]:
    d = np.hypot(ax[:, None] - tx[None, :], ay[:, None] - ty[None, :])
    near = d <= max_m
    if not near.any():
        return []
    rows = np.flatnonzero(near.any(axis=1))
    cols = np.flatnonzero(near.any(axis=0))
    sub = d[np.ix_(rows, cols)]
    cost = np.where(sub <= max_m, sub, 1e9)
    r, c = linear_sum_assignment(cost)
    return [(int(rows[i]), int(cols[j])) for i, j in zip(r, c, strict=True) if cost[i, j] < 1e9]


def _covers(geom: BaseGeometry | None, x: float, y: float) -> bool:
    return True if geom is None else bool(shapely.contains_xy(geom, x, y))


@dataclass(frozen=True)
class AlertPoint:
    """A crossing alert when it was raised (``new``), or an update of one that adds a
    crossing group to it: id, time (UTC s), position (local m)."""

    alert_id: str
    time: float
    x: float
    y: float
    new: bool = True


def score_crossing_alerts(
    truth: list[CrossingTruth],
    alerts: list[AlertPoint],
    coverage: BaseGeometry | Callable[[float], BaseGeometry | None] | None,
    border_km: float,
    duration_s: float,
    *,
    match_radius_m: float = 600.0,
    early_s: float = 60.0,
    late_s: float = 900.0,
    start_time: float | None = None,
    end_time: float | None = None,
    earlier: list[CrossingTruth] = (),
) -> dict:
    """Recall of crossing alerts over true northbound person crossings inside coverage, and
    false crossing alerts per 10 km of border per day (see the module docstring).

    ``coverage`` is one geometry (local metres) or a function of time giving the coverage at
    that time (towers turn when cued); ``None`` counts every crossing as covered.

    ``start_time`` (UTC s): the simulator lists no crossing before the run's start, though
    groups that crossed earlier are still walking; a new alert dated (by its estimated
    crossing time) more than ``early_s`` before the start cannot be scored, so it is
    counted in ``alerts_before_start`` and neither as false nor as a match.

    ``end_time`` (UTC s): ``truth`` may run up to ``early_s`` past the end, so that an alert
    raised just before the end for a crossing just after it is not counted false; only
    crossings up to ``end_time`` count for recall.

    ``earlier``: crossings made before the run's start by groups still walking when it
    starts (:meth:`vigil.sim.World.crossings_before_start`). An alert matching one of
    their northbound person crossings is not false; they do not count for recall.
    """
    people_north = [c for c in truth if c.direction == "northbound" and c.cls == "person"]
    in_run = np.array([end_time is None or c.time <= end_time for c in people_north], dtype=bool)
    if callable(coverage):
        inside = np.array([_covers(coverage(c.time), c.x, c.y) for c in people_north], dtype=bool)
    elif coverage is not None and people_north:
        inside = shapely.contains_xy(
            coverage, [c.x for c in people_north], [c.y for c in people_north]
        )
    else:
        inside = np.ones(len(people_north), dtype=bool)
    ax = np.array([a.x for a in alerts])
    ay = np.array([a.y for a in alerts])
    at = np.array([a.time for a in alerts])

    def matches(c: CrossingTruth) -> np.ndarray:
        if not alerts:
            return np.zeros(0, dtype=bool)
        dt = at - c.time
        return (np.hypot(ax - c.x, ay - c.y) <= match_radius_m) & (dt >= -early_s) & (dt <= late_s)

    used = np.zeros(len(alerts), dtype=bool)
    alerted = []
    inside = inside & in_run
    for c, inn in zip(people_north, inside, strict=True):
        m = matches(c)
        if m.size:
            used |= m
        if inn:
            alerted.append(bool(m.any()))
    for c in earlier:
        if c.direction == "northbound" and c.cls == "person" and alerts:
            used |= matches(c)
    in_cov = int(np.sum(inside))
    recalled = int(sum(alerted))
    new = np.array([a.new for a in alerts], dtype=bool)
    before = (at < start_time - early_s) & new if alerts and start_time is not None else new & False
    false = int((~used & new & ~before).sum()) if alerts else 0
    days = duration_s / 86400.0
    per = false / (border_km / 10.0) / days if days > 0 and border_km > 0 else math.nan
    return {
        "true_northbound_person_crossings": int(in_run.sum()),
        "inside_coverage": in_cov,
        "alerted": recalled,
        "alert_recall": recalled / in_cov if in_cov else math.nan,
        "crossing_alerts": int(new.sum()) if alerts else 0,
        "false_crossing_alerts": false,
        "alerts_before_start": int(before.sum()) if alerts else 0,
        "false_alerts_per_10km_day": per,
        "unalerted": [
            {"crossing_id": c.crossing_id, "time": c.time, "segment_id": c.segment_id}
            for c, inn in zip(people_north, inside, strict=True)
            if inn and not matches(c).any()
        ][:50],
    }
