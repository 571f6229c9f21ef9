"""The MQTT input side in a process of its own: receive, check, journal, acknowledge.

A sector service spends most of its interpreter time on receiving (paho's pure-Python packet
handling, decoding and checking each message, the journal's transactions), and under one
interpreter lock that time is taken from the core. :class:`InputProcess` runs that part in a
child process, a fresh interpreter (``python -m vigil.ingest.mqtt_process``: nothing of the
caller's main module runs again there, as with ``multiprocessing``'s spawn): an
:class:`~vigil.ingest.mqtt.MqttBus` with the journal, the quarantine file and the quarantine
reports, whose receiver hands each journal transaction's accepted messages, after their
PUBACKs, to the parent over a pipe as one batch of ``(seq, topic, payload)``. The parent
decodes the payloads again without the checks (they passed them on the way in:
:func:`trusted_decode`).

What holds
    A message is acknowledged only once its journal transaction is committed, as in the
    bus; what the child journaled and the parent had not handled when either died is in the
    journal, after the parent's last snapshot, and replayed at the next start. The pipe is
    bounded (the OS's buffer and one batch of at most 512 messages): a parent that falls
    behind blocks the child's ingest thread, which stops acknowledging, so the broker stops
    at its receive maximum. The child dies with the parent (``PR_SET_PDEATHSIG`` and a check
    of its parent's id) and holds an exclusive lock on ``lock_path`` while it lives, so a
    new service can wait for an old child to be gone before it reads the journal
    (:func:`wait_for_lock`).

The child reports its connection, counts and quarantine counts about every 0.1 s; the parent
forwards the messages it refuses itself (a time too far ahead, a wrong source) to the
child's quarantine, so that one process writes the quarantine file.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from vigil.ingest.mqtt_settings import MqttSettings
from vigil.ingest.schema import DEFAULT_MAX_SKEW_S, Message, MessageError, Wire

log = logging.getLogger("vigil.ingest.mqtt")

#: One batch from the child: ``(seq, topic, payload)`` per accepted message, journal order.
Batch = list[tuple[int, str, bytes]]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_trusted = msgspec.json.Decoder(Message)
#: How often the child reports its state, seconds.
STATUS_S = 0.1


def trusted_decode(payload: bytes) -> Wire:
    """Decode a payload that :func:`~vigil.ingest.schema.decode` accepted before (the journal's
    accepted messages): types only, without the value checks again."""
    return _trusted.decode(payload)  # type: ignore[return-value]


@dataclass(frozen=True)
class InputSpec:
    """What the child needs to build its bus (picklable)."""

    sector: str
    settings: MqttSettings
    client_id: str
    patterns: tuple[str, ...]
    journal_path: str
    journal_synchronous: str
    outbox_path: str | None
    quarantine_path: str | None
    lock_path: str
    max_skew_s: float


def wait_for_lock(path: Path, timeout: float) -> bool:
    """Wait until no process holds ``path``'s lock (an input child of an earlier run that has
    not died yet); True when free within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
    finally:
        os.close(fd)


class InputProcess:
    """The parent's handle on the input child: batches in, refusals out, its reported state.

    Parameters
    ----------
    spec
        The child's bus, journal and files.

    Attributes
    ----------
    counts, quarantine_counts
        The child's bus's counts and quarantine counts, as last reported.
    connected
        Whether the child's bus was connected and live at its last report.
    last_error
        The child's last connection problem.
    queued
        Messages the child had received and not yet journaled at its last report.
    """

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self.counts: dict[str, int] = {}
        self.quarantine_counts: dict[str, int] = {}
        self.connected = False
        self.live_event = threading.Event()
        self.last_error: str | None = None
        self.queued = 0
        self.ended = False
        self._proc: Any = None
        self._data: Any = None
        self._ctl: Any = None
        self._ctl_lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the child was started and has not ended."""
        return self._proc is not None and not self.ended

    def start(self) -> None:
        """Start the child; it connects in the background. Call it from a thread that lives as
        long as the child should (the child gets SIGKILL when that thread ends)."""
        data_r, data_w = multiprocessing.Pipe(duplex=False)
        ctl_r, ctl_w = multiprocessing.Pipe(duplex=False)
        fds = (data_w.fileno(), ctl_r.fileno())
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vigil.ingest.mqtt_process", *map(str, fds)],
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        finally:
            data_w.close()
            ctl_r.close()
        ctl_w.send_bytes(pickle.dumps((self.spec, os.getpid())))
        self._proc, self._data, self._ctl = proc, data_r, ctl_w
        self.ended = False
        self.connected = False
        self.live_event.clear()

    def recv(self, timeout: float) -> Batch:
        """The next batch of accepted messages (empty when none came within ``timeout`` s).

        Raises
        ------
        EOFError
            When the child has ended (after a stop it asked for, or it died).
        """
        data = self._data
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                if not data.poll(max(left, 0.0)):
                    return []
                kind, body = _decode(data.recv_bytes())
            except (EOFError, OSError):
                self._ended()
                raise EOFError("the input process ended") from None
            if kind == "b":
                return body
            if kind == "s":
                self._status(body)
            elif kind == "end":
                self._status(body)
                self._ended()
                raise EOFError("the input process ended")
            if left <= 0:
                return []

    def _status(self, body: dict) -> None:
        self.counts = body["counts"]
        self.quarantine_counts = body["quarantine"]
        self.last_error = body["last_error"]
        self.queued = body["queued"]
        self.connected = body["connected"]
        if self.connected:
            self.live_event.set()

    def _ended(self) -> None:
        self.ended = True
        self.connected = False
        self.live_event.clear()

    def quarantine(self, topic: str, raw: bytes, err: MessageError) -> None:
        """Have the child quarantine a message (file, counts and report), as its bus would."""
        value = err.value if isinstance(err.value, str | int | float | None) else repr(err.value)
        self._send_ctl(["q", topic, raw, err.field, value, err.expected, err.reason])

    def request_stop(self) -> None:
        """Ask the child to close its bus (what it journaled still comes) and end."""
        self._send_ctl(["stop"])

    def _send_ctl(self, msg: list) -> None:
        if not self.running:
            log.warning("input process not running: %s not sent", msg[0])
            return
        try:
            with self._ctl_lock:
                self._ctl.send_bytes(_encode(msg))
        except OSError as exc:
            log.warning("input process unreachable (%s): %s not sent", exc, msg[0])

    def join(self, timeout: float) -> None:
        """Wait for the child to exit (killed after ``timeout`` seconds) and close the pipes."""
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("input process did not end within %g s: killed", timeout)
            proc.kill()
            proc.wait(5.0)
        for conn in (self._data, self._ctl):
            with contextlib.suppress(OSError):
                conn.close()
        self._proc = None
        self._ended()

    @property
    def pid(self) -> int | None:
        """The child's process id (``None`` before it starts)."""
        return None if self._proc is None else self._proc.pid

    @property
    def exitcode(self) -> int | None:
        """The child's exit status once it has exited."""
        return None if self._proc is None else self._proc.poll()


