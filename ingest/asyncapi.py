"""The MQTT interface as an AsyncAPI 3.0 document, generated from the wire schema and topics.

``python -m vigil.ingest.asyncapi > docs/asyncapi.json`` writes the checked-in copy;
``tests/test_asyncapi.py`` fails when it differs from a fresh generation. Payload schemas come
from the msgspec structs (:func:`msgspec.json.schema_components`), topic patterns from
:mod:`vigil.ingest.topics`, who may publish each from :mod:`vigil.ingest.sources`.

Every message is JSON at QoS 1 (MQTT 5, with a ``vigil-key`` user property that receivers
de-duplicate by). Only the service's ``state/...`` topics are retained.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import msgspec

from vigil.ingest.quarantine import QuarantineRecord
from vigil.ingest.schema import KIND_OF, MESSAGE_TYPES, SCHEMA_VERSION
from vigil.ingest.sources import ACTION_KINDS, DEVICE_FIELD, SERVICE_KINDS
from vigil.ingest.topics import _ROUTE, STATE_TOPICS, quarantine_topic

ASYNCAPI_VERSION = "3.0.0"
MQTT_BINDING_VERSION = "0.2.0"
QOS = 1

#: Each topic parameter's meaning.
PARAMETERS: dict[str, str] = {
    "sector": "The sector's name (the deployment's `sector`), e.g. `tucson`.",
    "camera": "A camera id of the deployment (a tower's camera or an aircraft's).",
    "sensor": "A ground sensor id, or the id of the gateway the deployment binds it to.",
    "aircraft": "An aircraft id of the deployment.",
    "alert_id": "An alert's id (`Alert.alert_id`).",
    "sensor_id": "A ground sensor or tower camera id of the deployment (`SensorStatus.sensor`).",
    "user": (
        "The broker user that publishes the action (a map instance or an agent's console); "
        "the broker lets each write only its own, and the action's `by` must be `{user}` or "
        "`{person}@{user}`."
    ),
}

#: Who publishes each kind, in words (the broker's ACL, written by `vigil broker init`).
_DEVICE_WHO = {
    "camera_detection": "the camera's tower or aircraft edge process (`vigil edge camera|uas`)",
    "sensor_event": "the ground sensor's gateway (`vigil edge ugs`)",
    "sensor_status": "the ground sensor's gateway (`vigil edge ugs`)",
    "telemetry": "the aircraft's edge process (`vigil edge uas`)",
}
#: Who subscribes to each kind.
_SUBSCRIBERS = {
    "camera_detection": ["service"],
    "sensor_event": ["service", "map"],
    "sensor_status": ["service", "map"],
    "telemetry": ["service", "map"],
    "track": ["map"],
    "crossing": ["map"],
    "alert": ["map", "agents"],
    "camera_command": ["the camera's tower", "map"],
    "alert_action": ["service", "map"],
}


def _name(kind: str) -> str:
    """``camera_detection`` -> ``CameraDetection``."""
    return "".join(part.capitalize() for part in kind.split("_"))


def _publisher(kind: str) -> tuple[str, str]:
    """(role, words) of who may publish a kind."""
    if kind in DEVICE_FIELD:
        return "device", _DEVICE_WHO[kind]
    if kind in SERVICE_KINDS:
        return "service", "the sector service (`vigil run`)"
    if kind in ACTION_KINDS:
        return "map, agents", "the live map (`vigil serve`) and the agents' consoles"
    raise ValueError(f"no publisher known for kind {kind!r}")


def _channel(
    address: str, kind: str, description: str, *, message: str | None = None
) -> dict[str, Any]:
    params = [p for p in PARAMETERS if "{" + p + "}" in address]
    message = message or _name(kind)
    channel: dict[str, Any] = {
        "address": address,
        "description": description,
        "parameters": {p: {"description": PARAMETERS[p]} for p in params},
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
    }
    if not params:
        del channel["parameters"]
    return channel


def _operation(
    channel_id: str, messages: list[str], who: str, role: str, retain: bool, subs: list[str]
) -> dict[str, Any]:
    return {
        "action": "send",
        "title": f"{who} publishes",
        "summary": f"Published by {who}; read by {', '.join(subs)}. QoS {QOS}"
        + (", retained." if retain else ", not retained."),
        "channel": {"$ref": f"#/channels/{channel_id}"},
        "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in messages],
        "bindings": {
            "mqtt": {"qos": QOS, "retain": retain, "bindingVersion": MQTT_BINDING_VERSION}
        },
        "x-vigil-publisher": role,
        "x-vigil-subscribers": subs,
    }


def generate() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of Vigil's MQTT interface, as a JSON-ready dict."""
    types = (*MESSAGE_TYPES, QuarantineRecord)
    _, schemas = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    messages: dict[str, Any] = {}
    for cls in MESSAGE_TYPES:
        kind = KIND_OF[cls]
        messages[_name(kind)] = {
            "name": _name(kind),
            "title": cls.__name__,
            "summary": (cls.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{cls.__name__}"},
        }
    messages["QuarantineRecord"] = {
        "name": "QuarantineRecord",
        "title": "QuarantineRecord",
        "summary": "A message that failed validation: where it came, why, and its bytes.",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/QuarantineRecord"},
    }
    messages["StateCleared"] = {
        "name": "StateCleared",
        "title": "State cleared",
        "summary": "An empty retained payload: the alert was closed; the broker drops it.",
        "payload": {"type": "string", "maxLength": 0},
    }

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    base = "vigil/v1/{sector}/"
    for kind, (levels, field) in _ROUTE.items():
        address = base + (levels if field is None else levels.format("{" + field + "}"))
        role, who = _publisher(kind)
        cid = _name(kind)
        channels[cid] = _channel(address, kind, f"{_name(kind)} messages, from {who}.")
        operations[f"send{cid}"] = _operation(
            cid, [cid], who, role, False, _SUBSCRIBERS.get(kind, [])
        )
    # a tower camera's health: the ground sensors' status message, naming the camera
    channels["CameraStatus"] = _channel(
        base + "cam/{camera}/status",
        "sensor_status",
        "A tower camera's health as the camera adapter sees its stream: `offline` (no frames), "
        "`degraded` (the same picture over and over), `ok`; `sensor` is the camera's id. On "
        "each change and periodically while it holds; raises and clears sensor-health alerts.",
        message="SensorStatus",
    )
    channels["CameraStatus"]["parameters"]["camera"] = {
        "description": "A tower camera id of the deployment (an aircraft's camera reports none)."
    }
    operations["sendCameraStatus"] = _operation(
        "CameraStatus",
        ["SensorStatus"],
        "the camera's tower edge process (`vigil edge camera`)",
        "device",
        False,
        ["service"],
    )
    address = quarantine_topic("{sector}")
    channels["Quarantine"] = _channel(
        address,
        "quarantine",
        "What failed validation, with the reason (payload bytes base64, bounded).",
        message="QuarantineRecord",
    )
    operations["sendQuarantine"] = _operation(
        "Quarantine",
        ["QuarantineRecord"],
        "the sector service and every receiving bus",
        "service",
        False,
        ["operators"],
    )
    for pattern, kind in STATE_TOPICS.items():
        what = pattern.split("/")[1]
        param = "alert_id" if what == "alerts" else "sensor_id"
        cid = f"State{what.capitalize()}"
        address = base + pattern.format("{" + param + "}")
        if what == "alerts":
            text = (
                "Retained: one topic per open alert, its latest version; cleared with an empty "
                "retained payload when the alert closes. A late-joining client subscribes to "
                "`vigil/v1/{sector}/state/alerts/+` and has every open alert at once."
            )
        else:
            text = (
                "Retained: each ground sensor's and tower camera's latest accepted status "
                "(battery, state, tamper), for a late-joining client's sensor health."
            )
        channels[cid] = _channel(address, kind, text)
        msgs = [_name(kind)]
        if what == "alerts":
            channels[cid]["messages"]["StateCleared"] = {
                "$ref": "#/components/messages/StateCleared"
            }
            msgs.append("StateCleared")
        # read on connecting by clients that join late (the ACL lets maps read both, agents
        # the alerts); the live map and the agent console themselves subscribe to the streams
        subs = ["late joiners"]
        operations[f"send{cid}"] = _operation(
            cid, msgs, "the sector service (`vigil run`)", "service", True, subs
        )

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Vigil sector MQTT interface",
            "version": f"v1 (wire schema {SCHEMA_VERSION})",
            "description": (
                "Topics, payloads, QoS and retain flags of one Vigil sector on its MQTT broker. "
                "Generated by `python -m vigil.ingest.asyncapi` from the wire schema "
                "(`vigil.ingest.schema`) and topics (`vigil.ingest.topics`); do not edit by "
                "hand. All messages are JSON at QoS 1 over MQTT 5 with persistent sessions; "
                "publications carry a `vigil-key` user property that receivers de-duplicate "
                "by. Trust follows the topic: the broker's ACL (`vigil broker init`) lets each "
                "identity publish only what its operation here names, and every receiver "
                "checks the topic against the payload again."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "host": "localhost:1883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "The sector's Mosquitto (the deployment's [broker]); TLS on "
                "8883 when [broker] tls is set.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def dumps(doc: dict[str, Any] | None = None) -> str:
    """The document as the checked-in text (sorted keys, two-space indent, final newline)."""
    return json.dumps(generate() if doc is None else doc, indent=2, sort_keys=True) + "\n"


def main() -> int:
    """Write the document to standard output."""
    sys.stdout.write(dumps())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
