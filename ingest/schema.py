"""The wire messages every stage exchanges, as frozen msgspec structs.

On the wire a message is JSON with a ``type`` tag and a ``schema`` version; times are UTC
seconds since the epoch; positions are WGS84 latitude and longitude in degrees; covariances
are 2x2 in metres squared, east-north, row-major ``(ee, en, ne, nn)``.

:func:`decode` turns a topic and raw bytes into a validated message or raises
:class:`MessageError` naming the field, the value and what was expected; :func:`check` applies
the same checks to a message struct.

Topics are ``vigil/v1/{sector}/{kind}/{source}``: :mod:`vigil.ingest.topics` says which topic
a message goes on (:func:`topic_for`, imported here too) and what each topic carries.
"""

from __future__ import annotations

import math
import time as _time
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from vigil.ingest.fast_check import passes
from vigil.ingest.jsonable import numpy_scalar
from vigil.ingest.limits import (  # noqa: F401 - re-exported
    ACTOR_PATTERN,
    IDENT_PATTERN,
    MAX_ITEMS,
    MAX_TEXT,
    Actor,
    Ident,
    Idents,
    Probs,
    Settings,
    Text,
    text_problem,
)
from vigil.ingest.topics import TOPIC_KIND, expected_kind
from vigil.ingest.topics import quarantine_topic as quarantine_topic
from vigil.ingest.topics import topic_for as topic_for
from vigil.ingest.validation import explain

SCHEMA_VERSION = 1
#: Earliest time accepted on the wire (2000-01-01T00:00:00Z), seconds since the epoch.
EARLIEST_TIME = 946_684_800.0
#: How far ahead of the receiver's clock a message time may be, seconds.
DEFAULT_MAX_SKEW_S = 300.0

ClassName = Literal["person", "vehicle", "animal", "unknown"]
Modality = Literal["seismic", "magnetic", "pir", "acoustic"]
TrackState = Literal["tentative", "confirmed", "coasting", "ended"]
Direction = Literal["northbound", "southbound"]
AlertKind = Literal["crossing", "zone_entry", "sensor_cue", "track_lost", "sensor_health"]
AlertState = Literal["new", "updated", "acknowledged", "closed"]
SensorState = Literal["ok", "degraded", "offline"]


class MessageError(ValueError):
    """A message that failed decoding or validation.

    Attributes
    ----------
    field
        Dotted path of the offending field (``"lat"``, ``"predicted[2].lon"``), or ``"$"``
        for the whole message.
    value
        The offending value as received (``None`` when it was missing or unreadable).
    reason
        Short machine-friendly reason used for quarantine counts.
    """

    def __init__(self, field: str, value: Any, expected: str, reason: str = "invalid") -> None:
        self.field = field
        self.value = value
        self.expected = expected
        self.reason = reason
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"field {field!r} = {shown}: expected {expected}")


class Wire(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
):
    """Base of every wire message: a ``type`` tag and a schema version."""

    schema: int = SCHEMA_VERSION


# -- the messages ---------------------------------------------------------------------------


class CameraDetection(Wire, tag="camera_detection", kw_only=True):
    """A moving object seen by a camera, placed on the ground.

    ``box`` is ``(u0, v0, u1, v1)`` pixels; ``cov`` is the ground position's 2x2 covariance in
    m^2 (east-north). Aircraft cameras leave ``frame`` at -1 and ``box`` empty.
    """

    camera: Ident
    time: float
    frame: int = -1
    box: tuple[float, float, float, float] | None = None
    score: float = 1.0
    lat: float
    lon: float
    cov: tuple[float, float, float, float]
    class_guess: ClassName = "unknown"
    class_confidence: float = 0.0
    range_m: float | None = None


class SensorEvent(Wire, tag="sensor_event", kw_only=True):
    """An unattended ground sensor's detection; ``direction_deg`` is clockwise from north."""

    sensor: Ident
    time: float
    modality: Modality
    strength: float
    class_guess: ClassName = "unknown"
    class_confidence: float = 0.0
    count: int = 1
    direction_deg: float | None = None


