"""Operators' labels on tracks: a commander (or an agent) says what a track is, on the live map.

A label is one of :data:`LABELS`. Labels are kept in an append-only table ``track_label`` in
the live map's audit database (SQLite, the file ``vigil serve --audit`` names), each row
written in the same transaction as its audit entry (:meth:`AuditLog.transaction
<vigil.maps.live.audit.AuditLog.transaction>`), so no label goes unaudited and no audit entry
names a label that was not stored. Relabelling adds a row: a track's whole label history is
kept, and its label is the latest row. Times are UTC seconds since the epoch; each row also
keeps the sector's time zone (IANA name) so the label's local time, with its offset, can be
shown and exported.

``vigil labels export`` writes the latest label of every track as CSV (:func:`write_csv`,
header :data:`CSV_HEADER`), which ``vigil calibrate classes`` reads. This module needs only
the standard library (no web server), so the export runs without the ``serve`` extra.
"""

from __future__ import annotations

import csv
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The labels an operator may give a track (the tracker's classes).
LABELS: tuple[str, ...] = ("person", "animal", "vehicle", "unknown")
#: A track id as the wire allows it (``vigil.ingest.limits.IDENT_PATTERN``).
TRACK_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$(?!\n)")
#: The export's header, exactly (``vigil calibrate classes`` reads these columns).
CSV_HEADER: tuple[str, ...] = ("track_id", "label", "labelled_at", "user")
#: The audit log's action for a label.
AUDIT_ACTION = "track_label"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS track_label ("
    " sector TEXT NOT NULL, track_id TEXT NOT NULL,"
    " label TEXT NOT NULL CHECK (label IN ('person', 'animal', 'vehicle', 'unknown')),"
    " time REAL NOT NULL, user TEXT NOT NULL, previous TEXT,"
    " zone TEXT NOT NULL DEFAULT 'UTC', track_class TEXT, track_time REAL)",
    "CREATE INDEX IF NOT EXISTS track_label_track ON track_label(sector, track_id)",
)
_COLUMNS = "sector, track_id, label, time, user, previous, zone, track_class, track_time"


class LabelError(ValueError):
    """A label, track id or label file that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class TrackLabel:
    """One label given to a track (a row of ``track_label``).

    ``time`` is when it was given, UTC seconds; ``zone`` the sector's IANA time zone;
    ``previous`` the track's label before it (``None``: its first); ``track_class`` and
    ``track_time`` the tracker's class guess and the track's last time (UTC s) as the map
    showed them when the label was given (``None`` when unknown).
    """

    sector: str
    track_id: str
    label: str
    time: float
    user: str
    previous: str | None = None
    zone: str = "UTC"
    track_class: str | None = None
    track_time: float | None = None

    def local_time(self) -> str:
        """:attr:`time` in the sector's zone as ISO 8601 with its offset, to the second
        (``2026-06-01T02:14:07-07:00``)."""
        return iso_time(self.time, self.zone)

    def view(self) -> dict[str, object]:
        """The label as the live map's page reads it."""
        return {
            "track": self.track_id,
            "label": self.label,
            "time": round(self.time, 3),
            "by": self.user,
            "previous": self.previous,
        }


def zone_info(zone: str) -> ZoneInfo:
    """The IANA zone ``zone``, or UTC when it is not one."""
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def iso_time(t: float, zone: str = "UTC") -> str:
    """UTC seconds ``t`` as ISO 8601 local time in ``zone`` with its offset."""
    return (
        datetime.fromtimestamp(float(t), UTC).astimezone(zone_info(zone)).isoformat("T", "seconds")
    )


def check_label(label: object) -> str:
    """``label`` if it is one of :data:`LABELS`, else :class:`LabelError` saying so."""
    if not isinstance(label, str) or label not in LABELS:
        shown = repr(label)[:60] if isinstance(label, str) else type(label).__name__
        raise LabelError(f"label {shown} is not a label; expected one of {', '.join(LABELS)}")
    return label


def check_track_id(track_id: object) -> str:
    """``track_id`` if it is a track id (:data:`TRACK_ID`), else :class:`LabelError`."""
    if not isinstance(track_id, str) or not TRACK_ID.match(track_id):
        shown = repr(track_id)[:80] if isinstance(track_id, str) else type(track_id).__name__
        raise LabelError(
            f"track id {shown} is not a track id; expected 1 to 64 of A-Z a-z 0-9 _ . -"
        )
    return track_id


class AuditDatabase(Protocol):
    """What :class:`TrackLabels` needs of :class:`~vigil.maps.live.audit.AuditLog`."""

    clock: object

    def transaction(self): ...  # noqa: D102 (a context manager yielding the connection)

    def record(self, user: str, action: str, target: str = "", detail: str = "", *, at=None): ...  # noqa: D102


def _row(r: Sequence[object]) -> TrackLabel:
    return TrackLabel(*r)  # type: ignore[arg-type]


class TrackLabels:
    """One sector's operators' labels, in the audit log's database.

    Parameters
    ----------
    audit
        The live map's :class:`~vigil.maps.live.audit.AuditLog`; the labels table lives in its
        file and every label is written with its audit entry, in one transaction.
    sector
        The sector whose tracks are labelled (several sectors may share one file).
    zone
        The sector's IANA time zone, for the local time shown and exported.
    """

    def __init__(self, audit: AuditDatabase, sector: str, zone: str = "UTC") -> None:
        self.audit = audit
        self.sector = sector
        self.zone = zone if zone_info(zone).key == zone else "UTC"
        with audit.transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    def label(
        self,
        track_id: str,
        label: str,
        user: str,
        *,
        track_class: str | None = None,
        track_time: float | None = None,
    ) -> tuple[TrackLabel, bool]:
        """Give ``track_id`` the label ``label`` in ``user``'s name; returns the track's label
        now and whether it changed (the same label again changes nothing and is not written).

        Raises :class:`LabelError` for a label or track id that is not one.
        """
        check_track_id(track_id)
        check_label(label)
        with self.audit.transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM track_label WHERE sector=? AND track_id=?"
                " ORDER BY rowid DESC LIMIT 1",
                (self.sector, track_id),
            ).fetchone()
            before = _row(row) if row else None
            if before is not None and before.label == label:
                return before, False
            now = float(self.audit.clock())  # type: ignore[operator]
            made = TrackLabel(
                self.sector, track_id, label, now, user,
                before.label if before else None, self.zone, track_class, track_time,
            )  # fmt: skip
            detail = (
                f"{made.previous or '(none)'} -> {label} at {made.local_time()} ({self.zone})"
                f"; sector {self.sector}" + (f"; tracker said {track_class}" if track_class else "")
            )
            self.audit.record(user, AUDIT_ACTION, track_id, detail, at=now)
            db.execute(
                f"INSERT INTO track_label ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    made.sector, made.track_id, made.label, made.time, made.user, made.previous,
                    made.zone, made.track_class, made.track_time,
                ),
            )  # fmt: skip
        return made, True

    def history(self, track_id: str) -> list[TrackLabel]:
        """Every label the track was given, oldest first."""
        with self.audit.transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM track_label WHERE sector=? AND track_id=? ORDER BY rowid",
                (self.sector, track_id),
            ).fetchall()
        return [_row(r) for r in rows]

    def latest(
        self, track_ids: Iterable[str] | None = None, limit: int = 10_000
    ) -> list[TrackLabel]:
        """The latest label of each track (of ``track_ids`` when given; else of the ``limit``
        most recently labelled tracks), oldest first."""
        with self.audit.transaction() as db:
            return _latest(db, self.sector, track_ids, limit)


