"""Snapshots of a sector runner's state, so a restart replays only the journal after one.

What a snapshot holds
    The dynamic state of a :class:`~vigil.runner.SectorRunner` and everything behind it: the
    reorder buffer and clocks, the output count (which lines the replay up with the outbox),
    fusion and the tracker's table, the crossing monitor, the alert engine, its book and the
    alert service, plus the state of whatever else the caller names (the service's retained
    state). The static parts (the site, its frame and border, the settings, the bus, the stores,
    callbacks, locks) are not written: :func:`restore` loads the state into a runner built
    afresh from the same deployment, whose static parts stay as built.

How
    :mod:`pickle`, because the state spans about ten classes of arrays, dicts of dataclasses,
    deques and msgspec structs, and an explicit schema for each would have to follow every
    change to them. References from the state to the static parts and to the objects the bus
    holds (the runner, the core, the alert service, ...) are written as names
    (``persistent_id``) and bound to the fresh objects on load, so the bus's subscriptions
    stay valid. Pickle runs code while it loads, so a snapshot is only ever read from the
    service's own private state folder (0700), that the service itself wrote: :func:`read`
    refuses a file not owned by this user or writable by group or others, or in a folder
    that is, and checks a magic, a format version and a SHA-256 of the body before it
    unpickles anything. State whose attribute names differ from the freshly built objects'
    (another version of the classes) is refused; this relies on the stateful classes making
    every attribute in ``__init__`` (true of all of them today; tests/test_restart.py).

The file
    ``snapshot-{seq:012d}.bin``: :data:`MAGIC`, the version (2 bytes, big-endian), the body's
    length (8 bytes) and SHA-256 (32 bytes), then the body: two pickles, the caller's
    ``meta`` (plain data: the journal position and such, readable without loading the state)
    and the state. Written to a temporary
    file, fsynced, renamed into place, and the folder fsynced: a crash leaves the old
    snapshot or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import logging
import os
import pickle
import signal
import sqlite3
import stat
import struct
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.ingest.private_files import private_file

log = logging.getLogger(__name__)

MAGIC = b"VIGILSNAP\n"
VERSION = 1
_HEAD = struct.Struct(">HQ32s")
PREFIX = "snapshot-"
SUFFIX = ".bin"

#: Attributes of each stateful object that are built from the deployment and settings (or are
#: the bus, stores, callbacks and locks), never written; everything else is state. Only what
#: holds no reference to state may be listed: the engine's rule context and the book's unit
#: planner hold the live dicts of tracks and units, so they are written (their references to
#: the layout are written as names).
STATIC: dict[str, tuple[str, ...]] = {
    "runner": (
        "sector", "hold_s", "tick_s", "publish", "skip_outputs", "max_ahead_s", "on_ahead",
        "on_refused", "devices", "log", "bus", "core", "checked_inputs", "_passed",
        "_passed_devices",
    ),
    "core": (
        "site", "bus", "sector", "frame", "border", "fusion", "monitor", "engine", "alerts",
        "tracks_store", "events", "devices", "_subs", "tick_started", "_side_geometry",
        "store_writer",
    ),
    "alerts": ("engine", "bus", "sector", "channels", "on_command", "_subs", "latencies_s"),
    "engine": (
        "site", "rules", "sector", "frame", "border", "zones", "sensor_xy", "cameras", "roads",
        "book",
    ),
    "book": ("sector", "frame", "rules"),
    "fusion": ("frame", "config", "ground_sensors", "coverage", "id_prefix"),
    "monitor": ("border", "h", "entry_m", "entry_rise_m", "side_probability", "side_hold_s"),
    "retained": ("sector", "publisher", "live", "counts", "_lock"),
}  # fmt: skip

_SCALARS = (str, bytes, int, float, bool, type(None))


class SnapshotError(Exception):
    """A snapshot file that cannot be used (and why)."""


def roots(runner: Any, **extra: Any) -> dict[str, Any]:
    """The stateful objects behind a runner, by name (``extra`` adds the caller's own)."""
    core = runner.core
    out = {
        "runner": runner,
        "core": core,
        "alerts": core.alerts,
        "engine": core.engine,
        "book": core.engine.book,
        "fusion": core.fusion,
        "monitor": core.monitor,
    }
    out.update(extra)
    return out


def _static_refs(objs: dict[str, Any]) -> dict[int, str]:
    """Names for the objects that are not written: the roots themselves, their static
    attributes, and the engine's rule objects (which only hold its context)."""
    refs: dict[int, str] = {}
    for name, obj in objs.items():
        refs[id(obj)] = f"root:{name}"
        for attr in STATIC.get(name, ()):
            value = getattr(obj, attr, None)
            if not isinstance(value, _SCALARS):
                refs.setdefault(id(value), f"attr:{name}.{attr}")
    engine = objs.get("engine")
    if engine is not None:
        site = getattr(engine, "site", None)
        if site is not None:
            refs.setdefault(id(site), "attr:engine.site")
    return refs


def _resolve(objs: dict[str, Any], ref: str) -> Any:
    kind, _, name = ref.partition(":")
    if kind == "root":
        return objs[name]
    if kind == "attr":
        root, _, attr = name.partition(".")
        return getattr(objs[root], attr)
    raise SnapshotError(f"unknown reference {ref!r} in the snapshot")


def capture(objs: dict[str, Any], meta: dict[str, Any]) -> bytes:
    """The snapshot body of ``objs`` (from :func:`roots`) with the caller's ``meta``."""
    refs = _static_refs(objs)
    state = {}
    for name, obj in objs.items():
        skip = set(STATIC.get(name, ()))
        state[name] = {k: v for k, v in vars(obj).items() if k not in skip}
    buf = io.BytesIO()

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> str | None:
            # called for every object written: kept to one lookup (refs holds no scalar's
            # id, see _static_refs, and a live object's id is its own)
            return refs.get(id(obj))

    pickle.dump(meta, buf, protocol=pickle.HIGHEST_PROTOCOL)
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return buf.getvalue()


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise SnapshotError(f"a snapshot's meta holds {module}.{name}: only plain data expected")


def capture_meta(body: bytes) -> dict[str, Any]:
    """The meta of a body made by :func:`capture` (plain data only; the state is not loaded)."""
    meta = _PlainUnpickler(io.BytesIO(body)).load()
    if not isinstance(meta, dict):
        raise SnapshotError(f"a snapshot's meta is a {type(meta).__name__}, not a dict")
    return meta


def restore(objs: dict[str, Any], body: bytes) -> dict[str, Any]:
    """Load a body made by :func:`capture` into freshly built ``objs``; return its meta."""

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            return _resolve(objs, str(pid))

    stream = io.BytesIO(body)
    meta = _PlainUnpickler(stream).load()
    state = _Unpickler(stream).load()
    missing = set(state) - set(objs)
    if missing:
        raise SnapshotError(f"the snapshot holds state for {sorted(missing)} that is not here")
    for name, values in state.items():
        # written by code whose objects had other attributes: its state does not fit these
        skip = set(STATIC.get(name, ()))
        have = {k for k in vars(objs[name]) if k not in skip}
        if set(values) != have:
            raise SnapshotError(
                f"the snapshot's {name} has attributes {sorted(set(values) ^ have)} that this "
                "version's has not, or lacks them (made by another version of Vigil)"
            )
    for name, values in state.items():
        vars(objs[name]).update(values)
    return meta


def fork_write(
    folder: Path,
    seq: int,
    objs: dict[str, Any],
    meta: dict[str, Any],
    more_meta: tuple[int, int] | None = None,
) -> int:
    """Write the snapshot of ``objs`` as they are now from a forked process; return its pid.

    The fork sees the memory as it was at the call (copy-on-write), so the caller goes on
    changing its state at once while the child pickles and writes (:func:`capture`,
    :func:`write`) and exits with status 0 when the file is in place (1 if not). The caller
    reaps it (``os.waitpid``). The child touches nothing but the state it pickles and the
    file it writes (no locks, stores, logging or sockets of the parent), leaves with
    ``os._exit`` (no atexit handlers, no buffers flushed twice), and dies with its parent
    (``PR_SET_PDEATHSIG``): a killed service leaves at most a temporary file, which the next
    snapshot's :func:`remove_stale` clears.

    ``more_meta``: a pipe's ``(read end, write end)`` (:func:`os.pipe`); the caller keeps the
    write end (its read end is closed here). The child first reads a JSON object from the
    pipe, to its end, and adds it to ``meta``; when the caller closes the pipe with nothing
    written (what the meta stands for did not come true), the child writes nothing and exits
    1. So the caller can fork at once and say later what only another thread can know (the
    stores' marks once their writes are done).
    """
    parent = os.getpid()
    pid = os.fork()
    if pid:
        if more_meta is not None:
            os.close(more_meta[0])
        return pid
    code = 1
    try:
        _die_with_parent(parent)
        if more_meta is not None:
            os.close(more_meta[1])  # the parent's end: the read below ends when it closes it
            more = _read_all(more_meta[0])
            if not more:
                os._exit(1)
            meta = {**meta, **json.loads(more)}
        write(folder, seq, capture(objs, meta))
        code = 0
    except BaseException:  # noqa: BLE001 - reported by the exit status; the parent logs it
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        os._exit(code)


def _read_all(fd: int) -> bytes:
    """Everything a pipe gives until its writers close it."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(Exception):  # Linux; the check below still runs elsewhere
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


# -- files ------------------------------------------------------------------------------------


def path_for(folder: Path, seq: int) -> Path:
    """The snapshot file covering the journal up to ``seq``."""
    return folder / f"{PREFIX}{seq:012d}{SUFFIX}"


def write(folder: Path, seq: int, body: bytes) -> Path:
    """Write a snapshot atomically (temporary file, fsync, rename, fsync of the folder)."""
    path = path_for(folder, seq)
    tmp = path.with_name(path.name + ".tmp")
    head = MAGIC + _HEAD.pack(VERSION, len(body), hashlib.sha256(body).digest())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return path


def _check_owner(path: Path, st: os.stat_result, what: str) -> None:
    if st.st_uid != os.getuid():
        raise SnapshotError(f"{what} {path} belongs to uid {st.st_uid}, not this user")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SnapshotError(f"{what} {path} is writable by group or others")


def read(path: Path) -> bytes:
    """A snapshot's body, checked (owner, permissions, magic, version, length, SHA-256).

    Raises
    ------
    SnapshotError
        Saying what is wrong with the file.
    """
    _check_owner(path.parent, path.parent.stat(), "the snapshot folder")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise SnapshotError(f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        _check_owner(path, os.fstat(f.fileno()), "snapshot")
        data = f.read()
    n = len(MAGIC) + _HEAD.size
    if len(data) < n or not data.startswith(MAGIC):
        raise SnapshotError(f"{path}: not a Vigil snapshot (no header)")
    version, length, digest = _HEAD.unpack_from(data, len(MAGIC))
    if version != VERSION:
        raise SnapshotError(f"{path}: format version {version}, this Vigil reads {VERSION}")
    body = data[n:]
    if len(body) != length:
        raise SnapshotError(f"{path}: {len(body)} bytes of body, the header says {length}")
    if hashlib.sha256(body).digest() != digest:
        raise SnapshotError(f"{path}: checksum mismatch (a damaged or partial file)")
    return body


@dataclass(frozen=True)
class SnapshotFile:
    """A snapshot file on disk and the journal position it covers."""

    seq: int
    path: Path


def listing(folder: Path) -> list[SnapshotFile]:
    """The snapshot files in ``folder``, newest (highest journal position) first."""
    out = []
    for p in folder.glob(f"{PREFIX}*{SUFFIX}"):
        digits = p.name[len(PREFIX) : -len(SUFFIX)]
        if digits.isdigit():
            out.append(SnapshotFile(int(digits), p))
    return sorted(out, key=lambda s: s.seq, reverse=True)


def remove_stale(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` snapshots and any leftover temporary files."""
    gone = [s.path for s in listing(folder)[keep:]]
    gone += list(folder.glob(f"{PREFIX}*{SUFFIX}.tmp"))
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


# -- the stores and the idle advances beside a snapshot --------------------------------------


def store_marks(paths: list[Path]) -> dict[str, dict[str, int]]:
    """The highest rowid of each table of each SQLite store (read after a flush)."""
    out: dict[str, dict[str, int]] = {}
    for path in paths:
        if not path.exists():
            continue
        db = sqlite3.connect(str(path))
        try:
            names = [
                r[0]
                for r in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
            out[path.name] = {
                n: int(db.execute(f'SELECT COALESCE(MAX(rowid), 0) FROM "{n}"').fetchone()[0])
                for n in names
            }
        finally:
            db.close()
    return out


def trim_stores(folder: Path, marks: dict[str, dict[str, int]]) -> int:
    """Delete the stores' rows written after a snapshot (rowid above its marks): the replay
    of the journal after it writes them again. Returns how many rows went."""
    gone = 0
    for name, tables in marks.items():
        path = folder / name
        if not path.exists():
            continue
        db = sqlite3.connect(str(path))
        try:
            with db:
                for table, mark in tables.items():
                    gone += db.execute(f'DELETE FROM "{table}" WHERE rowid > ?', (mark,)).rowcount
        finally:
            db.close()
    return gone


_ADVANCE_SCHEMA = """
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
        self._db.executescript(_ADVANCE_SCHEMA)

    def record(self, handled: int, watermark: float) -> int:
        """Commit one advance (before it is applied); return its id."""
        cur = self._db.execute(
            "INSERT INTO advance (handled, watermark, wall) VALUES (?, ?, ?)",
            (handled, watermark, time.time()),
        )
        return int(cur.lastrowid)

    def since(self, after_id: int = 0) -> list[tuple[int, int, float]]:
        """``(id, handled, watermark)`` of the advances after ``after_id``, in order."""
        return [
            (int(i), int(h), float(w))
            for i, h, w in self._db.execute(
                "SELECT rowid, handled, watermark FROM advance WHERE rowid > ? ORDER BY rowid",
                (after_id,),
            )
        ]

    def all(self) -> list[tuple[int, float]]:
        """Every advance kept, in the order they were made: ``(handled, watermark)``."""
        return [(h, w) for _, h, w in self.since(0)]

    def prune(self, through_id: int) -> None:
        """Forget the advances up to ``through_id`` (a snapshot covers them)."""
        # the newest row stays, so that rowids are never handed out again
        self._db.execute(
            "DELETE FROM advance WHERE rowid <= ? AND rowid < (SELECT MAX(rowid) FROM advance)",
            (through_id,),
        )

    def close(self) -> None:
        """Close the file."""
        self._db.close()


__all__ = [
    "MAGIC",
    "AdvanceLog",
    "STATIC",
    "VERSION",
    "SnapshotError",
    "SnapshotFile",
    "capture",
    "capture_meta",
    "fork_write",
    "listing",
    "path_for",
    "read",
    "remove_stale",
    "restore",
    "roots",
    "store_marks",
    "trim_stores",
    "write",
]
