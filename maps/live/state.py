"""What the live map shows, kept from the bus: the picture now, what changed since the last
tick, and a ring of recent track positions for history playback.

:class:`LiveState` is plain synchronous Python. The bus calls :meth:`LiveState.apply` on
whatever thread publishes; the server's loop calls :meth:`LiveState.take_changes` once a tick
and sends the result to every browser. Both hold the same lock, which is the whole hand-over
between the publishing threads and the event loop.

Payloads are compact JSON-ready values (:mod:`~vigil.maps.live.views`, whose names this module
also exports): a track is a list, everything else a small dict. Operators' labels
(:mod:`vigil.maps.track_labels`) are held here too, as the page's views, so each browser gets
them with the snapshot and each new one with the next batch.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel
from vigil.geo.raycast import camera_on_terrain
from vigil.geo.site import Site, tower_camera
from vigil.geo.terrain_coverage import TowerViewshed
from vigil.ingest.schema import (
    Alert,
    AlertAction,
    CameraCommand,
    Crossing,
    MessageError,
    SensorEvent,
    SensorStatus,
    Telemetry,
    Track,
    Wire,
)
from vigil.ingest.sources import Devices, check_source
from vigil.maps.live.coverage import coverage_geojson
from vigil.maps.live.views import _r, alert_view, history_from_tracks, latlon_ring, track_row

__all__ = [
    "MAP_TOPICS",
    "MAX_ALERTS",
    "MAX_LABELS",
    "LiveState",
    "alert_view",
    "history_from_tracks",
    "latlon_ring",
    "map_topics",
    "track_row",
]

#: Crossings count towards a segment's shading for this long, seconds.
DEFAULT_CROSSING_WINDOW_S = 6 * 3600.0
#: A track not heard from for this long (message time) leaves the map, seconds.
DEFAULT_TRACK_TIMEOUT_S = 120.0
#: History playback reaches back this far, seconds.
DEFAULT_HISTORY_S = 4 * 3600.0
#: One history point per track per this many seconds at most.
DEFAULT_HISTORY_STEP_S = 5.0
#: The queue holds this many open alerts before it says it is over its size. Closed alerts
#: leave the queue at once; open ones are never dropped (the overflow is counted and shown).
MAX_ALERTS = 500
#: The map holds at most this many operators' labels in memory (the latest labelled; the
#: store keeps them all).
MAX_LABELS = 10_000
#: What the map draws, below ``vigil/v1/{sector}/``: the service's tracks, crossings, alerts
#: and camera commands, the alert actions, and the devices' sensor, status and telemetry
#: messages (ground-sensor events light the sensor; detections are not drawn).
MAP_TOPICS = (
    "tracks",
    "crossings",
    "alerts",
    "alerts/actions/+",
    "cam/+/commands",
    "ugs/+/events",
    "ugs/+/status",
    "uas/+/telemetry",
)


def map_topics(sector: str) -> list[str]:
    """The subscription filters of a sector's live map (exactly what it draws)."""
    return [f"vigil/v1/{sector}/{p}" for p in MAP_TOPICS]


@dataclass
class _Tower:
    camera: PinholeCamera
    view: dict[str, Any]
    viewshed: TowerViewshed | None = None


