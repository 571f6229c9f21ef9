"""``vigil demo``: the whole chain on the shipped deployment, and what it writes.

Outputs in the chosen folder:

- ``map.html``: the deployment with tracks, crossings and alerts, offline;
- ``events.gpkg``: layers ``detections``, ``track_paths`` (lines), ``track_points`` (tracks
  that never moved), ``crossings``, ``alerts`` (EPSG:4326, one geometry type per layer, times
  as UTC date-times), and the same layers as GeoParquet in ``geoparquet/<layer>.parquet``;
- ``report.html`` (and ``analysis/``): the planners' analysis of the run's crossings;
- ``summary.json``: truth-scored figures and throughput;
- ``vigil.tracks.sqlite``, ``events.sqlite``: the stores.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec

from vigil.alerts.channels import DispatchChannel, feed_from_bus
from vigil.config import Deployment
from vigil.ingest.schema import Alert, CameraDetection, Crossing
from vigil.pipeline import Pipeline, write_json
from vigil.sim import SimSettings
from vigil.sim.climate import climate_named
from vigil.tracks.csvfile import iso_time

#: Demo defaults: start at 02:00 local (09:00 UTC) on 2026-06-01, when crossings happen.
DEMO_START_UTC = 1_780_272_000.0 + 9 * 3600.0


def demo_start(deployment: Deployment) -> float:
    """The demo's default start, UTC seconds: 02:00 local on a night of the place's busy
    season (its ``[sector] climate``): 2026-06-01 in the desert (:data:`DEMO_START_UTC` in
    Arizona), 2027-01-15 on snow in the north."""
    sector = deployment.site.sector
    return climate_named(sector.climate).demo_start_utc(sector.timezone)


def demo_settings(
    *, start_time: float = DEMO_START_UTC, crossing_rate_scale: float = 20.0, fps: float = 2.0
) -> SimSettings:
    """Simulator settings for a short, busy demo (more crossings, cameras at a low rate)."""
    return SimSettings(
        start_time=start_time, crossing_rate_scale=crossing_rate_scale, frame_rate_hz=fps
    )


def run_demo(
    deployment: Deployment,
    out_dir: Path,
    *,
    hours: float,
    seed: int,
    sim: SimSettings,
    progress: bool = True,
    channels: Sequence[DispatchChannel] = (),
) -> dict:
    """Run the chain for ``hours`` of simulated time; write every output; return the summary.

    ``channels`` (the deployment's ``[cot]``) also get every alert and track as they are
    published; their counts go in the summary's ``cot``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tracks.sqlite", "events.sqlite"):
        for suffix in ("", "-wal", "-shm"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    site = deployment.site
    pipe = Pipeline(
        site,
        sim,
        seed,
        store_dir=out_dir,
        tracker=deployment.tracker_config(),
        rules=deployment.rules,
        detection=deployment.detection_for,
    )
    feed_from_bus(pipe.bus, deployment.sector, channels)
    duration = hours * 3600.0
    try:
        pipe.run(duration, progress=progress)
        summary = pipe.summary(duration)
        summary["seed"] = seed
        summary["hours"] = hours
        summary["files"], summary["exports"] = write_outputs(pipe, out_dir)
    finally:
        pipe.close()
        for channel in channels:
            channel.close()
    if channels:
        summary["cot"] = {getattr(c, "url", type(c).__name__): dict(c.counts) for c in channels}
    write_json(out_dir / "summary.json", summary)
    return summary


#: Columns and types of the ``track_paths`` and ``track_points`` layers (``start``/``end``
#: UTC seconds, written as date-times).
TRACK_COLUMNS = {
    "track_id": "object",
    "class": "object",
    "start": "float64",
    "end": "float64",
    "updates": "int64",
}

#: One exported layer: rows, columns with their pandas types (for an empty layer), geometry
#: type, time columns.
Layer = tuple[list[dict], Mapping[str, str], str, Sequence[str]]


def _fields(struct: type) -> dict[str, str]:
    """A wire struct's fields with the pandas type an empty layer gives each."""
    types = {float: "float64", int: "int64", bool: "bool"}
    return {
        "type": "object",
        **{f.name: types.get(f.type, "object") for f in msgspec.structs.fields(struct)},
    }


def _located(rows: list[dict]) -> list[dict]:
    from shapely.geometry import Point

    return [{**r, "geometry": Point(r["lon"], r["lat"])} for r in rows]


def write_event_layers(out_dir: Path, layers: dict[str, Layer]) -> dict[str, int]:
    """Write each layer to ``events.gpkg`` and ``geoparquet/<layer>.parquet``; features per layer.

    Rows are dicts with a shapely ``geometry`` (WGS84 lon/lat); lists and dicts in a row are
    written as JSON text; the time columns (UTC seconds) become UTC date-time fields. An
    empty layer keeps its columns and its geometry type.
    """
    import geopandas as gpd
    import pandas as pd

    from vigil.geo.export import write_geoparquet, write_gpkg_layer

    gpkg = out_dir / "events.gpkg"
    gpkg.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    for name, (records, columns, geometry_type, times) in layers.items():
        if records:
            gdf = gpd.GeoDataFrame(records, geometry="geometry", crs="EPSG:4326")
        else:
            empty = {c: pd.Series([], dtype=dtype) for c, dtype in columns.items()}
            gdf = gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([]), crs="EPSG:4326")
        for col in gdf.columns:
            if (
                col != "geometry"
                and gdf[col].map(lambda v: isinstance(v, list | dict | tuple)).any()
            ):
                gdf[col] = gdf[col].map(lambda v: msgspec.json.encode(v).decode())
        counts[name] = write_gpkg_layer(
            gdf, gpkg, name, geometry_type=geometry_type, time_columns=times
        )
        write_geoparquet(gdf, out_dir / "geoparquet" / f"{name}.parquet", time_columns=times)
    return counts


def track_layers(
    updates: Iterable[tuple[str, float, float, float, str]],
    to_wgs84: Callable[[Sequence[float], Sequence[float]], tuple],
) -> tuple[dict[str, tuple[str, list[tuple[float, float]]]], list[dict], list[dict]]:
    """Tracks as map paths and as rows of the ``track_paths`` and ``track_points`` layers.

    ``updates`` are ``(track_id, time UTC s, x m, y m, class)`` in the sector frame;
    ``to_wgs84`` turns x, y arrays into lat, lon arrays. A track with two or more distinct
    positions is a LineString (``track_paths``); one that never moved (one update, or several
    at one position: a line through them would be invalid) is a Point (``track_points``) and
    its map path holds that one position.
    """
    from shapely.geometry import LineString, Point

    trails: dict[str, list[tuple[float, float, float, str]]] = defaultdict(list)
    for tid, t, x, y, cls in updates:
        trails[tid].append((t, x, y, cls))
    paths: dict[str, tuple[str, list[tuple[float, float]]]] = {}
    lines: list[dict] = []
    points: list[dict] = []
    for tid, pts in trails.items():
        lat, lon = to_wgs84([p[1] for p in pts], [p[2] for p in pts])
        cls = pts[-1][3]
        latlon = list(zip(lat.tolist(), lon.tolist(), strict=True))
        moved = len(set(latlon)) > 1
        paths[tid] = (cls, latlon if moved else latlon[:1])
        row = {
            "track_id": tid,
            "class": cls,
            "start": pts[0][0],
            "end": pts[-1][0],
            "updates": len(pts),
        }
        if moved:
            lines.append({**row, "geometry": LineString(zip(lon, lat, strict=True))})
        else:
            points.append({**row, "geometry": Point(lon[0], lat[0])})
    return paths, lines, points


def write_outputs(pipe: Pipeline, out_dir: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The map, the GeoPackage, the GeoParquet files and the report of a finished run.

    Returns the files written and the features per exported layer (with
    ``tracks_without_movement``: tracks of several updates at one position, written as
    points because a line through one position is not a valid geometry).
    """
    import pandas as pd

    from vigil.maps.offline import save_offline
    from vigil.maps.report import analyze_crossings
    from vigil.maps.situation import add_events, situation_map

    frame = pipe.frame
    files: dict[str, str] = {}

    paths, lines, points = track_layers(pipe.log.tracks, frame.to_wgs84)
    crossings = [msgspec.to_builtins(c) for c in pipe.log.crossings]
    alerts = [msgspec.to_builtins(a) for a in pipe.core.events.alerts()]

    m = situation_map(pipe.site)
    add_events(m, paths, crossings, alerts)
    files["map"] = str(save_offline(m, out_dir / "map.html"))

    dets = [msgspec.to_builtins(d) for d in pipe.detection_log]
    exports = write_event_layers(
        out_dir,
        {
            "detections": (_located(dets), _fields(CameraDetection), "Point", ("time",)),
            "track_paths": (lines, TRACK_COLUMNS, "LineString", ("start", "end")),
            "track_points": (points, TRACK_COLUMNS, "Point", ("start", "end")),
            "crossings": (_located(crossings), _fields(Crossing), "Point", ("time",)),
            "alerts": (_located(alerts), _fields(Alert), "Point", ("time",)),
        },
    )
    exports["tracks_without_movement"] = sum(1 for r in points if r["updates"] > 1)
    files["events"] = str(out_dir / "events.gpkg")
    files["geoparquet"] = str(out_dir / "geoparquet")

    table = out_dir / "crossings.csv"
    cols = ["crossing_id", "track_id", "time", "segment_id", "direction", "lat", "lon"]
    frame = pd.DataFrame(crossings, columns=cols)
    # for people: the time in the sector's zone, ISO 8601 with its offset, beside UTC seconds
    zone = ZoneInfo(pipe.site.sector.timezone)
    frame["local_time"] = [iso_time(float(t), zone) for t in frame["time"]]
    frame.to_csv(table, index=False)
    files["crossings"] = str(table)
    analysis = out_dir / "analysis"
    if crossings:
        coverage = [pipe.world.camera(t).footprint() for t in pipe.world.views]
        analyze_crossings(
            table,
            analysis,
            border=pipe.border,
            timezone=pipe.site.sector.timezone,
            footprints=coverage,
            title=f"Vigil demo: {pipe.sector}",
        )
        shutil.copyfile(analysis / "report.html", out_dir / "report.html")
    else:
        (out_dir / "report.html").write_text(
            "<!doctype html><html><head><meta charset='utf-8'><title>Vigil demo report</title>"
            "</head><body><h1>Vigil demo report</h1><p>No crossings were detected in this run, "
            "so there is nothing to analyse. Run longer (<code>--hours</code>) or with more "
            "crossings (<code>--rate-scale</code>).</p></body></html>\n",
            encoding="utf-8",
        )
    files["report"] = str(out_dir / "report.html")
    return files, exports


def print_summary(summary: dict, out_dir: Path) -> None:
    """The figures a newcomer wants to see, and where the files are."""
    c, a, thr, lat = (
        summary["crossings"],
        summary["alerts"],
        summary["throughput"],
        summary["latency_ms"],
    )

    def f(v, fmt="{:.2f}"):
        return "n/a" if v is None else fmt.format(v)

    recall = a["alert_recall"]
    print(
        f"sector {summary['sector']}: {summary['hours']:g} simulated hours, "
        f"seed {summary['seed']}, "
        f"{summary['wall_s']:.0f} s wall ({f(summary['speed_x_real_time'], '{:.1f}')}x real time)"
    )
    print(
        f"  crossings: {c['true_northbound_person']} true into the US by people, "
        f"{c['detected_northbound']} detected into the US ({c['detected']} in all)"
    )
    print(
        f"  crossing alerts: recall {f(recall)} "
        f"({a['alerted']}/{a['inside_coverage']} inside coverage), "
        f"{a['false_crossing_alerts']} false = "
        f"{f(a['false_alerts_per_10km_day'])} per 10 km per day"
    )
    print(
        f"  ID switches per crossing group: {f(summary['id_switches_per_crossing_group'])}; "
        f"animals classified as animals: {f(summary['animal_classified_as_animal'])}"
    )
    print(
        f"  alert processing: p50 {f(lat['p50'], '{:.1f}')} ms, "
        f"p99 {f(lat['p99'], '{:.1f}')} ms; crossing alerts (fusion to bus): "
        f"p50 {f(lat.get('crossing_p50'), '{:.1f}')} ms, "
        f"p99 {f(lat.get('crossing_p99'), '{:.1f}')} ms"
    )
    print(
        f"  processed {thr['frames']} frames ({f(thr['frames_per_s'], '{:.1f}')}/s), "
        f"{thr['messages']} messages ({f(thr['messages_per_s'], '{:.0f}')}/s); quarantined: "
        f"{sum(summary['quarantine'].values())} {summary['quarantine']}"
    )
    print(
        f"results in {out_dir.resolve()}: map.html, report.html, events.gpkg, geoparquet/, "
        "summary.json, events.sqlite"
    )
