"""PostgreSQL's binary COPY format, built from whole numpy columns (bulk history loads).

psycopg's ``Copy.write_row`` encodes one row at a time in Python's loop, a few hundred
thousand rows a second; a history of millions of crossings is written faster as whole
columns. :func:`binary_copy` lays columns out in the documented binary format (PostgreSQL
docs, "COPY: Binary Format"): the signature header, per row a field count (int16) and per field
its length (int32, big-endian) and bytes, and the trailer; ``float8`` as IEEE-754 big-endian,
``int4``/``int8`` as big-endian integers, ``text`` as UTF-8. NULLs are not supported: every
column given must be complete (the history's bulk columns are ``NOT NULL``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

_FIXED = {"float8": ">f8", "int4": ">i4", "int8": ">i8"}


def _field_bytes(values: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """All values' bytes end to end (uint8), and each value's length in bytes."""
    n = len(values)
    if kind in _FIXED:
        arr = np.asarray(values)
        if kind == "float8" and not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(f"float8 column holds {arr.dtype}")
        if kind != "float8" and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{kind} column holds {arr.dtype}")
        b = np.ascontiguousarray(arr.astype(_FIXED[kind])).view(np.uint8)
        return b, np.full(n, b.size // max(n, 1), dtype=np.int64)
    if kind != "text":
        raise ValueError(f"column type {kind!r}; expected text, float8, int4 or int8")
    import pyarrow as pa

    # Arrow's string array is the UTF-8 bytes end to end plus offsets: exactly what is needed
    arr = pa.array(values, type=pa.large_string())
    if arr.null_count:
        raise ValueError("text column holds nulls; the bulk columns are NOT NULL")
    offsets_buf, data_buf = arr.buffers()[1], arr.buffers()[2]
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0)
    return data[offsets[0] : offsets[-1]].astype(np.uint8, copy=False), np.diff(offsets)


def binary_copy(
    columns: Sequence[np.ndarray], kinds: Sequence[str], *, header: bool, trailer: bool
) -> bytes:
    """Rows of ``columns`` (equal lengths) in COPY's binary format.

    Parameters
    ----------
    columns
        One array per field, in the COPY statement's column order.
    kinds
        Each column's PostgreSQL type: ``text``, ``float8``, ``int4`` or ``int8``.
    header, trailer
        Whether to begin with the signature and end with the trailer (a stream written in
        chunks has the first only on its first chunk and the second only on its last).
    """
    if len(columns) != len(kinds):
        raise ValueError(f"{len(columns)} columns and {len(kinds)} types")
    n = len(columns[0]) if columns else 0
    if any(len(c) != n for c in columns):
        raise ValueError("columns differ in length")
    fields = [_field_bytes(c, k) for c, k in zip(columns, kinds, strict=True)]
    row_len = 2 + sum(4 + length for _, length in fields)
    starts = np.zeros(n, dtype=np.int64)
    if n:
        starts[1:] = np.cumsum(row_len[:-1])
    total = int(row_len.sum()) if n else 0
    out = np.zeros(total, dtype=np.uint8)
    count = np.array([len(columns)], dtype=">i2").view(np.uint8)
    out[starts[:, None] + np.arange(2)] = count
    at = starts + 2
    for data, length in fields:
        out[at[:, None] + np.arange(4)] = length.astype(">i4").view(np.uint8).reshape(n, 4)
        at = at + 4
        # byte j of value i goes to at[i] + j
        first = np.cumsum(length) - length
        out[np.repeat(at - first, length) + np.arange(int(length.sum()))] = data
        at = at + length
    return (SIGNATURE if header else b"") + out.tobytes() + (TRAILER if trailer else b"")
