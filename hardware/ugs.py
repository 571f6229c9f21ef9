"""Ground-sensor gateway adapter: the gateway's JSON lines onto the bus.

The gateway speaks one JSON wire message per line (``SensorEvent`` or ``SensorStatus``). The
adapter reads lines from a file, a TCP socket (``tcp://host:port``), a serial device
(``serial:///dev/ttyUSB0?baud=9600``, needs pyserial) or standard input (``-``), and publishes
each line's raw bytes on the sensor's topic. Decoding and validation happen on the bus, so a
malformed or clock-skewed line is quarantined with its reason, never dropped silently; a line
whose sensor cannot even be read goes to the topic of sensor ``unknown``.
"""

from __future__ import annotations

import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import msgspec

from vigil.ingest.bus import Bus

MAX_LINE = 65536


class GatewaySourceError(OSError):
    """A gateway source that cannot be opened."""


@dataclass
class UgsCounts:
    """Lines read and published, and how many the adapter could not even route."""

    lines: int = 0
    published: int = 0
    unroutable: int = 0
    kinds: Counter[str] = field(default_factory=Counter)


def _tcp_lines(host: str, port: int, reconnect_s: float, follow: bool) -> Iterator[bytes]:
    while True:
        try:
            with socket.create_connection((host, port), timeout=10.0) as sock:
                sock.settimeout(None)
                buf = b""
                while chunk := sock.recv(65536):
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    yield from lines
                if buf:
                    yield buf
        except OSError as exc:
            if not follow:
                raise GatewaySourceError(f"gateway tcp://{host}:{port}: {exc}") from None
        if not follow:
            return
        time.sleep(reconnect_s)


def gateway_lines(
    source: str, *, follow: bool = False, reconnect_s: float = 2.0
) -> Iterator[bytes]:
    """Raw lines from a gateway source (file path, ``tcp://``, ``serial://`` or ``-``)."""
    if source == "-":
        yield from (line.rstrip(b"\r\n") for line in sys.stdin.buffer)
        return
    url = urlparse(source)
    if url.scheme == "tcp":
        if not url.hostname or not url.port:
            raise GatewaySourceError(f"gateway source {source!r}: expected tcp://host:port")
        yield from _tcp_lines(url.hostname, url.port, reconnect_s, follow)
        return
    if url.scheme == "serial":
        try:
            import serial  # type: ignore[import-not-found]
        except ImportError:
            raise GatewaySourceError(
                "serial gateways need pyserial: pip install pyserial"
            ) from None
        baud = int(parse_qs(url.query).get("baud", ["9600"])[0])
        with serial.Serial(url.path, baudrate=baud, timeout=1.0) as port:
            while True:
                line = port.readline()
                if line:
                    yield line.rstrip(b"\r\n")
                elif not follow:
                    return
    path = Path(source)
    if not path.is_file():
        raise GatewaySourceError(f"gateway source {source!r}: no such file")
    with path.open("rb") as fh:
        for line in fh:
            yield line.rstrip(b"\r\n")


def route(sector: str, line: bytes) -> tuple[str, str]:
    """The topic a gateway line belongs on, and its kind (``events``/``status``/``unknown``)."""
    try:
        head = msgspec.json.decode(line[:MAX_LINE])
    except (msgspec.DecodeError, UnicodeDecodeError):
        head = None
    sensor = "unknown"
    kind = "events"
    if isinstance(head, dict):
        raw_id = head.get("sensor")
        if (
            isinstance(raw_id, str)
            and raw_id
            and "/" not in raw_id
            and "+" not in raw_id
            and "#" not in raw_id
        ):
            sensor = raw_id
        kind = "status" if head.get("type") == "sensor_status" else "events"
    return f"vigil/v1/{sector}/ugs/{sensor}/{kind}", (kind if sensor != "unknown" else "unknown")


def run_ugs_edge(source: str, bus: Bus, sector: str, *, follow: bool = False) -> UgsCounts:
    """Publish every gateway line on its sensor's topic; the bus validates or quarantines."""
    counts = UgsCounts()
    for line in gateway_lines(source, follow=follow):
        if not line.strip():
            continue
        counts.lines += 1
        topic, kind = route(sector, line)
        counts.kinds[kind] += 1
        counts.unroutable += kind == "unknown"
        bus.publish(topic, line)
        counts.published += 1
    return counts
