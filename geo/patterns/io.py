"""Reading crossing tables and aggregate counts tables, whatever they were saved as.

A crossing table has at least ``time`` (UTC seconds since the epoch, or datetimes) and
``segment_id``; it may carry ``track_id``, ``direction``, ``lat``/``lon`` or a point geometry.
It can come from the store (SQLite: a table ``crossings``, or Vigil's sector store
``events.sqlite`` with its table ``crossing``), GeoPackage (layer ``crossings``, as in the
demo's ``events.gpkg``), GeoParquet (one file or a partitioned folder), plain Parquet, GeoJSON
or CSV. Every reader returns the same normalised pandas
table: ``time`` as float64 UTC seconds, ``segment_id`` as str, ``lat``/``lon`` in WGS84 when
the input had positions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

TIME = "time"
SEGMENT_ID = "segment_id"
LAT, LON = "lat", "lon"
DIRECTION = "direction"
TRACK_ID = "track_id"

SQLITE_SUFFIXES = {".sqlite", ".sqlite3", ".db"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet", ".pq"}
GEOJSON_SUFFIXES = {".geojson", ".json"}

#: Largest GeoJSON file read (bytes): it is parsed whole, in memory.
MAX_GEOJSON_BYTES = 1 << 30

#: The table Vigil's event store (``events.sqlite``) keeps crossings in.
STORE_CROSSING_TABLE = "crossing"


class PatternInputError(ValueError):
    """A crossing or counts table that the analyses cannot read as given."""


def input_kind(path: str | Path) -> str:
    """``"csv"``, ``"parquet"`` (a file or a folder of parts), ``"gpkg"``, ``"geojson"`` or
    ``"sqlite"``."""
    p = Path(path)
    if not p.exists():
        raise PatternInputError(f"input {str(p)!r} does not exist")
    if p.is_dir():
        layer = p / "crossings.parquet"
        if layer.is_file() and len(list(p.glob("*.parquet"))) > 1:
            names = sorted(f.name for f in p.glob("*.parquet"))
            raise PatternInputError(
                f"folder {str(p)!r} holds one file per layer {names} (Vigil's geoparquet/ "
                f"export), not parts of one table; give {str(layer)!r}"
            )
        if any(p.rglob("*.parquet")):
            return "parquet"
        raise PatternInputError(f"folder {str(p)!r} holds no .parquet parts")
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix == ".gpkg":
        return "gpkg"
    if suffix in SQLITE_SUFFIXES:
        return "sqlite"
    if suffix in GEOJSON_SUFFIXES:
        return "geojson"
    raise PatternInputError(
        f"input {str(p)!r} has suffix {suffix!r}; expected .csv, .parquet (or a folder of "
        f"parts), .gpkg, .geojson or one of {sorted(SQLITE_SUFFIXES)}"
    )


def read_crossings(path: str | Path, *, table: str = "crossings") -> pd.DataFrame:
    """Read a crossing table from CSV, (Geo)Parquet, GeoPackage, GeoJSON or the SQLite store.

    Parameters
    ----------
    path
        File, or folder of Parquet parts.
    table
        Table (SQLite) or layer (GeoPackage) name; ignored for other formats. With the
        default, Vigil's event store (table ``crossing``) is read too.
    """
    kind = input_kind(path)
    if kind == "csv":
        df = pd.read_csv(path)
    elif kind == "parquet":
        df = _read_parquet(Path(path))
    elif kind == "gpkg":
        df = _read_gpkg(Path(path), table)
    elif kind == "geojson":
        df = _read_geojson(Path(path))
    else:
        df = _read_sqlite(Path(path), table)
    return normalise_crossings(df, source=str(path))


def _read_gpkg(path: Path, table: str) -> pd.DataFrame:
    import geopandas as gpd
    import pyogrio

    try:
        layers = [name for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # noqa: BLE001 - GDAL's errors vary; the message names the file
        raise PatternInputError(f"{str(path)!r} is not a readable GeoPackage: {exc}") from None
    if table in layers:
        layer = table
    elif len(layers) == 1:
        layer = layers[0]
    else:
        raise PatternInputError(
            f"GeoPackage {str(path)!r} has no layer {table!r}; has {sorted(layers)}"
        )
    return gpd.read_file(path, layer=layer, engine="pyogrio")


def _read_geojson(path: Path) -> pd.DataFrame:
    import geopandas as gpd

    size = path.stat().st_size
    if size > MAX_GEOJSON_BYTES:
        raise PatternInputError(
            f"GeoJSON {str(path)!r} is {size} bytes; at most {MAX_GEOJSON_BYTES} are read "
            "(convert it to GeoParquet or GeoPackage)"
        )
    try:
        return gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # noqa: BLE001 - GDAL's errors vary; the message names the file
        raise PatternInputError(f"{str(path)!r} is not readable GeoJSON: {exc}") from None


def _read_sqlite(path: Path, table: str) -> pd.DataFrame:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            names = {
                r[0] for r in con.execute("select name from sqlite_master where type = 'table'")
            }
            name = table
            if table == "crossings" and table not in names and STORE_CROSSING_TABLE in names:
                name = STORE_CROSSING_TABLE  # Vigil's event store, events.sqlite
            if name not in names:
                hint = (
                    "; this is a track store: crossings are in events.sqlite beside it"
                    if "track_state" in names
                    else ""
                )
                raise PatternInputError(
                    f"store {str(path)!r} has no table {table!r}; has {sorted(names)}{hint}"
                )
            return pd.read_sql_query(f'select * from "{name}"', con)  # noqa: S608
    except sqlite3.DatabaseError as exc:
        raise PatternInputError(f"{str(path)!r} is not a readable SQLite store: {exc}") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    meta = pq.read_schema(next(path.rglob("*.parquet")) if path.is_dir() else path).metadata
    if meta and b"geo" in meta:
        import geopandas as gpd

        return gpd.read_parquet(path)
    return pd.read_parquet(path)


def normalise_crossings(df: pd.DataFrame, *, source: str = "table") -> pd.DataFrame:
    """The crossing table with ``time`` as UTC seconds, ``segment_id`` as str, and lat/lon.

    A geometry column (GeoDataFrame) is turned into ``lat``/``lon`` (WGS84) and dropped, so
    the result is a plain DataFrame.
    """
    missing = [c for c in (TIME, SEGMENT_ID) if c not in df.columns]
    if missing:
        raise PatternInputError(
            f"{source}: crossing table lacks column(s) {missing}; has {list(df.columns)}"
        )
    out = pd.DataFrame(df.drop(columns="geometry", errors="ignore"))
    geometry = getattr(df, "geometry", None) if "geometry" in df.columns else None
    if geometry is not None and (LAT not in out.columns or LON not in out.columns):
        g = geometry.to_crs("EPSG:4326") if geometry.crs is not None else geometry
        out[LAT] = g.y.to_numpy()
        out[LON] = g.x.to_numpy()
    out[TIME] = epoch_seconds(out[TIME], name=f"{source}: column {TIME!r}")
    out[SEGMENT_ID] = out[SEGMENT_ID].astype(str)
    return out.reset_index(drop=True)


def epoch_seconds(values: pd.Series, *, name: str = "time") -> pd.Series:
    """UTC seconds since the epoch from numbers, datetimes or ISO-8601 strings.

    Naive datetimes and strings without an offset are rejected: a time without a zone is
    ambiguous, and the analyses must not guess.
    """
    if len(values) == 0:
        return pd.Series([], index=values.index, dtype=np.float64, name=values.name)
    if pd.api.types.is_numeric_dtype(values):
        out = values.astype(np.float64)
    else:
        dt = values
        if not pd.api.types.is_datetime64_any_dtype(dt):
            dt = pd.to_datetime(values, format="ISO8601")
        if getattr(dt.dt, "tz", None) is None:
            raise PatternInputError(
                f"{name} holds times without a time zone (first {values.iloc[0]!r}); expected "
                "UTC seconds since the epoch or times with an offset"
            )
        out = (dt.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    bad = ~np.isfinite(out.to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PatternInputError(f"{name} row {i} is {values.iloc[i]!r}; expected a time")
    return out


def read_counts(
    path: str | Path, time_col: str, group_col: str, value_col: str, *, keep: Sequence[str] = ()
) -> pd.DataFrame:
    """An aggregate counts table (time, area, count) as ``time``, ``group``, ``value`` columns.

    ``time`` is parsed as a date (the start of the period); ``value`` must be numeric. The
    columns named in ``keep`` (a fiscal year, a border) come along, as they are, if present.
    """
    p = Path(path)
    kind = input_kind(p)
    df = pd.read_csv(p) if kind == "csv" else pd.read_parquet(p)
    return normalise_counts(df, time_col, group_col, value_col, source=str(p), keep=keep)


def normalise_counts(
    df: pd.DataFrame,
    time_col: str,
    group_col: str,
    value_col: str,
    *,
    source: str = "table",
    keep: Sequence[str] = (),
) -> pd.DataFrame:
    """Rename and type-check the columns of a counts table; carry the ``keep`` columns."""
    missing = [c for c in (time_col, group_col, value_col) if c not in df.columns]
    if missing:
        raise PatternInputError(
            f"{source}: counts table lacks column(s) {missing}; has {list(df.columns)}"
        )
    out = pd.DataFrame(
        {
            "time": pd.to_datetime(df[time_col]),
            "group": df[group_col].astype(str),
            "value": pd.to_numeric(df[value_col], errors="coerce"),
        }
    )
    bad = out["value"].isna() | out["time"].isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise PatternInputError(
            f"{source}: row {i} has {time_col}={df[time_col].iloc[i]!r}, "
            f"{value_col}={df[value_col].iloc[i]!r}; expected a date and a number"
        )
    if getattr(out["time"].dt, "tz", None) is not None:
        out["time"] = out["time"].dt.tz_localize(None)
    for col in keep:
        if col in df.columns and col not in out.columns:
            out[col] = df[col].to_numpy()
    return out
