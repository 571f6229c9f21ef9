"""Writing layers that other tools open: GeoPackage for QGIS, GeoParquet for Dask and DuckDB.

Every GeoPackage layer Vigil writes goes through :func:`write_gpkg_layer`, which keeps the
promises the design makes for exports:

- times are real date-time fields in UTC (GeoPackage stores them as ISO-8601 with ``Z``), so
  QGIS's temporal controller can use them; the columns named in ``time_columns`` are converted
  from UTC seconds since the epoch;
- one declared geometry type per layer, empty layers included, and every geometry of that
  type (a mismatch is an error naming the layer, not a silent mix);
- GeoPackage version 1.2, which GDAL 3.6 (Debian 12, QGIS 3.28 LTR) reads without the
  "may only be partially supported" warning that newer GDALs' default 1.4 triggers.

:func:`write_geoparquet` writes the same frame as GeoParquet (CRS in the file's metadata).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

#: GeoPackage version written (dataset creation option ``VERSION`` of GDAL's GPKG driver).
GPKG_VERSION = "1.2"

#: Declared geometry types accepted by :func:`write_gpkg_layer`.
GEOMETRY_TYPES = {
    "Point",
    "LineString",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
}


def utc_datetimes(values: Sequence[float] | pd.Series, *, name: str = "time") -> pd.Series:
    """UTC seconds since the epoch as time-zone-aware UTC datetimes (millisecond precision).

    Values that already are datetimes with a zone are converted to UTC; naive datetimes and
    non-numbers are an error naming the column, since the zone would be a guess.

    Examples
    --------
    >>> str(utc_datetimes([1_780_304_400.0]).iloc[0])
    '2026-06-01 09:00:00+00:00'
    """
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype="float64")
    if pd.api.types.is_datetime64_any_dtype(s):
        if getattr(s.dt, "tz", None) is None:
            raise ValueError(f"column {name!r} holds datetimes without a time zone")
        return s.dt.tz_convert("UTC").astype("datetime64[ms, UTC]")
    if len(s) == 0:
        return pd.Series([], index=s.index, dtype="datetime64[ms, UTC]", name=s.name)
    if not pd.api.types.is_numeric_dtype(s):
        raise ValueError(f"column {name!r} is {s.dtype}; expected UTC seconds since the epoch")
    return pd.to_datetime(s.astype("float64") * 1000.0, unit="ms", utc=True).astype(
        "datetime64[ms, UTC]"
    )


def with_datetimes(gdf, time_columns: Sequence[str] = ()):  # -> GeoDataFrame
    """A copy of ``gdf`` whose ``time_columns`` (UTC seconds) are UTC datetimes."""
    out = gdf.copy()
    for col in time_columns:
        if col in out.columns:
            out[col] = utc_datetimes(out[col], name=col)
    return out


def _check_geometry_type(gdf, layer: str, geometry_type: str):  # -> GeoDataFrame
    if geometry_type not in GEOMETRY_TYPES:
        raise ValueError(
            f"layer {layer!r}: geometry_type={geometry_type!r}; expected one of "
            f"{sorted(GEOMETRY_TYPES)}"
        )
    geoms = gdf.geometry
    present = geoms.notna() & ~geoms.is_empty
    if geometry_type.startswith("Multi"):
        import shapely

        single = geometry_type[len("Multi") :]
        promote = present & (geoms.geom_type == single)
        if promote.any():
            gdf = gdf.copy()
            multi = getattr(shapely, geometry_type)
            gdf.loc[promote, gdf.geometry.name] = [multi([g]) for g in geoms[promote]]
            geoms = gdf.geometry
    kinds = set(geoms[present].geom_type)
    if kinds - {geometry_type}:
        raise ValueError(
            f"layer {layer!r} declared {geometry_type} holds {sorted(kinds)}; split it into one "
            "layer per geometry type"
        )
    return gdf


def write_gpkg_layer(
    gdf,
    path: str | Path,
    layer: str,
    *,
    geometry_type: str,
    time_columns: Sequence[str] = (),
) -> int:
    """Write one GeoPackage layer (replacing it), typed as the module docstring says.

    Parameters
    ----------
    gdf
        GeoDataFrame with a CRS; may be empty.
    path
        The ``.gpkg`` file; created (version :data:`GPKG_VERSION`) when missing, else the
        layer is added or replaced.
    layer
        Layer name.
    geometry_type
        The layer's one geometry type (``"Point"``, ``"LineString"``, ...). For a ``Multi``
        type, single geometries are promoted.
    time_columns
        Columns of UTC seconds since the epoch to write as date-time fields.

    Returns
    -------
    int
        Features written.
    """
    out = _check_geometry_type(with_datetimes(gdf, time_columns), layer, geometry_type)
    p = Path(path)
    options = {} if p.exists() else {"VERSION": GPKG_VERSION}
    out.to_file(
        p,
        layer=layer,
        driver="GPKG",
        engine="pyogrio",
        geometry_type=geometry_type,
        **options,
    )
    return len(out)


def write_geoparquet(gdf, path: str | Path, *, time_columns: Sequence[str] = ()) -> Path:
    """Write ``gdf`` as one GeoParquet file (times as UTC timestamps); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with_datetimes(gdf, time_columns).to_parquet(p, index=False)
    return p
