"""How to reach the MQTT broker and how hard to hold on to it: :class:`MqttSettings`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec


class MqttSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to reach the broker and how hard to hold on to it.

    Times are seconds. Credentials are handed in by the caller (``vigil`` reads them from the
    environment variables the deployment file names, or see :meth:`from_env`).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 86_400
    reconnect_min_delay_s: float = 0.1
    reconnect_max_delay_s: float = 30.0
    connect_timeout_s: float = 10.0
    #: Most unacknowledged messages the broker may send us at once (MQTT 5 Receive Maximum).
    receive_maximum: int = 1000
    #: Most of our own messages in flight to the broker at once.
    max_inflight: int = 200
    #: Messages acknowledged less than this long before the connection fell are sent again
    #: after a reconnect; keep it above the broker's autosave interval.
    replay_window_s: float = 5.0
    #: A PUBACK saying "no matching subscribers" counts as not delivered: the message, and
    #: every later one, is sent again in order (with backoff) until a session takes it. For
    #: devices, whose every message is for the sector service: a broker that restarts
    #: without the service's session (an autosave that missed it) would drop their messages
    #: until the service resubscribes. Off for publishers whose topics may have no reader;
    #: quarantine reports (which the service does not read) are never held back.
    resend_unrouted: bool = False
    #: Largest payload a receiver decodes, bytes: a larger one is quarantined as ``too_large``
    #: before any parsing, keeping only its first KiB (``ingest.mqtt_receiver``).
    max_payload_bytes: int = 256 * 1024

    def __post_init__(self) -> None:
        checks: list[tuple[str, Any, bool, str]] = [
            ("port", self.port, 1 <= self.port <= 65535, "an integer in [1, 65535]"),
            ("keepalive_s", self.keepalive_s, 5 <= self.keepalive_s <= 65535, "in [5, 65535]"),
            (
                "session_expiry_s",
                self.session_expiry_s,
                0 < self.session_expiry_s <= 0xFFFFFFFF,
                "in (0, 4294967295]: a zero expiry would end the session at each disconnect",
            ),
            (
                "reconnect_min_delay_s",
                self.reconnect_min_delay_s,
                0 < self.reconnect_min_delay_s <= self.reconnect_max_delay_s,
                "positive and at most reconnect_max_delay_s",
            ),
            ("connect_timeout_s", self.connect_timeout_s, self.connect_timeout_s > 0, "> 0"),
            (
                "receive_maximum",
                self.receive_maximum,
                1 <= self.receive_maximum <= 65535,
                "in [1, 65535]",
            ),
            ("max_inflight", self.max_inflight, self.max_inflight >= 1, ">= 1"),
            ("replay_window_s", self.replay_window_s, self.replay_window_s >= 0, ">= 0"),
            (
                "max_payload_bytes",
                self.max_payload_bytes,
                self.max_payload_bytes >= 1024,
                ">= 1024",
            ),
        ]
        for name, value, ok, expected in checks:
            if not ok:
                raise ValueError(f"MqttSettings.{name} = {value!r}: expected {expected}")
        if self.tls and self.ca_file is not None and not Path(self.ca_file).is_file():
            raise ValueError(f"MqttSettings.ca_file = {self.ca_file!r}: no such file")

    def __repr__(self) -> str:
        shown = "***" if self.password else None
        return (
            f"MqttSettings(host={self.host!r}, port={self.port}, tls={self.tls}, "
            f"username={self.username!r}, password={shown!r})"
        )

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, prefix: str = "VIGIL_MQTT_", **overrides: Any
    ) -> MqttSettings:
        """Settings from ``{prefix}HOST``, ``PORT``, ``TLS``, ``CA_FILE``, ``USER``, ``PASSWORD``.

        Unset variables keep the defaults; ``overrides`` win over both.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for var, name, kind in (
            ("HOST", "host", str),
            ("PORT", "port", int),
            ("TLS", "tls", bool),
            ("CA_FILE", "ca_file", str),
            ("USER", "username", str),
            ("PASSWORD", "password", str),
        ):
            raw = env.get(prefix + var)
            if raw is None:
                continue
            if kind is int:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ValueError(f"{prefix}{var} = {raw!r}: expected an integer") from None
            elif kind is bool:
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(f"{prefix}{var} = {raw!r}: expected true or false")
                values[name] = raw.lower() in ("1", "true", "yes")
            else:
                values[name] = raw
        values.update(overrides)
        return cls(**values)


# -- the sector service's identities and settings on the broker (vigil run, vigil broker) ----


def output_username(username: str) -> str:
    """The user name of the service's output session, from its input session's user name.

    A broker that binds client ids to user names (Mosquitto's ``use_username_as_clientid``,
    as ``vigil broker init`` writes it) needs one user per connection; the service's output
    session logs in as ``{username}-out`` with the same password.
    """
    return f"{username}-out"


def service_client_id(deployment: Any) -> str:
    """The service's stable client id: the deployment's ``[broker] client_id``, else
    ``vigil-{sector}``. Its journal's cursor and the broker's persistent session go by it."""
    return getattr(deployment.config.broker, "client_id", None) or f"vigil-{deployment.sector}"


def mqtt_settings(deployment: Any, broker: str | None = None, **overrides) -> MqttSettings:
    """Broker settings from a deployment's ``[broker]`` table (credentials from the environment
    variables it names), with ``broker`` (``HOST:PORT``) overriding its address."""
    b = deployment.config.broker
    user, password = b.credentials()
    host, port = b.host, b.port
    if broker:
        h, _, p = broker.rpartition(":") if ":" in broker else (broker, "", "")
        host = h or host
        if p:
            try:
                port = int(p)
            except ValueError:
                raise ValueError(f"broker {broker!r}: expected HOST:PORT") from None
    values = dict(
        host=host,
        port=port,
        tls=b.tls,
        ca_file=b.ca_file,
        username=user,
        password=password,
        keepalive_s=b.keepalive_s,
    )
    values.update(overrides)
    return MqttSettings(**values)


__all__ = ["MqttSettings", "mqtt_settings", "output_username", "service_client_id"]
