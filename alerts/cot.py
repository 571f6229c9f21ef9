"""Cursor-on-Target (CoT) events for TAK clients: tracks and alerts as CoT XML.

Built with pytak's ``cot_event``/``cot_point`` at seven decimals (pytak's default of four
loses about 11 m). Event times are the message's own (simulated or real), not the wall clock.
Every event Vigil builds validates against ``data/cot_event.xsd`` (the CoT base event,
written for Vigil) and the checks of :func:`validate_event`.

Types
-----
A CoT type is a path in a type tree: ``a-`` for a thing that is there (its second atom the
affiliation: ``f`` friend, ``h`` hostile, ``u`` unknown, ``n`` neutral; then MIL-STD-2525's
battle dimension and function, ``G`` ground, ``G-E-V`` ground vehicle), ``b-`` for bits of
data about a place (``b-m-p`` map points, ``b-d`` detections, ``b-l`` alarms in MITRE's
incident-management branch, ``b-a`` the alarms TAK clients raise), ``t-`` for tasks.
Sources: MITRE's CoTtypes.xml (the type catalogue TAK libraries carry) and the TAK clients'
alert types (ATAK: ``b-a-o-tbl`` 911, ``b-a-o-pan`` Ring The Bell, ``b-a-o-opn`` Troops In
Contact, ``b-a-o-can`` their cancel, ``b-a-g`` Geo-fence Breached; TAK Server routes these
past its geospatial filters to everyone).

Tracks (:data:`TRACK_TYPES`), affiliation unknown (``u``): Vigil tells what a thing is, not
whose side it is on; an animal is neutral (``n``: known, and no party to anything):

- person: ``a-u-G-U-C-I``, people on foot (2525's "troops (open)" atom, the closest the type
  tree has: CoTtypes.xml has civilian vehicles and structures but no civilian individual; the
  ``u`` says nothing of who they are);
- vehicle: ``a-u-G-E-V``, ground equipment, vehicle;
- animal: ``a-n-G``, a neutral ground track;
- unknown: ``a-u-G``, an unknown ground track.

Alerts (:data:`ALERT_TYPES`); only a breach of the line or of a zone is an alarm a TAK
client raises, and none is an emergency (``b-a-o-*`` stays for a person in danger):

- crossing, zone_entry: ``b-a-g``, Geo-fence Breached: a person crossed the border or
  entered a zone, the one thing every client in the sector should hear of now;
- sensor_cue: ``b-d``, a detection: a ground sensor's hit no camera has seen yet;
- track_lost: ``b-m-p-s-m``, ATAK's spot map marker (under MITRE's ``b-m-p`` map point) at
  the last known position;
- sensor_health: ``b-l-o-tbl-s-a``, MITRE's alarm branch "trouble, silent, sensor": a
  maintenance report (tamper, offline, battery, silent), not the 911 alert ``b-a-o-tbl``.

A closed alert goes out as ``t-x-d-d`` (delete) linking the alert's uid, so that clients take
its marker off the map.
"""

from __future__ import annotations

import math
import re
import warnings
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from functools import cache
from importlib import resources

from vigil.ingest.schema import Alert, Track

with warnings.catch_warnings():
    # pytak warns at import about optional crypto/aiohttp extras that TCP/UDP do not need.
    warnings.simplefilter("ignore")
    import pytak

PRECISION = 7
#: Default stale times, seconds after the message's time (``[cot]`` sets them).
TRACK_STALE_S = 60.0
ALERT_STALE_S = 3600.0
UNKNOWN = "9999999.0"
#: The first part of every uid unless ``[cot] uid_prefix`` says otherwise.
UID_PREFIX = "vigil"
#: CoT type of a track, by class (see the module's docstring).
TRACK_TYPES: dict[str, str] = {
    "person": "a-u-G-U-C-I",
    "vehicle": "a-u-G-E-V",
    "animal": "a-n-G",
    "unknown": "a-u-G",
}
#: CoT type of an open alert, by kind (see the module's docstring).
ALERT_TYPES: dict[str, str] = {
    "crossing": "b-a-g",
    "zone_entry": "b-a-g",
    "sensor_cue": "b-d",
    "track_lost": "b-m-p-s-m",
    "sensor_health": "b-l-o-tbl-s-a",
}
#: A closed alert: TAK's delete task, with a link to the alert's uid.
CLOSE_TYPE = "t-x-d-d"
#: The TAK clients' emergency types (and their cancel): no Vigil event carries one.
EMERGENCY_TYPES = frozenset({"b-a-o-tbl", "b-a-o-pan", "b-a-o-opn", "b-a-o-can"})
#: The CoT base event schema Vigil validates against (package data).
SCHEMA_FILE = "cot_event.xsd"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$(?!\n)")


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