class SensorStatus(Wire, tag="sensor_status", kw_only=True):
    """A device's heartbeat; ``battery`` is the fraction left, 0 to 1. A camera's may carry
    ``detection``: its detection settings in effect and its start-up calibration's choices
    (``calibration``); at most 16 keys ``[a-z][a-z0-9_]`` a table, tables two deep."""

    sensor: Ident
    time: float
    battery: float
    state: SensorState = "ok"
    tamper: bool = False
    last_heard: float
    detection: Settings = {}


class Telemetry(Wire, tag="telemetry", kw_only=True):
    """An aircraft's position, attitude and camera pointing.

    ``alt_m`` is above mean sea level, ``agl_m`` above the ground; angles in degrees;
    ``footprint`` is the camera's ground footprint as ``(lat, lon)`` vertices.
    """

    aircraft: Ident
    time: float
    lat: float
    lon: float
    alt_m: float
    agl_m: float | None = None
    roll_deg: float = 0.0
    pitch_deg: float = 0.0
    yaw_deg: float = 0.0
    ground_speed_mps: float | None = None
    gimbal_pan_deg: float | None = None
    gimbal_tilt_deg: float | None = None
    hfov_deg: float | None = None
    vfov_deg: float | None = None
    footprint: Annotated[list[tuple[float, float]], Meta(max_length=MAX_ITEMS)] = []


class Track(Wire, tag="track", kw_only=True):
    """A fused track; velocity in m/s east and north, ``cov`` the position covariance (m^2)."""

    track_id: Ident
    time: float
    lat: float
    lon: float
    vx: float
    vy: float
    cov: tuple[float, float, float, float]
    state: TrackState
    class_guess: ClassName = "unknown"
    class_probs: Probs = {}
    sensors: Idents = []
    count: int = 1


class Crossing(Wire, tag="crossing", kw_only=True):
    """A track crossing the border on a segment."""

    crossing_id: Ident
    track_id: Ident
    time: float
    segment_id: Ident
    direction: Direction
    lat: float
    lon: float
    confidence: float = 1.0


