"""Quarantine records: a local JSON-lines file and the report published on the quarantine topic.

Each record holds the reason, the offending field, the error text, the topic, the receive time
(UTC seconds), the message's size and its raw bytes in base64 (the first 4 KiB: a record is
bounded however large the message was), so what arrived can be looked at even when it could
not be read.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import msgspec

from vigil.ingest.bus import QuarantinedMessage
from vigil.ingest.private_files import private_file


class QuarantineRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A quarantined message as written to the file and published on the quarantine topic."""

    time: float
    topic: str
    reason: str
    field: str
    error: str
    raw_b64: str
    #: The message's size in bytes (``raw_b64`` holds at most the bus's
    #: ``QUARANTINE_RAW_BYTES`` of it); ``None`` in records written before sizes were kept.
    size: int | None = None

    @classmethod
    def of(cls, q: QuarantinedMessage) -> QuarantineRecord:
        """The record of a bus's quarantined message."""
        return cls(
            time=q.time,
            topic=q.topic,
            reason=q.reason,
            field=q.field,
            error=q.error,
            raw_b64=base64.b64encode(q.raw).decode("ascii"),
            size=q.size if q.size >= 0 else len(q.raw),
        )

    @property
    def raw(self) -> bytes:
        """The bytes as received (the first ``QUARANTINE_RAW_BYTES`` of them)."""
        return base64.b64decode(self.raw_b64)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(QuarantineRecord)


def report_bytes(q: QuarantinedMessage) -> bytes:
    """The JSON published on ``vigil/v1/{sector}/quarantine`` for a quarantined message."""
    return _encoder.encode(QuarantineRecord.of(q))


class QuarantineFile:
    """Appends quarantine records to a JSON-lines file, one line each, flushed on write.

    Parameters
    ----------
    path
        The file (created, with its folder, when missing; appended to otherwise).
    fsync
        Also fsync after each record (survives a loss of power, slower).
    """

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        private_file(self.path)  # 0600: what devices sent, and why it was refused
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for the bus's lifetime
        self._fsync = fsync
        self._lock = threading.Lock()
        self.written = 0

    def write(self, q: QuarantinedMessage) -> None:
        """Append one record (usable directly as a :meth:`Bus.on_quarantine` hook)."""
        line = _encoder.encode(QuarantineRecord.of(q)) + b"\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
            self.written += 1

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


def read_quarantine(path: str | Path) -> list[QuarantineRecord]:
    """Every record in a quarantine file, in order.

    Raises
    ------
    ValueError
        Naming the line that is not a quarantine record.
    """
    out: list[QuarantineRecord] = []
    with open(path, "rb") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                out.append(_decoder.decode(line))
            except msgspec.DecodeError as exc:
                raise ValueError(f"{path}: line {i} is not a quarantine record: {exc}") from None
    return out


__all__ = ["QuarantineFile", "QuarantineRecord", "read_quarantine", "report_bytes"]
