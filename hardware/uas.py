"""UAS telemetry adapter: MAVLink (UDP, TCP, a tlog) or an ArduPilot DataFlash log to
:class:`~vigil.ingest.schema.Telemetry`.

Sources
    A connection string (``udpin:0.0.0.0:14550``, ``udp:``, ``udpout:``, ``tcp:``,
    ``tcpin:``), a serial port that exists (``/dev/ttyUSB0``, needs pyserial), or a log file,
    recognised by its first bytes rather than its name: a telemetry log (``.tlog``: MAVLink
    packets, each after an 8-byte time stamp), an ArduPilot DataFlash log (``.bin``, binary),
    or a DataFlash text log (``.log``, lines from ``FMT,``). Anything else (a missing file, a
    folder, a picture) is refused with :class:`MavlinkSourceError` naming the file.

MAVLink
    One ``Telemetry`` message per ``GLOBAL_POSITION_INT``, carrying the latest ``ATTITUDE``,
    the camera's pointing (``MOUNT_STATUS``) and fields of view (``CAMERA_FOV_STATUS``) when
    the aircraft sends them, and the camera's ground footprint computed with the pinhole model.

DataFlash
    One ``Telemetry`` message per ``POS`` (the autopilot's position estimate: ``Lat``,
    ``Lng``, ``Alt`` above mean sea level, ``RelHomeAlt`` above home as the height above the
    ground), with the latest ``ATT`` (roll, pitch, yaw in degrees) and the primary GPS's ground
    speed (``GPS.Spd``). Times are UTC from the log's GPS clock (pymavlink's ``DFReader``); a
    log without GPS time has none, and its positions are counted (``no_utc_time``), not
    published. DataFlash logs carry no camera field of view, so no footprint.

A position without a fix (0, 0) is not published but counted (``no_fix``).
"""

from __future__ import annotations

import math
import stat
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vigil.geo.camera import CameraError, PinholeCamera
from vigil.geo.frames import LocalFrame
from vigil.ingest.bus import Bus
from vigil.ingest.schema import MessageError, Telemetry, encode, topic_for, validate

#: Connection strings read live (pymavlink's UDP and TCP links).
LIVE_PREFIXES = ("udp:", "udpin:", "udpout:", "udpbcast:", "tcp:", "tcpin:")

#: What the first bytes of a log file say it is.
TLOG, DATAFLASH, DATAFLASH_TEXT = "telemetry log", "DataFlash log", "DataFlash text log"


class MavlinkSourceError(OSError):
    """A MAVLink source that cannot be opened or read; the message names the source."""


@dataclass
class UasCounts:
    """What the adapter read and what it did with it."""

    messages: int = 0
    telemetry: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def log_kind(path: str) -> str:
    """What a log file is, from its first bytes: :data:`TLOG`, :data:`DATAFLASH` or
    :data:`DATAFLASH_TEXT`.

    Raises
    ------
    MavlinkSourceError
        When the file cannot be read, or is none of them.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise MavlinkSourceError(f"{path}: cannot read it: {exc.strerror}") from None
    if head[:3] == b"\xa3\x95\x80":  # a message header, then the first FMT message
        return DATAFLASH
    if head.lstrip()[:4] == b"FMT,":
        return DATAFLASH_TEXT
    if len(head) > 8 and head[8] in (0xFE, 0xFD):  # time stamp, then a MAVLink 1 or 2 start
        return TLOG
    what = f"it starts with bytes {head[:8].hex(' ')}" if head else "it is empty"
    raise MavlinkSourceError(
        f"{path}: not a MAVLink log: expected a telemetry log (.tlog) or an ArduPilot "
        f"DataFlash log (.bin, .log); {what}"
    )


def _open_log(path: str, kind: str) -> Any:
    """pymavlink's reader for a log file of a known kind."""
    from pymavlink import DFReader, mavutil

    try:
        if kind == DATAFLASH:
            return DFReader.DFReader_binary(path)
        if kind == DATAFLASH_TEXT:
            return DFReader.DFReader_text(path)
        mavutil.set_dialect("ardupilotmega")
        return mavutil.mavmmaplog(path)
    except Exception as exc:  # pymavlink's parsers raise anything on a damaged file
        raise MavlinkSourceError(
            f"{path}: cannot read it as a {kind}: {type(exc).__name__}: {exc}"
        ) from None


