"""The recording file: a sector's messages as received, with their times and the maker's notes.

A recording (format version 2) is JSON lines, gzip-compressed unless asked otherwise:

- a header ``{"vigil_recording": 2, "sector": ..., "started": ..., "meta": {...}}``, where
  ``meta`` (optional) is plain data that whoever made the recording reads back with its own
  types (the replay benchmark keeps its simulator settings, site and truth there);
- then one line per message ``{"t": ..., "topic": ..., "payload": ...}``, ``t`` the receive
  time (UTC seconds) and ``payload`` the bytes as text when they are UTF-8, or ``payload_b64``
  when they are not, so malformed input is kept exactly as it came.

Why this encoding: on a 12-minute benchmark recording (59,944 messages, 21.0 MB of payload)
JSON lines took 28.7 MB, gzip-compressed 4.4 MB (6.0 MB flushed after every message, as
:class:`Recorder` does by default) and gzip-compressed length-framed MessagePack 4.5 MB;
reading took 0.25 s and 0.23 s, both small next to decoding the payloads (1.4 s). JSON lines
keep a recording readable with ``zcat`` and one format for every use. Reading is bounded:
the header may be :data:`MAX_HEADER_BYTES` long and a message line :data:`MAX_LINE_BYTES`;
errors name the file and the line. Files of another version are refused, naming it.

:class:`Recorder` writes a recording and :func:`read_recording` reads one; recording from a
bus or a broker and publishing a recording back are :mod:`vigil.ingest.record_replay`'s.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from vigil.ingest.bus import Bus, QuarantinedMessage, topic_matches
from vigil.ingest.schema import Wire, encode

if TYPE_CHECKING:
    pass

#: The recording layout written and read here; a file of another version is refused.
FORMAT_VERSION = 2
#: Longest header line read, bytes (its ``meta`` included).
MAX_HEADER_BYTES = 64 * 2**20
#: Longest message line read, bytes (a payload, base64 when it is not UTF-8, and its topic).
MAX_LINE_BYTES = 16 * 2**20
_GZIP_MAGIC = b"\x1f\x8b"


class RecordingError(ValueError):
    """A file that is not a recording of this version, or a damaged one: names file and line."""


class RecordingHeader(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """The first line of a recording; ``meta`` is the maker's plain data, if any."""

    vigil_recording: int
    sector: str
    started: float
    meta: dict[str, Any] | None = None


class RecordedMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One recorded message; exactly one of ``payload`` and ``payload_b64`` is set."""

    t: float
    topic: str
    payload: str | None = None
    payload_b64: str | None = None

    @property
    def raw(self) -> bytes:
        """The bytes as they were received."""
        if self.payload_b64 is not None:
            return base64.b64decode(self.payload_b64)
        return (self.payload or "").encode("utf-8")

    @classmethod
    def of(cls, t: float, topic: str, payload: bytes) -> RecordedMessage:
        """The line for ``payload`` received on ``topic`` at ``t`` (UTC seconds)."""
        try:
            return cls(t=t, topic=topic, payload=payload.decode("utf-8"))
        except UnicodeDecodeError:
            return cls(t=t, topic=topic, payload_b64=base64.b64encode(payload).decode("ascii"))


class RecordSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a recording holds: message count, bytes of payload, time span, per-topic counts."""

    path: str
    sector: str
    messages: int
    payload_bytes: int
    started: float
    ended: float
    topics: dict[str, int]


_encoder = msgspec.json.Encoder()
_version_decoder = msgspec.json.Decoder(dict[str, Any])
_header_decoder = msgspec.json.Decoder(RecordingHeader)
_message_decoder = msgspec.json.Decoder(RecordedMessage)


