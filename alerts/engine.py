"""The alert engine: turns tracks, crossings and sensor messages into dispatch alerts.

The engine is a pure state machine over wire messages: :meth:`AlertEngine.handle` takes one
message and returns the messages to publish (``Alert`` and ``CameraCommand``);
:meth:`AlertEngine.tick` handles time passing (silent sensors). It never publishes by itself,
so it runs the same behind the in-process bus, MQTT, or a replay.

What it promises:

- one group, one alert: crossings near an open alert's place and time join it;
- corroboration: each alert carries its evidence (sensors, updates, class probabilities);
  a track whose most likely class is ``animal``, or whose person probability is below the
  rule's threshold, never raises a crossing alert;
- rate limits per segment, priorities per rule and zone;
- a recommended unit and an intercept point for alerts about moving groups.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field

import msgspec
import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

from vigil.alerts.dispatch import RoadNetwork, UnitState, predict, recommend
from vigil.alerts.rules import AlertRules
from vigil.geo.border import US_SIDE
from vigil.geo.site import Site, tower_camera
from vigil.ingest.schema import (
    Alert,
    AlertAction,
    AlertEvent,
    CameraCommand,
    Crossing,
    Evidence,
    PredictedPosition,
    SensorEvent,
    SensorStatus,
    Track,
    Wire,
)

PREDICTION_OFFSETS_S = (300.0, 600.0, 900.0)


@dataclass
class _TrackInfo:
    last: Track
    updates: int = 0
    x: float = 0.0
    y: float = 0.0
    camera_seen: bool = False


@dataclass
class _OpenAlert:
    alert: Alert
    x: float
    y: float
    track_ids: set[str] = field(default_factory=set)
    last_published: float = 0.0
    key: str = ""


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

        self.tracks: dict[str, _TrackInfo] = {}
        #: Northbound crossings by live tracks, and those still waiting for evidence.
        self.crossed: dict[str, Crossing] = {}
        self.pending: dict[str, Crossing] = {}
        self.open: dict[str, _OpenAlert] = {}
        self.by_track: dict[str, str] = {}
        self.by_key: dict[str, str] = {}
        self.segment_history: dict[str, deque[float]] = defaultdict(deque)
        self.sensor_last_heard: dict[str, float] = {}
        self.zone_seen: set[tuple[str, str]] = set()
        self.camera_seen_at: deque[tuple[float, float, float]] = deque()
        #: Towers turned by a cue, and when: they go back to their watch after the dwell.
        self.cued: dict[str, float] = {}
        self.counts: Counter[str] = Counter()
        self._next_id = 0
        self.now = 0.0

    # -- public -------------------------------------------------------------------------------
    def handle(self, msg: Wire) -> list[Wire]:
        """Process one message; return the alerts and camera commands to publish."""
        t = getattr(msg, "time", None)
        if t is not None:
            self.now = max(self.now, float(t))
        match msg:
            case Track():
                return self._on_track(msg)
            case Crossing():
                return self._on_crossing(msg)
            case SensorEvent():
                return self._on_sensor_event(msg)
            case SensorStatus():
                return self._on_sensor_status(msg)
            case AlertAction():
                return self._on_action(msg)
        return []

    def tick(self, now: float) -> list[Wire]:
        """Time passes: raise alerts for sensors silent longer than the rule allows."""
        self.now = max(self.now, now)
        out: list[Wire] = []
        for tower, cued_at in list(self.cued.items()):
            if now - cued_at >= self.rules.cue_dwell_s:
                del self.cued[tower]
                home = self.cameras[tower]
                out.append(
                    CameraCommand(
                        camera=tower,
                        time=now,
                        pan_deg=round(home.pan_deg, 3),
                        tilt_deg=round(home.tilt_deg, 3),
                        reason="back to its watch after a cue",
                    )
                )
                self.counts["cue_returns"] += 1
        if not self.rules.sensor_health:
            return out
        for sensor_id, heard in self.sensor_last_heard.items():
            if now - heard > self.rules.silent_after_s:
                key = f"health:{sensor_id}"
                if key not in self.by_key:
                    x, y, _, _ = self.sensor_xy.get(sensor_id, (0.0, 0.0, 0.0, None))
                    out.append(
                        self._new(
                            "sensor_health",
                            self.rules.sensor_health_priority,
                            x,
                            y,
                            key=key,
                            evidence=Evidence(sensors=[sensor_id]),
                            summary=f"sensor {sensor_id} silent for {now - heard:.0f} s",
                        )
                    )
        return out

    def merge_tracks(self, merged: str, into: str) -> None:
        """Fusion folded track ``merged`` into ``into`` (one group seen as two): the alert,
        crossing and pending crossing of the one go to the other."""
        aid = self.by_track.pop(merged, None)
        if aid is not None and into not in self.by_track:
            self.by_track[into] = aid
            if aid in self.open:
                self.open[aid].track_ids.add(into)
        for table in (self.crossed, self.pending):
            c = table.pop(merged, None)
            if c is not None and into not in table:
                table[into] = c
        if self.by_track.get(into) in self.open:
            self.pending.pop(into, None)  # already alerted on

    def move_unit(self, unit_id: str, x: float, y: float, available: bool | None = None) -> None:
        """Update a unit's position (local metres) and, optionally, its availability."""
        u = self.units[unit_id]
        u.x, u.y = x, y
        if available is not None:
            u.available = available

    # -- rules --------------------------------------------------------------------------------
    def _xy(self, lat: float, lon: float) -> tuple[float, float]:
        x, y = self.frame.to_local([lat], [lon])
        return float(x[0]), float(y[0])

    def _on_track(self, trk: Track) -> list[Wire]:
        x, y = self._xy(trk.lat, trk.lon)
        info = self.tracks.get(trk.track_id)
        if info is None:
            info = self.tracks[trk.track_id] = _TrackInfo(trk)
        info.last, info.x, info.y = trk, x, y
        # the fused detections behind the track (not how many times it was published: a
        # track coasting on its prediction is published every tick with nothing new)
        info.updates = max(info.updates, trk.count)
        if any(s in self.cameras for s in trk.sensors):
            info.camera_seen = True
            self.camera_seen_at.append((trk.time, x, y))
            while self.camera_seen_at and self.camera_seen_at[0][0] < trk.time - 600.0:
                self.camera_seen_at.popleft()
        out: list[Wire] = []
        if trk.state == "ended":
            out += self._track_lost(info)
            self.pending.pop(trk.track_id, None)
            self.crossed.pop(trk.track_id, None)
            self.tracks.pop(trk.track_id, None)
            return out
        pending = self.pending.get(trk.track_id)
        if pending is not None:
            if trk.time - pending.time > self.rules.pending_crossing_s:
                self.pending.pop(trk.track_id)
                self.counts["crossing_pending_expired"] += 1
            elif self._corroborated(trk, info):
                self.pending.pop(trk.track_id)
                self.counts["crossing_late_evidence"] += 1
                out += self._raise_crossing(pending, info)
        if self.rules.zone_entry and self._is_person(trk):
            out += self._zone_entry(info)
        aid = self.by_track.get(trk.track_id)
        if aid is not None and aid in self.open:
            out += self._refresh(self.open[aid], info)
        return out

    def _is_person(self, trk: Track) -> bool:
        probs = trk.class_probs
        if not probs:
            return trk.class_guess == "person"
        best = max(probs, key=probs.get)
        return best != "animal" and probs.get("person", 0.0) >= self.rules.min_person_probability

    def _on_crossing(self, c: Crossing) -> list[Wire]:
        if c.direction == "northbound" and c.track_id in self.tracks:
            self.crossed[c.track_id] = c
        if not self.rules.crossing or c.direction != "northbound":
            self.counts["crossing_not_northbound"] += c.direction != "northbound"
            return []
        info = self.tracks.get(c.track_id)
        if info is None:
            self.counts["crossing_unknown_track"] += 1
            return []
        trk = info.last
        if not self._is_person(trk):
            # the evidence may still come (a far-off group looks like an animal at first)
            self.counts["crossing_not_person"] += 1
            self.pending[c.track_id] = c
            return []
        if not self._corroborated(trk, info):
            self.counts["crossing_uncorroborated"] += 1
            self.pending[c.track_id] = c
            return []
        return self._raise_crossing(c, info)

    def _corroborated(self, trk: Track, info: _TrackInfo) -> bool:
        """A person track with enough fused detections behind it, moving at a pace people
        keep up (a faster one is a track hopping between false detections far apart along
        a tower's line of sight, or a vehicle)."""
        r = self.rules
        speed = math.hypot(trk.vx, trk.vy)
        return (
            self._is_person(trk)
            and info.updates >= r.min_track_updates
            and speed <= r.max_person_speed_mps
        )

    def _raise_crossing(self, c: Crossing, info: _TrackInfo) -> list[Wire]:
        """A crossing whose track is a corroborated person: a new alert, or join one."""
        x, y = self._xy(c.lat, c.lon)
        # one group, one alert
        for oa in self.open.values():
            a = oa.alert
            if (
                a.kind == "crossing"
                and a.state != "closed"
                and abs(c.time - a.time) <= self.rules.group_window_s
                and math.hypot(oa.x - x, oa.y - y) <= self.rules.group_radius_m
            ):
                self.counts["crossing_grouped"] += 1
                oa.track_ids.add(c.track_id)
                self.by_track[c.track_id] = a.alert_id
                return self._update(oa, info, note=f"track {c.track_id} joins the group")
        hist = self.segment_history[c.segment_id]
        while hist and hist[0] < c.time - self.rules.rate_window_s:
            hist.popleft()
        if len(hist) >= self.rules.max_alerts_per_segment:
            same = [
                oa
                for oa in self.open.values()
                if oa.alert.segment_id == c.segment_id and oa.alert.state != "closed"
            ]
            if same:
                self.counts["crossing_rate_limited"] += 1
                oa = max(same, key=lambda o: o.alert.time)
                oa.track_ids.add(c.track_id)
                self.by_track[c.track_id] = oa.alert.alert_id
                return self._update(oa, info, note=f"rate limit: track {c.track_id} merged")
        hist.append(c.time)
        alert = self._new(
            "crossing",
            self.rules.crossing_priority,
            x,
            y,
            segment_id=c.segment_id,
            track=info,
            summary=f"northbound crossing on {c.segment_id}",
            when=c.time,
        )
        self.by_track[c.track_id] = alert.alert_id
        self.open[alert.alert_id].track_ids.add(c.track_id)
        return [alert]

    def _zone_entry(self, info: _TrackInfo) -> list[Wire]:
        out: list[Wire] = []
        for zone_id, priority, poly in self.zones:
            key = (zone_id, info.last.track_id)
            if key in self.zone_seen or not poly.contains(shapely.Point(info.x, info.y)):
                continue
            self.zone_seen.add(key)
            if info.updates < self.rules.min_track_updates:
                self.zone_seen.discard(key)
                continue
            aid = self.by_track.get(info.last.track_id)
            if aid in self.open:
                out += self._update(self.open[aid], info, note=f"entered zone {zone_id}")
                continue
            near = self._nearby_open(info.x, info.y, info.last.time)
            if near is not None:
                # one group, one alert: a part of a group already alerted on joins it
                self.counts["zone_entry_grouped"] += 1
                near.track_ids.add(info.last.track_id)
                self.by_track[info.last.track_id] = near.alert.alert_id
                out += self._update(near, info, note=f"entered zone {zone_id}", force=True)
                continue
            alert = self._new(
                "zone_entry",
                priority,
                info.x,
                info.y,
                zone=zone_id,
                track=info,
                summary=f"track entered zone {zone_id}",
            )
            self.by_track[info.last.track_id] = alert.alert_id
            self.open[alert.alert_id].track_ids.add(info.last.track_id)
            out.append(alert)
        return out

    def _nearby_open(self, x: float, y: float, t: float) -> _OpenAlert | None:
        """The open crossing or zone alert closest to ``(x, y)`` within the group radius,
        last updated within the group window; ``None`` if there is none."""
        best, best_d = None, math.inf
        for oa in self.open.values():
            a = oa.alert
            if a.kind not in ("crossing", "zone_entry") or a.state == "closed":
                continue
            d = math.hypot(oa.x - x, oa.y - y)
            if (
                d <= self.rules.group_radius_m
                and abs(t - a.time) <= self.rules.group_window_s
                and d < best_d
            ):
                best, best_d = oa, d
        return best

    def _track_lost(self, info: _TrackInfo) -> list[Wire]:
        if not self.rules.track_lost:
            return []
        tid = info.last.track_id
        aid = self.by_track.get(tid)
        crossed = tid in self.crossed
        if aid not in self.open and self.rules.track_lost_needs_crossing and not crossed:
            # a track that never crossed and was never alerted on: losing it is no news
            return []
        if not self._is_person(info.last):
            return []
        side = self.border.side([info.x], [info.y])[0]
        dist = float(self.border.distance([info.x], [info.y])[0])
        if side != US_SIDE or dist > self.rules.track_lost_border_m:
            return []
        if aid in self.open:
            return self._update(self.open[aid], info, note="track lost", force=True)
        if info.updates < self.rules.min_track_updates:
            return []
        return [
            self._new(
                "track_lost",
                self.rules.track_lost_priority,
                info.x,
                info.y,
                track=info,
                summary=f"track {info.last.track_id} lost {dist:.0f} m north of the border",
            )
        ]

    def _on_sensor_event(self, ev: SensorEvent) -> list[Wire]:
        self.sensor_last_heard[ev.sensor] = max(self.sensor_last_heard.get(ev.sensor, 0), ev.time)
        if (
            not self.rules.sensor_cue
            or ev.class_guess == "animal"
            or ev.sensor not in self.sensor_xy
        ):
            return []
        x, y, _radius, line = self.sensor_xy[ev.sensor]
        r2 = self.rules.cue_seen_radius_m**2
        for t, cx, cy in reversed(self.camera_seen_at):
            if t < ev.time - self.rules.cue_seen_window_s:
                break
            if (cx - x) ** 2 + (cy - y) ** 2 <= r2:
                self.counts["cue_already_seen"] += 1
                return []
        key = f"cue:{line or ev.sensor}"
        aid = self.by_key.get(key)
        if aid in self.open and ev.time - self.open[aid].alert.time <= self.rules.cue_window_s:
            oa = self.open[aid]
            sensors = sorted({*oa.alert.evidence.sensors, ev.sensor})
            ev_new = Evidence(sensors=sensors, detections=oa.alert.evidence.detections + 1)
            oa.alert = _replace(oa.alert, evidence=ev_new)
            return []
        out: list[Wire] = []
        tower = self._nearest_tower(x, y)
        if tower is not None:
            cam = self.cameras[tower].pointed_at(x, y)
            lat, lon = self.frame.to_wgs84([x], [y])
            out.append(
                CameraCommand(
                    camera=tower,
                    time=ev.time,
                    pan_deg=round(cam.pan_deg, 3),
                    tilt_deg=round(cam.tilt_deg, 3),
                    reason=f"cue from sensor {ev.sensor}",
                    lat=float(lat[0]),
                    lon=float(lon[0]),
                )
            )
            self.counts["cues"] += 1
            self.cued[tower] = ev.time
        out.append(
            self._new(
                "sensor_cue",
                self.rules.sensor_cue_priority,
                x,
                y,
                key=key,
                evidence=Evidence(sensors=[ev.sensor], detections=1),
                summary=f"{ev.modality} hit on {ev.sensor}"
                + (f"; {tower} cued" if tower else "; no tower in range"),
                when=ev.time,
            )
        )
        return out

    def _nearest_tower(self, x: float, y: float) -> str | None:
        best, best_d = None, math.inf
        for tid, cam in self.cameras.items():
            d = math.hypot(cam.x - x, cam.y - y)
            if d <= cam.max_range_m and d < best_d:
                best, best_d = tid, d
        return best

    def _on_sensor_status(self, st: SensorStatus) -> list[Wire]:
        self.sensor_last_heard[st.sensor] = max(self.sensor_last_heard.get(st.sensor, 0), st.time)
        key = f"health:{st.sensor}"
        if key in self.by_key and self.by_key[key] in self.open:
            return []
        if not self.rules.sensor_health:
            return []
        x, y, _, _ = self.sensor_xy.get(st.sensor, (0.0, 0.0, 0.0, None))
        if st.tamper:
            return [
                self._new(
                    "sensor_health",
                    self.rules.tamper_priority,
                    x,
                    y,
                    key=key,
                    evidence=Evidence(sensors=[st.sensor]),
                    summary=f"sensor {st.sensor} reports tampering",
                    when=st.time,
                )
            ]
        if st.state == "offline" or st.battery < self.rules.low_battery:
            why = "offline" if st.state == "offline" else f"battery at {st.battery:.0%}"
            return [
                self._new(
                    "sensor_health",
                    self.rules.sensor_health_priority,
                    x,
                    y,
                    key=key,
                    evidence=Evidence(sensors=[st.sensor]),
                    summary=f"sensor {st.sensor} {why}",
                    when=st.time,
                )
            ]
        return []

    def _on_action(self, act: AlertAction) -> list[Wire]:
        oa = self.open.get(act.alert_id)
        if oa is None:
            self.counts["action_unknown_alert"] += 1
            return []
        a = oa.alert
        state = {"acknowledge": "acknowledged", "assign": "acknowledged", "close": "closed"}[
            act.action
        ]
        unit = act.unit if act.action == "assign" else a.assigned_unit
        if act.action == "assign" and act.unit in self.units:
            self.units[act.unit].available = False
        if state == "closed" and a.assigned_unit in self.units:
            self.units[a.assigned_unit].available = True
        note = act.note or (f"assigned {act.unit}" if act.action == "assign" else act.action)
        alert = _replace(
            a,
            time=max(a.time, act.time),
            state=state,
            assigned_unit=unit,
            history=[*a.history, AlertEvent(time=act.time, state=state, by=act.by, note=note)],
        )
        oa.alert = alert
        if state == "closed":
            self._forget(oa)
        return [alert]

    # -- alert building -----------------------------------------------------------------------
    def _evidence(self, info: _TrackInfo) -> Evidence:
        return Evidence(
            sensors=sorted(info.last.sensors),
            detections=info.updates,
            class_probs=dict(info.last.class_probs),
        )

    def _dispatch(self, x: float, y: float, vx: float, vy: float, t0: float):
        options = recommend(
            list(self.units.values()), x, y, vx, vy, self.roads, self.rules.intercept_horizon_s
        )
        offsets = list(PREDICTION_OFFSETS_S)
        if options:
            offsets = sorted({*offsets, round(options[0].time_s, 1)})
        pts = predict(x, y, vx, vy, offsets)
        lat, lon = self.frame.to_wgs84([p[1] for p in pts], [p[2] for p in pts])
        predicted = [
            PredictedPosition(time=t0 + p[0], lat=float(a), lon=float(o))
            for p, a, o in zip(pts, lat, lon, strict=True)
        ]
        return [o.unit_id for o in options], predicted, options

    def _new(
        self,
        kind: str,
        priority: int,
        x: float,
        y: float,
        *,
        segment_id: str | None = None,
        zone: str | None = None,
        track: _TrackInfo | None = None,
        evidence: Evidence | None = None,
        key: str = "",
        summary: str = "",
        when: float | None = None,
    ) -> Alert:
        self._next_id += 1
        alert_id = f"{self.sector}-A{self._next_id:06d}"
        t = self.now if when is None else when
        units: list[str] = []
        predicted: list[PredictedPosition] = []
        if track is not None:
            evidence = self._evidence(track)
            x, y = track.x, track.y
            units, predicted, options = self._dispatch(x, y, track.last.vx, track.last.vy, t)
            if options:
                o = options[0]
                summary += f"; {o.unit_id} can intercept in {o.time_s / 60:.0f} min"
        elif kind == "sensor_cue":
            units, predicted, _ = self._dispatch(x, y, 0.0, 0.0, t)
            predicted = []
        lat, lon = self.frame.to_wgs84([x], [y])
        alert = Alert(
            alert_id=alert_id,
            time=t,
            kind=kind,  # type: ignore[arg-type]
            priority=priority,
            segment_id=segment_id,
            zone=zone,
            lat=float(lat[0]),
            lon=float(lon[0]),
            track_id=track.last.track_id if track is not None else None,
            predicted=predicted,
            units=units,
            state="new",
            evidence=evidence or Evidence(),
            history=[AlertEvent(time=t, state="new", note=summary)],
            summary=summary,
        )
        self.open[alert_id] = _OpenAlert(alert, x, y, last_published=t, key=key)
        if key:
            self.by_key[key] = alert_id
        self.counts[f"alert_{kind}"] += 1
        return alert

    def _refresh(self, oa: _OpenAlert, info: _TrackInfo) -> list[Wire]:
        if info.last.time - oa.last_published < self.rules.update_interval_s:
            return []
        return self._update(oa, info, note="position update")

    def _update(
        self, oa: _OpenAlert, info: _TrackInfo, note: str, force: bool = False
    ) -> list[Wire]:
        a = oa.alert
        if a.state == "closed":
            return []
        t = max(a.time, info.last.time)
        units, predicted, _ = self._dispatch(info.x, info.y, info.last.vx, info.last.vy, t)
        state = a.state if a.state == "acknowledged" else "updated"
        probs = dict(info.last.class_probs) or dict(a.evidence.class_probs)
        sensors = sorted({*a.evidence.sensors, *info.last.sensors})
        lat, lon = self.frame.to_wgs84([info.x], [info.y])
        alert = _replace(
            a,
            time=t,
            lat=float(lat[0]),
            lon=float(lon[0]),
            predicted=predicted,
            units=units if a.state != "acknowledged" else a.units,
            state=state,
            evidence=Evidence(
                sensors=sensors,
                detections=a.evidence.detections + 1,
                class_probs=probs,
            ),
            history=[*a.history, AlertEvent(time=t, state=state, note=note)][-50:],
        )
        oa.alert, oa.x, oa.y, oa.last_published = alert, info.x, info.y, t
        self.counts["alert_updates"] += 1
        return [alert]

    def _forget(self, oa: _OpenAlert) -> None:
        self.open.pop(oa.alert.alert_id, None)
        if oa.key:
            self.by_key.pop(oa.key, None)
        for tid in oa.track_ids:
            if self.by_track.get(tid) == oa.alert.alert_id:
                self.by_track.pop(tid)


def _replace(alert: Alert, **changes) -> Alert:
    return msgspec.structs.replace(alert, **changes)
