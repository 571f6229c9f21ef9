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
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from vigil.alerts.cot import (
    ALERT_STALE_S,
    TRACK_STALE_S,
    TRACK_TYPES,
    UID_PREFIX,
    alert_event,
    track_event,
)
from vigil.alerts.cot_settings import CotSettings
from vigil.ingest.bus import Bus, Subscription
from vigil.ingest.schema import Alert, Track, Wire, topic_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak

log = logging.getLogger(__name__)

#: The CoT URL schemes :class:`CotChannel` sends on (pytak's COT_URL).
COT_SCHEMES = ("tcp", "udp", "udp+wo", "tls")
#: Events waiting for the TAK server at most; beyond it the oldest are dropped (counted).
COT_QUEUE_MAX = 10_000


def check_cot_url(url: str) -> str:
    """Return ``url`` if it is ``SCHEME://HOST:PORT`` with a scheme of :data:`COT_SCHEMES`;
    else raise :class:`ValueError` naming what is wrong.

    >>> check_cot_url("tcp://tak.example:8087")
    'tcp://tak.example:8087'
    """
    parts = urlsplit(url)
    if parts.scheme not in COT_SCHEMES:
        raise ValueError(
            f"{url!r}: expected a scheme of {', '.join(COT_SCHEMES)} (tcp://HOST:PORT)"
        )
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or not 0 < port < 65536:
        raise ValueError(f"{url!r}: expected {parts.scheme}://HOST:PORT with a port 1-65535")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r}: expected nothing after HOST:PORT")
    return url


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
        ``tls://host:port``.
    sector
        Sector name, part of every event's uid.
    tracks
        Also send tracks (typed by class, :data:`vigil.alerts.cot.TRACK_TYPES`), not only
        alerts.
    tls
        pytak's TLS settings for ``tls://``: ``PYTAK_TLS_CLIENT_CERT`` (PEM, required),
        ``PYTAK_TLS_CLIENT_KEY``, ``PYTAK_TLS_CLIENT_CAFILE``, ``PYTAK_TLS_DONT_VERIFY``...
    reconnect_s
        Seconds between tries while the TAK server cannot be reached; events wait (at most
        :data:`COT_QUEUE_MAX`, the oldest dropped beyond it, counted as ``dropped``).
    alert_stale_s, track_stale_s
        How long after its time a TAK client keeps showing an alert or a track, seconds.
    track_classes
        The classes of track sent when ``tracks`` is on (others counted as ``tracks_skipped``).
    uid_prefix
        First part of every event's uid (``{uid_prefix}.{sector}.alert.{id}``).
    """

    def __init__(
        self,
        url: str,
        sector: str,
        *,
        tracks: bool = False,
        tls: dict[str, str] | None = None,
        reconnect_s: float = 2.0,
        alert_stale_s: float = ALERT_STALE_S,
        track_stale_s: float = TRACK_STALE_S,
        track_classes: Iterable[str] = tuple(TRACK_TYPES),
        uid_prefix: str = UID_PREFIX,
    ) -> None:
        super().__init__()
        self.url = check_cot_url(url)
        if url.startswith("tls:") and not (tls or {}).get("PYTAK_TLS_CLIENT_CERT"):
            raise ValueError(f"{url!r}: tls:// needs a client certificate (PYTAK_TLS_CLIENT_CERT)")
        self.sector = sector
        self.tracks = tracks
        self.reconnect_s = reconnect_s
        self.alert_stale_s = alert_stale_s
        self.track_stale_s = track_stale_s
        self.track_classes = frozenset(track_classes)
        self.uid_prefix = uid_prefix
        parser = configparser.ConfigParser(interpolation=None)
        # send only: pytak's plain udp:// also listens on the port, which fails when a TAK
        # client on this host holds it ("Address already in use")
        pytak_url = "udp+wo" + url[3:] if url.startswith("udp://") else url
        parser["vigil"] = {"COT_URL": pytak_url, **(tls or {})}
        self._config = parser["vigil"]
        self._queue: queue.Queue[bytes | None] = queue.Queue(COT_QUEUE_MAX)
        self._thread = threading.Thread(target=self._run, name=f"cot-{url}", daemon=True)
        self._connected = threading.Event()
        self._done = threading.Event()
        self._closing = False
        self._thread.start()

    def send_alert(self, alert: Alert) -> None:
        self._put(
            alert_event(alert, self.sector, stale_s=self.alert_stale_s, uid_prefix=self.uid_prefix)
        )

    def send_track(self, track: Track) -> None:
        if not self.tracks:
            return
        if track.class_guess not in self.track_classes:
            self.counts["tracks_skipped"] += 1
            return
        self._put(
            track_event(track, self.sector, stale_s=self.track_stale_s, uid_prefix=self.uid_prefix)
        )

    def _put(self, event: bytes) -> None:
        while True:
            try:
                self._queue.put_nowait(event)
                break
            except queue.Full:  # the TAK server is away: the oldest event goes
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
                    self._queue.task_done()
                    self.counts["dropped"] += 1
                    if self.counts["dropped"] in (1, 10, 100) or self.counts["dropped"] % 1000 == 0:
                        log.warning(
                            "CoT to %s: %d events dropped, queue full",
                            self.url,
                            self.counts["dropped"],
                        )
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
        self._closing = True
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=1.0)
        self._thread.join(timeout=5.0)

    # -- the sender thread --------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.run(self._sender())

    async def _sender(self) -> None:
        writer = None
        pending: bytes | None = None
        failures = 0  # in a row: the first is logged, then every 30th (one a minute at 2 s)
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
                if failures:
                    log.warning("CoT to %s sent again after %d failed tries", self.url, failures)
                    failures = 0
                pending = None
                self._queue.task_done()
            except Exception as exc:  # noqa: BLE001 - any failure: log, count, retry
                self.counts["errors"] += 1
                if self._closing:
                    break
                failures += 1
                if failures % 30 == 1:
                    log.warning(
                        "CoT send to %s failed (%s); retrying every %.1f s (%d waiting)",
                        self.url,
                        exc,
                        self.reconnect_s,
                        self._queue.qsize() + 1,
                    )
                writer = None
                await asyncio.sleep(self.reconnect_s)
        if writer is not None and hasattr(writer, "close"):
            with contextlib.suppress(Exception):  # closing a socket that may be broken
                writer.close()


def cot_channels_from(
    settings: CotSettings | None, sector: str, base_dir: Path
) -> list[DispatchChannel]:
    """The CoT channel a deployment's ``[cot]`` section asks for: none unless ``enabled``.

    Relative TLS file paths are resolved against ``base_dir`` (the deployment file's folder);
    a missing file raises :class:`ValueError` naming the key and the path.
    """
    if settings is None or not settings.enabled:
        return []
    tls: dict[str, str] = {}
    if settings.protocol == "tls":
        for key, name in (
            ("cert_file", "PYTAK_TLS_CLIENT_CERT"),
            ("key_file", "PYTAK_TLS_CLIENT_KEY"),
            ("ca_file", "PYTAK_TLS_CLIENT_CAFILE"),
        ):
            value = getattr(settings, key)
            if value is None:
                continue
            path = Path(value) if Path(value).is_absolute() else base_dir / value
            if not path.is_file():
                raise ValueError(f"[cot] {key} = {value!r}: no such file ({path})")
            tls[name] = str(path)
    channel = CotChannel(
        settings.url,
        sector,
        tracks=settings.tracks,
        tls=tls,
        reconnect_s=settings.reconnect_s,
        alert_stale_s=settings.alert_stale_s,
        track_stale_s=settings.track_stale_s,
        track_classes=settings.track_classes,
        uid_prefix=settings.uid_prefix,
    )
    return [channel]


def feed_from_bus(bus: Bus, sector: str, channels: Sequence[DispatchChannel]) -> list[Subscription]:
    """Send a sector's alerts and tracks published on ``bus`` to ``channels`` (the demo's
    in-process bus; the field service feeds its channels itself). Returns the subscriptions."""
    if not channels:
        return []

    def send(_topic: str, message: Wire) -> None:
        for channel in channels:
            channel.send(message)

    base = f"vigil/v1/{sector}"
    return [bus.subscribe(f"{base}/alerts", send), bus.subscribe(f"{base}/tracks", send)]