class Recorder:
    """Writes a recording, one message a line. Thread-safe.

    Parameters
    ----------
    out_path
        The file to write (its folder is created).
    sector
        The sector recorded, stored in the header.
    started
        The recording's start, UTC seconds (now when omitted).
    meta
        Plain data (or msgspec structs) for the header, read back by whoever made it; as
        JSON, NaN and infinities become null.
    compress
        gzip the file (about a sixth of the size; see the module's text).
    flush_each
        Flush every message to the operating system as it is written, so that a recorder
        that dies loses nothing it acknowledged (a third larger when compressed).
    overwrite
        Replace an existing file; without it an existing file is refused.

    Raises
    ------
    FileExistsError
        ``out_path`` exists and ``overwrite`` is not set.
    ValueError
        The header, ``meta`` included, is longer than :data:`MAX_HEADER_BYTES`.
    """

    def __init__(
        self,
        out_path: str | Path,
        sector: str,
        *,
        started: float | None = None,
        meta: Any = None,
        compress: bool = True,
        flush_each: bool = True,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(out_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sector = sector
        self.started = time.time() if started is None else started
        self.ended = self.started
        self.messages = 0
        self.payload_bytes = 0
        self.topics: Counter[str] = Counter()
        self._flush_each = flush_each
        self._lock = threading.Lock()
        self._closed = False
        header = RecordingHeader(
            vigil_recording=FORMAT_VERSION, sector=sector, started=self.started, meta=meta
        )
        line = _encoder.encode(header) + b"\n"  # before the file: a bad meta leaves none
        if len(line) > MAX_HEADER_BYTES:
            raise ValueError(
                f"{self.path}: a header of {len(line)} bytes; a reader takes at most "
                f"{MAX_HEADER_BYTES} (keep meta smaller)"
            )
        mode = "wb" if overwrite else "xb"
        try:
            # open for the recorder's life, closed by close()
            if compress:
                self._file: IO[bytes] = gzip.open(self.path, mode, compresslevel=6)  # noqa: SIM115
            else:
                self._file = open(self.path, mode)  # noqa: SIM115
        except FileExistsError:
            raise FileExistsError(
                f"{self.path} exists; a recording is replaced only when asked "
                "(overwrite=True, vigil record --force)"
            ) from None
        self._file.write(line)
        if flush_each:
            self._file.flush()

    def write(self, topic: str, payload: bytes, t: float | None = None) -> None:
        """Append one message received at ``t`` (UTC seconds; now when omitted)."""
        t = time.time() if t is None else t
        data = _encoder.encode(RecordedMessage.of(t, topic, payload)) + b"\n"
        with self._lock:
            if self._closed:
                return
            self._file.write(data)
            if self._flush_each:
                self._file.flush()
            self.messages += 1
            self.payload_bytes += len(payload)
            self.topics[topic] += 1
            self.ended = max(self.ended, t)

    def close(self) -> RecordSummary:
        """Close the file and say what it holds."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._file.close()
        return RecordSummary(
            path=str(self.path),
            sector=self.sector,
            messages=self.messages,
            payload_bytes=self.payload_bytes,
            started=self.started,
            ended=self.ended,
            topics=dict(self.topics),
        )

    def tap(self, bus: Bus, pattern: str | None = None) -> None:
        """Record every valid message a bus delivers on ``pattern`` (the sector's topics by
        default) and the raw bytes of every message it quarantines."""
        pattern = pattern or f"vigil/v1/{self.sector}/#"

        def on_message(topic: str, msg: Wire) -> None:
            self.write(topic, encode(msg))

        def on_bad(q: QuarantinedMessage) -> None:
            if topic_matches(pattern, q.topic):
                self.write(q.topic, q.raw, q.time)

        bus.subscribe(pattern, on_message)
        bus.on_quarantine(on_bad)


def read_recording(
    path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES
) -> tuple[RecordingHeader, Iterator[RecordedMessage]]:
    """The header of a recording (compressed or not) and an iterator over its messages.

    Parameters
    ----------
    path
        The recording.
    max_line_bytes
        Longest message line accepted, bytes.

    Raises
    ------
    RecordingError
        Naming the file and the line: not a recording, a recording of another format
        version, a line too long or not a recorded message, compressed data that is damaged
        or ends early (a recorder stopped without closing; the lines before it are read).
    """
    f = _open(Path(path))
    try:
        header = _read_header(path, f)
    except BaseException:
        f.close()
        raise

    def messages() -> Iterator[RecordedMessage]:
        with f:
            for i in range(2, 2**62):
                line = _read_line(path, f, i, max_line_bytes)
                if not line:
                    return
                if line.strip():
                    yield _message(path, i, line)

    return header, messages()


def read_header(path: str | Path) -> RecordingHeader:
    """The header of a recording alone (its sector, start and ``meta``), the file closed.

    Raises
    ------
    RecordingError
        As :func:`read_recording` does for the first line.
    """
    with _open(Path(path)) as f:
        return _read_header(path, f)


def _open(path: Path) -> IO[bytes]:
    """``path`` for reading, through gzip when it starts with gzip's magic bytes."""
    with open(path, "rb") as f:
        compressed = f.read(2) == _GZIP_MAGIC
    # closed by the caller (read_recording's iterator)
    return gzip.open(path, "rb") if compressed else open(path, "rb")  # noqa: SIM115


def _read_line(path: str | Path, f: IO[bytes], i: int, limit: int) -> bytes:
    """Line ``i`` of ``f`` (empty at the end), refused when longer than ``limit`` bytes."""
    try:
        line = f.readline(limit + 1)
    except EOFError:
        raise RecordingError(
            f"{path}: the compressed data ends inside line {i} (a recorder stopped without "
            "closing the file?); the lines before it were read"
        ) from None
    except (OSError, zlib.error) as exc:
        raise RecordingError(f"{path}: line {i}: damaged compressed data ({exc})") from None
    if len(line) > limit:
        raise RecordingError(f"{path}: line {i} is longer than {limit} bytes")
    return line


def _read_header(path: str | Path, f: IO[bytes]) -> RecordingHeader:
    """The header line of ``f``, after checking the file is a recording of this version."""
    try:
        start = f.peek(64)[:64]
    except (OSError, EOFError, zlib.error) as exc:
        raise RecordingError(f"{path}: damaged compressed data at the start ({exc})") from None
    old = re.search(rb"vigil-replay-recording\xa7version([\x00-\x7f])", start)
    if old is not None:  # the gzip MessagePack that benchmarks/bench_replay.py wrote
        raise RecordingError(
            f"{path}: a bench_replay recording of format version {old[1][0]} (MessagePack); "
            f"this Vigil reads recording format version {FORMAT_VERSION} only: record it again"
        )
    first = _read_line(path, f, 1, MAX_HEADER_BYTES) if start.startswith(b"{") else b""
    try:
        version = _version_decoder.decode(first).get("vigil_recording")
    except msgspec.DecodeError:
        version = None
    if not isinstance(version, int):
        raise RecordingError(f"{path}: line 1 is not a Vigil recording header")
    if version != FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format version {version}; this Vigil reads version "
            f"{FORMAT_VERSION} only: record it again"
        )
    try:
        return _header_decoder.decode(first)
    except msgspec.DecodeError as exc:
        raise RecordingError(f"{path}: line 1 is not a Vigil recording header: {exc}") from None


def _message(path: str | Path, i: int, line: bytes) -> RecordedMessage:
    """Line ``i`` as a message; its payload is checked to be exactly one of text or base64."""
    try:
        m = _message_decoder.decode(line)
        if (m.payload is None) == (m.payload_b64 is None):
            raise msgspec.ValidationError("expected exactly one of payload and payload_b64")
        if m.payload_b64 is not None:
            base64.b64decode(m.payload_b64, validate=True)
    except (msgspec.DecodeError, binascii.Error) as exc:
        raise RecordingError(f"{path}: line {i} is not a recorded message: {exc}") from None
    return m


def __getattr__(name: str) -> Any:
    """Keep ``record``, ``replay`` and ``ReplaySummary`` importable from here; they live in
    :mod:`vigil.ingest.record_replay`, loaded on first use (it imports this module)."""
    if name in ("record", "replay", "ReplaySummary"):
        from vigil.ingest import record_replay

        return getattr(record_replay, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMAT_VERSION",
    "MAX_HEADER_BYTES",
    "MAX_LINE_BYTES",
    "RecordSummary",
    "RecordedMessage",
    "Recorder",
    "RecordingError",
    "RecordingHeader",
    "read_header",
    "read_recording",
]
