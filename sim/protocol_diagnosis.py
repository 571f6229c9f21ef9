"""Why the evaluation protocol missed a crossing or counted a false alert (issue 22).

The protocol (:mod:`vigil.sim.protocol`) says how many crossings were missed and how many
alerts were false; this module says where in the chain each was lost, from what a run
recorded second by second (:class:`Witness`, fed by :class:`WatchingScorer` in place of the
pipeline's :class:`vigil.sim.scoring.Scorer`):

- for each person group: the seconds a detection (tower or UAS, placed on the ground) lay
  within ``detect_m`` of one of its members, and the confirmed tracks that lay within
  ``match_m`` of one of its members, with their class guess, second by second;
- for each confirmed track: what it lay on, second by second (the nearest mover within
  ``match_m``: ``person:<group>``, ``animal``, ``vehicle``, ... or ``none``).

An alert event credited to another crossing is told apart by what its track lay on most of
its confirmed seconds: this group (one track, and one event, standing for both groups: at raised
crossing rates the groups of one corridor cross minutes apart) or the other group (a track of
the other group passed within ``match_m`` of this one, whose own tracks published no crossing).

A missed crossing (counted for recall, matched to no alert event) is put down to the first
stage that failed, in the order of the chain (:data:`MISS_REASONS`), looking at the window
from ``before_s`` before to ``late_s`` after the true crossing; a false alert to what its
track lay on (:data:`FALSE_REASONS`). The distances are the scoring's own (the scorer
matches groups to tracks within 50 m).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .protocol import AlertEvent, TrueCrossing, match_one_to_one
from .scoring import Scorer

#: Miss reasons, in the order of the chain (the first stage that failed is named).
MISS_REASONS: tuple[str, ...] = (
    "not detected",
    "detected, no confirmed track",
    "track classed animal",
    "track classed vehicle",
    "track classed unknown",
    "tracked as person, no crossing published",
    "crossing published, no alert event",
    "alert late (> 900 s after the crossing)",
    "alert too far (> 600 m) or too early",
    "alert credited to another crossing",
    "alert credited to another crossing: one track on both groups",
    "alert credited to another crossing: another group's track passing",
)

#: False-alert reasons: what the alert's track lay on most of its confirmed seconds.
FALSE_REASONS: tuple[str, ...] = (
    "track never confirmed",
    "nothing (no mover within 50 m)",
    "an animal",
    "a vehicle",
    "other mover",
    "people not crossing into the US",
    "people whose crossing was already alerted",
    "people crossing, alert outside the window",
)


@dataclass
class Witness:
    """What a run showed each second: detections near each person group, tracks on each
    group, and what each confirmed track lay on (see the module docstring)."""

    detect_m: float = 50.0
    match_m: float = 50.0
    #: group id -> times (UTC s) a detection lay near one of its members
    group_detected: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    #: group id -> (time UTC s, track id, class guess) for each second a track lay on it
    group_tracked: dict[str, list[tuple[float, str, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    #: track id -> seconds on each label (``person:<group>``, ``animal``, ..., ``none``)
    track_on: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def observe(self, t: float, states, tracks: list, det_xy: np.ndarray) -> None:
        """One second: ``states`` the movers (:class:`vigil.sim.movers.MoverStates`),
        ``tracks`` the confirmed tracks (:class:`vigil.sim.scoring.TrackSample`), ``det_xy``
        the detections (local m, shape (n, 2)) made since the last call."""
        n = len(states)
        if n == 0:
            for tr in tracks:
                self.track_on[tr.track_id]["none"] += 1
            return
        mx, my = np.asarray(states.x), np.asarray(states.y)
        classes = list(states.classes)
        labels = [
            f"person:{g}" if c == "person" and g else c
            for c, g in zip(classes, states.groups, strict=True)
        ]
        if len(det_xy):
            d = np.hypot(det_xy[:, :1] - mx[None, :], det_xy[:, 1:2] - my[None, :])
            near = d <= self.detect_m
            for j in np.flatnonzero(near.any(axis=0)):
                if labels[j].startswith("person:"):
                    groups = self.group_detected[labels[j][7:]]
                    if not groups or groups[-1] != t:
                        groups.append(t)
        for tr in tracks:
            d = np.hypot(mx - tr.x, my - tr.y)
            j = int(np.argmin(d))
            if d[j] > self.match_m:
                self.track_on[tr.track_id]["none"] += 1
                continue
            self.track_on[tr.track_id][labels[j]] += 1
            if labels[j].startswith("person:"):
                self.group_tracked[labels[j][7:]].append((t, tr.track_id, tr.class_guess))


@dataclass
class WatchingScorer(Scorer):
    """The pipeline's scorer, also feeding a :class:`Witness`; ``detections()`` returns the
    detections made since its last call (local m, shape (n, 2))."""

    witness: Witness = field(default_factory=Witness)
    detections: Callable[[], np.ndarray] | None = None

    def observe(self, states, tracks) -> None:  # noqa: D102 (Scorer.observe, and the witness)
        super().observe(states, tracks)
        det = self.detections() if self.detections is not None else np.zeros((0, 2))
        self.witness.observe(float(states.time), states, tracks, det)


def _people(counter: Counter[str] | None) -> Counter[str]:
    """A track's seconds on people only (``person:<group>``)."""
    return Counter({k: v for k, v in (counter or {}).items() if k.startswith("person:")})


def _majority(counter: Counter[str]) -> str:
    return counter.most_common(1)[0][0] if counter else ""