# -- the child ----------------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    with contextlib.suppress(Exception):  # Linux only; the parent-id check below still runs
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(3)


def _ignore(topic: str, msg: Wire) -> None:  # the sink gets the messages
    return None


def _report(bus: Any, queued: int) -> dict:
    return {
        "connected": bool(bus.connected),
        "counts": dict(bus.counts),
        "quarantine": dict(bus.quarantine_counts),
        "last_error": bus.last_error,
        "queued": queued,
    }


def _child(data_fd: int, ctl_fd: int) -> None:
    """``python -m vigil.ingest.mqtt_process DATA_FD CTL_FD``: the first message on the control
    pipe is the pickled ``(spec, parent pid)``, from the parent that started this process."""
    from multiprocessing.connection import Connection

    data = Connection(data_fd, readable=False)
    ctl = Connection(ctl_fd, writable=False)
    spec, parent_pid = pickle.loads(ctl.recv_bytes())
    _child_main(spec, data, ctl, parent_pid)


def _child_main(spec: InputSpec, data: Any, ctl: Any, parent_pid: int) -> None:
    """The input process: its bus feeds the pipe until the parent asks it to stop or dies."""
    from vigil.ingest.journal import Journal
    from vigil.ingest.mqtt import MqttBus

    _die_with_parent(parent_pid)
    lock_fd = os.open(spec.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)  # held until this process exits
    send_lock = threading.Lock()

    def send(kind: str, body: Any) -> None:
        raw = _encode([kind, body])
        try:
            with send_lock:
                data.send_bytes(raw)
        except OSError:  # the parent is gone
            os._exit(3)

    journal = Journal(spec.journal_path, synchronous=spec.journal_synchronous)
    bus = MqttBus(
        spec.sector,
        spec.settings,
        spec.client_id,
        outbox_path=spec.outbox_path,
        quarantine_path=spec.quarantine_path,
        journal=journal,
        max_skew_s=spec.max_skew_s,
        sink=lambda batch: send("b", batch),
    )
    for pattern in spec.patterns:
        bus.subscribe(pattern, _ignore)
    stop = threading.Event()

    def control() -> None:
        while True:
            try:
                msg = _decode(ctl.recv_bytes())
            except (EOFError, OSError):
                os._exit(3)  # the parent is gone: the journal holds what was acknowledged
            if msg[0] == "stop":
                stop.set()
                return
            if msg[0] == "q":
                _, topic, raw, field, value, expected, reason = msg
                bus.quarantine(topic, raw, MessageError(field, value, expected, reason))

    threading.Thread(target=control, name="input-control", daemon=True).start()
    bus.start()
    while not stop.wait(STATUS_S):
        if os.getppid() != parent_pid:
            os._exit(3)
        send("s", _report(bus, bus.receiver.backlog))
    bus.close(spec.settings.connect_timeout_s)
    send("end", _report(bus, 0))
    journal.close()


def input_spec(
    sector: str,
    settings: MqttSettings,
    client_id: str,
    patterns: Sequence[str],
    state_dir: Path,
    *,
    journal_synchronous: str = "FULL",
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> InputSpec:
    """The spec of a sector service's input child, with its files in ``state_dir``."""
    return InputSpec(
        sector=sector,
        settings=settings,
        client_id=client_id,
        patterns=tuple(patterns),
        journal_path=str(state_dir / "journal.sqlite"),
        journal_synchronous=journal_synchronous,
        outbox_path=str(state_dir / "in.outbox"),
        quarantine_path=str(state_dir / "quarantine.jsonl"),
        lock_path=str(state_dir / "input.lock"),
        max_skew_s=max_skew_s,
    )


__all__ = ["Batch", "InputProcess", "InputSpec", "input_spec", "trusted_decode", "wait_for_lock"]

if __name__ == "__main__":
    _child(int(sys.argv[1]), int(sys.argv[2]))
