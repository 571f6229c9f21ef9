"""The alert engine: turns tracks, crossings and sensor messages into dispatch alerts.

The engine is a pure state machine over wire messages: :meth:`AlertEngine.handle` takes one
message and returns the messages to publish (``Alert`` and ``CameraCommand``);
:meth:`AlertEngine.tick` handles time passing (silent sensors). It never publishes by itself,
so it runs the same behind the in-process bus, MQTT, or a replay.

It is a thin composition: one rule per alert kind (:mod:`vigil.alerts.kinds`) decides when
an alert is raised or updated, the alert book (:mod:`vigil.alerts.book`) keeps the alerts'
lifecycle, and the engine remembers the tracks and feeds every rule every message.

What it promises:

- one group, one alert: crossings near an open alert's place and time join it;
- corroboration: each alert carries its evidence (sensors, updates, class probabilities);
  a track whose most likely class is ``animal``, or whose person probability is below the
  rule's threshold, never raises a crossing alert;
- rate limits per segment, priorities per rule and zone;
- a recommended unit and an intercept point for alerts about moving groups.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import shapely
from numpy.typing import ArrayLike
from shapely.geometry import LineString, Polygon

from vigil.alerts.book import AlertBook, OpenAlert, TrackInfo
from vigil.alerts.dispatch import PREDICTION_OFFSETS_S, RoadNetwork, UnitPlanner, UnitState
from vigil.alerts.kinds import (
    RULE_CLASSES,
    AlertRule,
    CrossingRule,
    RuleContext,
    SensorCueRule,
    SensorHealthRule,
    TrackLostRule,
    ZoneEntryRule,
)
from vigil.alerts.kinds.base import local_xy
from vigil.alerts.rules import AlertRules
from vigil.geo.border import US_SIDE
from vigil.geo.site import Site, tower_camera
from vigil.ingest.schema import (
    AlertAction,
    AlertKind,
    Crossing,
    SensorEvent,
    SensorStatus,
    Track,
    Wire,
)

__all__ = ["PREDICTION_OFFSETS_S", "AlertEngine"]

R = TypeVar("R", bound=AlertRule)


class AlertEngine:
    """Alert rules over a sector's wire messages.

    Parameters
    ----------
    site
        The sector's layout (border, zones, sensors, towers, units, roads).
    rules
        The alert rules (defaults if omitted).
    """

    def __init__(self, site: Site, rules: AlertRules | None = None) -> None:
        self.site = site
        self.rules = rules or AlertRules()
        self.sector = site.sector.name
        self.frame = site.frame()
        self.border = site.border(self.frame)
        self.zones: list[tuple[str, int, Polygon]] = []
        for z in site.zones:
            lat, lon = np.asarray(z.polygon).T
            x, y = self.frame.to_local(lat, lon)
            self.zones.append((z.id, z.priority, Polygon(np.column_stack([x, y]))))
        self.sensor_xy: dict[str, tuple[float, float, float, str | None]] = {}
        if site.sensors:
            sx, sy = self.frame.to_local(
                [s.lat for s in site.sensors], [s.lon for s in site.sensors]
            )
            for s, x, y in zip(site.sensors, sx, sy, strict=True):
                self.sensor_xy[s.id] = (float(x), float(y), s.radius_m, s.line)
        self.cameras = {t.id: tower_camera(t, self.frame) for t in site.towers}
        self.units: dict[str, UnitState] = {}
        if site.units:
            ux, uy = self.frame.to_local([u.lat for u in site.units], [u.lon for u in site.units])
            for u, x, y in zip(site.units, ux, uy, strict=True):
                self.units[u.id] = UnitState(
                    u.id, float(x), float(y), u.speed_mps, u.road_speed_mps
                )
        roads = []
        for r in site.roads:
            lat, lon = np.asarray(r.path).T
            x, y = self.frame.to_local(lat, lon)
            roads.append(LineString(np.column_stack([x, y])))
        self.roads = RoadNetwork(roads)

        planner = UnitPlanner(self.units, self.roads, self.frame, self.rules.intercept_horizon_s)
        self.book = AlertBook(self.sector, self.frame, self.rules, planner)
        #: The live tracks as the rules see them, by id.
        self.tracks: dict[str, TrackInfo] = {}
        #: Local positions (metres) of the track messages :meth:`place` announced, and the
        #: zones holding each, by ``(lat, lon)``.
        self._placed: dict[tuple[float, float], tuple[float, float, tuple[bool, ...]]] = {}
        #: What every rule sees (settings, layout, tracks, book).
        self.context = RuleContext(
            settings=self.rules,
            frame=self.frame,
            border=self.border,
            zones=self.zones,
            sensor_xy=self.sensor_xy,
            cameras=self.cameras,
            tracks=self.tracks,
            book=self.book,
            zone_names={z.id: z.name for z in site.zones},
        )
        #: One rule per alert kind, consulted in this order.
        self.rule_for: dict[AlertKind, AlertRule] = {
            cls.kind: cls(self.context) for cls in RULE_CLASSES
        }
        #: The rules' track hooks, in their order; those that react to nothing left out.
        self.track_hooks = tuple(
            r.on_track for r in self.rule_for.values() if type(r).on_track is not AlertRule.on_track
        )

    # -- public -------------------------------------------------------------------------------
    def handle(self, msg: Wire) -> list[Wire]:
        """Process one message; return the alerts and camera commands to publish."""
        t = getattr(msg, "time", None)
        if t is not None:
            self.book.advance(float(t))
        match msg:
            case Track():
                return self._on_track(msg)
            case Crossing():
                return self._each(lambda rule: rule.on_crossing(msg))
            case SensorEvent():
                return self._each(lambda rule: rule.on_sensor_event(msg))
            case SensorStatus():
                return self._each(lambda rule: rule.on_sensor_status(msg))
            case AlertAction():
                return self.book.act(msg)
        return []

    def tick(self, now: float) -> list[Wire]:
        """Time passes: cued towers turn back, silent sensors raise alerts."""
        self.book.advance(now)
        return self._each(lambda rule: rule.on_tick(now))

    def merge_tracks(self, merged: str, into: str) -> None:
        """Fusion folded track ``merged`` into ``into`` (one group seen as two): the alert,
        crossing and pending crossing of the one go to the other."""
        self.book.merge_tracks(merged, into)
        for rule in self.rule_for.values():
            rule.merge_tracks(merged, into)

    def place(self, tracks: Sequence[Track], x: ArrayLike, y: ArrayLike) -> None:
        """The local positions (metres) of track messages about to be handled, projected in
        one batch by the caller (``x[i], y[i]`` of ``tracks[i]``, as
        ``frame.to_local`` gives them: PROJ projects each point alone, so they are the very
        numbers :meth:`remember` would compute one by one). Replaces those of an earlier
        call; :meth:`remember` uses each once and projects any track not placed itself.

        Which zones hold each position is found here too, for all of them in one call per
        zone (``shapely.contains`` over the points: the predicate ``poly.contains(point)``
        evaluates, point by point), for the zone-entry rule (:attr:`TrackInfo.inside`)."""
        xs = np.asarray(x, dtype=np.float64).reshape(-1)
        ys = np.asarray(y, dtype=np.float64).reshape(-1)
        if self.zones and xs.size:
            pts = shapely.points(xs, ys)
            held = [shapely.contains(poly, pts).tolist() for _, _, poly in self.zones]
            inside = list(zip(*held, strict=True))
        else:
            inside = [()] * xs.size
        self._placed = {
            (t.lat, t.lon): (a, b, z)
            for t, a, b, z in zip(tracks, xs.tolist(), ys.tolist(), inside, strict=True)
        }

    def plan_ahead(self, tracks: Sequence[Track], x: ArrayLike, y: ArrayLike) -> None:
        """Make, all at once, the unit recommendations that handling these track messages
        (one tick's, placed at local ``x``, ``y``, metres) is about to ask for: tracks
        entering a zone, with an open alert due for an update or lost near the border, or
        with a crossing waiting for evidence. The planner uses one only for the very same
        position, velocity and units, so what the alerts say is the same as without; a
        recommendation asked for and not made ahead is made then, as before. Until
        :meth:`plans_done`."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        s = self.rules
        rule = self._rule(ZoneEntryRule)
        seen, pending = rule.zone_seen, self._rule(CrossingRule).pending
        crossed = self._rule(TrackLostRule).crossed
        inside = [(zid, shapely.contains_xy(poly, x, y)) for zid, _, poly in self.zones]
        ids = [t.track_id for t in tracks]
        by_track = self.book.by_track
        # only tracks in a zone, with an alert or a crossing, or ended can want a plan
        maybe = np.array([t in by_track or t in pending for t in ids], dtype=np.bool_)
        maybe |= np.array([t.state == "ended" for t in tracks], dtype=np.bool_)
        for _, z in inside:
            maybe |= z
        want = np.zeros(len(tracks), dtype=np.bool_)
        lost = []
        due: set[str] = set()  # alerts whose position update a track of this tick makes
        for i in np.flatnonzero(maybe).tolist():
            trk, tid = tracks[i], ids[i]
            oa = self.book.alert_for_track(tid)
            if trk.state == "ended":
                near = oa is not None or tid in crossed or not s.track_lost_needs_crossing
                if s.track_lost and near and rule.is_person(trk):
                    lost.append(i)
            elif tid in pending:
                want[i] = True
            elif (
                oa is not None
                and trk.time - oa.last_published >= s.update_interval_s
                and oa.alert.alert_id not in due
            ):
                # the alert's first track in the tick updates it; the others find it fresh
                due.add(oa.alert.alert_id)
                want[i] = True
            elif s.zone_entry and any(z[i] and (zid, tid) not in seen for zid, z in inside):
                info = self.tracks.get(tid)
                updates = max(info.updates if info is not None else 0, trk.count)
                want[i] = updates >= s.min_track_updates and rule.is_person(trk)
        if lost:
            at = np.array(lost)
            side, dist = self.border.side(x[at], y[at]), self.border.distance(x[at], y[at])
            want[at] = (side == US_SIDE) & ~(dist > s.track_lost_border_m)
        rows = np.flatnonzero(want)
        vx = np.array([tracks[i].vx for i in rows.tolist()], dtype=np.float64)
        vy = np.array([tracks[i].vy for i in rows.tolist()], dtype=np.float64)
        self.book.planner.prepare(x[rows], y[rows], vx, vy)

    def plans_done(self) -> None:
        """The tick that :meth:`plan_ahead` served is over: its recommendations go."""
        self.book.planner.forget()

    def remember(self, trk: Track) -> TrackInfo:
        """Take a track message into what the rules see of the track (its position in local
        metres, the fused detections behind it) and return that."""
        placed = self._placed.pop((trk.lat, trk.lon), None)
        if placed is not None:
            x, y, inside = placed
        else:
            (x, y), inside = local_xy(self.frame, trk.lat, trk.lon), None
        info = self.tracks.get(trk.track_id)
        if info is None:
            info = self.tracks[trk.track_id] = TrackInfo(trk)
        info.last, info.x, info.y, info.inside = trk, x, y, inside
        # the fused detections behind the track (not how many times it was published: a
        # track coasting on its prediction is published every tick with nothing new)
        info.updates = max(info.updates, trk.count)
        return info

    def move_unit(self, unit_id: str, x: float, y: float, available: bool | None = None) -> None:
        """Update a unit's position (local metres) and, optionally, its availability."""
        u = self.units[unit_id]
        u.x, u.y = x, y
        if available is not None:
            u.available = available

    # -- what the parts hold, under the names callers know ------------------------------------
    @property
    def counts(self) -> Counter[str]:
        """What happened how often: alerts raised and updated, and why messages raised none."""
        return self.book.counts

    @property
    def now(self) -> float:
        """The latest message time seen, UTC seconds."""
        return self.book.now

    @property
    def open(self) -> dict[str, OpenAlert]:
        """The open alerts by id."""
        return self.book.open

    @property
    def by_track(self) -> dict[str, str]:
        """The open alert of each track that joined one."""
        return self.book.by_track

    @property
    def by_key(self) -> dict[str, str]:
        """The open alert of each de-duplication key (a sensor's health, a sensor line's cue)."""
        return self.book.by_key

    @property
    def segment_history(self) -> dict[str, deque[float]]:
        """Times of the crossing alerts raised per segment within the rate window."""
        return self.book.segment_history

    @property
    def pending(self) -> dict[str, Crossing]:
        """Northbound crossings still waiting for evidence, by track."""
        return self._rule(CrossingRule).pending

    @property
    def crossed(self) -> dict[str, Crossing]:
        """Northbound crossings by live tracks."""
        return self._rule(TrackLostRule).crossed

    @property
    def zone_seen(self) -> set[tuple[str, str]]:
        """``(zone id, track id)`` of the zone entries already acted on."""
        return self._rule(ZoneEntryRule).zone_seen

    @property
    def camera_seen_at(self) -> deque[tuple[float, float, float]]:
        """``(time, x, y)`` of recent camera-fed track updates."""
        return self._rule(SensorCueRule).camera_seen_at

    @property
    def cued(self) -> dict[str, float]:
        """Towers turned by a cue, and when."""
        return self._rule(SensorCueRule).cued

    @property
    def sensor_last_heard(self) -> dict[str, float]:
        """When each ground sensor was last heard from, UTC seconds."""
        return self._rule(SensorHealthRule).sensor_last_heard

    # -- wiring -------------------------------------------------------------------------------
    def _rule(self, cls: type[R]) -> R:
        rule = self.rule_for[cls.kind]
        assert isinstance(rule, cls)
        return rule

    def _each(self, hook: Callable[[AlertRule], list[Wire]]) -> list[Wire]:
        out: list[Wire] = []
        for rule in self.rule_for.values():
            out += hook(rule)
        return out

    def _on_track(self, trk: Track) -> list[Wire]:
        info = self.remember(trk)
        out: list[Wire] = []
        for hook in self.track_hooks:
            got = hook(info)
            if got:
                out += got
        if trk.state == "ended":
            self.tracks.pop(trk.track_id, None)
            return out
        oa = self.book.alert_for_track(trk.track_id)
        if oa is not None:
            out += self.book.refresh(oa, info)
        return out