def diagnose(
    crossings: list[TrueCrossing],
    events: list[AlertEvent],
    witness: Witness,
    crossed_tracks: set[str],
    *,
    start_time: float,
    end_time: float,
    run_start: float | None = None,
    before_s: float = 600.0,
    radius_m: float = 600.0,
    early_s: float = 60.0,
    late_s: float = 900.0,
) -> dict:
    """Each missed counted crossing and each false new alert, with its reason.

    ``crossed_tracks``: the tracks for which the system published an entering crossing;
    ``start_time`` and ``end_time`` (UTC s): the scored interval (false alerts are the new
    alerts published inside it); ``run_start``: the simulation's start (default
    ``start_time``).
    Returns ``{"misses": [...], "false": [...], "uncovered": n, "uncovered_alerted": k}``,
    each item a dict with the crossing or alert, its group or track, and ``reason``;
    ``uncovered``: the run's entering crossings outside coverage (not counted for recall),
    ``uncovered_alerted`` those of them matched to an alert all the same."""
    pairs = match_one_to_one(crossings, events, radius_m=radius_m, early_s=early_s, late_s=late_s)
    matched_c = {c for c, _ in pairs}
    matched_e = {e for _, e in pairs}
    credited = {e: c for c, e in pairs}
    by_track: dict[str, list[int]] = defaultdict(list)
    for i, ev in enumerate(events):
        by_track[ev.track_id].append(i)
    misses = []
    for ci, c in enumerate(crossings):
        if not c.counted or ci in matched_c:
            continue
        lo, hi = c.time - before_s, c.time + late_s
        detected = [t for t in witness.group_detected.get(c.group_id, []) if lo <= t <= hi]
        tracked = [s for s in witness.group_tracked.get(c.group_id, []) if lo <= s[0] <= hi]
        tracks = sorted({s[1] for s in tracked})
        cls = _majority(Counter(s[2] for s in tracked))
        reason = ""
        other: dict = {}
        if not detected and not tracked:
            reason = "not detected"
        elif not tracked:
            reason = "detected, no confirmed track"
        elif cls != "person":
            reason = f"track classed {cls}" if cls in ("animal", "vehicle") else (
                "track classed unknown")  # fmt: skip
        elif not crossed_tracks.intersection(tracks):
            reason = "tracked as person, no crossing published"
        else:
            mine = [i for t in tracks for i in by_track.get(t, [])]
            if not mine:
                reason = "crossing published, no alert event"
            else:
                feasible = [
                    i
                    for i in mine
                    if np.hypot(events[i].x - c.x, events[i].y - c.y) <= radius_m
                    and -early_s <= events[i].published - c.time <= late_s
                ]
                if feasible:
                    own = [
                        i
                        for i in feasible
                        if _majority(_people(witness.track_on.get(events[i].track_id)))
                        == f"person:{c.group_id}"
                    ]
                    reason = "alert credited to another crossing: " + (
                        "one track on both groups" if own else "another group's track passing"
                    )
                    i = (own or feasible)[0]
                    o = crossings[credited[i]] if i in credited else None
                    if o is not None:
                        other = {
                            "credited_to": o.group_id,
                            "credited_dt_s": o.time - c.time,
                            "credited_m": float(np.hypot(o.x - c.x, o.y - c.y)),
                        }
                elif min(events[i].published for i in mine) > c.time + late_s:
                    reason = "alert late (> 900 s after the crossing)"
                else:
                    reason = "alert too far (> 600 m) or too early"
        misses.append(
            {
                "crossing_id": c.crossing_id,
                "group_id": c.group_id,
                "time": c.time,
                "reason": reason,
                "detected_s": len(detected),
                "tracked_s": len(tracked),
                "tracks": tracks[:8],
                "class": cls,
                "to_end_s": end_time - c.time,
                "from_start_s": c.time - start_time,
                **other,
            }
        )
    entering = {c.group_id: ci for ci, c in enumerate(crossings)}
    sim_start = start_time if run_start is None else run_start
    false = []
    for i, ev in enumerate(events):
        if not ev.new or i in matched_e or ev.estimated < sim_start - early_s:
            continue
        if not start_time <= ev.published <= end_time:
            continue
        on = witness.track_on.get(ev.track_id, Counter())
        real = Counter({k: v for k, v in on.items() if k != "none"})
        label = _majority(real) if real else ("none" if on else "")
        if not label:
            reason = "track never confirmed"
        elif label == "none":
            reason = "nothing (no mover within 50 m)"
        elif label == "animal":
            reason = "an animal"
        elif label == "vehicle":
            reason = "a vehicle"
        elif not label.startswith("person:"):
            reason = "other mover"
        else:
            ci = entering.get(label[7:])
            if ci is None:
                reason = "people not crossing into the US"
            elif ci in matched_c:
                reason = "people whose crossing was already alerted"
            else:
                reason = "people crossing, alert outside the window"
        false.append(
            {
                "alert_id": ev.alert_id,
                "track_id": ev.track_id,
                "published": ev.published,
                "reason": reason,
                "on": dict(on.most_common(3)),
            }
        )
    uncovered = [
        ci for ci, c in enumerate(crossings) if not c.inside and start_time <= c.time <= end_time
    ]
    return {
        "misses": misses,
        "false": false,
        "uncovered": len(uncovered),
        "uncovered_alerted": sum(ci in matched_c for ci in uncovered),
    }


def tally(diagnoses: list[dict]) -> tuple[Counter[str], Counter[str]]:
    """Miss reasons and false-alert reasons summed over runs."""
    misses: Counter[str] = Counter()
    false: Counter[str] = Counter()
    for d in diagnoses:
        misses.update(m["reason"] for m in d["misses"])
        false.update(f["reason"] for f in d["false"])
    return misses, false
