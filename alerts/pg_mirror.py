"""Mirroring a sector's history into PostgreSQL/PostGIS while ``vigil run`` runs.

With ``VIGIL_DB`` set (a DSN; never logged with its password), the sector core writes each
flush of tracks, crossings and alerts to its SQLite stores and, through :class:`HistoryMirror`,
to :class:`~vigil.alerts.store_pg.PgHistoryStore` in schema ``VIGIL_DB_SCHEMA`` (default: the
sector's name), so that several sectors can share one database.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import psycopg

from vigil.alerts.store_pg import PgHistoryStore, dsn_from
from vigil.ingest.schema import Alert, Crossing, Track


class HistoryMirror:
    """What a sector's core flushes to its SQLite stores, written to PostgreSQL as well.

    The embedded stores stay the sector's own record (rebuilt from the journal at start); the
    mirror keeps the shared history. A database that fails (down, full) does not stop the
    sector: the batch is counted in :attr:`failed_batches` and the error logged without the
    password. Enabled by :meth:`from_env` when :data:`DSN_ENV` is set.
    """

    def __init__(self, dsn: str, schema: str) -> None:
        self.store = PgHistoryStore(dsn, schema)
        self.failed_batches = 0

    @classmethod
    def from_env(cls, sector: str) -> HistoryMirror | None:
        """A mirror to ``$VIGIL_DB`` in schema ``$VIGIL_DB_SCHEMA`` (default: the sector's
        name), or None when ``VIGIL_DB`` is unset."""
        dsn = dsn_from(None)
        if dsn is None:
            return None
        return cls(dsn, os.environ.get("VIGIL_DB_SCHEMA") or sector)

    def write(
        self, tracks: Sequence[Track], crossings: Sequence[Crossing], alerts: Sequence[Alert]
    ) -> None:
        """Write one flush's batches (tracks, then alerts, then crossings, as the core does)."""
        try:
            self.store.write(tracks)
            self.store.write_alerts(alerts, skip_stored_versions=True)  # replayed tails
            self.store.write_crossings(crossings)
        except (psycopg.Error, ConnectionError) as exc:
            self.failed_batches += 1
            logging.getLogger(__name__).warning(
                "history %s: batch not written (%s)", self.store.name, type(exc).__name__
            )

    def close(self) -> None:
        """Close the connection."""
        self.store.close()
