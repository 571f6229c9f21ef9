"""Running the analyses on Dask: schedulers, partitioned GeoParquet in and out.

``dask`` names where the work runs: ``None`` in memory (pandas), ``"local"`` (Dask's threaded
scheduler on this machine), ``"synchronous"`` (one thread, for tests and debugging),
``"processes"``, or the address of a Dask scheduler (``"tcp://host:8786"``), which is reached
through ``dask.distributed``. The same aggregation code runs on each partition
(:mod:`vigil.geo.patterns.aggregate`), so the results equal the in-memory ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from vigil.geo.patterns.io import LAT, LON, PatternInputError, input_kind, normalise_crossings

LOCAL_SCHEDULERS = {"local": "threads", "threads": "threads", "synchronous": "synchronous"}
LOCAL_SCHEDULERS["processes"] = "processes"


@contextmanager
def dask_scheduler(dask: str | None) -> Iterator[object | None]:
    """Make ``dask`` the active scheduler for the block; yields the distributed client if any."""
    if dask is None:
        yield None
        return
    import dask as _dask

    if dask in LOCAL_SCHEDULERS:
        with _dask.config.set(scheduler=LOCAL_SCHEDULERS[dask]):
            yield None
        return
    if "://" not in dask:
        raise PatternInputError(
            f"dask={dask!r}; expected None, one of {sorted(LOCAL_SCHEDULERS)} or a scheduler "
            "address such as 'tcp://host:8786'"
        )
    from distributed import Client

    with Client(dask) as client:
        yield client


def open_crossings_dask(path: str | Path, *, npartitions: int = 8, table: str = "crossings"):
    """A crossing table as a Dask DataFrame (partitioned GeoParquet read lazily, by parts).

    CSV is read with ``dask.dataframe.read_csv``; GeoParquet with ``dask_geopandas``; a
    GeoPackage or the SQLite store is read in memory and split into ``npartitions``.
    Positions are carried as ``lat``/``lon`` columns, times as UTC seconds.
    """
    import dask.dataframe as dd

    kind = input_kind(path)
    if kind == "csv":
        ddf = dd.read_csv(str(path), blocksize="64MB")
    elif kind == "parquet":
        import pyarrow.parquet as pq

        p = Path(path)
        meta = pq.read_schema(next(p.rglob("*.parquet")) if p.is_dir() else p).metadata
        if meta and b"geo" in meta:
            import dask_geopandas

            ddf = dask_geopandas.read_parquet(str(path))
        else:
            ddf = dd.read_parquet(str(path))
    else:
        from vigil.geo.patterns.io import read_crossings

        return dd.from_pandas(read_crossings(path, table=table), npartitions=npartitions)
    meta = normalise_crossings(ddf._meta, source=str(path))
    return ddf.map_partitions(normalise_crossings, source=str(path), meta=meta)


def write_partitioned_geoparquet(
    crossings: pd.DataFrame, path: str | Path, *, npartitions: int = 8
) -> Path:
    """Write a crossing table as GeoParquet parts (points in WGS84) under a folder."""
    import dask_geopandas
    import geopandas as gpd

    if LAT not in crossings.columns or LON not in crossings.columns:
        raise PatternInputError(
            f"crossings need lat/lon to be written as GeoParquet; have {list(crossings.columns)}"
        )
    gdf = gpd.GeoDataFrame(
        crossings,
        geometry=gpd.points_from_xy(crossings[LON], crossings[LAT]),
        crs="EPSG:4326",
    )
    out = Path(path)
    dask_geopandas.from_geopandas(gdf, npartitions=npartitions).to_parquet(str(out))
    return out
