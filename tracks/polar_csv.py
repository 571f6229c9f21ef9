"""Optional tower (polar) columns of a ``vigil track`` detections CSV.

A row with ``bearing_deg`` is a camera detection from a tower at ``sensor_x, sensor_y``
(local metres) and ``sensor_height`` (m above the ground, 0 when blank or absent), with
``sigma_bearing_deg`` and either ``range_m`` (slant range, m) and ``sigma_range_m`` (or
``sigma_range_frac``, the range sigma as a fraction of the range, which the filter takes
at its predicted range: :data:`vigil.tracks.polar.RANGE_RELATIVE`), or
``depression_deg`` (below the horizontal) and ``sigma_depression_deg``; its ``x, y`` may be
blank and are not used (the tracker converts the measurement). A row without ``bearing_deg``
is a position detection as before (``x, y``, optional ``sigma``) and must leave the tower
columns blank. Local frame only. Errors name the line and column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from vigil.tracks.csvfile import CsvError, Detections, _check_rows
from vigil.tracks.polar import DEPRESSION, RANGE, RANGE_RELATIVE, polar_batch

POLAR_COLUMNS = (
    "sensor_x",
    "sensor_y",
    "sensor_height",
    "bearing_deg",
    "range_m",
    "sigma_bearing_deg",
    "sigma_range_m",
    "sigma_range_frac",
    "depression_deg",
    "sigma_depression_deg",
)

#: Each column's check: lower bound, upper bound (open where the flag says), what to expect.
_BOUNDS = {
    "sensor_x": (-math.inf, math.inf, "finite metres"),
    "sensor_y": (-math.inf, math.inf, "finite metres"),
    "sensor_height": (0.0, 1e5, "metres >= 0"),
    "bearing_deg": (-720.0, 720.0, "degrees in [-720, 720]"),
    "range_m": (0.0, 1e7, "metres > 0, above the sensor's height"),
    "sigma_bearing_deg": (0.0, 90.0, "degrees > 0"),
    "sigma_range_m": (0.0, 1e7, "metres > 0"),
    "sigma_range_frac": (0.0, 1.0, "a fraction in (0, 1)"),
    "depression_deg": (0.0, 90.0, "degrees in (0, 90)"),
    "sigma_depression_deg": (0.0, 90.0, "degrees > 0"),
}


def has_polar(header: list[str]) -> bool:
    """Whether a header carries any tower column."""
    return any(c in POLAR_COLUMNS for c in header)


def _number(path: str | Path, line: int, name: str, raw: str) -> float:
    """One tower cell as a checked number; raises :class:`CsvError` naming line and column."""
    try:
        v = float(raw)
    except ValueError:
        raise CsvError(path, line, name, f"{raw!r} is not a number") from None
    lo, hi, want = _BOUNDS[name]
    strict = name not in ("sensor_x", "sensor_y", "sensor_height", "bearing_deg")
    if not math.isfinite(v) or v < lo or v > hi or (strict and (v <= lo or v >= hi)):
        raise CsvError(path, line, name, f"{raw!r}; expected {want}")
    return v


def read_polar_rows(
    path: str | Path,
    frame: str,
    need: tuple[str, ...],
    header: list[str],
    rows: Iterable[tuple[int, list[str]]],
    default_sigma_m: float,
) -> Detections:
    """The detections of a CSV with tower columns: the position columns checked as before
    (:func:`vigil.tracks.csvfile._check_rows`), the tower columns here; ``Detections.polar``
    holds the tower rows (bearing and its sigma in radians)."""
    first = next(c for c in header if c in POLAR_COLUMNS)
    if frame != "local":
        raise CsvError(
            path, 1, first, "tower columns need the local frame (sensor_x, sensor_y in m)"
        )
    idx = {c: i for i, c in enumerate(header)}
    keep = [i for i, c in enumerate(header) if c not in POLAR_COLUMNS]
    base_header = [header[i] for i in keep]
    xy = [base_header.index(c) for c in ("x", "y") if c in base_header]
    base_rows: list[tuple[int, list[str]]] = []
    out: list[tuple[float, ...]] = []
    for line, row in rows:
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise CsvError(
                path, line, None, f"{len(row)} fields; expected {len(header)} ({header})"
            )
        cell = {c: row[idx[c]].strip() for c in POLAR_COLUMNS if c in idx}
        base = [row[i] for i in keep]
        if all(not c.strip() for c in base):
            raise CsvError(path, line, "t", "blank; expected seconds")
        if not cell.get("bearing_deg"):
            given = [c for c, v in cell.items() if v]
            if given:
                raise CsvError(path, line, given[0], "given without bearing_deg; expected blank")
            out.append((0.0,) * 8 + (-1.0,))
            base_rows.append((line, base))
            continue
        by_range = bool(cell.get("range_m"))
        second, sig2 = (
            ("range_m", "sigma_range_m") if by_range else ("depression_deg", "sigma_depression_deg")
        )
        if by_range and cell.get("depression_deg"):
            raise CsvError(path, line, "depression_deg", "given with range_m; expected one of them")
        relative = by_range and bool(cell.get("sigma_range_frac"))
        if relative:
            if cell.get("sigma_range_m"):
                raise CsvError(
                    path, line, "sigma_range_m", "given with sigma_range_frac; expected one of them"
                )
            sig2 = "sigma_range_frac"
        used = ("sensor_x", "sensor_y", "sigma_bearing_deg", second, sig2)
        stray = [
            c for c, v in cell.items() if v and c not in (*used, "bearing_deg", "sensor_height")
        ]
        if stray:
            raise CsvError(path, line, stray[0], f"not used with {second}, {sig2}; expected blank")
        for c in used:
            if not cell.get(c):
                raise CsvError(path, line, c, "blank on a row with bearing_deg; expected a number")
        v = {c: _number(path, line, c, cell[c]) for c in cell if cell[c]}
        h = v.get("sensor_height", 0.0)
        if by_range and v["range_m"] <= h:
            raise CsvError(path, line, "range_m", f"{cell['range_m']!r}; expected > sensor_height")
        k = math.radians
        s2 = v[sig2] if by_range else k(v[sig2])
        q = v[second] if by_range else k(v[second])
        kind = float(RANGE_RELATIVE if relative else RANGE if by_range else DEPRESSION)
        sb = k(v["sigma_bearing_deg"])
        out.append((v["sensor_x"], v["sensor_y"], h, k(v["bearing_deg"]), q, sb, s2, 1.0, kind))
        for i in xy:
            if not base[i].strip():
                base[i] = "0"
        base_rows.append((line, base))
    det = _check_rows(path, frame, need, base_header, base_rows, default_sigma_m)
    a = np.asarray(out, dtype=np.float64).reshape(-1, 9)
    valid = a[:, 7] > 0.0
    mode = np.where(valid, a[:, 8], RANGE).astype(np.int8)
    # rows that are not polar get harmless placeholders (they are never read)
    sec = np.where(valid, a[:, 4], 1.0 + a[:, 2])
    sig = np.where(valid[:, None], a[:, 5:7], 1.0)
    batch = polar_batch(a[:, 0:3], a[:, 3], sec, sig[:, 0], sig[:, 1], mode, valid)
    return Detections(det.t, det.a, det.b, det.sensor, det.sigma, det.frame, batch)