def track_uid(sector: str, track_id: str, prefix: str = UID_PREFIX) -> str:
    """The uid of a track's CoT events (the same for every update of the track)."""
    return f"{prefix}.{sector}.track.{track_id}"


def alert_uid(sector: str, alert_id: str, prefix: str = UID_PREFIX) -> str:
    """The uid of an alert's CoT events (the same for every update of the alert)."""
    return f"{prefix}.{sector}.alert.{alert_id}"


def track_type(class_guess: str) -> str:
    """The CoT type of a track of a class (:data:`TRACK_TYPES`; unknown ground otherwise)."""
    return TRACK_TYPES.get(class_guess, TRACK_TYPES["unknown"])


def alert_type(alert: Alert) -> str:
    """The CoT type of an alert: by kind while open (:data:`ALERT_TYPES`), a delete once
    closed."""
    return CLOSE_TYPE if alert.state == "closed" else ALERT_TYPES[alert.kind]


def track_event(
    track: Track, sector: str, *, stale_s: float = TRACK_STALE_S, uid_prefix: str = UID_PREFIX
) -> bytes:
    """A track as a CoT event typed by its class, its 2-sigma circular error (m) from the
    covariance, stale ``stale_s`` seconds after the track's time."""
    ee, _, _, nn = track.cov
    ce = 2.0 * math.sqrt(max(ee, nn, 0.0))
    event = _event(
        track_uid(sector, track.track_id, uid_prefix),
        track_type(track.class_guess),
        track.time,
        stale_s,
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


def alert_event(
    alert: Alert, sector: str, *, stale_s: float = ALERT_STALE_S, uid_prefix: str = UID_PREFIX
) -> bytes:
    """An alert as a CoT event typed by its kind (:func:`alert_type`), with its track, units,
    intercept and evidence in detail, stale ``stale_s`` seconds after the alert's time."""
    uid = alert_uid(sector, alert.alert_id, uid_prefix)
    cot_type = alert_type(alert)
    event = _event(uid, cot_type, alert.time, stale_s, alert.lat, alert.lon, 50.0)
    detail = event.find("detail")
    assert detail is not None
    if cot_type == CLOSE_TYPE:  # what a TAK client needs to take the marker off
        ET.SubElement(detail, "link", uid=uid, relation="none", type=ALERT_TYPES[alert.kind])
        ET.SubElement(detail, "__forcedelete")
    ET.SubElement(detail, "contact", callsign=f"ALERT {alert.alert_id}")
    if alert.track_id:
        probs = alert.evidence.class_probs
        likeliest = max(probs, key=probs.__getitem__) if probs else "unknown"
        ET.SubElement(
            detail,
            "link",
            uid=track_uid(sector, alert.track_id, uid_prefix),
            type=track_type(likeliest),
            relation="p-p",
        )
    remarks = ET.SubElement(detail, "remarks")
    ev = alert.evidence
    probs_text = ", ".join(f"{k} {v:.2f}" for k, v in sorted(ev.class_probs.items()))
    parts = [
        f"P{alert.priority} {alert.kind.replace('_', ' ')}",
        "closed" if alert.state == "closed" else "",
        alert.summary,
        f"segment {alert.segment_id}" if alert.segment_id else "",
        f"zone {alert.zone}" if alert.zone else "",
        f"units: {', '.join(alert.units)}" if alert.units else "",
        f"evidence: {ev.detections} updates from {', '.join(ev.sensors) or 'no sensor'}",
        f"class: {probs_text}" if probs_text else "",
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


@cache
def _schema():  # lxml's XMLSchema; lxml is imported where used
    from lxml import etree

    with resources.files("vigil.alerts").joinpath("data", SCHEMA_FILE).open("rb") as f:
        return etree.XMLSchema(etree.parse(f))


def schema_errors(data: bytes) -> list[str]:
    """What makes ``data`` fail the CoT base event schema (``data/cot_event.xsd``), one line
    each with its line number; empty when it validates. Needs lxml."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        doc = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return [f"not XML: {exc}"]
    schema = _schema()
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def validate_event(data: bytes) -> ET.Element:
    """Parse and check one CoT event; raises :class:`CotError` naming what is missing or wrong.

    Checks it against the CoT base event schema (:func:`schema_errors`), then what the schema
    cannot say or what TAK clients need beyond it: the ``event``, ``point`` and ``detail``
    elements; the ``uid``, ``type``, ``time``, ``start``, ``stale`` and ``how`` attributes;
    ISO 8601 UTC times with stale after start; latitude and longitude in range written with
    seven decimals. Needs lxml (the ``test`` extra).
    """
    try:
        event = ET.fromstring(data)
    except ET.ParseError as exc:
        raise CotError(f"not XML: {exc}") from None
    errors = schema_errors(data)
    if errors:
        raise CotError(f"not a CoT base event: {'; '.join(errors)}")
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
