"""Cursor-on-Target (CoT) events for TAK clients: tracks and alerts as CoT XML.

Built with pytak's ``cot_event``/``cot_point`` at seven decimals (pytak's default of four
loses about 11 m). Event times are the message's own (simulated or real), not the wall clock.
"""

from __future__ import annotations

import math
import re
import warnings
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from vigil.ingest.schema import Alert, Track

with warnings.catch_warnings():
    # pytak warns at import about optional crypto/aiohttp extras that TCP/UDP do not need.
    warnings.simplefilter("ignore")
    import pytak

PRECISION = 7
TRACK_STALE_S = 60.0
ALERT_STALE_S = 3600.0
UNKNOWN = "9999999.0"
#: CoT types: tracks are unknown ground objects; border and zone breaches are geofence alarms.
TRACK_TYPE = "a-u-G"
ALERT_TYPES = {
    "crossing": "b-a-g",
    "zone_entry": "b-a-g",
    "sensor_cue": "b-a-o-pan",
    "track_lost": "b-a-o-pan",
    "sensor_health": "b-a-o-pan",
}
CANCEL_TYPE = "b-a-o-can"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


class CotError(ValueError):
    """A CoT event missing something a TAK client needs."""


def cot_time(t: float) -> str:
    """UTC seconds since the epoch as CoT's ISO 8601 time (millisecond precision)."""
    dt = datetime.fromtimestamp(t, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _event(
    uid: str, cot_type: str, t: float, stale_s: float, lat: float, lon: float, ce: float
) -> ET.Element:
    point = pytak.cot_point(
        lat=lat, lon=lon, ce=f"{ce:.1f}", hae=UNKNOWN, le=UNKNOWN, precision=PRECISION
    )
    # pytak trims trailing zeros; TAK clients and our validator expect fixed seven decimals.
    point.set("lat", f"{lat:.{PRECISION}f}")
    point.set("lon", f"{lon:.{PRECISION}f}")
    event = pytak.cot_event(
        uid=uid, cot_type=cot_type, how="m-f", point=point, detail=ET.Element("detail")
    )
    event.set("time", cot_time(t))
    event.set("start", cot_time(t))
    event.set("stale", cot_time(t + stale_s))
    return event


def track_event(track: Track, sector: str) -> bytes:
    """A track as a CoT event (``a-u-G``), its 2-sigma circular error from the covariance."""
    ee, _, _, nn = track.cov
    ce = 2.0 * math.sqrt(max(ee, nn, 0.0))
    event = _event(
        f"vigil.{sector}.track.{track.track_id}",
        TRACK_TYPE,
        track.time,
        TRACK_STALE_S,
        track.lat,
        track.lon,
        ce,
    )
    detail = event.find("detail")
    assert detail is not None
    speed = math.hypot(track.vx, track.vy)
    course = math.degrees(math.atan2(track.vx, track.vy)) % 360.0
    ET.SubElement(detail, "track", course=f"{course:.1f}", speed=f"{speed:.2f}")
    ET.SubElement(detail, "contact", callsign=f"{track.class_guess} {track.track_id}")
    remarks = ET.SubElement(detail, "remarks")
    remarks.text = (
        f"{track.class_guess} ({track.state}), sensors: {', '.join(track.sensors) or 'none'}"
    )
    return ET.tostring(event, encoding="utf-8")


def alert_event(alert: Alert, sector: str) -> bytes:
    """An alert as a CoT alarm event, with its track, units, intercept and evidence in detail."""
    cot_type = CANCEL_TYPE if alert.state == "closed" else ALERT_TYPES.get(alert.kind, "b-a-o-pan")
    event = _event(
        f"vigil.{sector}.alert.{alert.alert_id}",
        cot_type,
        alert.time,
        ALERT_STALE_S,
        alert.lat,
        alert.lon,
        50.0,
    )
    detail = event.find("detail")
    assert detail is not None
    ET.SubElement(detail, "contact", callsign=f"ALERT {alert.alert_id}")
    if alert.track_id:
        ET.SubElement(
            detail,
            "link",
            uid=f"vigil.{sector}.track.{alert.track_id}",
            type=TRACK_TYPE,
            relation="p-p",
        )
    remarks = ET.SubElement(detail, "remarks")
    ev = alert.evidence
    probs = ", ".join(f"{k} {v:.2f}" for k, v in sorted(ev.class_probs.items()))
    parts = [
        f"P{alert.priority} {alert.kind.replace('_', ' ')}",
        alert.summary,
        f"segment {alert.segment_id}" if alert.segment_id else "",
        f"zone {alert.zone}" if alert.zone else "",
        f"units: {', '.join(alert.units)}" if alert.units else "",
        f"evidence: {ev.detections} updates from {', '.join(ev.sensors) or 'no sensor'}",
        f"class: {probs}" if probs else "",
    ]
    remarks.text = "; ".join(p for p in parts if p)
    vigil = ET.SubElement(
        detail,
        "__vigil",
        kind=alert.kind,
        priority=str(alert.priority),
        state=alert.state,
    )
    for p in alert.predicted:
        ET.SubElement(
            vigil,
            "predicted",
            time=cot_time(p.time),
            lat=f"{p.lat:.{PRECISION}f}",
            lon=f"{p.lon:.{PRECISION}f}",
        )
    return ET.tostring(event, encoding="utf-8")


def validate_event(data: bytes) -> ET.Element:
    """Parse and check one CoT event; raises :class:`CotError` naming what is missing or wrong.

    Checks the ``event``, ``point`` and ``detail`` elements; the ``uid``, ``type``, ``time``,
    ``start``, ``stale`` and ``how`` attributes; ISO 8601 UTC times with stale after start;
    and latitude and longitude in range written with seven decimals.
    """
    try:
        event = ET.fromstring(data)
    except ET.ParseError as exc:
        raise CotError(f"not XML: {exc}") from None
    if event.tag != "event":
        raise CotError(f"root element is {event.tag!r}; expected 'event'")
    for attr in ("version", "uid", "type", "time", "start", "stale", "how"):
        if not event.get(attr):
            raise CotError(f"event attribute {attr!r} is missing")
    for attr in ("time", "start", "stale"):
        if not _ISO.match(event.get(attr, "")):
            raise CotError(f"event {attr}={event.get(attr)!r}; expected ISO 8601 UTC ending in Z")
    if event.get("stale", "") <= event.get("start", ""):
        raise CotError(f"stale {event.get('stale')} is not after start {event.get('start')}")
    point = event.find("point")
    if point is None:
        raise CotError("event has no point element")
    if event.find("detail") is None:
        raise CotError("event has no detail element")
    for attr, limit in (("lat", 90.0), ("lon", 180.0)):
        text = point.get(attr, "")
        if not re.fullmatch(rf"-?\d+\.\d{{{PRECISION}}}", text):
            raise CotError(f"point {attr}={text!r}; expected {PRECISION} decimals")
        if abs(float(text)) > limit:
            raise CotError(f"point {attr}={text} out of range")
    for attr in ("hae", "ce", "le"):
        try:
            float(point.get(attr, "x"))
        except ValueError:
            raise CotError(f"point {attr}={point.get(attr)!r} is not a number") from None
    return event
