"""Who may say what: a message's topic must fit its source, and its device must be deployed.

Topics split by who publishes them (see :mod:`vigil.ingest.topics`): devices publish under
their own id (``cam/{camera}/detections``, ``ugs/{sensor or gateway}/events|status``,
``uas/{aircraft}/telemetry``, a tower camera's health on ``cam/{camera}/status``), the sector
service alone publishes tracks, crossings, alerts and
camera commands, and the map and the agents publish alert actions each on its own broker
identity's topic, ``alerts/actions/{user}``, whose user the action's ``by`` must name. The
broker's ACLs enforce this per client; every receiver checks it again with
:func:`check_source`, a pure function of the topic, the message and the deployment's device
table (:class:`Devices`), which both the sector service and the live map call.

A ground sensor's messages may come on the sensor's own topic (``ugs/u117/events``) or on the
topic of the gateway the deployment binds it to (``ugs/g1/events``); a gateway speaks for no
other sensor. A tower camera reports its health as a ``sensor_status`` naming the camera, on
its own ``cam/{camera}/status`` (see :mod:`vigil.hardware.camera_health`): a camera speaks
for itself only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vigil.ingest.schema import KIND_OF, MessageError, Wire, topic_for

#: The payload field that names the device, per device kind (the wire ``type`` tag).
DEVICE_FIELD: dict[str, str] = {
    "camera_detection": "camera",
    "sensor_event": "sensor",
    "sensor_status": "sensor",
    "telemetry": "aircraft",
}
#: Kinds only the sector service publishes.
SERVICE_KINDS = frozenset({"track", "crossing", "alert", "camera_command"})
#: Kinds the map and the agents publish.
ACTION_KINDS = frozenset({"alert_action"})
#: The service's retained current-state topics (``vigil/v1/{sector}/state/{what}/{id}``): the
#: kind each carries and the payload field the topic's last level names.
STATE_LEVELS: dict[str, tuple[str, str]] = {
    "alerts": ("alert", "alert_id"),
    "sensors": ("sensor_status", "sensor"),
}


@dataclass(frozen=True)
class Devices:
    """The deployment's device table: which ids may speak, and for which sensors a gateway may.

    Attributes
    ----------
    cameras
        Camera ids (the towers' and the aircraft's cameras).
    sensors
        Ground sensor id -> the gateway the deployment binds it to (``None``: it speaks for
        itself only).
    aircraft
        Aircraft ids.
    """

    cameras: frozenset[str] = frozenset()
    sensors: Mapping[str, str | None] = field(default_factory=dict)
    aircraft: frozenset[str] = frozenset()

    @classmethod
    def of_site(cls, site: Any) -> Devices:
        """The device table of a site or deployment file (towers, sensors, aircraft and the
        ``gateways`` table when the deployment has one)."""
        gateway_of: dict[str, str | None] = {s.id: None for s in site.sensors}
        for gw in getattr(site, "gateways", ()) or ():
            for sensor in gw.sensors:
                gateway_of[sensor] = gw.id
        aircraft = frozenset(a.id for a in site.aircraft)
        return cls(
            cameras=frozenset(t.id for t in site.towers) | aircraft,
            sensors=gateway_of,
            aircraft=aircraft,
        )

    def gateway_sensors(self, gateway: str) -> list[str]:
        """The sensors bound to ``gateway``, sorted."""
        return sorted(s for s, g in self.sensors.items() if g == gateway)

    @property
    def towers(self) -> frozenset[str]:
        """The tower cameras' ids (the cameras that are not an aircraft's)."""
        return self.cameras - self.aircraft

    def known(self, kind: str, device: str) -> bool:
        """Whether ``device`` is a deployed device of a device kind's sort."""
        if kind == "camera_detection" or kind == "camera_command":
            return device in self.cameras
        if kind in ("sensor_event", "sensor_status"):
            return device in self.sensors
        if kind == "telemetry":
            return device in self.aircraft
        return False


def _topic_device(topic: str) -> tuple[str, str | None]:
    """``(sector, device segment)`` of a device topic (``None``: no device segment)."""
    levels = topic.split("/")
    sector = levels[2] if len(levels) > 2 else ""
    return sector, (levels[4] if len(levels) == 6 else None)


