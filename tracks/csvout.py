"""``vigil track``'s input order and output text (:mod:`vigil.tracks.csvfile`): the rows'
canonical order and the tracks' CSV text, both by compiled kernels
(:mod:`vigil.tracks.kernels`), the text written batch by batch through one reused buffer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from vigil.tracks.tracker import kern

#: Status words by status code (``CONFIRMED`` 1, ``COASTING`` 2).
_WORDS = ("", "confirmed", "coasting", "")
_WORD_BYTES = np.frombuffer("".join(_WORDS).encode(), dtype=np.uint8).copy()
_WORD_OFF = np.cumsum([0, *(len(w) for w in _WORDS)]).astype(np.int64)
#: Bytes of text buffered before a write.
_BUFFER = 1 << 21


def canonical_order(t: np.ndarray, sensor: np.ndarray, x: np.ndarray, y: np.ndarray):
    """The rows' order by time, sensor code, x, then y: ``np.lexsort((y, x, sensor, t))``
    (:func:`vigil.tracks.kernels.canonical_order`, a fifth of its time on a sorted file)."""
    order = np.empty(len(t), dtype=np.int64)
    f8 = [np.ascontiguousarray(v, dtype=np.float64) for v in (t, x, y)]
    kern.canonical_order(f8[0], np.ascontiguousarray(sensor, np.int64), f8[1], f8[2], order)
    return order


class TrackWriter:
    """``vigil track``'s output rows, batch by batch: :meth:`add` picks the reported tracks
    (:func:`vigil.tracks.kernels.track_rows`) and formats them
    (:func:`vigil.tracks.kernels.format_rows`) into a buffer written out when full.

    Positions have ``digits`` decimals (8 for degrees, 3 for metres), velocities 3 (mm/s);
    ``to_wgs84`` (east, north in m to lat, lon) converts positions first when given."""

    def __init__(
        self,
        fh: BinaryIO,
        digits: int,
        to_wgs84: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None,
    ) -> None:
        self.fh = fh
        self.digits = digits
        self.to_wgs84 = to_wgs84
        self.rows = 0
        self._seen = np.zeros(1024, dtype=np.bool_)  # by track id: reported once at least
        self._seen_large: set[int] = set()
        self._buf = np.empty(_BUFFER, dtype=np.uint8)
        self._used = 0
        self._grow(256)

    def _grow(self, n: int) -> None:
        self._id = np.empty(n, np.int64)
        self._x = np.empty((n, 4))
        self._batch = np.empty(n, np.int64)
        self._status = np.empty(n, np.int8)

    @property
    def tracks(self) -> int:
        """How many distinct tracks have been written."""
        return int(np.count_nonzero(self._seen)) + len(self._seen_large)

    def add(self, t_text: str, time_text: str, table, limit_var: float) -> int:
        """Write the batch's confirmed tracks of ``table`` (a
        :class:`vigil.tracks.table.TrackTable`) and its coasting ones whose larger position
        variance is at most ``limit_var`` (m^2); ``t_text`` and ``time_text`` fill the ``t``
        and ``time`` columns. Returns the number of rows."""
        n = len(table.track_id)
        if n > len(self._id):
            self._grow(2 * n)
        k = kern.track_rows(
            table.track_id, table.x, table.P, table.status, n, 0, limit_var, 0,
            self._id, self._x, self._batch, self._status,
        )  # fmt: skip
        if k == 0:
            return 0
        ids, state, status = self._id[:k], self._x[:k], self._status[:k]
        if self.to_wgs84 is not None:
            state[:, 0], state[:, 1] = self.to_wgs84(state[:, 0], state[:, 1])
        top = int(ids.max())
        if top < 1 << 24:  # the tracker's ids count up from 1
            if top >= len(self._seen):
                self._seen = np.r_[self._seen, np.zeros(top + 1, dtype=np.bool_)]
            self._seen[ids] = True
        else:
            self._seen_large.update(ids.tolist())
        self.rows += k
        big = np.abs(state).max(axis=0)
        if not (big < 1e12).all():  # rare: Python's own formatting for a huge value
            self.flush()
            self.fh.write(_slow_rows(ids, state, status, t_text, time_text, self.digits, big))
            return k
        t_b, time_b = (np.frombuffer(s.encode("ascii"), np.uint8) for s in (t_text, time_text))
        whole = len(str(int(big.max()))) + 2  # sign and point
        width = len(t_b) + len(time_b) + 9 + 20 + 8 + 2 * (whole + self.digits) + 2 * (whole + 3)
        if self._used + k * width > len(self._buf):
            self.flush()
            if k * width > len(self._buf):
                self._buf = np.empty(k * width, dtype=np.uint8)
        self._used = kern.format_rows(
            self._buf, self._used, k, ids, state, status, self.digits, 3, t_b, time_b,
            _WORD_BYTES, _WORD_OFF,
        )  # fmt: skip
        return k

    def flush(self) -> None:
        """Write the buffered text out."""
        if self._used:
            self.fh.write(memoryview(self._buf[: self._used]))
            self._used = 0


def write_tracks(
    path: str | Path,
    names: list[str],
    ids: np.ndarray,
    state: np.ndarray,
    batch: np.ndarray,
    status: np.ndarray,
    times: list[tuple[str, str]],
    digits: int,
) -> None:
    """Write rows already gathered (id, ``state`` = position and velocity, batch number in
    ``times``, status) as :class:`TrackWriter` does, under a header of ``names``."""
    from types import SimpleNamespace

    with open(path, "wb") as fh:
        fh.write((",".join(names) + "\n").encode())
        out = TrackWriter(fh, digits, None)
        for b, (t_text, time_text) in enumerate(times):
            rows = np.flatnonzero(batch == b)
            table = SimpleNamespace(
                track_id=np.ascontiguousarray(ids[rows], np.int64),
                x=np.ascontiguousarray(state[rows], np.float64),
                P=np.zeros((len(rows), 4, 4)),
                status=np.ascontiguousarray(status[rows], np.int8),
            )
            out.add(t_text, time_text, table, np.inf)
        out.flush()


def _slow_rows(ids, state, status, t_text, time_text, digits, big) -> bytes:
    """One batch's rows as :class:`TrackWriter` writes them, in Python: a column with a
    value of 1e12 or more by Python's ``%.*f``, the others in fixed point as the kernel."""
    cols = []
    for c, d in ((0, digits), (1, digits), (2, 3), (3, 3)):
        v = state[:, c]
        if big[c] < 1e12:
            q = np.rint(np.abs(v) * 10**d).astype(np.int64)
            sign = np.where((v < 0) & (q > 0), "-", "")
            parts = zip(sign, q // 10**d, q % 10**d, strict=True)
            cols.append([f"{s}{w}.{f:0{d}d}" for s, w, f in parts])
        else:
            cols.append([f"{x:.{d}f}" for x in v.tolist()])
    return "".join(
        f"{t_text},{i},{px},{py},{vx},{vy},{time_text},{_WORDS[s]}\n"
        for i, s, px, py, vx, vy in zip(ids.tolist(), status.tolist(), *cols, strict=True)
    ).encode()
