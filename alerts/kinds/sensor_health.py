"""Sensor-health alerts: a ground sensor tampered with, offline, low on battery or silent, and
a tower camera whose stream dropped (offline) or froze (degraded)."""

from __future__ import annotations

import shapely

from vigil.alerts.kinds.base import AlertRule, RuleContext
from vigil.alerts.kinds.zone_entry import zone_label
from vigil.ingest.schema import Evidence, SensorEvent, SensorStatus, Wire


class SensorHealthRule(AlertRule):
    """Raises one alert per device while it is unwell: tampering (at ``tamper_priority``),
    offline or battery below ``low_battery`` as it reports, a camera degraded, or silent (no
    event nor status) for longer than ``silent_after_s``.

    Devices are the deployment's ground sensors and its towers' cameras (a camera's health is
    a :class:`SensorStatus` whose ``sensor`` is the camera's id, on ``cam/{camera}/status``;
    ids are unique in a sector). A ground sensor's alert stays open until an operator closes
    it; a camera's alert closes by itself when the camera reports ``ok`` again (counted as
    ``alerts_resolved``). A device the deployment does not have raises nothing and is not
    tracked (counted as ``sensor_unknown``): its name is a stranger's words, not a device of
    the sector.
    """

    kind = "sensor_health"

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: When each device was last heard from (event or status), UTC seconds.
        self.sensor_last_heard: dict[str, float] = {}

    def on_sensor_event(self, event: SensorEvent) -> list[Wire]:
        if self._known(event.sensor):
            self._heard(event.sensor, event.time)
        return []

    def on_sensor_status(self, status: SensorStatus) -> list[Wire]:
        st, s = status, self.settings
        if not self._known(st.sensor):
            return []
        self._heard(st.sensor, st.time)
        key = f"health:{st.sensor}"
        camera = st.sensor in self.context.cameras
        open_alert = self.book.alert_for_key(key)
        if open_alert is not None:
            well = st.state == "ok" and not st.tamper and st.battery >= s.low_battery
            if camera and well:
                return self.book.resolve(open_alert, st.time, f"camera {st.sensor} ok again")
            return []
        if not s.sensor_health:
            return []
        if st.tamper:
            return self._raise(st.sensor, key, s.tamper_priority, "reports tampering", st.time)
        if st.state != "ok" and (camera or st.state == "offline"):
            return self._raise(st.sensor, key, s.sensor_health_priority, st.state, st.time)
        if st.battery < s.low_battery:
            why = f"battery at {st.battery:.0%}"
            return self._raise(st.sensor, key, s.sensor_health_priority, why, st.time)
        return []

    def on_tick(self, now: float) -> list[Wire]:
        s = self.settings
        if not s.sensor_health:
            return []
        out: list[Wire] = []
        for sensor, heard in self.sensor_last_heard.items():
            if now - heard > s.silent_after_s:
                key = f"health:{sensor}"
                if key not in self.book.by_key:
                    why = f"silent for {now - heard:.0f} s"
                    out += self._raise(sensor, key, s.sensor_health_priority, why, None)
        return out

    def _known(self, device: str) -> bool:
        if device in self.context.sensor_xy or device in self.context.cameras:
            return True
        self.counts["sensor_unknown"] += 1
        return False

    def _heard(self, sensor: str, t: float) -> None:
        self.sensor_last_heard[sensor] = max(self.sensor_last_heard.get(sensor, 0), t)

    def _raise(
        self, device: str, key: str, priority: int, why: str, when: float | None
    ) -> list[Wire]:
        """A health alert about a deployed ground sensor or tower camera at its place, at
        ``when`` (the latest message's time if ``None``)."""
        cam = self.context.cameras.get(device)
        if cam is None:
            x, y, _, _ = self.context.sensor_xy[device]
            summary, zone = f"sensor {device} {why}", None
        else:
            x, y = cam.x, cam.y
            summary, zone = f"camera {device} {why}", self._zone_of(x, y)
            if zone is not None:
                summary += f" (tower in zone {zone_label(zone, self.context.zone_names)})"
        alert = self.book.new(
            "sensor_health",
            priority,
            x,
            y,
            zone=zone,
            key=key,
            evidence=Evidence(sensors=[device]),
            summary=summary,
            when=when,
        )
        return [alert]

    def _zone_of(self, x: float, y: float) -> str | None:
        """The first zone (in the deployment's order) holding the point (local metres)."""
        point = shapely.Point(x, y)
        for zone_id, _, poly in self.context.zones:
            if poly.contains(point):
                return zone_id
        return None