def check_source(topic: str, msg: Wire, devices: Devices | None = None) -> Wire:
    """Raise :class:`MessageError` unless ``msg`` may come on ``topic``; return it.

    - a device's message (detection, sensor event or status, telemetry) comes on its device
      kind's topic whose device level is the payload's device id, or for a ground sensor the
      gateway the deployment binds it to; with ``devices``, the id must be deployed;
    - a camera's health, a ``sensor_status`` on ``cam/{camera}/status``, names that camera in
      its ``sensor``; with ``devices``, a tower camera of the deployment;
    - a track, crossing, alert or camera command comes only on the service's own topic for it
      (``vigil/v1/{sector}/tracks``...), a camera command for a deployed camera;
    - an alert action comes only on ``vigil/v1/{sector}/alerts/actions/{user}`` whose
      ``user`` (the broker identity that published it: the broker lets each identity write
      only its own) is the identity its ``by`` names (``by`` is ``{person}@{user}`` or
      ``{user}``, see :func:`~vigil.ingest.topics.actor_identity`): nobody acts in another's
      name;
    - on the service's retained state topics (``state/alerts/{alert_id}``,
      ``state/sensors/{sensor}``, a ground sensor's or a tower camera's) only the kind the
      topic names, for the id it names.

    Reasons: ``wrong_source`` (the topic does not fit the message's source), ``unknown_device``
    (an id the deployment does not have).

    >>> from vigil.ingest.schema import SensorEvent
    >>> ev = SensorEvent(sensor="u005", time=1.8e9, modality="pir", strength=1.0)
    >>> try:
    ...     check_source("vigil/v1/tucson/ugs/u117/events", ev)
    ... except MessageError as err:
    ...     print(err.reason)
    wrong_source
    """
    kind = KIND_OF.get(type(msg))
    if kind is None:
        raise MessageError("type", type(msg).__name__, "a wire message", "unknown_kind")
    sector, segment = _topic_device(topic)
    levels = topic.split("/")
    if len(levels) == 6 and levels[3] == "state":
        return _check_state(topic, levels, kind, msg, devices)
    if kind == "sensor_status" and len(levels) == 6 and levels[3] == "cam":
        return _check_camera_status(topic, levels, msg, devices)
    if kind in DEVICE_FIELD:
        name = DEVICE_FIELD[kind]
        device = getattr(msg, name)
        speakers = {device}
        if devices is not None and name == "sensor":
            gateway = devices.sensors.get(device)
            if gateway is not None:
                speakers.add(gateway)
        own = topic_for(sector, msg)
        if segment not in speakers or topic.rsplit("/", 1)[-1] != own.rsplit("/", 1)[-1]:
            raise MessageError(
                name,
                device,
                f"the {name} of topic {topic!r} ({segment!r})"
                + (" or its bound gateway" if name == "sensor" else ""),
                "wrong_source",
            )
        if topic.split("/")[:4] != own.split("/")[:4]:
            raise MessageError("type", kind, f"{own!r}, not {topic!r}", "wrong_source")
        if devices is not None and not devices.known(kind, device):
            raise MessageError(name, device, f"a {name} of the deployment", "unknown_device")
        return msg
    own = topic_for(sector, msg)
    # its own kind's topic, under another identity than the one ``by`` names
    same_kind = len(levels) == 6 and levels[:5] == own.split("/")[:5]
    if kind in ACTION_KINDS and same_kind and topic != own:
        raise MessageError(
            "by",
            msg.by,  # type: ignore[attr-defined]
            f"the identity of topic {topic!r}: {levels[5]!r} or 'PERSON@{levels[5]}'",
            "wrong_source",
        )
    if topic != own:
        who = "the sector service" if kind in SERVICE_KINDS else "the map and agents"
        raise MessageError(
            "type", kind, f"only on {own!r} ({who} publish it), not {topic!r}", "wrong_source"
        )
    if kind == "camera_command" and devices is not None:
        camera = msg.camera  # type: ignore[attr-defined]
        if not devices.known(kind, camera):
            raise MessageError("camera", camera, "a camera of the deployment", "unknown_device")
    return msg


def _check_camera_status(topic: str, levels: list[str], msg: Wire, devices: Devices | None) -> Wire:
    """A camera's health on ``vigil/v1/{sector}/cam/{camera}/status``: a status naming the
    topic's camera (with ``devices``, a tower camera of the deployment)."""
    camera = msg.sensor  # type: ignore[attr-defined]
    if levels[5] != "status" or levels[:2] != ["vigil", "v1"]:
        want = f"vigil/v1/{levels[2]}/cam/{camera}/status"
        raise MessageError("type", "sensor_status", f"{want!r}, not {topic!r}", "wrong_source")
    if camera != levels[4]:
        raise MessageError(
            "sensor", camera, f"the camera of topic {topic!r} ({levels[4]!r})", "wrong_source"
        )
    if devices is not None and camera not in devices.towers:
        raise MessageError("sensor", camera, "a tower camera of the deployment", "unknown_device")
    return msg


def _check_state(
    topic: str, levels: list[str], kind: str, msg: Wire, devices: Devices | None
) -> Wire:
    """A retained state message: the service's, of the kind its topic names, for the id the
    topic's last level names (a sensor's, of a deployed ground sensor or tower camera)."""
    want = STATE_LEVELS.get(levels[4])
    if want is None or want[0] != kind:
        raise MessageError("type", kind, f"the kind of state topic {topic!r}", "wrong_source")
    name = want[1]
    value = getattr(msg, name)
    if value != levels[5]:
        raise MessageError(name, value, f"the id of state topic {topic!r}", "wrong_source")
    deployed = devices is None or devices.known(kind, value) or value in devices.towers
    if kind == "sensor_status" and not deployed:
        raise MessageError(
            name, value, "a ground sensor or tower camera of the deployment", "unknown_device"
        )
    return msg


def bus_identity(bus: Any) -> str | None:
    """The broker identity a bus publishes as: its MQTT user name, else its client id (with
    ``use_username_as_clientid`` the broker makes them one); ``None`` for an in-process bus,
    which has no broker to vouch for anyone."""
    settings = getattr(bus, "settings", None)
    user = getattr(settings, "username", None) or getattr(bus, "client_id", None)
    return user if isinstance(user, str) and user else None


def device_ids(devices: Devices) -> Iterable[str]:
    """Every device id and gateway id in a device table (for ACL writers and tests)."""
    gateways = {g for g in devices.sensors.values() if g is not None}
    return sorted(set(devices.cameras) | set(devices.sensors) | devices.aircraft | gateways)


__all__ = [
    "ACTION_KINDS",
    "DEVICE_FIELD",
    "SERVICE_KINDS",
    "STATE_LEVELS",
    "Devices",
    "bus_identity",
    "check_source",
    "device_ids",
]