def _latest(
    db: sqlite3.Connection, sector: str, track_ids: Iterable[str] | None, limit: int
) -> list[TrackLabel]:
    if track_ids is None:
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM track_label WHERE rowid IN (SELECT max(rowid) FROM"
            " track_label WHERE sector=? GROUP BY track_id) ORDER BY rowid DESC LIMIT ?",
            (sector, max(1, int(limit))),
        ).fetchall()
        return [_row(r) for r in reversed(rows)]
    ids = sorted(set(track_ids))
    out: list[TrackLabel] = []
    for i in range(0, len(ids), 500):  # SQLite's bound on parameters
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        out += [
            _row(r)
            for r in db.execute(
                f"SELECT {_COLUMNS} FROM track_label WHERE rowid IN (SELECT max(rowid) FROM"
                f" track_label WHERE sector=? AND track_id IN ({marks}) GROUP BY track_id)",
                (sector, *chunk),
            )
        ]
    return sorted(out, key=lambda x: x.time)


def read_latest(path: str | Path, sector: str | None = None) -> list[TrackLabel]:
    """The latest label of every track of ``sector`` in the label file at ``path`` (the audit
    database), opened read-only; sorted by track id.

    ``sector`` may be left out when the file holds one sector's labels. Raises
    :class:`LabelError` for a missing or unreadable file, or several sectors and none named.
    """
    p = Path(path)
    if not p.is_file():
        raise LabelError(f"no label file {str(path)!r} (the live map's audit database)")
    try:
        db = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise LabelError(f"{path}: cannot open: {exc}") from None
    try:
        db.execute("PRAGMA busy_timeout=5000")
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise LabelError(f"{path}: not a label file (SQLite): {exc}") from None
        if "track_label" not in tables:
            return []
        sectors = [r[0] for r in db.execute("SELECT DISTINCT sector FROM track_label ORDER BY 1")]
        if sector is None:
            if len(sectors) > 1:
                raise LabelError(
                    f"{path} holds labels of several sectors ({', '.join(sectors)}); "
                    "name one with --sector"
                )
            sector = sectors[0] if sectors else ""
        elif sector not in sectors:
            return []
        labels = _latest(db, sector, None, 2**62)
    finally:
        db.close()
    return sorted(labels, key=lambda x: x.track_id)


def write_csv(labels: Iterable[TrackLabel], out: str | Path) -> int:
    """Write ``labels`` as CSV (UTF-8, header :data:`CSV_HEADER`, ``labelled_at`` ISO 8601 with
    the sector's offset) to ``out``, replacing it whole; returns how many rows."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    n = 0
    with tmp.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_HEADER)
        for x in labels:
            w.writerow((x.track_id, x.label, x.local_time(), x.user))
            n += 1
    os.replace(tmp, out)
    return n