class LiveState:
    """The live picture of one sector, fed by bus messages.

    Every message is checked against its topic first
    (:func:`~vigil.ingest.sources.check_source` with the site's devices): tracks, crossings,
    alerts and camera commands only from the service's topics, alert actions only from the
    actions topic, sensor and aircraft messages only from deployed devices on their own
    topics. What fails is counted (``refused_{reason}``) and changes nothing.

    Parameters
    ----------
    site
        The sector's layout (towers are needed to turn fields of view; its devices say who may
        speak).
    crossing_window_s, track_timeout_s, history_s, history_step_s
        See the module constants; seconds of message time.
    dem
        The sector's ground (:func:`~vigil.maps.live.coverage.live_relief`), or None. With it,
        each tower's coverage is what its camera sees on the relief (the view's ``coverage``,
        a GeoJSON MultiPolygon in WGS84, with holes; :mod:`vigil.maps.live.coverage`): the
        viewsheds are computed here, once, and cut again by the image when a camera turns.
        Without it, the flat wedges only (``fov``), as before.
    """

    def __init__(
        self,
        site: Site,
        *,
        crossing_window_s: float = DEFAULT_CROSSING_WINDOW_S,
        track_timeout_s: float = DEFAULT_TRACK_TIMEOUT_S,
        history_s: float = DEFAULT_HISTORY_S,
        history_step_s: float = DEFAULT_HISTORY_STEP_S,
        dem: ElevationModel | None = None,
    ) -> None:
        self.site = site
        self.frame = site.frame()
        self.crossing_window_s = crossing_window_s
        self.track_timeout_s = track_timeout_s
        self.history_s = history_s
        self.history_step_s = history_step_s
        self._history_len = max(2, int(history_s / history_step_s) + 1)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.devices = Devices.of_site(site)
        #: The latest time of a sector message (track, alert, sensor...) seen, UTC seconds:
        #: the map's "now" (may run ahead of or behind the wall clock in a demo). An alert
        #: action does not move it: it carries a person's clock, not the sector's.
        self.now = 0.0
        self.tracks: dict[str, list[Any]] = {}
        self.alerts: dict[str, dict[str, Any]] = {}
        self.sensors: dict[str, dict[str, Any]] = {}
        self.uas: dict[str, dict[str, Any]] = {}
        self.crossings: dict[str, deque[float]] = {}
        #: What the towers' coverage shows: ``viewsheds`` (on the relief) or ``wedges``.
        self.coverage_from = "wedges" if dem is None else "viewsheds"
        self.towers: dict[str, _Tower] = {}
        for t in site.towers:
            cam = tower_camera(t, self.frame)
            viewshed = None
            if dem is not None:
                cam = camera_on_terrain(cam, dem)
                viewshed = TowerViewshed(cam, dem)
            view = {
                "id": t.id,
                "pan": t.pan_deg,
                "tilt": t.tilt_deg,
                "fov": latlon_ring(self.frame, cam.footprint()),
                "reason": "",
            }
            tower = self.towers[t.id] = _Tower(cam, view, viewshed)
            self._show_coverage(tower)
        self._history: dict[str, deque[tuple[float, float, float]]] = {}
        self._history_class: dict[str, str] = {}
        self._alert_units: dict[str, set[str]] = {}
        #: Operators' labels by track id (the page's view of each track's latest label).
        self.labels: dict[str, dict[str, Any]] = {}
        self._reset_changes()
        self._handlers: dict[type, Callable[[Any], None]] = {
            Track: self._track,
            Alert: self._alert,
            AlertAction: self._alert_action,
            Crossing: self._crossing,
            SensorStatus: self._sensor_status,
            SensorEvent: self._sensor_event,
            Telemetry: self._telemetry,
            CameraCommand: self._camera_command,
        }

    def _reset_changes(self) -> None:
        self._ch_tracks: dict[str, list[Any]] = {}
        self._ch_ended: set[str] = set()
        self._ch_alerts: dict[str, dict[str, Any]] = {}
        self._ch_sensors: dict[str, dict[str, Any]] = {}
        self._ch_towers: dict[str, dict[str, Any]] = {}
        self._ch_uas: dict[str, dict[str, Any]] = {}
        self._ch_segments = False
        self._ch_labels: dict[str, dict[str, Any]] = {}
        self._ch_first_arrival: float | None = None

    # -- feeding ------------------------------------------------------------------------------

    def apply(self, topic: str, msg: Wire, arrival: float | None = None) -> None:
        """Take one bus message (any thread). ``arrival``: wall-clock time it arrived, s."""
        handler = self._handlers.get(type(msg))
        try:
            check_source(topic, msg, self.devices)
        except MessageError as err:
            with self.lock:
                self.counts[f"refused_{err.reason}"] += 1
            return
        with self.lock:
            if handler is None:
                self.counts["ignored"] += 1
                return
            self.counts[type(msg).__name__] += 1
            t = getattr(msg, "time", 0.0)
            if t > self.now and not isinstance(msg, AlertAction):
                self.now = t
            if arrival is not None and self._ch_first_arrival is None:
                self._ch_first_arrival = arrival
            handler(msg)

    def _track(self, t: Track) -> None:
        if t.state == "ended":
            if self.tracks.pop(t.track_id, None) is not None:
                self._ch_ended.add(t.track_id)
            self._ch_tracks.pop(t.track_id, None)
        else:
            row = track_row(t)
            if t.track_id not in self.tracks and t.track_id in self.labels:
                # a labelled track (back) on the map: browsers get its label with it
                self._ch_labels[t.track_id] = self.labels[t.track_id]
            self.tracks[t.track_id] = row
            self._ch_tracks[t.track_id] = row
            self._ch_ended.discard(t.track_id)
        ring = self._history.get(t.track_id)
        if ring is None:
            ring = self._history[t.track_id] = deque(maxlen=self._history_len)
        if not ring or t.time - ring[-1][0] >= self.history_step_s or t.state == "ended":
            ring.append((t.time, t.lat, t.lon))
        self._history_class[t.track_id] = t.class_guess

    def _alert(self, a: Alert) -> None:
        view = alert_view(a)
        self._alert_units[a.alert_id] = set(a.units) | ({a.assigned_unit} - {None})
        if a.state == "closed":
            self.alerts.pop(a.alert_id, None)
        else:
            fresh = a.alert_id not in self.alerts
            self.alerts[a.alert_id] = view
            if fresh and len(self.alerts) > MAX_ALERTS:
                # every alert held is open (closed ones leave at once): none is dropped
                self.counts["alerts_over_cap"] += 1
        self._ch_alerts[a.alert_id] = view

    def _alert_action(self, act: AlertAction) -> None:
        view = self.alerts.get(act.alert_id)
        if view is None:
            self.counts["action_unknown_alert"] += 1
            return
        view = dict(view, by=act.by)
        if act.action == "acknowledge":
            view["state"] = "acknowledged"
        elif act.action == "assign":
            view["assigned"] = act.unit
            self._alert_units.setdefault(act.alert_id, set()).add(act.unit or "")
        elif act.action == "close":
            view["state"] = "closed"
        if view["state"] == "closed":
            self.alerts.pop(act.alert_id, None)
        else:
            self.alerts[act.alert_id] = view
        self._ch_alerts[act.alert_id] = view

    def _crossing(self, c: Crossing) -> None:
        self.crossings.setdefault(c.segment_id, deque()).append(c.time)
        self._ch_segments = True

    def _sensor_status(self, s: SensorStatus) -> None:
        view = dict(self.sensors.get(s.sensor, {"id": s.sensor, "event": None}))
        view.update(
            battery=round(s.battery, 3),
            state=s.state,
            tamper=s.tamper,
            heard=round(max(s.last_heard, view.get("heard") or 0.0), 3),
        )
        self.sensors[s.sensor] = view
        self._ch_sensors[s.sensor] = view

    def _sensor_event(self, e: SensorEvent) -> None:
        view = dict(
            self.sensors.get(
                e.sensor, {"id": e.sensor, "battery": None, "state": "ok", "tamper": False}
            )
        )
        view["heard"] = round(max(e.time, view.get("heard") or 0.0), 3)
        view["event"] = {
            "time": round(e.time, 3),
            "class": e.class_guess,
            "modality": e.modality,
            "strength": round(e.strength, 3),
            "count": e.count,
        }
        self.sensors[e.sensor] = view
        self._ch_sensors[e.sensor] = view

    def _telemetry(self, m: Telemetry) -> None:
        view = {
            "id": m.aircraft,
            "time": round(m.time, 3),
            "lat": _r(m.lat),
            "lon": _r(m.lon),
            "alt": round(m.alt_m, 1),
            "agl": None if m.agl_m is None else round(m.agl_m, 1),
            "yaw": round(m.yaw_deg, 1),
            "footprint": [[_r(a), _r(o)] for a, o in m.footprint],
        }
        self.uas[m.aircraft] = view
        self._ch_uas[m.aircraft] = view

    def _camera_command(self, c: CameraCommand) -> None:
        tower = self.towers.get(c.camera)
        if tower is None:
            self.counts["command_unknown_camera"] += 1
            return
        base = tower.camera
        turned = PinholeCamera(
            x=base.x,
            y=base.y,
            height_m=base.height_m,
            pan_deg=c.pan_deg % 360.0,
            tilt_deg=c.tilt_deg,
            hfov_deg=base.hfov_deg,
            width=base.width,
            height=base.height,
            max_range_m=base.max_range_m,
            ground_z=base.ground_z,
        )
        view = {
            "id": c.camera,
            "pan": round(c.pan_deg % 360.0, 2),
            "tilt": round(c.tilt_deg, 2),
            "fov": latlon_ring(self.frame, turned.footprint()),
            "reason": c.reason,
        }
        tower.camera = turned
        tower.view = view
        self._show_coverage(tower)
        self._ch_towers[c.camera] = view

    def _show_coverage(self, tower: _Tower) -> None:
        # on the relief: what the camera, as it points now, sees of its tower's viewshed
        if tower.viewshed is not None:
            seen = tower.viewshed.seen(tower.camera)
            tower.view["coverage"] = coverage_geojson(self.frame, seen)

    # -- operators' labels ----------------------------------------------------------------------

    def set_label(self, view: dict[str, Any], *, announce: bool = True) -> None:
        """Hold a track's latest operator label (``view`` as
        :meth:`~vigil.maps.track_labels.TrackLabel.view` makes it) and, when ``announce``, send
        it to every browser with the next batch."""
        with self.lock:
            tid = view["track"]
            self.labels.pop(tid, None)  # the latest goes last: the oldest leave first
            self.labels[tid] = view
            while len(self.labels) > MAX_LABELS:
                del self.labels[next(iter(self.labels))]
            if announce:
                self._ch_labels[tid] = view

    def track_seen(self, track_id: str) -> tuple[str | None, float | None] | None:
        """``(class guess, last time)`` of a track the map shows or holds in its history ring,
        or ``None`` for a track it does not know."""
        with self.lock:
            row = self.tracks.get(track_id)
            if row is not None:
                return row[3], row[7]
            ring = self._history.get(track_id)
            if ring:
                return self._history_class.get(track_id), ring[-1][0]
            return None

    # -- reading (the loop thread) -------------------------------------------------------------

    def segment_counts(self) -> dict[str, int]:
        """Crossings per segment within the window before :attr:`now` (caller holds the lock)."""
        cutoff = self.now - self.crossing_window_s
        out: dict[str, int] = {}
        for seg, times in self.crossings.items():
            while times and times[0] < cutoff:
                times.popleft()
            if times:
                out[seg] = len(times)
        return out

    def _expire(self) -> None:
        cutoff = self.now - self.track_timeout_s
        stale = [tid for tid, row in self.tracks.items() if row[7] < cutoff]
        for tid in stale:
            del self.tracks[tid]
            self._ch_tracks.pop(tid, None)
            self._ch_ended.add(tid)
        self.counts["tracks_timed_out"] += len(stale)
        old = self.now - self.history_s
        for tid in [k for k, ring in self._history.items() if ring and ring[-1][0] < old]:
            del self._history[tid]
            self._history_class.pop(tid, None)

    def take_changes(self) -> dict[str, Any] | None:
        """What changed since the last call, as one batch (``None`` when nothing did)."""
        with self.lock:
            self._expire()
            if not (
                self._ch_tracks
                or self._ch_ended
                or self._ch_alerts
                or self._ch_sensors
                or self._ch_towers
                or self._ch_uas
                or self._ch_segments
                or self._ch_labels
            ):
                return None
            batch: dict[str, Any] = {"type": "batch", "now": round(self.now, 3)}
            batch["alert_overflow"] = self.alert_overflow()
            if self._ch_tracks:
                batch["tracks"] = list(self._ch_tracks.values())
            if self._ch_ended:
                batch["ended"] = sorted(self._ch_ended)
            if self._ch_alerts:
                batch["alerts"] = list(self._ch_alerts.values())
            if self._ch_sensors:
                batch["sensors"] = list(self._ch_sensors.values())
            if self._ch_towers:
                batch["towers"] = list(self._ch_towers.values())
            if self._ch_uas:
                batch["uas"] = list(self._ch_uas.values())
            if self._ch_segments:
                batch["segments"] = self.segment_counts()
            if self._ch_labels:
                batch["labels"] = list(self._ch_labels.values())
            if self._ch_first_arrival is not None:
                batch["arrived"] = self._ch_first_arrival
            self._reset_changes()
            return batch

    def snapshot(self) -> dict[str, Any]:
        """The whole picture now (sent to a browser when it connects)."""
        with self.lock:
            self._expire()
            return {
                "type": "snapshot",
                "now": round(self.now, 3),
                "tracks": list(self.tracks.values()),
                "alerts": list(self.alerts.values()),
                "sensors": list(self.sensors.values()),
                "towers": [t.view for t in self.towers.values()],
                "uas": list(self.uas.values()),
                "segments": self.segment_counts(),
                "alert_overflow": self.alert_overflow(),
                "labels": [self.labels[t] for t in self.tracks if t in self.labels],
            }

    def alert_overflow(self) -> int:
        """How many open alerts the queue holds beyond :data:`MAX_ALERTS` (0 within it)."""
        return max(0, len(self.alerts) - MAX_ALERTS)

    def alert_units(self, alert_id: str) -> set[str]:
        """Units an alert names (recommended or assigned)."""
        with self.lock:
            return set(self._alert_units.get(alert_id, set()))

    def history(self, t0: float, t1: float) -> list[dict[str, Any]]:
        """Recent track positions between ``t0`` and ``t1`` (UTC s) from the ring."""
        with self.lock:
            out = []
            for tid, ring in self._history.items():
                pts = [[round(t, 2), _r(a), _r(o)] for t, a, o in ring if t0 <= t <= t1]
                if pts:
                    out.append({"id": tid, "class": self._history_class.get(tid), "points": pts})
            return out
