"""Topic names: which topic a message goes on, which kind a topic carries, MQTT's rules.

Topics are ``vigil/v1/{sector}/{kind}/{source}`` (``vigil/v1/tucson/ugs/u117/events``), and
``vigil/v1/{sector}/quarantine`` for what failed validation. Messages are known here by their
wire ``type`` tag only, so that the schema can import this module.

Topics split by who may publish them: devices under their own id (``cam/{camera}/detections``,
``ugs/{sensor or its gateway}/events|status``, ``uas/{aircraft}/telemetry``), the sector
service alone (``tracks``, ``crossings``, ``alerts``, ``cam/{camera}/commands``), the map and
the agents, each on its own broker identity's topic (``alerts/actions/{user}``, see
:func:`actor_identity`). :func:`vigil.ingest.sources.check_source` holds a message to its topic.
"""

from __future__ import annotations

from typing import Any

#: The message kind (the wire ``type`` tag) carried by each topic's last level.
TOPIC_KIND: dict[str, str] = {
    "detections": "camera_detection",
    "events": "sensor_event",
    "status": "sensor_status",
    "telemetry": "telemetry",
    "tracks": "track",
    "crossings": "crossing",
    "alerts": "alert",
    "commands": "camera_command",
    "actions": "alert_action",
}


#: Where each kind goes below ``vigil/v1/{sector}/``: the levels, with ``{}`` for the value of
#: the message's source field (``None``: a sector-wide topic).
_ROUTE: dict[str, tuple[str, str | None]] = {
    "camera_detection": ("cam/{}/detections", "camera"),
    "sensor_event": ("ugs/{}/events", "sensor"),
    "sensor_status": ("ugs/{}/status", "sensor"),
    "telemetry": ("uas/{}/telemetry", "aircraft"),
    "track": ("tracks", None),
    "crossing": ("crossings", None),
    "alert": ("alerts", None),
    "camera_command": ("cam/{}/commands", "camera"),
    # {user}: the broker identity that publishes it, the part of ``by`` after its last "@"
    "alert_action": ("alerts/actions/{}", "user"),
}


def actor_identity(by: str) -> str:
    """The broker identity an alert action's ``by`` names: the part after its last ``@``.

    An action's ``by`` is ``{person}@{identity}`` or just ``{identity}``: the identity is the
    broker user that publishes it (a map instance, an agent's console), authenticated by the
    broker, which lets it publish on ``alerts/actions/{identity}`` only; the person (a web
    user, a patrol unit) is vouched for by that identity.

    >>> actor_identity("alice@vigil-tucson-map-1")
    'vigil-tucson-map-1'
    >>> actor_identity("p01")
    'p01'
    """
    return by.rsplit("@", 1)[-1]


class TopicError(ValueError):
    """A topic or subscription filter that breaks MQTT's rules."""


def topic_for(sector: str, msg: Any) -> str:
    """The topic a wire message is published on in a sector.

    >>> from vigil.ingest.schema import SensorEvent
    >>> topic_for("tucson", SensorEvent(sensor="u117", time=1.8e9, modality="pir", strength=1))
    'vigil/v1/tucson/ugs/u117/events'
    """
    config = getattr(type(msg), "__struct_config__", None)
    route = _ROUTE.get(getattr(config, "tag", None))  # type: ignore[arg-type]
    if route is None:
        raise TypeError(f"no topic for {type(msg).__name__}")
    levels, source = route
    if source == "user":
        levels = levels.format(actor_identity(msg.by))
    elif source is not None:
        levels = levels.format(getattr(msg, source))
    return f"vigil/v1/{sector}/{levels}"


#: Retained current state for late-joining clients, below ``vigil/v1/{sector}/``: one topic
#: per open alert (the latest ``alert``, cleared with an empty retained payload when it
#: closes) and per ground sensor (its latest ``sensor_status``). Published by the service.
STATE_TOPICS: dict[str, str] = {
    "state/alerts/{}": "alert",
    "state/sensors/{}": "sensor_status",
}


def alert_state_topic(sector: str, alert_id: str) -> str:
    """The retained topic of one alert's current state (empty once it is closed)."""
    return f"vigil/v1/{sector}/state/alerts/{alert_id}"


def sensor_state_topic(sector: str, sensor: str) -> str:
    """The retained topic of one ground sensor's latest status."""
    return f"vigil/v1/{sector}/state/sensors/{sensor}"


def state_filters(sector: str) -> list[str]:
    """The subscription filters that cover every retained state topic of a sector."""
    return [f"vigil/v1/{sector}/{p.format('+')}" for p in STATE_TOPICS]


def quarantine_topic(sector: str) -> str:
    """Where messages that failed validation go, with the reason."""
    return f"vigil/v1/{sector}/quarantine"


def expected_kind(topic: str) -> str | None:
    """The message kind a topic carries, from its last level; None if the topic is not Vigil's."""
    levels = topic.split("/")
    if len(levels) < 4 or levels[0] != "vigil" or levels[1] != "v1":
        return None
    if len(levels) == 6 and levels[3] == "state":  # state/alerts/{id}: the id is any name
        return STATE_TOPICS.get(f"state/{levels[4]}/{{}}")
    if len(levels) == 6 and levels[3:5] == ["alerts", "actions"]:  # the last level: a user
        return "alert_action"
    return TOPIC_KIND.get(levels[-1])


def check_filter(pattern: str) -> None:
    """Raise :class:`TopicError` unless ``pattern`` is a valid MQTT topic filter."""
    if not pattern:
        raise TopicError("topic filter is empty")
    levels = pattern.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise TopicError(f"filter {pattern!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise TopicError(f"filter {pattern!r}: '+' must be a whole level")


def check_topic(topic: str) -> None:
    """Raise :class:`TopicError` unless ``topic`` is a valid topic name to publish on."""
    if not topic:
        raise TopicError("topic is empty")
    if "+" in topic or "#" in topic:
        raise TopicError(f"topic {topic!r}: wildcards are for subscriptions, not publishing")
    if "\x00" in topic:
        raise TopicError(f"topic {topic!r} contains a NUL character")


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the MQTT filter ``pattern`` (``+`` one level, ``#`` the rest).

    As in MQTT 3.1.1 section 4.7: ``a/#`` also matches ``a``, and topics starting with ``$``
    are not matched by a filter starting with a wildcard.

    >>> topic_matches("vigil/v1/+/ugs/#", "vigil/v1/tucson/ugs/u117/events")
    True
    >>> topic_matches("vigil/v1/+/tracks", "vigil/v1/tucson/alerts")
    False
    """
    p = pattern.split("/")
    t = topic.split("/")
    if topic.startswith("$") and p[0] in ("+", "#"):
        return False
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t):
            return False
        if level != "+" and level != t[i]:
            return False
    return len(p) == len(t)


__all__ = [
    "STATE_TOPICS",
    "TOPIC_KIND",
    "TopicError",
    "actor_identity",
    "alert_state_topic",
    "check_filter",
    "check_topic",
    "expected_kind",
    "quarantine_topic",
    "sensor_state_topic",
    "state_filters",
    "topic_for",
    "topic_matches",
]
