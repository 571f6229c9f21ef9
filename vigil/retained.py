"""Retained current state: what a client that connects late needs at once.

The sector service publishes, with MQTT's retain flag, one topic per open alert
(``vigil/v1/{sector}/state/alerts/{alert_id}``: the alert's latest version, cleared with an
empty retained payload when it closes) and one per ground sensor and tower camera
(``vigil/v1/{sector}/state/sensors/{sensor}``: its latest accepted ``SensorStatus``; a
camera's health is a status naming the camera, and ids are unique in a sector). A map
or an agent that subscribes to ``vigil/v1/{sector}/state/#`` gets the open alerts and the
sensors' health from the broker at once, without waiting for the next update.

State does not go through the outbox (whose count of messages a restarted service skips by):
it is sent when it changes while connected, and asserted again in full each time the output
connection goes live (:meth:`RetainedState.republish`, retained messages are idempotent):
every open alert, every sensor's status, and a clear for each of the last
:data:`CLEARS_KEPT` closed alerts (so a close that fell between a connection's end and its
acknowledgement, or just before a crash, is not left standing). An alert's state goes out
before the alert itself.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from typing import Any

from vigil.ingest.bus import Bus
from vigil.ingest.mqtt_publisher import MqttPublisher
from vigil.ingest.schema import Alert, SensorStatus, Wire, encode
from vigil.ingest.topics import alert_state_topic, sensor_state_topic, state_filters

#: Open alerts and sensors held at most (the oldest open alert's state is kept on the broker;
#: only this process forgets it, counted in ``counts["forgotten"]``).
MAX_HELD = 100_000
#: Closed alerts whose clear is sent again at each connection.
CLEARS_KEPT = 1000


class RetainedState:
    """Keeps the sector's open alerts and sensor (and camera) statuses and publishes them
    retained.

    Parameters
    ----------
    sector
        The sector's name.
    publisher
        The output bus's publisher; its :attr:`~MqttPublisher.on_live` is set to
        :meth:`republish`.
    """

    def __init__(self, sector: str, publisher: MqttPublisher) -> None:
        self.sector = sector
        self.publisher = publisher
        publisher.on_live = self.republish
        #: Whether state is published as it changes (False while a journal is replayed).
        self.live = False
        self.open_alerts: dict[str, Alert] = {}
        self.sensors: dict[str, SensorStatus] = {}
        self.closed: OrderedDict[str, None] = OrderedDict()
        self.counts: Counter[str] = Counter()
        # held while state is changed or sent, so that a re-assertion never sends an older
        # state after a newer one
        self._lock = threading.RLock()

    @property
    def filters(self) -> list[str]:
        """The topic filters published retained."""
        return state_filters(self.sector)

    def attach(self, bus: Bus) -> None:
        """Follow the core's in-process bus: the alerts it publishes and the ground sensors' and
        cameras' statuses it accepted (after the source check and the reorder buffer)."""
        base = f"vigil/v1/{self.sector}"
        bus.subscribe(f"{base}/alerts", self._alert)
        bus.subscribe(f"{base}/ugs/+/status", self._status)
        bus.subscribe(f"{base}/cam/+/status", self._status)

    def before_output(self, topic: str, msg: Wire) -> None:
        """Publish an alert's state before the alert itself goes out (the output hook)."""
        if isinstance(msg, Alert):
            with self._lock:
                self._send_alert(msg)

    def republish(self, client: Any = None) -> None:
        """Send every open alert, sensor state and kept clear again (each connection)."""
        with self._lock:
            for alert_id in self.closed:
                self._send(alert_state_topic(self.sector, alert_id), b"", client)
            for alert in self.open_alerts.values():
                self._send(alert_state_topic(self.sector, alert.alert_id), encode(alert), client)
            for status in self.sensors.values():
                self._send(sensor_state_topic(self.sector, status.sensor), encode(status), client)
            self.counts["republished"] += 1

    # -- following the core -----------------------------------------------------------------

    def _alert(self, topic: str, msg: Wire) -> None:
        if not isinstance(msg, Alert):
            return
        with self._lock:
            if msg.state == "closed":
                self.open_alerts.pop(msg.alert_id, None)
                self.closed[msg.alert_id] = None
                self.closed.move_to_end(msg.alert_id)
                if len(self.closed) > CLEARS_KEPT:
                    self.closed.popitem(last=False)
                return
            self.closed.pop(msg.alert_id, None)
            self.open_alerts[msg.alert_id] = msg
            if len(self.open_alerts) > MAX_HELD:
                del self.open_alerts[next(iter(self.open_alerts))]
                self.counts["forgotten"] += 1

    def _status(self, topic: str, msg: Wire) -> None:
        if not isinstance(msg, SensorStatus):
            return
        with self._lock:
            old = self.sensors.get(msg.sensor)
            if old is not None and old.time > msg.time:
                return  # a late status does not replace a newer one
            self.sensors[msg.sensor] = msg
            if len(self.sensors) > MAX_HELD:
                del self.sensors[next(iter(self.sensors))]
                self.counts["forgotten"] += 1
            if self.live:
                self._send(sensor_state_topic(self.sector, msg.sensor), encode(msg))

    def _send_alert(self, alert: Alert) -> None:
        if not self.live:
            return  # asserted in full when the replay ends
        topic = alert_state_topic(self.sector, alert.alert_id)
        # an empty retained payload clears the topic
        self._send(topic, b"" if alert.state == "closed" else encode(alert))

    def _send(self, topic: str, payload: bytes, client: Any = None) -> None:
        if self.publisher.publish_retained(topic, payload, client):
            self.counts["cleared" if not payload else "sent"] += 1
        else:
            self.counts["deferred"] += 1


__all__ = ["MAX_HELD", "RetainedState"]
