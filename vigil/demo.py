"""``vigil demo``: the whole chain on the shipped deployment, and what it writes.

Outputs in the chosen folder:

- ``map.html``: the deployment with tracks, crossings and alerts, offline;
- ``events.gpkg``: layers ``detections``, ``tracks``, ``crossings``, ``alerts`` (EPSG:4326);
- ``report.html`` (and ``analysis/``): the planners' analysis of the run's crossings;
- ``summary.json``: truth-scored figures and throughput;
- ``vigil.tracks.sqlite``, ``events.sqlite``: the stores.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import msgspec

from vigil.config import Deployment
from vigil.pipeline import Pipeline, write_json
from vigil.sim import SimSettings

#: Demo defaults: start at 02:00 local (09:00 UTC) on 2026-06-01, when crossings happen.
DEMO_START_UTC = 1_780_272_000.0 + 9 * 3600.0


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
) -> dict:
    """Run the chain for ``hours`` of simulated time; write every output; return the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tracks.sqlite", "events.sqlite"):
        for suffix in ("", "-wal", "-shm"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    site = deployment.site
    pipe = Pipeline(site, sim, seed, store_dir=out_dir)
    duration = hours * 3600.0
    try:
        pipe.run(duration, progress=progress)
        summary = pipe.summary(duration)
        summary["seed"] = seed
        summary["hours"] = hours
        summary["files"] = write_outputs(pipe, out_dir)
    finally:
        pipe.close()
    write_json(out_dir / "summary.json", summary)
    return summary


def write_outputs(pipe: Pipeline, out_dir: Path) -> dict[str, str]:
    """The map, the GeoPackage and the report of a finished run."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import LineString, Point

    from vigil.maps.offline import save_offline
    from vigil.maps.report import analyze_crossings
    from vigil.maps.situation import add_events, situation_map

    frame = pipe.frame
    files: dict[str, str] = {}

    # tracks as trails
    trails: dict[str, list[tuple[float, float, float, str]]] = defaultdict(list)
    for tid, t, x, y, cls in pipe.log.tracks:
        trails[tid].append((t, x, y, cls))
    paths: dict[str, tuple[str, list[tuple[float, float]]]] = {}
    rows = []
    for tid, pts in trails.items():
        xs = [p[1] for p in pts]
        ys = [p[2] for p in pts]
        lat, lon = frame.to_wgs84(xs, ys)
        cls = pts[-1][3]
        paths[tid] = (cls, list(zip(lat.tolist(), lon.tolist(), strict=True)))
        geom = LineString(zip(lon, lat, strict=True)) if len(pts) > 1 else Point(lon[0], lat[0])
        rows.append(
            {
                "track_id": tid,
                "class": cls,
                "start": pts[0][0],
                "end": pts[-1][0],
                "updates": len(pts),
                "geometry": geom,
            }
        )
    crossings = [msgspec.to_builtins(c) for c in pipe.log.crossings]
    alerts = [msgspec.to_builtins(a) for a in pipe.core.events.alerts()]

    m = situation_map(pipe.site)
    add_events(m, paths, crossings, alerts)
    files["map"] = str(save_offline(m, out_dir / "map.html"))

    gpkg = out_dir / "events.gpkg"
    gpkg.unlink(missing_ok=True)

    def layer(records: list[dict], name: str, geoms) -> None:
        gdf = (
            gpd.GeoDataFrame(records, geometry=geoms, crs="EPSG:4326")
            if records
            else gpd.GeoDataFrame({"empty": []}, geometry=[], crs="EPSG:4326")
        )
        for col in gdf.columns:
            if (
                col != "geometry"
                and gdf[col].map(lambda v: isinstance(v, list | dict | tuple)).any()
            ):
                gdf[col] = gdf[col].map(lambda v: msgspec.json.encode(v).decode())
        gdf.to_file(gpkg, layer=name, driver="GPKG")

    dets = [msgspec.to_builtins(d) for d in pipe.detection_log]
    layer(dets, "detections", [Point(d["lon"], d["lat"]) for d in dets])
    layer(
        [{k: v for k, v in r.items() if k != "geometry"} for r in rows],
        "tracks",
        [r["geometry"] for r in rows],
    )
    layer(crossings, "crossings", [Point(c["lon"], c["lat"]) for c in crossings])
    layer(alerts, "alerts", [Point(a["lon"], a["lat"]) for a in alerts])
    files["events"] = str(gpkg)

    table = out_dir / "crossings.csv"
    cols = ["crossing_id", "track_id", "time", "segment_id", "direction", "lat", "lon"]
    pd.DataFrame(crossings, columns=cols).to_csv(table, index=False)
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
    return files


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
        f"  crossings: {c['true_northbound_person']} true northbound by people, "
        f"{c['detected_northbound']} detected northbound ({c['detected']} in all)"
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
    print(f"results in {out_dir.resolve()}: map.html, report.html, events.gpkg, summary.json")
