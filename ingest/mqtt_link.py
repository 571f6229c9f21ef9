"""The MQTT bus's connection: a fresh paho client per connection, and a supervisor thread.

The supervisor connects (MQTT 5, ``clean_start=False``, a session expiry, manual
acknowledgement), starts the session (resubscribe, resend), keeps it while it lasts, and on a
lost connection tries again with exponential backoff. Each connection gets a fresh paho client
so that nothing paho held for a dead connection is sent twice out of order; callbacks from an
old client are ignored.

The link knows no message: what happens on a connection is in :class:`LinkHooks`, which the
bus (:class:`~vigil.ingest.mqtt.MqttBus`) fills from its publisher and receiver.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vigil.ingest.mqtt_settings import MqttSettings

Count = Callable[..., None]


def instance_client_id(sector: str, role: str) -> str:
    """A client id of its own for one process that needs no persistent session across runs:
    ``vigil-{sector}-{role}-{8 random hex digits}``.

    Two processes of one role (two ``vigil serve`` for one sector) under one fixed id would
    knock each other off the broker, which drops the older connection of an id taken twice.
    A process whose state hangs on its session (the sector service) needs a stable id instead.
    """
    return f"vigil-{sector}-{role}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class LinkHooks:
    """What the bus does on the link's events.

    Attributes
    ----------
    on_message, on_publish
        paho's callbacks for a received message and for a publication's acknowledgement.
    new_connection
        Called before each connection attempt: forget what a dead connection had in flight.
    start_session
        Called once connected with the client: resubscribe and resend; False if the
        connection fell meanwhile.
    keep_session
        Called about every 0.2 s while connected; False ends the connection.
    on_publish_batch
        When given, the client reads in chunks and hands the plain QoS 0/1 PUBLISH packets
        of each read to it as fields (:class:`~vigil.ingest.mqtt_fast_receive.
        FastReceiveClient`); ``on_message`` still gets what that path leaves to paho.
    """

    on_message: Callable[..., None]
    on_publish: Callable[..., None]
    new_connection: Callable[[], None]
    start_session: Callable[[Any], bool]
    keep_session: Callable[[Any], bool]
    on_publish_batch: Callable[..., None] | None = None


@functools.cache
def _fast_receive_supported() -> bool:
    from vigil.ingest.mqtt_fast_receive import supported

    return supported()


class MqttLink:
    """The connection to the broker under one client id, kept up by a supervisor thread.

    Parameters
    ----------
    settings
        Broker address, TLS, credentials, timing.
    client_id
        The identity under which the broker keeps this client's session.
    count
        ``count(name, n=1)``: adds to the bus's counts.

    Attributes
    ----------
    client
        The current paho client (``None`` before the first connection and after closing).
    connected
        Set while the broker has accepted the current connection.
    live
        Connected and caught up: new publications go straight out (``live_event`` likewise).
    closing
        Set when the bus closes; every loop of the bus ends on it.
    last_error
        The last connection problem, for error messages.
    lost_at
        When the supervisor noticed that the last live connection fell (``time.time()``
        seconds); ``None`` while none has. The publisher's replay window counts back from the
        broker's last acknowledgement before it (never later than this), however long the
        reconnect takes: a fall is noticed late when the broker hung before it died.
    """

    def __init__(self, settings: MqttSettings, client_id: str, count: Count) -> None:
        self.settings = settings
        self.client_id = client_id
        self._count = count
        self.client: Any = None
        self.connected = threading.Event()
        self.closing = threading.Event()
        self.live = False
        self.live_event = threading.Event()
        self.last_error: str | None = None
        self.session_present: bool | None = None
        self.lost_at: float | None = None
        self._connack = threading.Event()
        self._conn_ok = False
        self._suback: dict[int, threading.Event] = {}
        self._suback_lock = threading.Lock()
        self._hooks: LinkHooks | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, hooks: LinkHooks) -> None:
        """Start the supervisor thread (once)."""
        if self._thread is not None:
            return
        self._hooks = hooks
        self._thread = threading.Thread(
            target=self._supervise, name=f"mqtt-supervisor-{self.client_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Signal closing and wait up to ``timeout`` seconds for the supervisor to disconnect."""
        self.closing.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def go_live(self) -> None:
        """Caught up: publications go straight to the broker from now on."""
        self.live = True
        self.live_event.set()

    def hold(self) -> None:
        """Not live: publications wait in the outbox for the next catch-up."""
        self.live = False
        self.live_event.clear()

    # -- the supervisor -----------------------------------------------------------------------

    def _make_client(self) -> Any:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        s = self.settings
        hooks = self._hooks
        assert hooks is not None
        kwargs: dict[str, Any] = dict(
            client_id=self.client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        if hooks.on_publish_batch is not None and _fast_receive_supported():
            from vigil.ingest.mqtt_fast_receive import FastReceiveClient

            client = FastReceiveClient(
                CallbackAPIVersion.VERSION2, on_publish_batch=hooks.on_publish_batch, **kwargs
            )
        else:
            client = paho.Client(CallbackAPIVersion.VERSION2, **kwargs)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set(ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file)
        client.max_inflight_messages_set(s.max_inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = hooks.on_message
        client.on_publish = hooks.on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def _connect_properties(self) -> Any:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        return props

    def _supervise(self) -> None:
        s = self.settings
        hooks = self._hooks
        assert hooks is not None
        delay = s.reconnect_min_delay_s
        while not self.closing.is_set():
            client = self._make_client()
            hooks.new_connection()
            with self._suback_lock:
                self._suback.clear()
            self.client = client
            self.connected.clear()
            self._connack.clear()
            self._conn_ok = False
            try:
                client.connect(
                    s.host,
                    s.port,
                    s.keepalive_s,
                    clean_start=False,
                    properties=self._connect_properties(),
                )
            except (OSError, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._count("connect_failed")
                self.closing.wait(delay)
                delay = min(delay * 2, s.reconnect_max_delay_s)
                continue
            client.loop_start()
            answered = self._connack.wait(s.connect_timeout_s)
            if not (answered and self._conn_ok and self.connected.is_set()):
                if not answered:
                    self.last_error = f"no CONNACK within {s.connect_timeout_s:g} s"
                self._count("connect_failed")
                self._drop(client)
                self.closing.wait(delay)
                delay = min(delay * 2, s.reconnect_max_delay_s)
                continue
            delay = s.reconnect_min_delay_s
            self._count("connected")
            if hooks.start_session(client):
                self.lost_at = None
                while self.connected.is_set() and not self.closing.wait(0.2):
                    if not hooks.keep_session(client):
                        break
                self.lost_at = time.time()
            self.hold()
            if self.closing.is_set():
                client.disconnect()
                client.loop_stop()
                self.client = None
                break
            self._count("disconnected")
            self._drop(client)
            self.closing.wait(delay)

    def _drop(self, client: Any) -> None:
        self.hold()
        client.disconnect()
        client.loop_stop()
        sock = client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self.client:
            return
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            self._conn_ok = False
        else:
            self._conn_ok = True
            self.session_present = bool(flags.session_present)
            self.connected.set()
        self._connack.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self.client:
            return
        self.live = False
        failed = reason_code is not None and getattr(reason_code, "is_failure", False)
        if failed and self._conn_ok:  # keep a refused CONNACK's reason, which says more
            self.last_error = f"disconnected: {reason_code}"
        self.connected.clear()
        self._connack.set()

    # -- subscriptions at the broker ----------------------------------------------------------

    def subscribe_and_wait(self, client: Any, patterns: list[str], timeout: float) -> bool:
        """Subscribe ``client`` to ``patterns`` at QoS 1 and wait for the SUBACK, seconds."""
        from paho.mqtt.subscribeoptions import SubscribeOptions

        if not patterns:
            return True
        event = threading.Event()
        with self._suback_lock:
            rc, mid = client.subscribe([(p, SubscribeOptions(qos=1)) for p in patterns])
            if rc != 0 or mid is None:
                self.last_error = f"subscribe to {patterns} failed: rc={rc}"
                return False
            self._suback[mid] = event
        if not event.wait(timeout):
            self.last_error = f"no SUBACK for {patterns} within {timeout:g} s"
            return False
        return True

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            self.last_error = f"subscription refused: {refused}"
            self._count("subscribe_refused", len(refused))
        with self._suback_lock:
            event = self._suback.pop(mid, None)
        if event is not None:
            event.set()


__all__ = ["LinkHooks", "MqttLink", "instance_client_id"]
