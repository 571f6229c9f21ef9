"""The evaluation protocol's scoring (issue 22): crossings and crossing alerts matched one to
one, latency from the physical crossing to the alert's publication, and 95 % intervals.

What is scored, and how (compare the lenient :func:`vigil.sim.scoring.score_crossing_alerts`):

- an **alert event** puts one crossing in front of an agent: a new crossing alert, or an
  update of an open crossing alert to which a track with a crossing on the bus has joined (one
  group, one alert; the segment's rate limit). Joins are read from the alert book's tracks
  (``OpenAlert.track_ids``), never from the English of the alert's notes. An event's time is
  when it was **published** (the bus's clock at delivery), not the crossing time the system
  estimated; its place is the system's crossing point for that track;
- true crossings and alert events are matched **one to one** (:func:`match_one_to_one`): a
  pair is possible when the event lies within ``radius_m`` of the true crossing point and was
  published from ``early_s`` before to ``late_s`` after the true crossing; among the possible
  pairs, the most pairs are made, then the most new alerts paired (so a new alert is false
  only when no matching as large could pair it: not because the crossing it announced went to
  a join of the same group), then the nearest in time and place (Hungarian,
  :func:`scipy.optimize.linear_sum_assignment`). One alert event credits at most one
  crossing; an event published after the window misses;
- **the scored interval** (:class:`Margins`): the run simulates a warm-up before it (the
  chain has no tracks at the simulation's start) and a tail after it (a crossing in the
  interval's last minute gets the matcher's whole ``late_s`` window to be alerted); only what
  happens inside the interval is scored. Crossings of the warm-up and the tail are still
  matched (:attr:`TrueCrossing.counted` false), so that their alerts credit no scored
  crossing and count as no false alert. With both margins 0 the interval is the run;
- **recall**: matched true entering person crossings inside coverage and inside the scored
  interval over all of those; **false crossing alerts**: new alerts **published inside the
  scored interval** matched to no true entering person crossing (the run's, those just after
  its end, or those made before its start by groups still walking), per 10 km of border per
  day of the scored interval; an alert whose own estimated crossing time is more than
  ``early_s`` before the simulation's start cannot be scored and is counted apart;
- **latency**: for each matched crossing inside coverage, publication time minus the true
  crossing time, seconds;
- **intervals** (95 %): Wilson's score interval for proportions (:func:`wilson`), the exact
  (Garwood) Poisson interval for counts and rates (:func:`poisson_rate`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class TrueCrossing:
    """A physical crossing to be alerted: time (UTC s), point (local m), whether it counts
    for recall (inside coverage and inside the run), the group that made it, and whether it
    was inside coverage (for the diagnosis, :mod:`vigil.sim.protocol_diagnosis`)."""

    crossing_id: str
    time: float
    x: float
    y: float
    counted: bool = True
    group_id: str = ""
    inside: bool = True


@dataclass(frozen=True)
class Margins:
    """Simulated time before and after the scored interval, seconds (see the module
    docstring): ``warmup_s`` before it (tracks to exist at its start), ``tail_s`` after it
    (300 s and 900 s: five minutes of tracks, and the matcher's ``late_s`` window)."""

    warmup_s: float = 300.0
    tail_s: float = 900.0

    def __post_init__(self) -> None:
        if not (self.warmup_s >= 0.0 and self.tail_s >= 0.0):
            raise ValueError(
                f"margins are seconds >= 0, not warmup {self.warmup_s!r}, tail {self.tail_s!r}"
            )

    def run(self, start: float, duration_s: float) -> tuple[float, float]:
        """The simulation's start (UTC s) and length (s) for the scored interval ``[start,
        start + duration_s]``."""
        return start - self.warmup_s, self.warmup_s + duration_s + self.tail_s


def in_scored_interval(
    crossings: Iterable[TrueCrossing], start: float, end: float
) -> list[TrueCrossing]:
    """The crossings, each counted for recall when it is inside coverage and its time is in
    ``[start, end]`` (UTC s), else kept for the matching only."""
    return [replace(c, counted=bool(c.inside and start <= c.time <= end)) for c in crossings]


@dataclass(frozen=True)
class AlertEvent:
    """A crossing put in front of an agent: the alert, the track that brought it, when it was
    published (bus clock, UTC s), the system's crossing point (local m) and estimated crossing
    time (UTC s), and whether it raised a new alert (else it joined an open one)."""

    alert_id: str
    track_id: str
    published: float
    x: float
    y: float
    estimated: float
    new: bool = True


def match_one_to_one(
    crossings: list[TrueCrossing],
    events: list[AlertEvent],
    *,
    radius_m: float = 600.0,
    early_s: float = 60.0,
    late_s: float = 900.0,
) -> list[tuple[int, int]]:
    """Pairs ``(crossing index, event index)``, each crossing and each event in at most one.

    A pair is possible when the event is within ``radius_m`` of the crossing point and was
    published between ``early_s`` before and ``late_s`` after the crossing. The matching has
    the most pairs possible; among those, the most **new alerts** paired (a new alert left
    unpaired counts as false, a join left unpaired counts nothing: where an alert's new event
    and one of its own or another alert's joins could each credit the same crossing, the new
    one takes it); among those, the least total of ``|dt| / late_s + d / radius_m``."""
    if not crossings or not events:
        return []
    cx = np.array([c.x for c in crossings])
    cy = np.array([c.y for c in crossings])
    ct = np.array([c.time for c in crossings])
    ex = np.array([e.x for e in events])
    ey = np.array([e.y for e in events])
    et = np.array([e.published for e in events])
    d = np.hypot(cx[:, None] - ex[None, :], cy[:, None] - ey[None, :])
    dt = et[None, :] - ct[:, None]
    ok = (d <= radius_m) & (dt >= -early_s) & (dt <= late_s)
    if not ok.any():
        return []
    # lexicographic by weights: a feasible pair's time and place cost at most 2, so a
    # matching's total of them is at most 2 m; a join pays ``join`` more than a new alert,
    # more than any such total; an infeasible pair costs more than any set of feasible pairs.
    # The assignment first makes as many feasible pairs as it can, then pairs as many new
    # alerts as it can, then the nearest in time and place.
    m = min(ok.shape)
    join = 2.0 * m + 1.0
    big = m * (2.0 + join) + 1.0
    joins = np.array([not e.new for e in events])
    near = np.abs(dt) / max(late_s, early_s, 1e-9) + d / radius_m
    cost = np.where(ok, near + join * joins[None, :], big)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if ok[r, c]]


