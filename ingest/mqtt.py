"""The MQTT bus: the :class:`~vigil.ingest.bus.Bus` interface over a broker, losing nothing it
accepted.

:class:`MqttBus` is a composition of parts with one role each:

- :mod:`~vigil.ingest.mqtt_settings`: how to reach the broker (:class:`MqttSettings`);
- :mod:`~vigil.ingest.mqtt_link`: the connection, a fresh paho client per connection, kept up
  by a supervisor thread with backoff; the session is persistent (MQTT 5,
  ``clean_start=False``, a session expiry);
- :mod:`~vigil.ingest.mqtt_publisher`: the outbox, QoS 1 acknowledgements, resending after a
  reconnect and for messages no session took;
- :mod:`~vigil.ingest.mqtt_receiver`: decode and check, journal, then acknowledge, then hand
  to the handlers on a thread of their own; the subscriptions.

What the bus itself adds is the :class:`~vigil.ingest.bus.Bus` part every bus shares: counts,
quarantine (with a file and a report on the quarantine topic here), and handler calls that
catch, count and log a handler's error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vigil.ingest.bus import Bus, Handler, Subscription
from vigil.ingest.journal import Journal
from vigil.ingest.mqtt_link import LinkHooks, MqttLink
from vigil.ingest.mqtt_publisher import KEY_PROPERTY, MqttPublisher
from vigil.ingest.mqtt_receiver import MqttReceiver, Sink
from vigil.ingest.mqtt_settings import MqttSettings
from vigil.ingest.quarantine import QuarantineFile
from vigil.ingest.schema import DEFAULT_MAX_SKEW_S, Wire
from vigil.ingest.topics import check_topic, quarantine_topic


class MqttBus(Bus):
    """The bus over an MQTT broker (paho-mqtt 2, MQTT 5), persistent and at-least-once.

    Parameters
    ----------
    sector
        Sector name; bad messages are reported on ``vigil/v1/{sector}/quarantine``.
    settings
        Broker address, TLS, credentials, timing.
    client_id
        Stable identity: the broker keeps this client's session (its subscriptions and queued
        messages) across disconnects under this name.
    outbox_path
        SQLite file of the outbox; ``None`` keeps it in memory (retries within the process).
    quarantine_path
        JSON-lines file for quarantined messages; ``None`` writes none.
    journal
        Receive journal; when given, every received message is journaled before its PUBACK
        and handled messages are marked done under the consumer name ``client_id``.
    publish_quarantine
        Also publish each quarantined message's record on the quarantine topic.
    max_skew_s, clock
        As for :class:`~ingest.bus.Bus`: validation's tolerance and its "now".
    sink
        Accepted messages go to it in batches instead of to the handlers
        (:class:`~vigil.ingest.mqtt_receiver.MqttReceiver`'s ``sink``).
    """

    def __init__(
        self,
        sector: str,
        settings: MqttSettings,
        client_id: str,
        outbox_path: str | Path | None = None,
        quarantine_path: str | Path | None = None,
        journal: Journal | None = None,
        *,
        publish_quarantine: bool = True,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
        clock: Callable[[], float] = time.time,
        sink: Sink | None = None,
    ) -> None:
        super().__init__(sector, max_skew_s=max_skew_s, clock=clock)
        if not client_id or len(client_id.encode()) > 65535:
            raise ValueError(f"client_id = {client_id!r}: expected a non-empty string")
        self.settings = settings
        self.client_id = client_id
        self.journal = journal
        self.quarantine_topic = quarantine_topic(sector)
        self.link = MqttLink(settings, client_id, self._count)
        self.publisher = MqttPublisher(self.link, outbox_path, self.quarantine_topic, self._count)
        self.receiver = MqttReceiver(
            self.link,
            journal,
            client_id,
            self.quarantine_topic,
            clock=clock,
            max_skew_s=max_skew_s,
            quarantine=self._quarantine,
            deliver=self._deliver,
            count=self._count,
            sink=sink,
        )
        self.outbox = self.publisher.outbox
        #: Broker refusals of our publications, by reason ("Not authorized": 3).
        self.refused_counts = self.publisher.refused_counts
        self.quarantine_file = QuarantineFile(quarantine_path) if quarantine_path else None
        if self.quarantine_file is not None:
            self.on_quarantine(self.quarantine_file.write)
        if publish_quarantine:
            self.on_quarantine(self.publisher.publish_report)
        self._started = False
        self._closed = False

    @property
    def connected(self) -> bool:
        """Whether the bus is connected and has caught up on its outbox."""
        return self.link.live

    @property
    def last_error(self) -> str | None:
        """The last connection problem, for error messages."""
        return self.link.last_error

    @property
    def session_present(self) -> bool | None:
        """Whether the broker still held this client's session at the last connection."""
        return self.link.session_present

    # -- life cycle ---------------------------------------------------------------------------

    def _start_threads(self) -> None:
        if self._started:
            return
        self._started = True
        self.link.start(
            LinkHooks(
                on_message=self.receiver.on_message,
                on_publish=self.publisher.on_publish,
                new_connection=self.publisher.new_connection,
                start_session=self._start_session,
                keep_session=self.publisher.keep_session,
                on_publish_batch=self.receiver.on_publish_batch,
            )
        )
        self.receiver.start()

    def _start_session(self, client: object) -> bool:
        return self.receiver.resubscribe(client) and self.publisher.resend(client)

    def connect(self, timeout: float = 10.0) -> MqttBus:
        """Start the bus and wait until it is connected and caught up on its outbox.

        Raises
        ------
        ConnectionError
            When the broker was not reached within ``timeout`` seconds, with the last problem.
            The bus goes on trying in the background; publishing goes on into the outbox.
        """
        if self._closed:
            raise RuntimeError("bus is closed")
        self._start_threads()
        if not self.link.live_event.wait(timeout):
            s = self.settings
            raise ConnectionError(
                f"MQTT broker {s.host}:{s.port} not reached as {self.client_id!r} "
                f"within {timeout:g} s: {self.last_error or 'no answer'}"
            )
        return self

    def start(self) -> MqttBus:
        """Start connecting in the background without waiting."""
        self._start_threads()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Disconnect and stop. Unhandled received messages stay with the broker or the journal;
        unacknowledged publications stay in the outbox for the next bus with the same path."""
        if self._closed:
            return
        self._closed = True
        self.link.stop(timeout)
        self.receiver.stop(timeout)
        self.publisher.close()
        if self.quarantine_file is not None:
            self.quarantine_file.close()

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, topic: str, message: Wire | bytes) -> None:
        """Send a message (a struct, or raw bytes passed on as they are) on ``topic`` at QoS 1.

        Returns once the message is committed to the outbox; it is sent now when connected,
        otherwise on reconnect. Nothing is checked here but the topic: receivers check every
        message, struct or bytes, as every bus does.
        """
        check_topic(topic)
        if self._closed:
            raise RuntimeError("bus is closed")
        self.publisher.publish(topic, message)

    def publish_many(self, messages: Sequence[tuple[str, Wire | bytes]]) -> None:
        """Send ``(topic, message)`` messages, in order, as :meth:`publish` does, with one
        outbox commit for all of them (all or none are committed)."""
        for topic, _ in messages:
            check_topic(topic)
        if self._closed:
            raise RuntimeError("bus is closed")
        self.publisher.publish_many(messages)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the broker has acknowledged everything published; False on timeout."""
        return self.publisher.flush(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is waiting to be acknowledged, journaled or handled."""
        deadline = time.monotonic() + timeout
        while True:
            if self.outbox.unacked() == 0 and self.receiver.work == 0:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)

    # -- subscribing --------------------------------------------------------------------------

    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        """Call ``handler(topic, message)`` for each valid message on a matching topic.

        When connected, returns once the broker has confirmed the subscription.
        """
        return self.receiver.subscribe(pattern, handler)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a subscription (and the broker's, when no other uses the same filter)."""
        self.receiver.unsubscribe(subscription)

    def resume(self) -> int:
        """Hand subscribers what a previous run journaled and acknowledged but did not handle.

        Call it after subscribing and before :meth:`connect`; returns how many messages were
        handed over (each to every matching subscriber, in journal order).
        """
        if self.journal is not None and self._started:
            raise RuntimeError("resume() must run before connect(): new messages would interleave")
        return self.receiver.resume()


__all__ = ["KEY_PROPERTY", "MqttBus", "MqttSettings"]
