"""The sector service (``vigil run``): live feeds from the broker in, tracks and alerts out.

How a message goes through
    The input :class:`~vigil.ingest.mqtt.MqttBus` (persistent session, client id
    ``vigil-{sector}`` or the deployment's ``[broker] client_id``) journals every accepted
    message to ``journal.sqlite`` before it acknowledges it, then hands it to the
    :class:`SectorRunner`. The runner puts sensor messages in a reorder buffer keyed on
    message time: MQTT keeps order per publisher only, and the towers, the ground-sensor
    gateway and the aircraft publish apart. A message is released once the newest message
    time seen is ``hold_s`` past it; released messages go, in ``(time, topic, arrival)``
    order, into a :class:`~vigil.core.SectorCore` on a private in-process bus, ticked at
    every whole second of message time, as the in-process demo ticks it. What the core
    publishes (tracks, crossings, alerts, camera commands) goes out through a second MqttBus
    (``{client id}-out``, user ``{user}-out``) and its on-disk outbox.

    A message older than what was already released is *late*: it is applied at once (fusion
    replays out-of-sequence reports within its lag) and counted. A message more than
    ``max_ahead_s`` ahead of the sector's clock (a device with a wrong clock, in a replay of
    past data where the bus's own check against the wall clock cannot catch it) would drag the
    clock forward and make everything else late: it is quarantined with reason
    ``time_future`` instead. Alert actions from agents are applied when they arrive; they do
    not move the clock.

When input stops
    While the input bus is connected and nothing arrives for ``idle_s`` wall seconds, the
    buffer is released and the clock goes on from the last message time at one second per
    wall second, so tracks coast and end and silent sensors raise alerts. Each such advance
    is written to ``service.sqlite`` (after which input message it came) *before* it is
    applied.

After a crash
    The core's state is a function of the journal: the accepted messages in journal order,
    with the recorded advances between them. On start the service replays the whole journal
    through a fresh core and rebuilds its stores; of what the replay publishes, the first
    ``P`` messages are not sent again, where ``P`` is how many the output outbox has ever
    taken (its sequence survives pruning, and a message counts once its outbox commit is
    done). So a restart loses and duplicates no track, crossing or alert. The cost is a replay
    of the whole journal at each start (see BENCHMARKS.md for the rate).

The state folder holds ``journal.sqlite``, ``in.outbox`` and ``out.outbox``,
``quarantine.jsonl``, ``service.sqlite``, ``status.json`` (rewritten every second) and the
stores ``vigil.tracks.sqlite`` and ``events.sqlite``. Keep them together: the outbox count and the
journal only make sense as a pair.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from vigil.alerts.channels import DispatchChannel
from vigil.alerts.rules import AlertRules
from vigil.geo.site import Site
from vigil.ingest.bus import topic_matches
from vigil.ingest.journal import Journal
from vigil.ingest.jsonable import dumps
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.private_files import private_dir, private_file, write_private_text
from vigil.ingest.schema import MessageError, Wire, decode, encode
from vigil.retained import RetainedState
from vigil.runner import (
    INPUT_TOPICS,
    OUTPUT_TOPICS,
    STATE_FILES,
    Output,
    SectorRunner,
    input_patterns,
)
from vigil.tracks.config import TrackerConfig

log = logging.getLogger(__name__)

__all__ = [
    "INPUT_TOPICS",
    "OUTPUT_TOPICS",
    "AdvanceLog",
    "Output",
    "SectorRunner",
    "SectorService",
    "StartReport",
    "input_patterns",
    "mqtt_settings",
    "output_username",
    "service_client_id",
]

# -- the service --------------------------------------------------------------------------------

_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS advance (
    handled INTEGER NOT NULL, watermark REAL NOT NULL, wall REAL NOT NULL
);
"""