def crowded(
    crossings: list[TrueCrossing], *, radius_m: float = 600.0, window_s: float = 900.0
) -> list[bool]:
    """For each crossing, whether another crossing (counted or not) lies within ``radius_m``
    and ``window_s`` of it: one alert event could be matched to either (at raised crossing
    rates the groups of one corridor cross minutes apart)."""
    if not crossings:
        return []
    x = np.array([c.x for c in crossings])
    y = np.array([c.y for c in crossings])
    t = np.array([c.time for c in crossings])
    near = (np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) <= radius_m) & (
        np.abs(t[:, None] - t[None, :]) <= window_s
    )
    np.fill_diagonal(near, False)
    return [bool(v) for v in near.any(axis=1)]


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for ``k`` successes in ``n`` trials (NaNs when ``n == 0``)."""
    if n <= 0:
        return math.nan, math.nan
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def poisson_rate(k: int, exposure: float, confidence: float = 0.95) -> tuple[float, float, float]:
    """A count ``k`` over ``exposure`` (units of exposure, such as 10 km·day): the rate and its
    exact (Garwood) two-sided interval, from the chi-square quantiles."""
    if exposure <= 0:
        return math.nan, math.nan, math.nan
    a = 1.0 - confidence
    lo = 0.0 if k == 0 else stats.chi2.ppf(a / 2.0, 2 * k) / 2.0
    hi = stats.chi2.ppf(1.0 - a / 2.0, 2 * k + 2) / 2.0
    return k / exposure, float(lo) / exposure, float(hi) / exposure


@dataclass
class AlertRecorder:
    """Listens to a sector's bus and writes down each alert event as it is published.

    ``clock`` is the bus's clock (the publication stamp); ``tracks_of(alert_id)`` the tracks
    the alert book holds in an open alert (empty once closed); ``to_local(lat, lon)`` the
    sector frame. Subscribe it with :meth:`attach`."""

    clock: Callable[[], float]
    tracks_of: Callable[[str], Iterable[str]]
    to_local: Callable[[float, float], tuple[float, float]]
    events: list[AlertEvent] = field(default_factory=list)
    #: the system's latest crossing of each track: (estimated time UTC s, x m, y m)
    crossed: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=dict)

    def attach(self, bus, sector: str) -> None:
        """Subscribe to the sector's crossings and alerts on ``bus``."""
        bus.subscribe(f"vigil/v1/{sector}/crossings", self.on_crossing)
        bus.subscribe(f"vigil/v1/{sector}/alerts", self.on_alert)

    def on_crossing(self, topic: str, msg) -> None:
        """A crossing the system detected: remember where and when, by track."""
        x, y = self.to_local(msg.lat, msg.lon)
        self.crossed[msg.track_id] = (float(msg.time), x, y)

    def on_alert(self, topic: str, msg) -> None:
        """A crossing alert published: one event if new, one per newly joined crossed track."""
        if getattr(msg, "kind", None) != "crossing":
            return
        now = float(self.clock())
        known = self.seen.setdefault(msg.alert_id, set())
        if msg.state == "new":
            track = msg.track_id or ""
            x, y = self.to_local(msg.lat, msg.lon)
            self.events.append(AlertEvent(msg.alert_id, track, now, x, y, float(msg.time)))
            known.add(track)
            known.update(self.tracks_of(msg.alert_id))
            return
        for track in sorted(set(self.tracks_of(msg.alert_id)) - known):
            known.add(track)
            if track in self.crossed:
                t, x, y = self.crossed[track]
                self.events.append(AlertEvent(msg.alert_id, track, now, x, y, t, new=False))


