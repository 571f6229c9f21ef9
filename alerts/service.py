"""The alert service: the engine behind a bus, feeding its dispatch channels."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from vigil.alerts.channels import DispatchChannel
from vigil.alerts.engine import AlertEngine
from vigil.ingest.bus import Bus, Subscription
from vigil.ingest.schema import Alert, CameraCommand, Track, Wire, topic_for

#: How many of the latest alerts' latencies :class:`AlertService` keeps.
LATENCY_WINDOW = 10_000


class AlertService:
    """Subscribe the engine to a sector's topics and publish what it raises.

    ``latencies_s`` records, per published alert, the wall time (s) from receiving the message
    that completed its evidence to publishing the alert on the bus: the latest
    :data:`LATENCY_WINDOW` alerts, so a service that runs for weeks holds a bounded window.
    """

    def __init__(
        self,
        engine: AlertEngine,
        bus: Bus,
        channels: list[DispatchChannel] | None = None,
        *,
        on_command: Callable[[CameraCommand], None] | None = None,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.sector = engine.sector
        self.channels = channels or []
        self.on_command = on_command
        self.latencies_s: deque[float] = deque(maxlen=LATENCY_WINDOW)
        base = f"vigil/v1/{self.sector}"
        self._subs: list[Subscription] = [
            bus.subscribe(f"{base}/tracks", self._handle),
            bus.subscribe(f"{base}/crossings", self._handle),
            bus.subscribe(f"{base}/ugs/+/events", self._handle),
            bus.subscribe(f"{base}/ugs/+/status", self._handle),
            bus.subscribe(f"{base}/cam/+/status", self._handle),
            bus.subscribe(f"{base}/alerts/actions/+", self._handle),
        ]

    def _handle(self, topic: str, msg: Wire) -> None:
        t0 = time.perf_counter()
        out = self.engine.handle(msg)
        if isinstance(msg, Track):
            for ch in self.channels:
                ch.send_track(msg)
        self._publish(out, t0)

    def tick(self, now: float) -> None:
        """Let time pass (silent sensors)."""
        self._publish(self.engine.tick(now), time.perf_counter())

    def _publish(self, out: list[Wire], t0: float) -> None:
        for m in out:
            self.bus.publish(topic_for(self.sector, m), m)
            if isinstance(m, Alert):
                self.latencies_s.append(time.perf_counter() - t0)
                for ch in self.channels:
                    ch.send_alert(m)
            elif isinstance(m, CameraCommand) and self.on_command is not None:
                self.on_command(m)

    def close(self) -> None:
        """Stop listening and close the channels."""
        for s in self._subs:
            self.bus.unsubscribe(s)
        for ch in self.channels:
            ch.close()
