"""The sector service (``vigil run``): live feeds from the broker in, tracks and alerts out.

How a message goes through
    The input :class:`~vigil.ingest.mqtt.MqttBus` (persistent session, client id
    ``vigil-{sector}`` or the deployment's ``[broker] client_id``) runs in a process of its own
    (:class:`~vigil.ingest.mqtt_process.InputProcess`, so that receiving does not take the
    core's interpreter time): it journals every accepted message to ``journal.sqlite`` before
    it acknowledges it, then hands it, in batches over a pipe, to the core thread's
    :class:`SectorRunner`. Should that process die, the core thread takes what it journaled
    and did not hand over from the journal and starts another. The runner puts sensor
    messages in a reorder buffer keyed on message time: MQTT keeps order per publisher only,
    and the towers, the ground-sensor gateway and the aircraft publish apart. A message is
    released once the newest message time seen is ``hold_s`` past it; released messages go,
    in ``(time, topic, arrival)`` order, into a :class:`~vigil.core.SectorCore` on a private
    in-process bus, ticked at every whole second of message time, as the in-process demo
    ticks it. What the core publishes (tracks, crossings, alerts, camera commands) goes out,
    committed and sent by a writer thread, through a second MqttBus (``{client id}-out``,
    user ``{user}-out``) and its on-disk outbox.

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
    with the recorded advances between them. Every ``snapshot_every`` messages or
    ``snapshot_s`` wall seconds (and at a clean stop) the core thread flushes the stores and
    writes a snapshot of the runner's whole state with the journal position and advance it
    covers (:mod:`vigil.snapshot`: atomic, checksummed; live, a forked child writes it once the
    store thread, :mod:`vigil.store_writer`, has written the stores up to it and sends their
    marks, while the core thread goes on); the journal and the advances behind
    the oldest of the ``snapshot_keep`` kept snapshots are pruned (the newest
    ``journal_keep`` rows stay, to recognise a message sent again). On start the service
    loads the newest snapshot that checks out (a damaged one is logged and the one before it
    tried; with none, the whole journal), trims the stores back to it, and replays only the
    journal after it. Of what the replay publishes, the first ``P`` messages (counted from the
    journal's start; the count is part of the snapshot) are not sent again, where ``P`` is how
    many the output outbox has ever taken (its sequence survives pruning, and a message counts
    once its outbox commit is done). So a restart loses and duplicates no track, crossing or
    alert, and costs a replay of at most about ``snapshot_every`` messages (or
    ``snapshot_min_s`` seconds' worth, when messages come faster than that).

The state folder holds ``journal.sqlite``, ``in.outbox`` and ``out.outbox``,
``quarantine.jsonl``, ``service.sqlite``, ``snapshot-*.bin``, ``status.json`` (rewritten
every 0.1 s) and the stores ``vigil.tracks.sqlite`` and ``events.sqlite``. Keep them
together: the outbox count and the journal only make sense as a pair.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import logging
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from vigil.alerts.channels import DispatchChannel
from vigil.alerts.rules import AlertRules
from vigil.geo.site import Site
from vigil.ingest.journal import Journal
from vigil.ingest.jsonable import dumps
from vigil.ingest.latest_file import LatestFile
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.mqtt_process import InputProcess, input_spec, trusted_decode, wait_for_lock
from vigil.ingest.mqtt_settings import mqtt_settings, output_username, service_client_id
from vigil.ingest.output_writer import OutputWriter
from vigil.ingest.private_files import private_dir
from vigil.ingest.schema import MessageError, Wire, encode
from vigil.restart import Restarts, StartReport, warm_up
from vigil.retained import RetainedState
from vigil.runner import INPUT_TOPICS, OUTPUT_TOPICS, Output, SectorRunner, input_patterns
from vigil.snapshot import AdvanceLog
from vigil.store_writer import StoreWriter
from vigil.tracks.config import TrackerConfig

log = logging.getLogger(__name__)

#: Outputs in one outbox commit at most (a replay's go in commits of this many).
OUTPUTS_HELD = 2048
#: Wall seconds between writes of the buffered outputs to the stores (at 3,500 msg/s five
#: seconds' tracks took about 0.2 s to write, in one pause of the core thread).
STORE_FLUSH_S = 1.0

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


class SectorService(Restarts):
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
    snapshot_every, snapshot_s
        A snapshot of the core's state after this many input messages, or this many wall
        seconds when anything changed, whichever comes first (``0`` turns snapshots off).
    snapshot_min_s
        Wall seconds at least between two snapshots taken for their message count: at
        thousands of messages a second the count alone would have one written every second or
        two (each a fork and a pickling of the whole state).
    snapshot_keep
        Snapshots kept (at least 1); the journal is pruned behind the oldest kept.
    journal_keep
        Journal rows kept behind the snapshots, to recognise a message delivered again.
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
        snapshot_every: int = 5_000,
        snapshot_s: float = 120.0,
        snapshot_min_s: float = 5.0,
        snapshot_keep: int = 2,
        journal_keep: int = 100_000,
        side_probability: float | None = None,
    ) -> None:
        if not idle_s > 0:
            raise ValueError(f"idle_s = {idle_s!r}: expected wall seconds > 0")
        if not (isinstance(snapshot_every, int) and snapshot_every >= 0):
            raise ValueError(f"snapshot_every = {snapshot_every!r}: expected messages >= 0")
        for name, value in (("snapshot_s", snapshot_s), ("snapshot_min_s", snapshot_min_s)):
            if not value >= 0:
                raise ValueError(f"{name} = {value!r}: expected wall seconds >= 0")
        if not (isinstance(snapshot_keep, int) and snapshot_keep >= 1):
            raise ValueError(f"snapshot_keep = {snapshot_keep!r}: expected a count >= 1")
        if not (isinstance(journal_keep, int) and journal_keep >= 0):
            raise ValueError(f"journal_keep = {journal_keep!r}: expected messages >= 0")
        self.snapshot_every, self.snapshot_s = snapshot_every, float(snapshot_s)
        self.snapshot_min_s = float(snapshot_min_s)
        self.snapshot_keep, self.journal_keep = snapshot_keep, journal_keep
        self.site = site
        self.sector = site.sector.name
        self.settings = settings
        self.state_dir = private_dir(state_dir)  # 0700 when made here
        self.store_dir = Path(store_dir) if store_dir is not None else self.state_dir
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.hold_s, self.tick_s, self.idle_s = hold_s, tick_s, idle_s
        self.tracker, self.rules = tracker, rules
        if side_probability is not None and not 0.5 <= side_probability < 1:
            raise ValueError(f"side_probability = {side_probability!r}: expected 0.5 <= p < 1")
        #: The crossing monitor's side rule (see
        #: :func:`vigil.geo.crossing_monitor.side_probability_for`); None: the hysteresis alone.
        self.side_probability = side_probability
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
        self._patterns = input_patterns(self.sector)
        #: The input side, a child process started by the core thread after the replay.
        self.in_bus = InputProcess(
            input_spec(
                self.sector,
                settings,
                self.client_id,
                self._patterns,
                self.state_dir,
                journal_synchronous=journal_synchronous,
            )
        )
        self.runner: SectorRunner | None = None
        #: Input messages handed to the core so far (journal order), replayed ones included.
        self.handled = 0
        self.report: StartReport | None = None
        self._replaying = False
        self._stopping = threading.Event()
        self._input_idle = True  # the last wait for input got nothing
        self._last_seq = 0  # the journal position of the last message the input handed over
        self._input_restarts = 0
        self._ready = threading.Event()
        self._status_writer = LatestFile(self.state_dir / "status.json")
        self._failed: BaseException | None = None
        self._last_input = time.monotonic()
        self._was_connected = False
        self._core_thread: threading.Thread | None = None
        #: What the newest snapshot covers: journal position, messages handled, advance id.
        self._snap = (0, 0, 0)
        self._snap_wall = time.monotonic()
        self._snap_advances: dict[int, int] = {}  # snapshot seq -> advance id it covers
        self._advance_id = 0
        self.snapshot_counts: dict[str, int] = {"written": 0, "failed": 0, "pruned": 0}
        #: Commits and sends the outputs (outbox, broker, channels) off the core thread.
        self._writer = OutputWriter(self._send_outputs, "vigil-output", OUTPUTS_HELD)
        #: Writes the stores and prunes the journal off the core thread (once live).
        self._stores = StoreWriter("vigil-stores")

    # -- start: replay the journal, then go live ------------------------------------------------

    def start(self, timeout: float = 30.0) -> StartReport:
        """Rebuild the state from the journal, subscribe and connect.

        The core (runner, stores) lives in one thread of its own, which replays the journal
        first, then starts the input process and takes its batches.

        Raises
        ------
        ConnectionError
            When the broker is not reached within ``timeout`` seconds (the buses go on trying;
            :attr:`report` is set).
        RuntimeError
            When the replay failed, or an input process of an earlier run on this state folder
            is still alive after 30 s.
        """
        lock = Path(self.in_bus.spec.lock_path)
        if not wait_for_lock(lock, 30.0):
            raise RuntimeError(f"{lock}: held by another process (an earlier run's input?)")
        self._core_thread = threading.Thread(target=self._core_loop, name="vigil-core", daemon=True)
        self._core_thread.start()
        self._ready.wait()
        if self._failed is not None:
            raise RuntimeError(f"replay of {self.journal.path} failed") from self._failed
        self.out_bus.start()
        assert self.report is not None
        if not self.in_bus.live_event.wait(timeout):
            s = self.settings
            raise ConnectionError(
                f"MQTT broker {s.host}:{s.port} not reached as {self.client_id!r} "
                f"within {timeout:g} s: {self.in_bus.last_error or 'no answer'}"
            )
        return self.report

    def _ahead(self, topic: str, msg: Wire, err: MessageError) -> None:
        if not self._replaying:  # reported when it arrived, before the restart
            self.in_bus.quarantine(topic, encode(msg), err)

    def _output(self, topic: str, msg: Wire) -> None:
        """A new output: its retained state at once; the message to the writer thread, which
        commits what came while it was busy in one transaction and sends it (:meth:`_send_outputs`):
        a tick's tracks go out while the tick goes on. A snapshot or a stop waits for it."""
        self.state.before_output(topic, msg)
        self._writer.put([(topic, msg)])

    def _send_outputs(self, pending: list[tuple[str, Wire]]) -> None:
        """Outputs into the outbox in one commit and out, then to the channels (writer thread)."""
        try:
            self.out_bus.publish_many(pending)
        except Exception:  # as a failed publish in the bus's delivery was: logged
            log.exception("publishing %d outputs failed", len(pending))
        for (_, msg), channel in itertools.product(pending, self.channels):
            try:
                channel.send(msg)
            except Exception:  # a dispatch channel must not stop the sector
                log.exception("dispatch to %s failed", type(channel).__name__)

    def _replay(self) -> StartReport:
        report = super()._replay()
        self._writer.drain()  # what the replay made past the outbox's count
        return report

    def _drain_outputs(self) -> None:
        self._writer.drain()  # a snapshot counts the outputs so far as in the outbox

    # -- the core thread -------------------------------------------------------------------------

    def _core_loop(self) -> None:
        _name_os_thread("vigil-core")
        try:
            self.report = self._replay()
            self._last_seq = self.journal.last_seq  # nothing writes it until the input starts
            self._seq_of = (self.handled, self._last_seq)
            warm_up()
            assert self.runner is not None
            self._stores.attach(self.runner.core)
            self.in_bus.start()  # from this thread: the child dies with it
        except BaseException as exc:  # handed to start(), which raises
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        runner = self.runner
        assert runner is not None
        runner.checked_inputs = True  # live input comes decoded (checked) by the input bus
        last_periodic = last_flush = time.monotonic()
        stop_asked = 0.0
        self._write_status()
        while True:
            if self._stopping.is_set() and not stop_asked:
                stop_asked = time.monotonic()
                self.in_bus.request_stop()
            try:
                batch = self.in_bus.recv(0.05)
            except EOFError:
                if stop_asked:
                    break
                self._input_ended(runner)
                continue
            if stop_asked and time.monotonic() - stop_asked > 60.0:
                log.error("the input process did not end within 60 s of the stop")
                break
            self._input_idle = not batch
            if batch:
                self._last_input = time.monotonic()
                self._last_seq = batch[-1][0]
            for _, topic, payload in batch:
                self._handle(runner, topic, trusted_decode(payload))
            if batch:
                self._seq_of = (self.handled, self._last_seq)
            now = time.monotonic()
            if now - last_periodic >= 0.1:
                last_periodic = now
                try:
                    self._idle_step(runner, now)
                    if now - last_flush >= STORE_FLUSH_S:
                        last_flush = now
                        runner.core.flush_stores()
                    self._reap_snapshot()
                    if self._snapshot_due(now) and self._snap_child is None:
                        self._snap_wall = now
                        self._start_snapshot(runner)
                    self._write_status()
                except Exception:  # the clock must go on; the error is logged
                    log.exception("periodic step failed")
        if self.snapshot_every or self.snapshot_s:
            self._take_snapshot(runner)  # a clean stop: the next start replays nothing
        self._writer.drain()
        self._stores.detach()
        runner.close()
        self._status_writer.stop()
        self._write_status(wait=True)

    def _handle(self, runner: SectorRunner, topic: str, msg: Wire) -> None:
        self.handled += 1
        try:
            runner.handle(topic, msg)
        except Exception:  # one bad message must not stop the sector
            log.exception("handling %s failed", topic)
            runner.counts["handler_error"] += 1

    def _idle_step(self, runner: SectorRunner, now: float) -> None:
        connected = self.in_bus.connected
        if not connected or not self._was_connected:
            # No input because we cannot hear it is not a quiet sector.
            self._last_input = now
            self._was_connected = connected
            return
        if not math.isfinite(runner.max_time) or self.in_bus.queued or not self._input_idle:
            return
        quiet = now - self._last_input - self.idle_s
        if quiet < 0:
            return
        target = runner.max_time + math.floor(quiet / self.tick_s) * self.tick_s
        if target <= runner.watermark:
            return
        self._advance_id = self.advances.record(self.handled, target)
        runner.advance_to(target)

    def _write_status(self, wait: bool = False) -> None:
        """Hand the status to the writer thread (the newest replaces one not yet written: a
        slow file system does not hold up the core); ``wait``: write it here, now."""
        r = self.runner
        if r is None:
            return
        status = {
            "sector": self.sector,
            "wall": time.time(),
            "connected": self.in_bus.connected,
            "handled": self.handled,
            "queued": self.in_bus.queued,
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
            "snapshots": {**self.snapshot_counts, "seq": self._snap[0], "handled": self._snap[1]},
            "channels": {type(c).__name__: dict(c.counts) for c in self.channels},
        }
        text = dumps(status, indent=1) + "\n"
        if wait:
            self._status_writer.write(text)
        else:
            self._status_writer.hand(text)

    # -- life ------------------------------------------------------------------------------------

    def status(self) -> dict:
        """The service's latest ``status.json`` (rewritten every 0.1 s by the core thread)."""
        return json.loads((self.state_dir / "status.json").read_text())

    def close(self, timeout: float = 10.0) -> None:
        """Stop cleanly: stop taking input, let the core finish what it was given and flush its
        stores, send what is left. Messages journaled but not yet handled are replayed at the
        next start."""
        self._stopping.set()  # the core thread stops the input, takes the rest, snapshots
        if self._core_thread is not None and self._core_thread.is_alive():
            self._core_thread.join(timeout + 90.0)
        self.in_bus.join(timeout)
        self._writer.close(timeout)
        self._stores.close(timeout)
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


def _name_os_thread(name: str) -> None:
    """Name the calling thread for the OS too (Linux, 15 bytes: ``top -H``, ``/proc``)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass
