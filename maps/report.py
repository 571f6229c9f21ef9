"""The planners' report: ``vigil analyze`` writes a self-contained HTML page and GIS layers.

For a crossing table, :func:`analyze_crossings` writes to ``out_dir``:

- ``report.html``: a folium map (segments shaded by crossings per day, Gi* hot and cold
  segments, hot H3 cells and corridors, tower and sensor footprints), matplotlib plots of the
  per-segment rates, local hour and weekday profiles and the daily series with its trend, and
  a short written summary. Leaflet is inlined and plots are PNG data URIs: it opens with no
  network;
- ``segments.gpkg`` (every segment with its counts, Gi* and coverage), ``hotspots.gpkg``
  (layers ``segments``, ``cells``, ``corridors``) and ``summary.json``.

For an aggregate counts table, :func:`analyze_counts` writes ``report.html`` (plots and
tables, and a map of the areas whose places are known), ``seasonality.json`` (each group's
monthly profile, peak and trough month, yearly levels, trend and changes) and
``summary.json``; years are fiscal or calendar as the table or the caller says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from shapely.geometry.base import BaseGeometry

from vigil.alerts.store_pg import DEFAULT_SCHEMA, connect, is_dsn, redact
from vigil.geo.border import Border
from vigil.geo.dem import TerrainSettings
from vigil.geo.patterns.analysis import analyze_counts_table, analyze_crossing_table
from vigil.geo.patterns.counts_table import KEEP_COLUMNS
from vigil.geo.patterns.hotspots import path_density as _path_density
from vigil.geo.patterns.io import normalise_counts, read_counts, read_crossings
from vigil.geo.patterns.scale import dask_scheduler, open_crossings_dask
from vigil.maps.report_counts import write_counts_report
from vigil.maps.report_crossings import cells_layer, segments_layer, write_crossings_report
from vigil.maps.report_db import aggregate_crossings_db
from vigil.maps.report_page import write_json

if TYPE_CHECKING:
    from vigil.geo.site import Site

__all__ = [
    "analyze_counts",
    "analyze_crossings",
    "cells_layer",
    "relief_coverage",
    "segments_layer",
    "write_counts_report",
    "write_crossings_report",
]


# -- entry points --------------------------------------------------------------------------
def analyze_crossings(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    border: Border | None = None,
    timezone: str = "UTC",
    dask: str | None = None,
    footprints: Sequence[BaseGeometry] | None = None,
    candidates: Mapping[str, BaseGeometry] | None = None,
    paths: pd.DataFrame | None = None,
    npartitions: int = 8,
    title: str | None = None,
    coverage_from: str | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> dict:
    """Analyse a crossing table and write the report, GIS layers and summary.

    Parameters
    ----------
    input_path
        CSV, (Geo)Parquet file or folder of parts, GeoPackage, the SQLite store, or a
        PostgreSQL DSN (``postgresql://...``) of the history store, whose crossings are
        counted in the database (:mod:`vigil.maps.report_db`); the summary's ``input`` then
        holds the DSN without its password.
    out_dir
        Folder for ``report.html``, ``segments.gpkg``, ``hotspots.gpkg``, ``summary.json``.
    border
        The sector's border (segments, chainage, geometry); strongly advised.
    timezone
        The sector's IANA time zone for hour-of-day and weekday profiles.
    dask
        None (in memory), ``"local"``, ``"synchronous"`` or a scheduler address.
    footprints, candidates
        Local-frame polygons seen by towers and sensors now, and candidate new towers.
    paths
        Track samples ``track_id, lat, lon`` for inland path density and corridors.
    coverage_from
        How the footprints were made, said in the summary (``coverage_from``) and the report:
        ``"viewsheds"`` when they are what the towers see over the relief
        (:func:`relief_coverage`).
    schema
        The history store's schema, for a DSN input.

    Returns
    -------
    dict
        The summary written to ``summary.json``, with ``files``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    density = None
    if paths is not None:
        density = _path_density(paths["track_id"], paths["lat"], paths["lon"], resolution=9)
    kw = {
        "border": border,
        "timezone": timezone,
        "footprints": footprints,
        "candidates": candidates,
        "path_density": density,
    }
    if is_dsn(str(input_path)):
        if dask is not None:
            raise ValueError("a database input is aggregated in the database: drop --dask")
        dsn = str(input_path)
        with connect(dsn) as conn:
            agg = aggregate_crossings_db(conn, schema=schema, timezone=timezone)
        if agg.n_crossings == 0:
            raise ValueError(f"{redact(dsn)}: the history holds no crossings; nothing to analyse")
        analysis = analyze_crossing_table(None, aggregates=agg, backend="postgresql", **kw)
        analysis.summary["input"] = redact(dsn)
    else:
        with dask_scheduler(dask):
            table = (
                read_crossings(input_path)
                if dask is None
                else open_crossings_dask(input_path, npartitions=npartitions)
            )
            analysis = analyze_crossing_table(table, **kw)
        analysis.summary["input"] = str(input_path)
    if footprints is not None and coverage_from is not None:
        analysis.summary["coverage_from"] = coverage_from
    files = write_crossings_report(analysis, out, border=border, footprints=footprints, title=title)
    analysis.summary["files"] = {k: str(v) for k, v in files.items()}
    return write_json(out / "summary.json", analysis.summary)


def relief_coverage(
    site: Site, terrain: TerrainSettings, base_dir: str | Path = "."
) -> tuple[list[BaseGeometry], dict[str, BaseGeometry]] | None:
    """Footprints and candidate towers over the sector's relief, for :func:`analyze_crossings`.

    When the deployment's ``[terrain]`` names a DEM (or synthetic relief), each tower's
    footprint is the ground its camera sees there and each candidate's what a tower at that
    place would see (:func:`vigil.geo.terrain_coverage.sector_coverage`), so the coverage figure
    and the tower advice leave out what hills hide; ground sensors count their discs. Returns
    None without terrain (the report then has no coverage, as before).
    """
    from vigil.geo.dem import load_terrain
    from vigil.geo.terrain_coverage import sector_coverage

    if terrain.dem is None and terrain.synthetic is None:
        return None
    return sector_coverage(site, load_terrain(terrain, site, base_dir))


def analyze_counts(
    csv: str | Path,
    time_col: str,
    group_col: str,
    value_col: str,
    out_dir: str | Path,
    dask: str | None = None,
    *,
    year_start_month: int | None = None,
    busiest_year_start_month: int | None = None,
    title: str | None = None,
) -> dict:
    """Analyse an aggregate counts table (time, area, count) and write the report.

    Parameters
    ----------
    csv
        The table (CSV or Parquet).
    time_col, group_col, value_col
        Columns holding the period start, the area (sector, segment) and the count.
    out_dir
        Folder for ``report.html``, ``seasonality.json`` and ``summary.json``.
    dask
        None (in memory), ``"local"``, ``"synchronous"`` or a scheduler address.
    year_start_month
        First month of the years (1: calendar years, 10: US fiscal); None: from the table's
        fiscal-year column (``fy``) or its span, else calendar years; the report says which.
    busiest_year_start_month
        Must equal ``year_start_month`` if given (one basis serves every comparison).

    Returns
    -------
    dict
        The summary written to ``summary.json``, with ``files``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with dask_scheduler(dask):
        if dask is None:
            counts = read_counts(csv, time_col, group_col, value_col, keep=KEEP_COLUMNS)
        else:
            import dask.dataframe as dd

            raw = dd.read_csv(str(csv))
            meta = normalise_counts(
                raw._meta, time_col, group_col, value_col, source=str(csv), keep=KEEP_COLUMNS
            )
            counts = raw.map_partitions(
                normalise_counts,
                time_col,
                group_col,
                value_col,
                source=str(csv),
                keep=KEEP_COLUMNS,
                meta=meta,
            )
        analysis = analyze_counts_table(
            counts,
            year_start_month=year_start_month,
            busiest_year_start_month=busiest_year_start_month,
        )
    analysis.summary.update(
        {"input": str(csv), "time": time_col, "group": group_col, "value": value_col}
    )
    files = write_counts_report(analysis, out, title=title or f"{value_col} by {group_col}")
    analysis.summary["files"] = {k: str(v) for k, v in files.items()}
    return write_json(out / "summary.json", analysis.summary)