class PredictedPosition(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a track is expected to be at a time."""

    time: float
    lat: float
    lon: float


class Evidence(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What an alert rests on: the sensors, how many detections, the class probabilities."""

    sensors: Idents = []
    detections: int = 0
    class_probs: Probs = {}


class AlertEvent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One step in an alert's life."""

    time: float
    state: AlertState
    by: Actor | None = None
    note: Text = ""


class Alert(Wire, tag="alert", kw_only=True):
    """A dispatch alert, with its recommended units, intercept prediction and history."""

    alert_id: Ident
    time: float
    kind: AlertKind
    priority: int
    segment_id: Ident | None = None
    zone: Ident | None = None
    lat: float
    lon: float
    track_id: Ident | None = None
    predicted: Annotated[list[PredictedPosition], Meta(max_length=MAX_ITEMS)] = []
    units: Idents = []
    assigned_unit: Ident | None = None
    state: AlertState = "new"
    evidence: Evidence = Evidence()
    history: Annotated[list[AlertEvent], Meta(max_length=MAX_ITEMS)] = []
    summary: Text = ""


class CameraCommand(Wire, tag="camera_command", kw_only=True):
    """Point a tower camera: pan clockwise from north, tilt below horizontal, degrees."""

    camera: Ident
    time: float
    pan_deg: float
    tilt_deg: float
    reason: Text = ""
    lat: float | None = None
    lon: float | None = None


class AlertAction(Wire, tag="alert_action", kw_only=True):
    """A person acting on an alert: acknowledge, assign a unit, or close."""

    alert_id: Ident
    time: float
    action: Literal["acknowledge", "assign", "close"]
    by: Actor
    unit: Ident | None = None
    note: Text = ""


Message = (
    CameraDetection
    | SensorEvent
    | SensorStatus
    | Telemetry
    | Track
    | Crossing
    | Alert
    | CameraCommand
    | AlertAction
)
MESSAGE_TYPES: tuple[type[Wire], ...] = (
    CameraDetection,
    SensorEvent,
    SensorStatus,
    Telemetry,
    Track,
    Crossing,
    Alert,
    CameraCommand,
    AlertAction,
)
KIND_OF: dict[type[Wire], str] = {t: t.__struct_config__.tag for t in MESSAGE_TYPES}  # type: ignore[misc]


_decoder = msgspec.json.Decoder(Message)
_encoder = msgspec.json.Encoder(enc_hook=numpy_scalar)

# -- validation -------------------------------------------------------------------------------

_RANGES: dict[str, tuple[float, float]] = {
    "lat": (-90.0, 90.0),
    "lon": (-180.0, 180.0),
    "score": (0.0, 1.0),
    "confidence": (0.0, 1.0),
    "class_confidence": (0.0, 1.0),
    "battery": (0.0, 1.0),
    "strength": (0.0, math.inf),
    "count": (0, 100_000),
    "priority": (1, 5),
    "range_m": (0.0, 1e6),
    "direction_deg": (0.0, 360.0),
    "hfov_deg": (0.0, 180.0),
    "vfov_deg": (0.0, 180.0),
    "frame": (-1, 2**62),
    "schema": (1, SCHEMA_VERSION),
}
_TIME_FIELDS = {"time", "last_heard"}
# Predicted positions are in the future by design; only their lower bound is checked.


def _check_value(path: str, name: str, value: Any, now: float, max_skew_s: float) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, str):  # as decoding checks it from the field's type (ingest.limits)
        problem = text_problem(name, value)
        if problem is not None:
            raise MessageError(path, value, *problem)
        return
    if isinstance(value, float | int):
        if isinstance(value, float) and not math.isfinite(value):
            raise MessageError(path, value, "a finite number", "not_finite")
        if name in _TIME_FIELDS:
            if value < EARLIEST_TIME:
                raise MessageError(
                    path,
                    value,
                    "a UTC time after 2000-01-01 in seconds since the epoch",
                    "time_past",
                )
            ahead = max_skew_s < math.inf and value > now + max_skew_s
            if ahead and not path.startswith("predicted"):
                raise MessageError(
                    path,
                    value,
                    f"a time at most {max_skew_s:g} s ahead of the receiver's clock ({now:.3f})",
                    "time_future",
                )
        elif name in _RANGES:
            lo, hi = _RANGES[name]
            if not lo <= value <= hi:
                raise MessageError(path, value, f"a value in [{lo:g}, {hi:g}]", "out_of_range")
    elif isinstance(value, tuple | list):
        if len(value) > MAX_ITEMS:
            raise MessageError(path, len(value), f"at most {MAX_ITEMS} items", "too_long")
        for i, item in enumerate(value):
            item_name = name
            if isinstance(item, tuple) and name == "footprint":
                lat, lon = item
                _check_value(f"{path}[{i}].lat", "lat", lat, now, max_skew_s)
                _check_value(f"{path}[{i}].lon", "lon", lon, now, max_skew_s)
                continue
            if isinstance(item, msgspec.Struct):
                _check_struct(item, f"{path}[{i}]", now, max_skew_s)
            else:
                _check_value(f"{path}[{i}]", item_name + "[]", item, now, max_skew_s)
    elif isinstance(value, dict):
        if len(value) > 16 or any(len(str(k)) > 32 for k in value):
            raise MessageError(path, len(value), "at most 16 keys of 32 characters", "too_long")
        for k, item in value.items():
            _check_value(
                f"{path}.{k}", "probability" if name.endswith("probs") else k, item, now, max_skew_s
            )
            if name.endswith("probs") and not 0.0 <= item <= 1.0:
                raise MessageError(f"{path}.{k}", item, "a probability in [0, 1]", "out_of_range")
    elif isinstance(value, msgspec.Struct):
        _check_struct(value, path, now, max_skew_s)
    elif type(value).__module__ == "numpy" and hasattr(value, "item"):
        # a numpy scalar in a struct is checked as the number it is encoded as (numpy_scalar)
        _check_value(path, name, value.item(), now, max_skew_s)


def _check_struct(msg: msgspec.Struct, prefix: str, now: float, max_skew_s: float) -> None:
    for name in msg.__struct_fields__:
        path = f"{prefix}.{name}" if prefix else name
        _check_value(path, name, getattr(msg, name), now, max_skew_s)
    if isinstance(msg, CameraDetection | Track):
        ee, en, ne, nn = msg.cov
        if ee < 0 or nn < 0 or abs(en - ne) > 1e-6 * max(1.0, abs(en)) or ee * nn - en * ne < -1e-9:
            raise MessageError(
                f"{prefix + '.' if prefix else ''}cov",
                msg.cov,
                "a symmetric positive semi-definite 2x2 covariance (ee, en, ne, nn) in m^2",
                "bad_covariance",
            )


