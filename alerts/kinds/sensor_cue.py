"""Sensor-cue alerts: a ground-sensor hit no camera has seen turns the nearest tower to it."""

from __future__ import annotations

import math
from collections import deque

from vigil.alerts.book import TrackInfo
from vigil.alerts.kinds.base import AlertRule, RuleContext
from vigil.ingest.schema import CameraCommand, Evidence, SensorEvent, Wire

#: How long a camera-fed track's position is remembered to tell hits already seen, seconds.
CAMERA_SEEN_MEMORY_S = 600.0


class SensorCueRule(AlertRule):
    """Raises an alert for a ground-sensor hit (not an animal's) that no camera-fed track was
    near, and turns the nearest tower in range to look at the sensor.

    One cue alert per sensor line (or lone sensor) within ``cue_window_s``: later hits join
    its evidence. A cued tower turns back to its watch after ``cue_dwell_s``.
    """

    kind = "sensor_cue"

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: ``(time, x, y)`` of camera-fed track updates, oldest first.
        self.camera_seen_at: deque[tuple[float, float, float]] = deque()
        #: Towers turned by a cue, and when: they go back to their watch after the dwell.
        self.cued: dict[str, float] = {}

    def on_track(self, info: TrackInfo) -> list[Wire]:
        trk = info.last
        if not self.context.cameras.keys().isdisjoint(trk.sensors):  # a camera fed it
            self.camera_seen_at.append((trk.time, info.x, info.y))
            while self.camera_seen_at and (
                self.camera_seen_at[0][0] < trk.time - CAMERA_SEEN_MEMORY_S
            ):
                self.camera_seen_at.popleft()
        return []

    def on_sensor_event(self, event: SensorEvent) -> list[Wire]:
        ev, s = event, self.settings
        sensor_xy = self.context.sensor_xy
        if not s.sensor_cue or ev.class_guess == "animal" or ev.sensor not in sensor_xy:
            return []
        x, y, _radius, line = sensor_xy[ev.sensor]
        r2 = s.cue_seen_radius_m**2
        for t, cx, cy in reversed(self.camera_seen_at):
            if t < ev.time - s.cue_seen_window_s:
                break
            if (cx - x) ** 2 + (cy - y) ** 2 <= r2:
                self.counts["cue_already_seen"] += 1
                return []
        key = f"cue:{line or ev.sensor}"
        oa = self.book.alert_for_key(key)
        if oa is not None and ev.time - oa.alert.time <= s.cue_window_s:
            self.book.corroborate(oa, ev.sensor)
            return []
        out: list[Wire] = []
        tower = self._nearest_tower(x, y)
        if tower is not None:
            cam = self.context.cameras[tower].pointed_at(x, y)
            lat, lon = self.context.frame.to_wgs84([x], [y])
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
        # the units that can reach the sensor; no prediction: nothing is known to move
        units, _, _ = self.book.planner.plan(x, y, 0.0, 0.0, ev.time)
        out.append(
            self.book.new(
                "sensor_cue",
                s.sensor_cue_priority,
                x,
                y,
                key=key,
                evidence=Evidence(sensors=[ev.sensor], detections=1),
                units=units,
                summary=f"{ev.modality} hit on {ev.sensor}"
                + (f"; {tower} cued" if tower else "; no tower in range"),
                when=ev.time,
            )
        )
        return out

    def on_tick(self, now: float) -> list[Wire]:
        out: list[Wire] = []
        for tower, cued_at in list(self.cued.items()):
            if now - cued_at >= self.settings.cue_dwell_s:
                del self.cued[tower]
                home = self.context.cameras[tower]
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
        return out

    def _nearest_tower(self, x: float, y: float) -> str | None:
        """The tower nearest ``(x, y)`` (local metres) that has it within its range."""
        best, best_d = None, math.inf
        for tid, cam in self.context.cameras.items():
            d = math.hypot(cam.x - x, cam.y - y)
            if d <= cam.max_range_m and d < best_d:
                best, best_d = tid, d
        return best
