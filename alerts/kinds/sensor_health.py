"""Sensor-health alerts: a ground sensor tampered with, offline, low on battery or silent."""

from __future__ import annotations

from vigil.alerts.kinds.base import AlertRule, RuleContext
from vigil.ingest.schema import Evidence, SensorEvent, SensorStatus, Wire


class SensorHealthRule(AlertRule):
    """Raises one alert per sensor while it is unwell: tampering (at ``tamper_priority``),
    offline or battery below ``low_battery`` as it reports, or silent (no event nor status)
    for longer than ``silent_after_s``.

    A sensor the deployment does not have raises nothing and is not tracked (counted as
    ``sensor_unknown``): its name is a stranger's words, not a sensor of the sector.
    """

    kind = "sensor_health"

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: When each sensor was last heard from (event or status), UTC seconds.
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
        if self.book.alert_for_key(key) is not None or not s.sensor_health:
            return []
        if st.tamper:
            return self._raise(st.sensor, key, s.tamper_priority, "reports tampering", st.time)
        if st.state == "offline" or st.battery < s.low_battery:
            why = "offline" if st.state == "offline" else f"battery at {st.battery:.0%}"
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

    def _known(self, sensor: str) -> bool:
        if sensor in self.context.sensor_xy:
            return True
        self.counts["sensor_unknown"] += 1
        return False

    def _heard(self, sensor: str, t: float) -> None:
        self.sensor_last_heard[sensor] = max(self.sensor_last_heard.get(sensor, 0), t)

    def _raise(
        self, sensor: str, key: str, priority: int, why: str, when: float | None
    ) -> list[Wire]:
        """A health alert about a deployed ``sensor`` at its place, at ``when`` (the latest
        message's time if ``None``)."""
        x, y, _, _ = self.context.sensor_xy[sensor]
        alert = self.book.new(
            "sensor_health",
            priority,
            x,
            y,
            key=key,
            evidence=Evidence(sensors=[sensor]),
            summary=f"sensor {sensor} {why}",
            when=when,
        )
        return [alert]