def validate(
    msg: Wire, *, now: float | None = None, max_skew_s: float = DEFAULT_MAX_SKEW_S
) -> Wire:
    """Check a message's values (finite, in range, time not too far ahead); return it.

    ``now`` is the receiver's clock (UTC seconds; the local clock when omitted) and
    ``max_skew_s`` how far ahead of it a time may be, seconds (``math.inf``: any).
    """
    now = _time.time() if now is None else now
    if not passes(msg, now, max_skew_s):  # the full check decides and names the field
        _check_struct(msg, "", now, max_skew_s)
    return msg


# -- encode / decode --------------------------------------------------------------------------


def encode(msg: Wire) -> bytes:
    """A message as JSON bytes."""
    return _encoder.encode(msg)


def check(
    topic: str, msg: Wire, *, now: float | None = None, max_skew_s: float = DEFAULT_MAX_SKEW_S
) -> Wire:
    """Check a message as a receiver on ``topic`` does: its kind belongs on the topic, and its
    values pass :func:`validate`; return it.

    Every bus applies this to every message, decoded from bytes or handed over as a struct.

    Raises
    ------
    MessageError
        ``wrong_topic`` for a kind the topic does not carry, ``unknown_kind`` for an object
        that is no wire message, or the value's reason from :func:`validate`.
    """
    got = KIND_OF.get(type(msg))
    if got is None:
        raise MessageError("type", type(msg).__name__, "a wire message", "unknown_kind")
    want = expected_kind(topic)
    if want is not None and want != got:
        raise MessageError("type", got, f"{want!r} on topic {topic!r}", "wrong_topic")
    validate(msg, now=now, max_skew_s=max_skew_s)
    return msg


def _message_error(exc: msgspec.ValidationError, data: bytes) -> MessageError:
    """The :class:`MessageError` for a payload the typed decoder refused."""
    try:
        raw = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raw = None
    problem = explain(exc, raw)
    field = problem.key or "$"
    head = problem.message
    if problem.kind == "missing_field":
        return MessageError(field, None, "a value: the field is required", "missing_field")
    if problem.kind == "unknown_field":
        return MessageError(field, problem.value, "no such field", "unknown_field")
    if "Invalid value" in head and field == "type":
        return MessageError(
            "type", problem.value, f"one of {sorted(TOPIC_KIND.values())}", "unknown_kind"
        )
    if not problem.path and "Expected `object`" in head:
        return MessageError("$", raw, "a JSON object", "not_object")
    if "matching regex" in head:
        return MessageError(field, problem.value, head[len("Expected ") :], "bad_id")
    if "length <=" in head:
        return MessageError(field, problem.value, head[len("Expected ") :], "too_long")
    if "Number out of range" in head:
        return MessageError(field, None, "a finite number", "not_finite")
    expected = head[len("Expected ") :] if head.startswith("Expected ") else head
    return MessageError(field, problem.value, expected, "wrong_type")


def decode(
    topic: str,
    payload: bytes | bytearray | memoryview | str,
    *,
    now: float | None = None,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> Message:
    """Decode and validate one message received on ``topic``.

    Raises
    ------
    MessageError
        Naming the field and value: not JSON, not an object, an unknown kind, a kind that does
        not belong on this topic, a missing or mistyped field, a value out of range, a
        non-finite number, or a time too far in the past or ahead of ``now`` (seconds since
        the epoch; the local clock when omitted) by more than ``max_skew_s``.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8", errors="surrogateescape")
    data = bytes(payload)
    try:
        msg = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _message_error(exc, data) from None
    except msgspec.DecodeError as exc:
        raise MessageError("$", data[:64], f"JSON ({exc})", "not_json") from None
    except UnicodeDecodeError as exc:  # msgspec raises it for bad UTF-8 inside a string
        raise MessageError("$", data[:64], f"UTF-8 text ({exc})", "not_utf8") from None
    check(topic, msg, now=now, max_skew_s=max_skew_s)
    return msg