class AdvanceLog:
    """``service.sqlite``: the idle advances of the clock, each after the input it followed."""

    def __init__(self, path: Path) -> None:
        private_file(path)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_STATE_SCHEMA)

    def record(self, handled: int, watermark: float) -> None:
        """Commit one advance (before it is applied)."""
        self._db.execute(
            "INSERT INTO advance (handled, watermark, wall) VALUES (?, ?, ?)",
            (handled, watermark, time.time()),
        )

    def all(self) -> list[tuple[int, float]]:
        """Every advance, in the order they were made."""
        return [
            (int(h), float(w))
            for h, w in self._db.execute("SELECT handled, watermark FROM advance ORDER BY rowid")
        ]

    def close(self) -> None:
        """Close the file."""
        self._db.close()


def output_username(username: str) -> str:
    """The user name of the service's output session, from its input session's user name.

    A broker that binds client ids to user names (Mosquitto's ``use_username_as_clientid``,
    as ``vigil broker init`` writes it) needs one user per connection; the service's output
    session logs in as ``{username}-out`` with the same password.
    """
    return f"{username}-out"


def service_client_id(deployment) -> str:
    """The service's stable client id: the deployment's ``[broker] client_id``, else
    ``vigil-{sector}``. Its journal's cursor and the broker's persistent session go by it."""
    return getattr(deployment.config.broker, "client_id", None) or f"vigil-{deployment.sector}"


def mqtt_settings(deployment, broker: str | None = None, **overrides) -> MqttSettings:
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


@dataclass
class StartReport:
    """What a start found in its state folder."""

    replayed: int
    advances: int
    outputs_replayed: int
    outputs_skipped: int
    replay_s: float


