"""Dispatch channels: where alerts (and tracks) go once raised.

- :class:`BusChannel` publishes ``Alert`` messages on ``vigil/v1/{sector}/alerts`` (MQTT JSON
  when the bus is MQTT);
- :class:`CotChannel` sends Cursor-on-Target XML to TAK clients through pytak, over TCP
  (``tcp://``), UDP (``udp://``, send-only ``udp+wo://``) or TLS (``tls://``).
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import logging
import queue
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections import Counter

from vigil.alerts.cot import alert_event, track_event
from vigil.ingest.bus import Bus
from vigil.ingest.schema import Alert, Track, Wire, topic_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak

log = logging.getLogger(__name__)


class DispatchChannel(ABC):
    """Somewhere alerts are sent. ``counts`` says how many went and how many failed."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @abstractmethod
    def send_alert(self, alert: Alert) -> None:
        """Send one alert (new, updated, acknowledged or closed)."""

    def send_track(self, track: Track) -> None:  # noqa: B027 - optional for channels
        """Send a track position; channels that only carry alerts ignore it."""

    def send(self, message: Wire) -> None:
        """Send an alert or a track; other messages are not for dispatch channels."""
        if isinstance(message, Alert):
            self.send_alert(message)
        elif isinstance(message, Track):
            self.send_track(message)

    def close(self) -> None:  # noqa: B027 - optional for channels
        """Flush and release the channel."""


class BusChannel(DispatchChannel):
    """Alerts as JSON on the sector's alert topic."""

    def __init__(self, bus: Bus, sector: str) -> None:
        super().__init__()
        self.bus = bus
        self.sector = sector

    def send_alert(self, alert: Alert) -> None:
        self.bus.publish(topic_for(self.sector, alert), alert)
        self.counts["alerts"] += 1


class CotChannel(DispatchChannel):
    """CoT XML to a TAK server or client through pytak, from a background asyncio thread.

    Parameters
    ----------
    url
        pytak COT_URL: ``tcp://host:port``, ``udp://host:port``, ``udp+wo://host:port``,
        ``tls://host:port`` (TLS settings through ``tls`` keys: ``PYTAK_TLS_CLIENT_CERT``...).
    sector
        Sector name, part of every event's uid.
    tracks
        Also send tracks (``a-u-G``), not only alerts.
    """

    def __init__(
        self,
        url: str,
        sector: str,
        *,
        tracks: bool = False,
        tls: dict[str, str] | None = None,
        reconnect_s: float = 2.0,
    ) -> None:
        super().__init__()
        self.url = url
        self.sector = sector
        self.tracks = tracks
        self.reconnect_s = reconnect_s
        parser = configparser.ConfigParser(interpolation=None)
        parser["vigil"] = {"COT_URL": url, **(tls or {})}
        self._config = parser["vigil"]
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"cot-{url}", daemon=True)
        self._connected = threading.Event()
        self._done = threading.Event()
        self._thread.start()

    def send_alert(self, alert: Alert) -> None:
        self._queue.put(alert_event(alert, self.sector))
        self.counts["queued"] += 1

    def send_track(self, track: Track) -> None:
        if self.tracks:
            self._queue.put(track_event(track, self.sector))
            self.counts["queued"] += 1

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued was written; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(timeout=5.0)

    # -- the sender thread --------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.run(self._sender())

    async def _sender(self) -> None:
        writer = None
        pending: bytes | None = None
        while True:
            if pending is None:
                item = await asyncio.to_thread(self._queue.get)
                if item is None:
                    self._queue.task_done()
                    break
                pending = item
            try:
                if writer is None:
                    _, writer = await pytak.protocol_factory(self._config)
                    self._connected.set()
                if hasattr(writer, "send"):
                    await writer.send(pending)
                else:
                    writer.write(pending)
                    await writer.drain()
                self.counts["sent"] += 1
                pending = None
                self._queue.task_done()
            except (OSError, ConnectionError) as exc:
                self.counts["errors"] += 1
                log.warning(
                    "CoT send to %s failed (%s); retrying in %.1f s",
                    self.url,
                    exc,
                    self.reconnect_s,
                )
                writer = None
                await asyncio.sleep(self.reconnect_s)
        if writer is not None and hasattr(writer, "close"):
            with contextlib.suppress(Exception):  # closing a socket that may be broken
                writer.close()
