"""UAS telemetry adapter: MAVLink (UDP or a tlog file) to :class:`~vigil.ingest.schema.Telemetry`.

One ``Telemetry`` message per ``GLOBAL_POSITION_INT``, carrying the latest ``ATTITUDE``,
the camera's pointing (``MOUNT_STATUS``) and fields of view (``CAMERA_FOV_STATUS``) when the
aircraft sends them, and the camera's ground footprint computed with the pinhole model.
A position without a GPS fix (0, 0) or out of range is not published but counted.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from vigil.geo.camera import CameraError, PinholeCamera
from vigil.geo.frames import LocalFrame
from vigil.ingest.bus import Bus
from vigil.ingest.schema import MessageError, Telemetry, encode, topic_for, validate


class MavlinkSourceError(OSError):
    """A MAVLink source that cannot be opened or read."""


@dataclass
class UasCounts:
    """What the adapter read and what it did with it."""

    messages: int = 0
    telemetry: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def _connection(source: str):
    from pymavlink import mavutil

    try:
        if source.startswith(("udp:", "udpin:", "udpout:", "tcp:", "tcpin:")):
            return mavutil.mavlink_connection(source, dialect="ardupilotmega")
        return mavutil.mavlink_connection(source, dialect="ardupilotmega", notimestamps=False)
    except OSError as exc:
        raise MavlinkSourceError(f"cannot open MAVLink source {source!r}: {exc}") from None


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
    """Telemetry messages from a MAVLink source, in order.

    Parameters
    ----------
    source
        A tlog file path, or a pymavlink connection string such as ``udpin:0.0.0.0:14550``.
    aircraft
        The aircraft id the messages carry.
    follow
        Keep reading a live source when it goes quiet (UDP); files end at their end.
    clock
        Time for live sources without log timestamps, seconds since the epoch.
    """
    counts = counts if counts is not None else UasCounts()
    conn = _connection(source)
    attitude = None
    mount = None
    fov = None
    live = not source.endswith((".tlog", ".log", ".bin")) and ":" in source
    while True:
        msg = conn.recv_match(blocking=live and follow, timeout=1.0 if live else None)
        if msg is None:
            if live and follow:
                continue
            break
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
