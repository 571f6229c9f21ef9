"""``vigil demo``: the whole chain on the shipped deployment, and what it writes.

Outputs in the chosen folder:

- ``map.html``: the deployment with tracks, crossings and alerts, offline;
- ``events.gpkg``: layers ``detections``, ``track_paths`` (lines), ``track_points`` (tracks
  that never moved), ``crossings``, ``alerts`` (EPSG:4326, one geometry type per layer, times
  as UTC date-times), and the same layers as GeoParquet in ``geoparquet/<layer>.parquet``;
- ``report.html`` (and ``analysis/``): the planners' analysis of the run's crossings;
- ``summary.json``: truth-scored figures and throughput; ``*.sqlite``: the stores.

With ``relief`` (``vigil demo --relief``) the world stands on the sector's ground
(:func:`demo_relief`: the deployment's ``[terrain]`` DEM or synthetic relief, else the demo's
synthetic relief), each tower camera points off by a hidden error, the towers are calibrated
from simulated surveyed landmarks before the run (:func:`calibrate_towers`, written to
``pointing.toml``) and the detectors place detections on the DEM; the summary then has a
``relief`` section (the calibration, and the camera detections of people scored against
the truth: ground error and side of the line).
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from vigil.alerts.channels import DispatchChannel, feed_from_bus
from vigil.config import Deployment
from vigil.ingest.schema import Alert, CameraDetection, Crossing
from vigil.pipeline import Pipeline, write_json
from vigil.sim import SimSettings
from vigil.sim.climate import climate_named
from vigil.sim.files import perturbations_record
from vigil.sim.terrain import SimTerrain
from vigil.tracks.csvfile import iso_time

if TYPE_CHECKING:
    from vigil.geo.dem import ElevationModel
    from vigil.geo.landmarks import TowerPointing
    from vigil.sim import Perturbations, World

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
    relief: bool = False,
    pointing_sigma_deg: float = 0.05,
    calibrate: bool = True,
    perturbations: Perturbations | None = None,
) -> dict:
    """Run the chain for ``hours`` of simulated time; write every output; return the summary.

    ``channels`` (the deployment's ``[cot]``) get every alert and track too (counts in the
    summary's ``cot``). ``relief``: on the sector's ground (:func:`demo_relief`), pointing off by
    ``pointing_sigma_deg`` (degrees: pan, tilt, roll), towers calibrated unless ``calibrate`` is
    False. The summary records ``relief`` and the world's ``perturbations`` (None: none)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tracks.sqlite", "events.sqlite"):
        for suffix in ("", "-wal", "-shm"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    site = deployment.site
    terrain = None
    if relief:
        terrain = SimTerrain(demo_relief(deployment), pointing_sigma_deg=pointing_sigma_deg)
    pipe = Pipeline(
        site,
        sim,
        seed,
        store_dir=out_dir,
        tracker=deployment.tracker_config_on_ground(relief),
        rules=deployment.rules,
        detection=deployment.detection_for,
        terrain=terrain,
        perturbations=perturbations,
    )
    pipe.core.use_crossings(deployment.config.crossings)
    feed_from_bus(pipe.bus, deployment.sector, channels)
    duration = hours * 3600.0
    try:
        if terrain is not None:
            calibration = calibrate_towers(pipe.world, terrain.dem, seed) if calibrate else {}
            pipe.pointing = {t: entry for t, (entry, _) in calibration.items()}
            placement = PlacementScore(pipe)
        pipe.run(duration, progress=progress)
        summary = pipe.summary(duration)
        if terrain is not None:
            summary["relief"] = _relief_summary(pipe, terrain, calibration, placement, out_dir)
        summary.update(seed=seed, hours=hours, perturbations=perturbations_record(perturbations))
        summary["files"], summary["exports"] = write_outputs(pipe, out_dir)
    finally:
        pipe.close()
        for channel in channels:
            channel.close()
    if channels:
        summary["cot"] = {getattr(c, "url", type(c).__name__): dict(c.counts) for c in channels}
    write_json(out_dir / "summary.json", summary)
    return summary


def demo_relief(deployment: Deployment) -> ElevationModel:
    """The ground ``vigil demo --relief`` runs on: the deployment's ``[terrain]`` DEM or
    synthetic relief when it names one, else the demo's synthetic relief
    (:mod:`vigil.geo.relief`, :class:`~vigil.geo.dem.SyntheticRelief` defaults, seed 0) over
    the sector (:func:`~vigil.geo.dem.site_bounds` with the section's margin and cell)."""
    from vigil.geo.dem import SyntheticRelief, load_terrain, site_bounds
    from vigil.geo.relief import synthetic_relief

    terrain, site = deployment.config.terrain, deployment.site
    if terrain.dem is not None or terrain.synthetic is not None:
        return load_terrain(terrain, site, deployment.path.parent)
    bounds = site_bounds(site, terrain.margin_m)
    return synthetic_relief(SyntheticRelief(seed=0), bounds, terrain.cell_m, site.frame())


#: Landmarks per tower, their range from it (metres) and pixel error (pixels).
LANDMARKS, LANDMARK_RANGE_M, LANDMARK_PX = 10, (400.0, 3500.0), 0.5


def calibrate_towers(
    world: World, dem: ElevationModel, seed: int
) -> dict[str, tuple[TowerPointing, object]]:
    """Calibrate each simulated tower from :data:`LANDMARKS` surveyed landmarks, as a crew
    would before the run (:func:`vigil.geo.landmarks.calibrate_tower`).

    The survey is simulated: ground points 0.4-3.5 km away spread over the image of the
    camera as it really points (the world's hidden error), their pixels read with
    :data:`LANDMARK_PX` of error (seeded by ``seed``). Returns, by tower, the calibration
    file's entry and the full solution; a tower that sees too few landmarks is left out (its
    detector then takes the deployment's pointing)."""
    from dataclasses import replace

    from vigil.geo.dem import TerrainError
    from vigil.geo.landmarks import Landmarks, calibrate_tower
    from vigil.geo.raycast import pixels_to_terrain

    rng = np.random.default_rng([seed, 21])
    out: dict[str, tuple[TowerPointing, object]] = {}
    for tower, view in world.views.items():
        cam = world.camera(tower)
        dp, dt, dr = view.pointing_error
        true = replace(cam, pan_deg=(cam.pan_deg + dp) % 360.0, tilt_deg=cam.tilt_deg + dt,
                       roll_deg=cam.roll_deg + dr)  # fmt: skip
        grid = np.meshgrid(np.linspace(0.05, 0.95, 12) * cam.width,
                           np.arange(0.4 * cam.height, 0.98 * cam.height, 2.0))  # fmt: skip
        u, v = (a.ravel() for a in grid)
        h = pixels_to_terrain(true, dem, u, v)
        lo, hi = LANDMARK_RANGE_M
        ok = np.flatnonzero(h.hit & (h.range_m > lo) & (h.range_m < hi))
        if ok.size < 3:
            continue
        ok = ok[np.argsort(u[ok] + 1e-3 * v[ok], kind="stable")]
        pick = ok[np.linspace(0, ok.size - 1, min(LANDMARKS, ok.size)).astype(int)]
        lat, lon = world.frame.to_wgs84(h.x[pick], h.y[pick])
        px = np.column_stack([u[pick], v[pick]]) + rng.normal(0.0, LANDMARK_PX, (pick.size, 2))
        px = np.clip(px, 0.0, [cam.width, cam.height])
        marks = Landmarks([f"{tower}-{k}" for k in range(pick.size)], px, lat, lon, h.z[pick])
        try:
            out[tower] = calibrate_tower(world.site, tower, marks, dem)
        except TerrainError:
            continue
    return out


class PlacementScore:
    """Tower camera detections scored against the truth as they are published: the nearest
    simulated body at the detection's time; a person within :attr:`MATCH_M` counts."""

    #: Farthest a detection is matched to a body, metres.
    MATCH_M = 300.0

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        #: (error m, truth signed distance to the line m, detected signed distance m)
        self.rows: list[tuple[float, float, float]] = []
        pipe.bus.subscribe(f"vigil/v1/{pipe.sector}/#", self._on)

    def _on(self, topic: str, msg: object) -> None:
        if not isinstance(msg, CameraDetection) or msg.frame < 0:
            return
        states = self.pipe.world.states(msg.time)
        if not len(states.ids):
            return
        x, y = self.pipe.frame.to_local([msg.lat], [msg.lon])
        d = np.hypot(np.asarray(states.x) - x[0], np.asarray(states.y) - y[0])
        k = int(np.argmin(d))
        if d[k] > self.MATCH_M or states.classes[k] != "person":
            return
        border = self.pipe.border
        truth = float(border.signed_distance([states.x[k]], [states.y[k]])[0])
        got = float(border.signed_distance(x, y)[0])
        self.rows.append((float(d[k]), truth, got))

    def summary(self) -> dict:
        """Detections of people matched, their ground error (median, 90th percentile, m) and
        the share placed on their true side among those more than 50 m from the line."""
        if not self.rows:
            return {"people_detections": 0}
        err, truth, got = (np.asarray(c) for c in zip(*self.rows, strict=True))
        far = np.abs(truth) > 50.0
        right = int(np.sum(np.sign(truth[far]) == np.sign(got[far])))
        return {
            "people_detections": int(err.size),
            "error_median_m": round(float(np.median(err)), 2),
            "error_p90_m": round(float(np.percentile(err, 90)), 2),
            "beyond_50m_of_line": int(far.sum()),
            "right_side": right,
        }


def _relief_summary(pipe, terrain, calibration, placement, out_dir: Path) -> dict:
    """The summary's ``relief`` section; writes ``pointing.toml`` when towers were calibrated."""
    from vigil.geo.landmarks import format_pointing_file

    towers = {}
    for tower, view in pipe.world.views.items():
        row: dict = {"hidden_error_deg": [round(e, 4) for e in view.pointing_error]}
        if tower in calibration:
            entry, cal = calibration[tower]
            solved = (entry.pan_offset_deg, entry.tilt_offset_deg, entry.roll_offset_deg)
            row["left_after_calibration_deg"] = [
                round(e - s, 4) for e, s in zip(view.pointing_error, solved, strict=True)
            ]
            row["landmark_rms_px"] = round(entry.rms_px, 3)
            row["landmark_median_m"] = round(float(np.nanmedian(cal.residual_m)), 2)
        towers[tower] = row
    if calibration:
        entries = {t: e for t, (e, _) in calibration.items()}
        (out_dir / "pointing.toml").write_text(format_pointing_file(entries), encoding="utf-8")
    dem = terrain.dem
    return {
        "dem_cells": list(dem.z.shape),
        "cell_m": dem.cell_m,
        "height_range_m": [round(float(np.nanmin(dem.z)), 1), round(float(np.nanmax(dem.z)), 1)],
        "pointing_sigma_deg": terrain.pointing_sigma_deg,
        "calibrated": sorted(calibration),
        "towers": towers,
        "placement": placement.summary(),
    }


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
    if "relief" in summary:
        r = summary["relief"]["placement"]
        print(f"  on relief, calibrated {summary['relief']['calibrated']}; people's camera "
              f"detections: {r['people_detections']}, ground error median "
              f"{r.get('error_median_m')} m, right side {r.get('right_side')}/"
              f"{r.get('beyond_50m_of_line')} beyond 50 m of the line")  # fmt: skip
    print(
        f"results in {out_dir.resolve()}: map.html, report.html, events.gpkg, geoparquet/, "
        "summary.json, events.sqlite"
    )
