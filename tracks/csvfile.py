"""Track a CSV of detections: ``t,x,y`` (local metres) or ``t,lat,lon``, optional
``sensor,sigma``; write ``t,track_id,x,y,vx,vy,time,status`` (or ``lat,lon``) for tracks,
``time`` being ``t`` (UTC seconds since the epoch) as ISO 8601 with its offset, in UTC or the
time zone asked for (``--timezone``), for people and the tools that read dates.

This is what ``vigil track DETECTIONS.csv --out tracks.csv [--frame local|wgs84]`` runs.
Rows are grouped into batches by ``(t, sensor)`` and applied in time order, so the file need
not be sorted. In the ``wgs84`` frame the tracker works in a local frame centred on the mean
of the input's positions unless ``centre=(lat, lon)`` is given.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vigil.tracks.config import TrackerConfig
from vigil.tracks.csvout import TrackWriter, canonical_order
from vigil.tracks.imm import make_tracker

if TYPE_CHECKING:  # imported when used: pyproj (wgs84) and numba (tower rows) take time
    from vigil.geo.frames import LocalFrame
    from vigil.tracks.polar import PolarBatch

LOCAL_COLUMNS = ("t", "x", "y")
WGS84_COLUMNS = ("t", "lat", "lon")
OPTIONAL_COLUMNS = ("sensor", "sigma")
GEOJSON_SUFFIXES = (".geojson", ".json")

#: Largest GeoJSON detections file read (bytes): it is parsed whole, in memory.
MAX_GEOJSON_BYTES = 256 << 20


class CsvError(ValueError):
    """A bad detections file: names the file, the line (1-based, header is line 1) and column."""

    def __init__(
        self, path: str | Path, line: int, column: str | None, message: str, *, unit: str = ""
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        where = (f"{self.path}: {unit} {line}" if unit else f"{self.path}:{line}") + (
            f": column {column!r}" if column else ""
        )
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class TrackSummary:
    """What :func:`run_track` did."""

    detections: int
    batches: int
    tracks: int
    rows_written: int
    frame: str
    centre: tuple[float, float] | None


@dataclass(frozen=True)
class Detections:
    """Detections read from a CSV, in file order (positions in the file's own units)."""

    t: np.ndarray
    a: np.ndarray
    b: np.ndarray
    sensor: list[str]
    sigma: np.ndarray
    frame: str
    #: The tower rows' measurements (:mod:`vigil.tracks.polar_csv`), when the file has them.
    polar: PolarBatch | None = None


def read_detections(path: str | Path, frame: str = "local", default_sigma_m: float = 5.0):
    """Read and check a detections CSV (or GeoJSON FeatureCollection of Points, wgs84 frame);
    raise :class:`CsvError` at the first bad row."""
    if frame not in ("local", "wgs84"):
        raise ValueError(f"frame = {frame!r}; expected 'local' or 'wgs84'")
    need = LOCAL_COLUMNS if frame == "local" else WGS84_COLUMNS
    if Path(path).suffix.lower() in GEOJSON_SUFFIXES:
        header, rows = _geojson_table(path, frame)
        return _check_rows(path, frame, need, header, rows, default_sigma_m, unit="feature")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise CsvError(
                path, 1, None, f"empty file; expected a header {','.join(need)}"
            ) from None
        missing = [c for c in need if c not in header]
        if missing:
            other = WGS84_COLUMNS if frame == "local" else LOCAL_COLUMNS
            hint = (
                f" (it has {','.join(other)}: use frame={'wgs84' if frame == 'local' else 'local'})"
                if all(c in header for c in other)
                else ""
            )
            raise CsvError(
                path, 1, missing[0], f"header {header} lacks {missing}; expected {need}{hint}"
            )
        fast = _read_fast(path, frame, need, header, default_sigma_m)
        if fast is not None:  # (never for tower columns)
            return fast
        from vigil.tracks.polar_csv import has_polar, read_polar_rows

        if has_polar(header):
            rows = enumerate(reader, start=2)
            return read_polar_rows(path, frame, need, header, rows, default_sigma_m)
        return _check_rows(path, frame, need, header, enumerate(reader, start=2), default_sigma_m)


def _read_fast(
    path: str | Path, frame: str, need: tuple[str, ...], header: list[str], default_sigma_m: float
) -> Detections | None:
    """The detections read by pyarrow's CSV reader and checked column-wise, or ``None``
    when anything is off (a bad cell, a ragged row, spaces around a number, an out-of-range
    value): the row-by-row reader then finds it and names its line and column."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if any(c not in need + OPTIONAL_COLUMNS for c in header) or len(set(header)) != len(header):
        return None
    types = {c: pa.float64() for c in (*need, "sigma") if c in header}
    if "sensor" in header:
        types["sensor"] = pa.string()
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, OSError):
        return None
    if any(table.column(c).null_count for c in need):
        return None
    cols = [_floats(table.column(c)) for c in need]
    if not all(np.isfinite(col).all() for col in cols):
        return None
    if frame == "wgs84" and not (
        (np.abs(cols[1]) <= 90.0).all() and (np.abs(cols[2]) <= 180.0).all()
    ):
        return None
    sigma = np.full(len(cols[0]), default_sigma_m)
    if "sigma" in header:
        given = _floats(table.column("sigma"))  # blank cells NaN
        ok = np.isnan(given) | (np.isfinite(given) & (given > 0.0))
        if not ok.all() or table.column("sigma").null_count != np.isnan(given).sum():
            return None
        sigma = np.where(np.isnan(given), default_sigma_m, given)
    sensor = [""] * len(cols[0])
    if "sensor" in header:
        import pyarrow.compute as pc  # (60 ms to import: only for a sensor column)

        sensor = pc.utf8_trim_whitespace(table.column("sensor")).to_pylist()
    return Detections(cols[0], cols[1], cols[2], sensor, sigma, frame)


def _floats(column) -> np.ndarray:
    """A float64 pyarrow column as a numpy array, nulls as NaN, from its buffers (pyarrow's
    own ``to_numpy`` and ``fill_null`` import pandas, a third of a second)."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    valid, buf = arr.buffers()[:2]
    if buf is None:
        return np.full(len(arr), math.nan)
    v = np.frombuffer(buf, dtype=np.float64, count=len(arr), offset=arr.offset * 8)
    if arr.null_count:
        bits = np.unpackbits(np.frombuffer(valid, dtype=np.uint8), bitorder="little")
        v = np.where(bits[arr.offset : arr.offset + len(arr)].astype(bool), v, math.nan)
    return v


def _geojson_table(path: str | Path, frame: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A GeoJSON FeatureCollection of Point detections as a header and text rows.

    Positions come from each Point (RFC 7946: WGS84 lon/lat), the other columns (``t``,
    optional ``sensor``, ``sigma``) from its properties; rows are numbered by feature (1-based).
    """
    if frame != "wgs84":
        raise CsvError(
            path,
            1,
            None,
            "GeoJSON positions are WGS84 lon/lat; use the wgs84 frame (vigil track --frame wgs84)",
        )
    size = Path(path).stat().st_size
    if size > MAX_GEOJSON_BYTES:
        raise CsvError(path, 1, None, f"{size} bytes; at most {MAX_GEOJSON_BYTES} are read")
    import json

    try:
        doc = json.loads(Path(path).read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CsvError(path, 1, None, f"not GeoJSON: {exc}") from None
    features = doc.get("features") if isinstance(doc, dict) else None
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(features, list)
    ):
        raise CsvError(path, 1, None, "expected a GeoJSON FeatureCollection of Points")
    names: list[str] = []
    for i, f in enumerate(features, start=1):
        props = f.get("properties") if isinstance(f, dict) else None
        for k in props or {}:
            if k in ("lat", "lon"):
                raise CsvError(path, i, k, "positions come from the Point geometry", unit="feature")
            if k not in names:
                names.append(str(k))
    header = ["lat", "lon", *names]
    rows = []
    for i, f in enumerate(features, start=1):
        geom = f.get("geometry") if isinstance(f, dict) else None
        coords = geom.get("coordinates") if isinstance(geom, dict) else None
        if (
            not isinstance(geom, dict)
            or geom.get("type") != "Point"
            or not isinstance(coords, list)
            or len(coords) < 2
        ):
            raise CsvError(path, i, "geometry", "expected a Point [lon, lat]", unit="feature")
        props = f.get("properties") or {}
        cells = [props.get(k) for k in names]
        text = ["" if v is None else str(v) for v in (coords[1], coords[0], *cells)]
        rows.append((i, text))
    return header, rows


def _check_rows(
    path: str | Path,
    frame: str,
    need: tuple[str, ...],
    header: list[str],
    rows: Iterable[tuple[int, list[str]]],
    default_sigma_m: float,
    *,
    unit: str = "",
) -> Detections:
    """The detections of ``rows`` (numbered text cells under ``header``), checked one by one."""
    t_l, a_l, b_l, s_l, sig_l = [], [], [], [], []
    unknown = [c for c in header if c not in need + OPTIONAL_COLUMNS]
    if unknown:
        raise CsvError(
            path,
            1,
            unknown[0],
            f"unknown column; expected {need} and optionally {OPTIONAL_COLUMNS}",
        )
    missing = [c for c in need if c not in header]
    if missing:
        raise CsvError(path, 1, missing[0], f"columns {header} lack {missing}; expected {need}")
    col = {name: header.index(name) for name in header}
    for line, row in rows:
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise CsvError(
                path, line, None, f"{len(row)} fields; expected {len(header)} ({header})", unit=unit
            )
        vals = []
        for name in need:
            raw = row[col[name]].strip()
            try:
                v = float(raw)
            except ValueError:
                raise CsvError(path, line, name, f"{raw!r} is not a number", unit=unit) from None
            if not math.isfinite(v):
                raise CsvError(path, line, name, f"{raw!r}; expected a finite number", unit=unit)
            vals.append(v)
        if frame == "wgs84":
            if not -90.0 <= vals[1] <= 90.0:
                raise CsvError(
                    path, line, "lat", f"{vals[1]!r}; expected [-90, 90] degrees", unit=unit
                )
            if not -180.0 <= vals[2] <= 180.0:
                raise CsvError(
                    path, line, "lon", f"{vals[2]!r}; expected [-180, 180] degrees", unit=unit
                )
        sigma = default_sigma_m
        if "sigma" in col and row[col["sigma"]].strip():
            raw = row[col["sigma"]].strip()
            try:
                sigma = float(raw)
            except ValueError:
                raise CsvError(path, line, "sigma", f"{raw!r} is not a number", unit=unit) from None
            if not (math.isfinite(sigma) and sigma > 0.0):
                raise CsvError(path, line, "sigma", f"{raw!r}; expected metres > 0", unit=unit)
        t_l.append(vals[0])
        a_l.append(vals[1])
        b_l.append(vals[2])
        s_l.append(row[col["sensor"]].strip() if "sensor" in col else "")
        sig_l.append(sigma)
    return Detections(
        np.asarray(t_l, dtype=np.float64),
        np.asarray(a_l, dtype=np.float64),
        np.asarray(b_l, dtype=np.float64),
        s_l,
        np.asarray(sig_l, dtype=np.float64),
        frame,
    )


def iso_time(t: float, zone: tzinfo = UTC) -> str:
    """``t`` (UTC seconds since the epoch) as ISO 8601 in ``zone`` with its offset:
    ``2026-06-01T03:40:00-07:00`` (milliseconds when ``t`` has a fraction); ``""`` when ``t``
    is outside what a date can hold."""
    try:
        d = datetime.fromtimestamp(t, tz=UTC).astimezone(zone)
    except (OverflowError, OSError, ValueError):
        return ""
    return d.isoformat(timespec="seconds" if float(t).is_integer() else "milliseconds")


@contextmanager
def _removed_on_error(path: str | Path) -> Iterator[None]:
    """Remove the half-written output when tracking stops with an error."""
    try:
        yield
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


def run_track(
    csv_in: str | Path,
    csv_out: str | Path,
    frame: str = "local",
    *,
    centre: tuple[float, float] | None = None,
    config: TrackerConfig | None = None,
    timezone: str = "UTC",
    report_max_sigma_m: float | None = None,
) -> TrackSummary:
    """Track the detections in ``csv_in`` and write confirmed track states to ``csv_out``.

    Parameters
    ----------
    csv_in
        Columns ``t,x,y`` (s, local metres) or ``t,lat,lon`` (s, degrees), optional
        ``sensor`` (batches are per time and sensor) and ``sigma`` (m per axis; the config's
        ``default_sigma_m`` when absent); optional tower columns (``bearing_deg`` from
        ``sensor_x, sensor_y, sensor_height`` with ``range_m`` or ``depression_deg`` and
        their sigmas, :mod:`vigil.tracks.polar_csv`) make a row a camera detection that
        the tracker updates by its own polar model.
    csv_out
        Written with ``t,track_id,x,y,vx,vy,time,status`` (m, m/s) or
        ``t,track_id,lat,lon,vx,vy,time,status`` (velocity east and north in m/s), one row
        per confirmed track per batch time; ``time`` is ``t`` as ISO 8601 with its offset,
        ``status`` ``confirmed`` (updated in the batch) or ``coasting`` (predicted).
    config
        The tracker's settings; default ``vigil track``'s
        (:meth:`vigil.tracks.config.TrackerConfig.for_track`).
    frame
        ``"local"`` or ``"wgs84"``.
    centre
        WGS84 centre ``(lat, lon)`` of the tracking frame; default the mean of the input.
    timezone
        IANA time zone of the ``time`` column (``America/Phoenix``); UTC by default.
    report_max_sigma_m
        A coasting track (no detection in this batch) is written only while its larger
        position standard deviation is at most this (m): it keeps coasting, and its id, until
        the tracker deletes it, but its prediction is not reported as a position once it is
        this unsure. ``None`` (default): the config's ``report_coast_sigma_ratio`` times the
        batch's median detection sigma, or every coasting track when that ratio is 0.

    Raises
    ------
    CsvError
        At the first bad row, naming the line and column.
    """
    config = (config or TrackerConfig.for_track()).check()
    zone: tzinfo = UTC  # the default: no time zone database to load
    if timezone != "UTC":
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(timezone)
    det = read_detections(csv_in, frame, config.default_sigma_m)
    local: LocalFrame | None = None
    if frame == "wgs84":
        from vigil.geo.frames import LocalFrame

        if centre is None and len(det.t):
            centre = (float(det.a.mean()), float(det.b.mean()))
        local = LocalFrame(*(centre or (0.0, 0.0)))
        x, y = local.to_local(det.a, det.b)
    else:
        x, y = det.a, det.b
    R = None
    if det.polar is not None:  # tower rows: converted positions to sort, gate and start by
        from vigil.tracks.polar import to_position

        zp, Rp = to_position(det.polar)
        v = det.polar.valid
        x, y = np.where(v, zp[:, 0], x), np.where(v, zp[:, 1], y)
        R = np.zeros((len(x), 2, 2))
        R[:, 0, 0] = R[:, 1, 1] = det.sigma**2
        R[v] = Rp[v]
        det = Detections(det.t, det.a, det.b, det.sensor, det.sigma.copy(), det.frame, det.polar)
        det.sigma[v] = np.sqrt(0.5 * (Rp[v, 0, 0] + Rp[v, 1, 1]))
    # sensor names as codes, in name order
    sensor_code = np.zeros(len(det.t), dtype=np.int64)
    if any(det.sensor):
        sensor_code = np.unique(np.asarray(det.sensor, dtype=str), return_inverse=True)[1]
    # a canonical order (time, sensor, position) so that the output does not depend on the
    # order of the rows in the file, not even within a batch
    order = canonical_order(det.t, sensor_code, np.asarray(x, float), np.asarray(y, float))
    tracker = make_tracker(config)
    names = ["t", "track_id", "x", "y", "vx", "vy", "time", "status"]
    if frame != "local":
        names[2:4] = ["lat", "lon"]
    digits = 8 if local is not None else 3
    ts = det.t[order]
    change = ts[1:] != ts[:-1]
    if sensor_code.any():
        sens = sensor_code[order]
        change |= sens[1:] != sens[:-1]
    starts = np.flatnonzero(np.r_[True, change])
    ends = np.r_[starts[1:], len(order)]
    zs = np.empty((len(order), 2))
    zs[:, 0], zs[:, 1] = np.take(x, order), np.take(y, order)
    sig = det.sigma[order]
    Rs = None if R is None else R[order]
    pol = None if det.polar is None else det.polar.take(order)
    one_sigma = len(sig) > 0 and bool(sig.min() == sig.max())  # then each batch's median
    with open(csv_out, "wb") as fh, _removed_on_error(csv_out):
        fh.write((",".join(names) + "\n").encode())
        out = TrackWriter(fh, digits, None if local is None else local.to_wgs84)
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            t = float(ts[a])
            if pol is None:
                table = tracker.update(t, zs[a:b], sigma=sig[a:b])
            else:
                table = tracker.update(t, zs[a:b], Rs[a:b], polar=pol.take(slice(a, b)))
            limit = report_max_sigma_m
            if limit is None and config.report_coast_sigma_ratio > 0.0:
                med = float(sig[a]) if one_sigma else float(np.median(sig[a:b]))
                limit = config.report_coast_sigma_ratio * med
            limit_var = math.inf if limit is None else limit**2
            out.add(repr(t), iso_time(t, zone), table, limit_var)
        out.flush()
    return TrackSummary(len(det.t), len(starts), out.tracks, out.rows, frame, centre)