def score_events(
    crossings: list[TrueCrossing],
    events: list[AlertEvent],
    *,
    border_km: float,
    duration_s: float,
    start_time: float,
    run_start: float | None = None,
    radius_m: float = 600.0,
    early_s: float = 60.0,
    late_s: float = 900.0,
) -> dict:
    """One run's counts (see the module docstring): crossings counted and alerted, new alerts
    and false ones, unmatched joins, latencies (s) of the alerted counted crossings.

    ``start_time`` (UTC s) and ``duration_s`` (s) are the scored interval: false alerts are
    the unmatched new alerts published inside it, the exposure (10 km·day) is its length;
    ``run_start`` is the simulation's start (default ``start_time``: no warm-up). Which
    crossings count is their own :attr:`TrueCrossing.counted` (:func:`in_scored_interval`)."""
    pairs = match_one_to_one(crossings, events, radius_m=radius_m, early_s=early_s, late_s=late_s)
    matched_event = {e for _, e in pairs}
    latency = [events[e].published - crossings[c].time for c, e in pairs if crossings[c].counted]
    sim_start = start_time if run_start is None else run_start
    end_time = start_time + duration_s
    unscorable = [
        i
        for i, ev in enumerate(events)
        if ev.new and i not in matched_event and ev.estimated < sim_start - early_s
    ]
    unmatched = [
        i
        for i, ev in enumerate(events)
        if ev.new and i not in matched_event and i not in unscorable
    ]
    new = sum(ev.new for ev in events)
    false = sum(start_time <= events[i].published <= end_time for i in unmatched)
    alerted = {c for c, _ in pairs}
    near = crowded(crossings, radius_m=radius_m, window_s=late_s)
    split = [0, 0, 0, 0]  # isolated: counted, alerted; crowded: counted, alerted
    for i, c in enumerate(crossings):
        if c.counted:
            split[2 * near[i]] += 1
            split[2 * near[i] + 1] += i in alerted
    return {
        "crossings": sum(c.counted for c in crossings),
        "alerted": len(latency),
        "new_alerts": new,
        "joins": len(events) - new,
        "false_alerts": false,
        "unmatched_outside": len(unmatched) - false,
        "unmatched_joins": sum(
            (not ev.new) and i not in matched_event for i, ev in enumerate(events)
        ),
        "alerts_before_start": len(unscorable),
        "exposure_10km_day": border_km / 10.0 * duration_s / 86400.0,
        "latency_s": latency,
        "isolated_crowded": split,
    }


def animal_tally(per_animal: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """Animals tracked and animals classed as animals: an animal counts as an animal when the
    track it was matched to was classed ``animal`` in most of its matched seconds.
    ``per_animal``: animal id -> (seconds matched, seconds classed animal)."""
    tracked = [(n, a) for n, a in per_animal.values() if n > 0]
    return len(tracked), sum(2 * a > n for n, a in tracked)


def summarise(runs: list[dict], animals: tuple[int, int]) -> dict:
    """The protocol's figures over several runs (the sums of :func:`score_events`), with
    intervals; ``animals``: (animals tracked, classed as animals) summed over the runs."""
    n = sum(r["crossings"] for r in runs)
    k = sum(r["alerted"] for r in runs)
    false = sum(r["false_alerts"] for r in runs)
    exposure = sum(r["exposure_10km_day"] for r in runs)
    lat = np.array([s for r in runs for s in r["latency_s"]], dtype=float)
    rate, lo, hi = poisson_rate(false, exposure)
    na, ka = animals
    return {
        "crossings": n,
        "alerted": k,
        "recall": k / n if n else math.nan,
        "recall_ci": wilson(k, n),
        "new_alerts": sum(r["new_alerts"] for r in runs),
        "joins": sum(r["joins"] for r in runs),
        "unmatched_joins": sum(r["unmatched_joins"] for r in runs),
        "alerts_before_start": sum(r["alerts_before_start"] for r in runs),
        "unmatched_outside": sum(r.get("unmatched_outside", 0) for r in runs),
        "false_alerts": false,
        "exposure_10km_day": exposure,
        "false_per_10km_day": rate,
        "false_per_10km_day_ci": (lo, hi),
        "animals": na,
        "animals_as_animal": ka,
        "animal_share": ka / na if na else math.nan,
        "animal_ci": wilson(ka, na),
        "isolated_crowded": [
            sum(r.get("isolated_crowded", [0] * 4)[i] for r in runs) for i in range(4)
        ],  # fmt: skip
        "latency_p50_s": float(np.percentile(lat, 50)) if lat.size else math.nan,
        "latency_p95_s": float(np.percentile(lat, 95)) if lat.size else math.nan,
    }