def _connection(source: str) -> tuple[Any, str | None]:
    """The opened source and its kind (a log kind, or ``None`` for a live link)."""
    from pymavlink import mavutil

    if source.startswith(LIVE_PREFIXES):
        try:
            return mavutil.mavlink_connection(source, dialect="ardupilotmega"), None
        except OSError as exc:
            raise MavlinkSourceError(f"cannot open MAVLink source {source!r}: {exc}") from None
    path = Path(source)
    if not path.exists():
        raise MavlinkSourceError(f"{source}: no such file")
    if path.is_dir():
        raise MavlinkSourceError(f"{source}: is a folder; expected a log file or a serial port")
    if stat.S_ISCHR(path.stat().st_mode):  # a serial port
        try:
            return mavutil.mavlink_connection(source, dialect="ardupilotmega"), None
        except ImportError:
            raise MavlinkSourceError(
                f"{source}: reading a serial port needs pyserial (pip install pyserial)"
            ) from None
        except OSError as exc:
            raise MavlinkSourceError(f"{source}: cannot open the serial port: {exc}") from None
    kind = log_kind(source)
    return _open_log(source, kind), kind


def footprint(
    lat: float, lon: float, agl_m: float, pan_deg: float, tilt_deg: float, hfov_deg: float
) -> list[tuple[float, float]]:
    """The camera's ground footprint as ``(lat, lon)`` vertices (flat ground, pinhole)."""
    frame = LocalFrame(lat, lon)
    try:
        cam = PinholeCamera(
            x=0.0,
            y=0.0,
            height_m=max(agl_m, 1.0),
            pan_deg=pan_deg % 360.0,
            tilt_deg=min(max(tilt_deg, -30.0), 90.0),
            hfov_deg=hfov_deg,
            max_range_m=max(5000.0, 3.0 * agl_m),
        )
    except CameraError:
        return []
    poly = cam.footprint(samples_per_edge=4)
    x, y = np.asarray(poly.exterior.coords).T
    la, lo = frame.to_wgs84(x, y)
    return [(round(float(a), 7), round(float(o), 7)) for a, o in zip(la, lo, strict=True)]


def read_telemetry(
    source: str,
    aircraft: str,
    *,
    counts: UasCounts | None = None,
    follow: bool = False,
    clock=time.time,
) -> Iterator[Telemetry]:
    """Telemetry messages from a MAVLink source or a DataFlash log, in order.

    Parameters
    ----------
    source
        A log file (tlog, DataFlash ``.bin`` or ``.log``), a serial port, or a pymavlink
        connection string such as ``udpin:0.0.0.0:14550`` (see the module docstring).
    aircraft
        The aircraft id the messages carry.
    follow
        Keep reading a live source when it goes quiet (UDP); files end at their end.
    clock
        Time for live sources without log timestamps, seconds since the epoch.

    Raises
    ------
    MavlinkSourceError
        When the source cannot be opened, is not a log, or a log cannot be decoded (the
        messages before have been yielded).
    """
    counts = counts if counts is not None else UasCounts()
    conn, kind = _connection(source)
    try:
        messages = _messages(conn, source, live=kind is None, follow=follow)
        if kind in (DATAFLASH, DATAFLASH_TEXT):
            yield from _dataflash_telemetry(conn, messages, aircraft, counts)
        else:
            yield from _mavlink_telemetry(messages, aircraft, counts, clock)
    finally:
        conn.close()


def _messages(conn: Any, source: str, *, live: bool, follow: bool) -> Iterator[Any]:
    """Every message of an opened source; pymavlink's errors on a damaged log, named."""
    n = 0
    while True:
        try:
            msg = conn.recv_match(blocking=follow, timeout=1.0) if live else conn.recv_match()
        except Exception as exc:  # pymavlink's parsers raise anything on a damaged log
            raise MavlinkSourceError(
                f"{source}: message {n + 1}: cannot decode it: {type(exc).__name__}: {exc}"
            ) from None
        if msg is None:
            if live and follow:
                continue
            return
        n += 1
        yield msg


