"""The alert book: the open alerts' lifecycle, whichever rule raised them.

The book gives alerts their ids, builds them with their evidence, recommended units and
predicted positions, publishes their updates (throttled), merges tracks into them (one group,
one alert), limits new crossing alerts per segment, and applies the operators' actions
(acknowledge, assign, close). The rules (:mod:`vigil.alerts.kinds`) decide *when*; the book
decides *how*. Positions are in the sector's local frame (metres), times in UTC seconds.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field

import msgspec

from vigil.alerts.dispatch import UnitPlanner
from vigil.alerts.rules import AlertRules
from vigil.geo.frames import LocalFrame
from vigil.ingest.schema import (
    Alert,
    AlertAction,
    AlertEvent,
    AlertKind,
    Evidence,
    PredictedPosition,
    Track,
    Wire,
)

#: An alert keeps this many history entries (the newest).
HISTORY_LENGTH = 50


@dataclass
class TrackInfo:
    """What the alert rules remember of a track: its last message, how many fused detections
    are behind it, and its position in the sector's local frame (metres).

    ``inside`` says, zone by zone in the engine's order, whether that position lies in the
    zone, when the engine found it for the whole tick at once (``None``: not known, a rule
    asks the zone itself)."""

    last: Track
    updates: int = 0
    x: float = 0.0
    y: float = 0.0
    inside: tuple[bool, ...] | None = None


#: How many crossings an open alert remembers for grouping (:attr:`OpenAlert.crossings`).
CROSSINGS_KEPT = 32


@dataclass
class OpenAlert:
    """An alert not yet closed, with its place (local metres), the tracks merged into it, when
    it was last published (UTC seconds) and its de-duplication key (empty for none)."""

    alert: Alert
    x: float
    y: float
    track_ids: set[str] = field(default_factory=set)
    last_published: float = 0.0
    key: str = ""
    #: Where and when (local metres, UTC seconds) the crossings that raised or joined it
    #: happened, the latest :data:`CROSSINGS_KEPT`: a crossing reported late (it waited for
    #: evidence, or was inferred) is matched against these, not only against where the
    #: alert's tracks are now. A tuple (a class default for alerts restored from older state).
    crossings: tuple[tuple[float, float, float], ...] = ()


def add_crossing(oa: OpenAlert, x: float, y: float, t: float) -> None:
    """Remember a crossing of an open alert's group at local ``(x, y)`` (m), ``t`` (UTC s):
    a field the dataclass makes, replaced whole (the latest :data:`CROSSINGS_KEPT`)."""
    oa.crossings = (*oa.crossings, (x, y, t))[-CROSSINGS_KEPT:]


class AlertBook:
    """The open alerts of one sector and their lifecycle.

    Parameters
    ----------
    sector
        The sector's name, the prefix of every alert id.
    frame
        The sector's local frame (alerts carry WGS84 positions).
    rules
        The alert rules (grouping, rate limits, update interval).
    planner
        Recommends units and predicts positions for alerts about moving groups.
    """

    def __init__(
        self, sector: str, frame: LocalFrame, rules: AlertRules, planner: UnitPlanner
    ) -> None:
        self.sector = sector
        self.frame = frame
        self.rules = rules
        self.planner = planner
        self.open: dict[str, OpenAlert] = {}
        self.by_track: dict[str, str] = {}
        self.by_key: dict[str, str] = {}
        #: Times of the crossing alerts raised per segment within the rate window.
        self.segment_history: dict[str, deque[float]] = defaultdict(deque)
        #: What happened how often: alerts raised and updated, and why messages raised none.
        self.counts: Counter[str] = Counter()
        self.next_id = 0
        #: The latest message time seen, UTC seconds.
        self.now = 0.0

    # -- looking up ---------------------------------------------------------------------------
    def advance(self, t: float) -> None:
        """Time has reached ``t`` (UTC seconds); it never goes back."""
        self.now = max(self.now, t)

    def alert_for_track(self, track_id: str) -> OpenAlert | None:
        """The open alert a track belongs to, or ``None``."""
        aid = self.by_track.get(track_id)
        return None if aid is None else self.open.get(aid)

    def alert_for_key(self, key: str) -> OpenAlert | None:
        """The open alert with a de-duplication key, or ``None``."""
        aid = self.by_key.get(key)
        return None if aid is None else self.open.get(aid)

    def find_group(
        self,
        x: float,
        y: float,
        t: float,
        kinds: tuple[str, ...],
        *,
        nearest: bool,
        radius_m: float | None = None,
        window_s: float | None = None,
    ) -> OpenAlert | None:
        """An open alert of one of ``kinds`` within the group radius (m) of ``(x, y)`` and the
        group window (s) of ``t`` (or ``radius_m`` and ``window_s`` where given), where it is
        now or where one of its crossings was (:attr:`OpenAlert.crossings`): the first in
        raising order, or the nearest if ``nearest``; ``None`` if there is none (one group,
        one alert)."""
        r = self.rules.group_radius_m if radius_m is None else radius_m
        w = self.rules.group_window_s if window_s is None else window_s
        best, best_d = None, math.inf
        for oa in self.open.values():
            a = oa.alert
            if a.kind not in kinds or a.state == "closed":
                continue
            d = math.hypot(oa.x - x, oa.y - y) if abs(t - a.time) <= w else math.inf
            for cx, cy, ct in oa.crossings:
                if abs(t - ct) <= w:
                    d = min(d, math.hypot(cx - x, cy - y))
            if d <= r:
                if not nearest:
                    return oa
                if d < best_d:
                    best, best_d = oa, d
        return best

    def rate_limit(self, segment_id: str, t: float) -> OpenAlert | None:
        """Count a new crossing alert on a segment at ``t`` (UTC seconds); or, when the
        segment has had its share within the rate window, return the latest open alert on it
        to merge into instead (counting nothing)."""
        hist = self.segment_history[segment_id]
        while hist and hist[0] < t - self.rules.rate_window_s:
            hist.popleft()
        if len(hist) >= self.rules.max_alerts_per_segment:
            same = [
                oa
                for oa in self.open.values()
                if oa.alert.segment_id == segment_id and oa.alert.state != "closed"
            ]
            if same:
                return max(same, key=lambda o: o.alert.time)
        hist.append(t)
        return None

    # -- raising and updating -----------------------------------------------------------------
    def new(
        self,
        kind: AlertKind,
        priority: int,
        x: float,
        y: float,
        *,
        segment_id: str | None = None,
        zone: str | None = None,
        track: TrackInfo | None = None,
        joined_by: str | None = None,
        evidence: Evidence | None = None,
        units: list[str] | None = None,
        key: str = "",
        summary: str = "",
        when: float | None = None,
    ) -> Alert:
        """Raise a new alert at ``(x, y)`` (local metres) and open it.

        An alert about a ``track`` takes the track's place, evidence and velocity, with the
        units that can intercept it and the group's predicted positions (otherwise it names
        the ``units`` given, if any). The track with id ``joined_by`` joins the alert: its
        later updates refresh it. ``key`` de-duplicates alerts about one thing (a sensor, a
        sensor line); ``when`` is the alert's time (the latest message's if omitted).
        """
        self.next_id += 1
        alert_id = f"{self.sector}-A{self.next_id:06d}"
        t = self.now if when is None else when
        units = units if units is not None else []
        predicted: list[PredictedPosition] = []
        if track is not None:
            evidence = Evidence(
                sensors=sorted(track.last.sensors),
                detections=track.updates,
                class_probs=dict(track.last.class_probs),
            )
            x, y = track.x, track.y
            units, predicted, options = self.planner.plan(x, y, track.last.vx, track.last.vy, t)
            if options:
                o = options[0]
                summary += f"; {o.unit_id} can intercept in {o.time_s / 60:.0f} min"
        lat, lon = self.planner.wgs84(x, y)
        alert = Alert(
            alert_id=alert_id,
            time=t,
            kind=kind,
            priority=priority,
            segment_id=segment_id,
            zone=zone,
            lat=lat,
            lon=lon,
            track_id=track.last.track_id if track is not None else None,
            predicted=predicted,
            units=units,
            state="new",
            evidence=evidence or Evidence(),
            history=[AlertEvent(time=t, state="new", note=summary)],
            summary=summary,
        )
        oa = self.open[alert_id] = OpenAlert(alert, x, y, last_published=t, key=key)
        if key:
            self.by_key[key] = alert_id
        self.counts[f"alert_{kind}"] += 1
        if joined_by is not None:
            self.join(oa, joined_by)
        return alert

    def join(self, oa: OpenAlert, track_id: str) -> None:
        """A track joins an open alert: its updates refresh that alert from now on."""
        oa.track_ids.add(track_id)
        self.by_track[track_id] = oa.alert.alert_id

    def refresh(self, oa: OpenAlert, info: TrackInfo) -> list[Wire]:
        """A position update of an open alert from one of its tracks, at most one per update
        interval."""
        if info.last.time - oa.last_published < self.rules.update_interval_s:
            return []
        return self.update(oa, info, note="position update")

    def update(self, oa: OpenAlert, info: TrackInfo, note: str) -> list[Wire]:
        """Publish an open alert again with a track's place, evidence and velocity, and a
        history note (``[]`` if the alert is closed)."""
        a = oa.alert
        if a.state == "closed":
            return []
        t = max(a.time, info.last.time)
        units, predicted, _ = self.planner.plan(info.x, info.y, info.last.vx, info.last.vy, t)
        state = a.state if a.state == "acknowledged" else "updated"
        probs = dict(info.last.class_probs) or dict(a.evidence.class_probs)
        sensors = sorted({*a.evidence.sensors, *info.last.sensors})
        lat, lon = self.planner.wgs84(info.x, info.y)
        alert = _replace(
            a,
            time=t,
            lat=lat,
            lon=lon,
            predicted=predicted,
            units=units if a.state != "acknowledged" else a.units,
            state=state,
            evidence=Evidence(
                sensors=sensors,
                detections=a.evidence.detections + 1,
                class_probs=probs,
            ),
            history=[*a.history, AlertEvent(time=t, state=state, note=note)][-HISTORY_LENGTH:],
        )
        oa.alert, oa.x, oa.y, oa.last_published = alert, info.x, info.y, t
        self.counts["alert_updates"] += 1
        return [alert]

    def corroborate(self, oa: OpenAlert, sensor: str) -> None:
        """Another hit on an open alert's sensors: the sensor joins its evidence with one more
        detection; nothing is published."""
        ev = oa.alert.evidence
        sensors = sorted({*ev.sensors, sensor})
        oa.alert = _replace(
            oa.alert, evidence=Evidence(sensors=sensors, detections=ev.detections + 1)
        )

    def merge_tracks(self, merged: str, into: str) -> None:
        """Fusion folded track ``merged`` into ``into``: the alert of the one goes to the
        other, unless that has one already."""
        aid = self.by_track.pop(merged, None)
        if aid is not None and into not in self.by_track:
            self.by_track[into] = aid
            if aid in self.open:
                self.open[aid].track_ids.add(into)

    # -- operators ----------------------------------------------------------------------------
    def act(self, act: AlertAction) -> list[Wire]:
        """An operator acknowledges, assigns or closes an alert: return it in its new state;
        an assigned unit is busy until the alert closes. The alert's ``time`` stays what it
        was; the action is recorded in its history at the action's own time."""
        oa = self.open.get(act.alert_id)
        if oa is None:
            self.counts["action_unknown_alert"] += 1
            return []
        a = oa.alert
        units = self.planner.units
        state = {"acknowledge": "acknowledged", "assign": "acknowledged", "close": "closed"}[
            act.action
        ]
        unit = act.unit if act.action == "assign" else a.assigned_unit
        if act.action == "assign" and act.unit in units:
            units[act.unit].available = False
        if state == "closed" and a.assigned_unit in units:
            units[a.assigned_unit].available = True
        note = act.note or (f"assigned {act.unit}" if act.action == "assign" else act.action)
        # the alert keeps its own time (when raised, or its latest position); the action's
        # time goes into the history only: an acknowledgement is not a sighting
        alert = _replace(
            a,
            state=state,
            assigned_unit=unit,
            history=[*a.history, AlertEvent(time=act.time, state=state, by=act.by, note=note)][
                -HISTORY_LENGTH:
            ],
        )
        oa.alert = alert
        if state == "closed":
            self._forget(oa)
        return [alert]

    def resolve(self, oa: OpenAlert, when: float, note: str) -> list[Wire]:
        """Close an open alert because what it is about has ended (a camera streaming again):
        return it closed, with ``note`` in its history at ``when`` (UTC seconds) and no actor;
        a unit assigned to it is free again."""
        a = oa.alert
        units = self.planner.units
        if a.assigned_unit in units:
            units[a.assigned_unit].available = True  # type: ignore[index]
        event = AlertEvent(time=when, state="closed", note=note)
        oa.alert = _replace(a, state="closed", history=[*a.history, event][-HISTORY_LENGTH:])
        self._forget(oa)
        self.counts["alerts_resolved"] += 1
        return [oa.alert]

    def _forget(self, oa: OpenAlert) -> None:
        self.open.pop(oa.alert.alert_id, None)
        if oa.key:
            self.by_key.pop(oa.key, None)
        for tid in oa.track_ids:
            if self.by_track.get(tid) == oa.alert.alert_id:
                self.by_track.pop(tid)


def _replace(alert: Alert, **changes) -> Alert:
    return msgspec.structs.replace(alert, **changes)