class SectorService:
    """``vigil run``: one sector's tracking, crossing detection, alerting and stores over MQTT.

    Parameters
    ----------
    site
        The sector's layout (a deployment's ``site``).
    settings
        How to reach the broker.
    state_dir
        Folder for the journal, the outboxes, the quarantine file, ``service.sqlite``,
        ``status.json`` and (unless ``store_dir`` says otherwise) the stores.
    store_dir
        Folder of ``vigil.tracks.sqlite`` and ``events.sqlite``; rebuilt from the journal at start.
    hold_s, tick_s
        See :class:`SectorRunner`.
    idle_s
        Wall seconds without input (while connected) before the clock moves on by itself.
    client_id
        The input session's name (``vigil-{sector}`` by default; outputs use ``{id}-out``). It
        must be stable: the broker keeps the persistent session, and the journal its cursor,
        under it. The output session logs in as :func:`output_username` of the user.
    tracker, rules
        Stage settings.
    journal_synchronous
        SQLite ``synchronous`` of the journal (``FULL``: each batch survives a power loss).
    channels
        More dispatch channels (CoT): each new alert and track goes to them too. Open alerts
        and sensor statuses are also published retained (:mod:`vigil.retained`).
    """

    def __init__(
        self,
        site: Site,
        settings: MqttSettings,
        state_dir: str | Path,
        *,
        store_dir: str | Path | None = None,
        hold_s: float = 1.0,
        tick_s: float = 1.0,
        idle_s: float = 3.0,
        client_id: str | None = None,
        tracker: TrackerConfig | None = None,
        rules: AlertRules | None = None,
        journal_synchronous: str = "FULL",
        channels: Sequence[DispatchChannel] = (),
    ) -> None:
        if not idle_s > 0:
            raise ValueError(f"idle_s = {idle_s!r}: expected wall seconds > 0")
        self.site = site
        self.sector = site.sector.name
        self.settings = settings
        self.state_dir = private_dir(state_dir)  # 0700 when made here
        self.store_dir = Path(store_dir) if store_dir is not None else self.state_dir
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.hold_s, self.tick_s, self.idle_s = hold_s, tick_s, idle_s
        self.tracker, self.rules = tracker, rules
        self.client_id = client_id or f"vigil-{self.sector}"
        self.journal = Journal(self.state_dir / "journal.sqlite", synchronous=journal_synchronous)
        self.advances = AdvanceLog(self.state_dir / "service.sqlite")
        out_settings = settings
        if settings.username is not None:
            out_settings = msgspec.structs.replace(
                settings, username=output_username(settings.username)
            )
        self.out_bus = MqttBus(
            self.sector,
            out_settings,
            f"{self.client_id}-out",
            outbox_path=self.state_dir / "out.outbox",
            publish_quarantine=False,
        )
        self.state = RetainedState(self.sector, self.out_bus.publisher)
        self.channels = list(channels)
        self.in_bus = MqttBus(
            self.sector,
            settings,
            self.client_id,
            outbox_path=self.state_dir / "in.outbox",
            quarantine_path=self.state_dir / "quarantine.jsonl",
            journal=self.journal,
        )
        self.runner: SectorRunner | None = None
        #: Input messages handed to the core so far (journal order), replayed ones included.
        self.handled = 0
        self.report: StartReport | None = None
        self._replaying = False
        self._inbox: queue.Queue[tuple[str, Wire] | None] = queue.Queue(maxsize=100_000)
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._last_input = time.monotonic()
        self._was_connected = False
        self._core_thread: threading.Thread | None = None
        self._patterns = input_patterns(self.sector)

    # -- start: replay the journal, then go live ------------------------------------------------

    def start(self, timeout: float = 30.0) -> StartReport:
        """Rebuild the state from the journal, subscribe and connect.

        The core (runner, stores) lives in one thread of its own, which replays the journal
        first; input handlers only queue messages for it.

        Raises
        ------
        ConnectionError
            When the broker is not reached within ``timeout`` seconds (the buses go on trying;
            :attr:`report` is set).
        """
        self._core_thread = threading.Thread(target=self._core_loop, name="vigil-core", daemon=True)
        self._core_thread.start()
        self._ready.wait()
        if self._failed is not None:
            raise RuntimeError(f"replay of {self.journal.path} failed") from self._failed
        for pattern in self._patterns:
            self.in_bus.subscribe(pattern, self._on_message)
        self.in_bus.resume()
        self.out_bus.start()
        self.in_bus.connect(timeout)
        assert self.report is not None
        return self.report

    def _replay(self) -> StartReport:
        t0 = time.perf_counter()
        for name in STATE_FILES:
            for suffix in ("", "-wal", "-shm"):
                (self.store_dir / f"{name}{suffix}").unlink(missing_ok=True)
            private_file(self.store_dir / name)  # rebuilt below; 0600 like the journal
        published_before = self.out_bus.outbox.last_seq()
        runner = self.runner = SectorRunner(
            self.site,
            self._output,
            store_dir=self.store_dir,
            tracker=self.tracker,
            rules=self.rules,
            hold_s=self.hold_s,
            tick_s=self.tick_s,
            skip_outputs=published_before,
            on_ahead=self._ahead,
        )
        self.state.attach(runner.bus)
        advances = self.advances.all()
        self._replaying = True
        k = 0
        last_seq = 0
        for entry in self.journal.replay(status="accepted"):
            last_seq = entry.seq
            if not any(topic_matches(p, entry.topic) for p in self._patterns):
                continue
            try:
                msg = decode(entry.topic, entry.payload, now=entry.received, max_skew_s=math.inf)
            except MessageError:
                continue
            self.handled += 1
            runner.handle(entry.topic, msg)
            while k < len(advances) and advances[k][0] <= self.handled:
                runner.advance_to(advances[k][1])
                k += 1
        while k < len(advances):  # advances recorded after the last journaled message
            runner.advance_to(advances[k][1])
            k += 1
        self._replaying = False
        self.state.live = True
        self.state.republish()
        if last_seq:
            self.journal.mark_done(self.client_id, last_seq)
        runner.core.flush_stores()
        if runner.outputs < published_before:
            log.warning(
                "the journal replays to %d outputs but the outbox has taken %d: the state "
                "folder's journal and outbox do not belong together",
                runner.outputs,
                published_before,
            )
        return StartReport(
            replayed=self.handled,
            advances=len(advances),
            outputs_replayed=runner.outputs,
            outputs_skipped=min(runner.outputs, published_before),
            replay_s=time.perf_counter() - t0,
        )

    def _ahead(self, topic: str, msg: Wire, err: MessageError) -> None:
        if not self._replaying:  # reported when it arrived, before the restart
            self.in_bus.quarantine(topic, encode(msg), err)

    def _output(self, topic: str, msg: Wire) -> None:
        """A new output: its retained state first, then the message, then the channels."""
        self.state.before_output(topic, msg)
        self.out_bus.publish(topic, msg)
        for channel in self.channels:
            try:
                channel.send(msg)
            except Exception:  # a dispatch channel must not stop the sector
                log.exception("dispatch to %s failed", type(channel).__name__)

    def _on_message(self, topic: str, msg: Wire) -> None:
        self._inbox.put((topic, msg))

    # -- the core thread -------------------------------------------------------------------------

    def _core_loop(self) -> None:
        try:
            self.report = self._replay()
        except BaseException as exc:  # handed to start(), which raises
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        runner = self.runner
        assert runner is not None
        last_periodic = last_flush = time.monotonic()
        self._write_status()
        while True:
            try:
                item = self._inbox.get(timeout=0.05)
            except queue.Empty:
                item = ()
            if item is None:
                break
            if item:
                self.handled += 1
                self._last_input = time.monotonic()
                try:
                    runner.handle(*item)
                except Exception:  # one bad message must not stop the sector
                    log.exception("handling %s failed", item[0])
                    runner.counts["handler_error"] += 1
            now = time.monotonic()
            if now - last_periodic >= 0.1:
                last_periodic = now
                try:
                    self._idle_step(runner, now)
                    if now - last_flush >= 5.0:
                        last_flush = now
                        runner.core.flush_stores()
                    self._write_status()
                except Exception:  # the clock must go on; the error is logged
                    log.exception("periodic step failed")
        runner.close()
        self._write_status()

    def _idle_step(self, runner: SectorRunner, now: float) -> None:
        connected = self.in_bus.connected
        if not connected or not self._was_connected:
            # No input because we cannot hear it is not a quiet sector.
            self._last_input = now
            self._was_connected = connected
            return
        if not math.isfinite(runner.max_time) or not self._inbox.empty():
            return
        quiet = now - self._last_input - self.idle_s
        if quiet < 0:
            return
        target = runner.max_time + math.floor(quiet / self.tick_s) * self.tick_s
        if target <= runner.watermark:
            return
        self.advances.record(self.handled, target)
        runner.advance_to(target)

    def _write_status(self) -> None:
        r = self.runner
        if r is None:
            return
        status = {
            "sector": self.sector,
            "wall": time.time(),
            "connected": self.in_bus.connected,
            "handled": self.handled,
            "queued": self._inbox.qsize(),
            "max_time": r.max_time,  # -inf before the first message: null
            "watermark": r.watermark,
            "clock": r.clock,
            "buffered": r.buffered,
            "runner": dict(r.counts),
            "input_bus": dict(self.in_bus.counts),
            "output_bus": dict(self.out_bus.counts),
            "quarantine": dict(self.in_bus.quarantine_counts),
            "fusion_dropped_late": r.core.fusion.dropped_late,
            "retained": dict(self.state.counts),
            "channels": {type(c).__name__: dict(c.counts) for c in self.channels},
        }
        write_private_text(self.state_dir / "status.json", dumps(status, indent=1) + "\n")

    # -- life ------------------------------------------------------------------------------------

    def status(self) -> dict:
        """The service's latest ``status.json`` (rewritten every 0.1 s by the core thread)."""
        return json.loads((self.state_dir / "status.json").read_text())

    def close(self, timeout: float = 10.0) -> None:
        """Stop cleanly: stop taking input, let the core finish what it was given and flush its
        stores, send what is left. Messages journaled but not yet handled are replayed at the
        next start."""
        self.in_bus.close(timeout)
        if self._core_thread is not None and self._core_thread.is_alive():
            self._inbox.put(None)
            self._core_thread.join(timeout + 30.0)
        for channel in self.channels:
            channel.close()
        self.out_bus.flush(timeout)
        self.out_bus.close(timeout)
        self.advances.close()
        self.journal.close()

    def __enter__(self) -> SectorService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