def _mavlink_telemetry(
    messages: Iterator[Any], aircraft: str, counts: UasCounts, clock
) -> Iterator[Telemetry]:
    """Telemetry from MAVLink messages (module docstring)."""
    attitude = None
    mount = None
    fov = None
    for msg in messages:
        counts.messages += 1
        kind = msg.get_type()
        if kind == "BAD_DATA":
            counts.skipped["bad_data"] += 1
            continue
        if kind == "ATTITUDE":
            attitude = msg
        elif kind == "MOUNT_STATUS":
            mount = msg
        elif kind == "CAMERA_FOV_STATUS":
            fov = msg
        elif kind == "GLOBAL_POSITION_INT":
            lat, lon = msg.lat / 1e7, msg.lon / 1e7
            if msg.lat == 0 and msg.lon == 0:
                counts.skipped["no_fix"] += 1
                continue
            t = float(getattr(msg, "_timestamp", 0.0) or clock())
            agl = msg.relative_alt / 1000.0
            pan = tilt = hfov = vfov = None
            if mount is not None:
                tilt = -mount.pointing_a / 100.0
                pan = (mount.pointing_c / 100.0) % 360.0
            if fov is not None:
                hfov, vfov = float(fov.hfov), float(fov.vfov)
            fp: list[tuple[float, float]] = []
            if pan is not None and tilt is not None and hfov and agl > 1.0:
                fp = footprint(lat, lon, agl, pan, tilt, hfov)
            tel = Telemetry(
                aircraft=aircraft,
                time=t,
                lat=lat,
                lon=lon,
                alt_m=msg.alt / 1000.0,
                agl_m=agl,
                roll_deg=math.degrees(attitude.roll) if attitude is not None else 0.0,
                pitch_deg=math.degrees(attitude.pitch) if attitude is not None else 0.0,
                yaw_deg=(msg.hdg / 100.0) % 360.0 if msg.hdg != 65535 else 0.0,
                ground_speed_mps=math.hypot(msg.vx, msg.vy) / 100.0,
                gimbal_pan_deg=pan,
                gimbal_tilt_deg=tilt,
                hfov_deg=hfov,
                vfov_deg=vfov,
                footprint=fp,
            )
            counts.telemetry += 1
            yield tel


def _dataflash_telemetry(
    conn: Any, messages: Iterator[Any], aircraft: str, counts: UasCounts
) -> Iterator[Telemetry]:
    """Telemetry from an ArduPilot DataFlash log (module docstring)."""
    attitude = None
    gps = None
    for msg in messages:
        counts.messages += 1
        kind = msg.get_type()
        if kind == "BAD_DATA":
            counts.skipped["bad_data"] += 1
        elif kind == "ATT":
            attitude = msg
        elif kind == "GPS" and getattr(msg, "I", 0) == 0:  # the primary receiver
            gps = msg
        elif kind == "POS":
            if msg.Lat == 0 and msg.Lng == 0:
                counts.skipped["no_fix"] += 1
                continue
            # DFReader's clock has a UTC base once the log's GPS gave it the week and time
            if not getattr(conn.clock, "timebase", 0) > 0:
                counts.skipped["no_utc_time"] += 1
                continue
            agl = getattr(msg, "RelHomeAlt", None)
            tel = Telemetry(
                aircraft=aircraft,
                time=float(msg._timestamp),
                lat=float(msg.Lat),
                lon=float(msg.Lng),
                alt_m=float(msg.Alt),
                agl_m=float(agl) if agl is not None else None,
                roll_deg=float(attitude.Roll) if attitude is not None else 0.0,
                pitch_deg=float(attitude.Pitch) if attitude is not None else 0.0,
                yaw_deg=float(attitude.Yaw) % 360.0 if attitude is not None else 0.0,
                ground_speed_mps=float(gps.Spd) if gps is not None else None,
            )
            counts.telemetry += 1
            yield tel


def run_uas_edge(
    source: str,
    bus: Bus,
    sector: str,
    aircraft: str,
    *,
    follow: bool = False,
    max_skew_s: float = 300.0,
) -> UasCounts:
    """Publish an aircraft's telemetry on the bus; invalid messages go to quarantine."""
    counts = UasCounts()
    for tel in read_telemetry(source, aircraft, counts=counts, follow=follow):
        topic = topic_for(sector, tel)
        try:
            validate(tel, now=max(time.time(), tel.time), max_skew_s=max_skew_s)
        except MessageError as err:
            counts.skipped[err.reason] += 1
            bus.quarantine(topic, encode(tel), err)
            continue
        bus.publish(topic, tel)
    return counts
