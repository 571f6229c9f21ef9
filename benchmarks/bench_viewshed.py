"""Viewsheds of every tower of the demo sector: Vigil's numba kernel against ``gdal_viewshed``.

Scenario: the demo deployment's sector and towers (``vigil/data/tucson.toml``), on the
synthetic relief of :mod:`vigil.geo.relief` (seed 0, 30 m cells over the towers' ranges plus
1 km: about 1500 x 430 cells), each tower's viewshed from its mast height, to its rated range,
for a 1.7 m target (a person), with GDAL's curvature and refraction coefficient 0.85714.

Anchors: GDAL's ``gdal_viewshed`` (Debian ``gdal-bin``) run once per tower on the same DEM as
a GeoTIFF, as a planner would script it (its time includes starting the process and reading
and writing the GeoTIFFs); and GDAL's own ``ViewshedGenerate`` in one process on the band
already open, writing to memory (Debian's ``python3-gdal``, which ``gdal-bin`` depends on, run
with the system ``/usr/bin/python3``), which is GDAL's computation alone. Vigil's time is all
towers' viewsheds in one call on the DEM already in memory (how the service and the planners'
report use it), once with numba's default threads and once on one thread.
Both outputs are compared cell by cell (agreement printed). Times are medians of ``--runs``.

Run: ``python -m benchmarks viewshed`` or ``python -m benchmarks.bench_viewshed --runs 5``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

import msgspec
import numba
import numpy as np
import rasterio

from vigil.geo.dem import ElevationModel, SyntheticRelief, site_bounds
from vigil.geo.raycast import CURVATURE_REFRACTION
from vigil.geo.relief import synthetic_relief
from vigil.geo.site import Site
from vigil.geo.viewshed import HIDDEN, OUT_OF_RANGE, VISIBLE, observer_cell, viewsheds

DEPLOYMENT = Path(__file__).resolve().parent.parent / "vigil" / "data" / "tucson.toml"
TARGET_M = 1.7
SYSTEM_PYTHON = "/usr/bin/python3"

#: Runs GDAL's ViewshedGenerate for every tower in one process (system Python with osgeo),
#: prints the median seconds of all towers per run.
GDAL_IN_PROCESS = """
import json, statistics, sys, time
from osgeo import gdal
args = json.loads(sys.argv[1])
ds = gdal.Open(args["tif"])
band = ds.GetRasterBand(1)
times = []
for _ in range(args["runs"]):
    t0 = time.perf_counter()
    for x, y, h in zip(args["x"], args["y"], args["h"]):
        out = gdal.ViewshedGenerate(
            band, "MEM", "vs", [], x, y, h, args["target"], 1, 0, 2, -1.0, args["cc"],
            gdal.GVM_Edge, args["md"])
        out = None
    times.append(time.perf_counter() - t0)
print(statistics.median(times))
"""


def demo_site() -> Site:
    """The demo deployment's sector and towers (the rest of the file is not needed here)."""
    raw = tomllib.loads(DEPLOYMENT.read_text())
    return msgspec.convert({"sector": raw["sector"], "towers": raw["towers"]}, Site)


def gdal_run(tif: Path, out: Path, x: float, y: float, h: float, md: float) -> None:
    """One gdal_viewshed run with the same options as Vigil's call (plain floats: numpy's
    repr, ``np.float64(...)``, would read as 0 there)."""
    x, y, h, md = float(x), float(y), float(h), float(md)
    subprocess.run(
        [
            "gdal_viewshed", "-q", "-ox", repr(x), "-oy", repr(y), "-oz", repr(h),
            "-tz", repr(TARGET_M), "-md", repr(md), "-cc", repr(CURVATURE_REFRACTION),
            "-vv", str(VISIBLE), "-iv", str(HIDDEN), "-ov", str(OUT_OF_RANGE),
            str(tif), str(out),
        ],
        check=True,
    )  # fmt: skip


def gdal_grid(dem: ElevationModel, path: Path) -> np.ndarray:
    """gdal_viewshed's output laid on the DEM's grid (outside its window: out of range)."""
    with rasterio.open(path) as ds:
        codes = ds.read(1)
        t = ds.transform
    grid = np.full(dem.shape, OUT_OF_RANGE, dtype=np.uint8)
    half = dem.cell_m / 2.0
    col0 = round((t.c - (dem.x0 - half)) / dem.cell_m)
    row0 = round((dem.y0 + (dem.shape[0] - 1) * dem.cell_m + half - t.f) / dem.cell_m)
    grid[::-1][row0 : row0 + codes.shape[0], col0 : col0 + codes.shape[1]] = codes
    return grid


def gdal_in_process(tif: Path, ox, oy, heights, md: float, runs: int) -> float | None:
    """Median seconds for GDAL's ViewshedGenerate over all towers in one process, or None
    where the system Python has no GDAL bindings."""
    if not Path(SYSTEM_PYTHON).exists():
        return None
    payload = {
        "tif": str(tif),
        "x": [float(v) for v in ox],
        "y": [float(v) for v in oy],
        "h": [float(v) for v in heights],
        "target": TARGET_M,
        "cc": CURVATURE_REFRACTION,
        "md": float(md),
        "runs": runs,
    }
    done = subprocess.run(
        [SYSTEM_PYTHON, "-c", GDAL_IN_PROCESS, json.dumps(payload)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"GDAL in process not run: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return float(done.stdout.strip())


def main(argv: list[str] | None = None) -> None:
    """Print times, ratios and agreement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per timing (median)")
    parser.add_argument("--cell", type=float, default=30.0, help="DEM cell, metres")
    args = parser.parse_args(argv)
    if shutil.which("gdal_viewshed") is None:
        print("gdal_viewshed is not installed (Debian gdal-bin): nothing to compare against")
        return
    site = demo_site()
    frame = site.frame()
    dem = synthetic_relief(SyntheticRelief(seed=0), site_bounds(site, 1000.0), args.cell, frame)
    tx, ty = frame.to_local([t.lat for t in site.towers], [t.lon for t in site.towers])
    # observers on their cells' centres, so that GDAL and Vigil pick the same cell
    i, j, _ = observer_cell(dem, tx, ty)
    ox = dem.x0 + j * dem.cell_m
    oy = dem.y0 + i * dem.cell_m
    heights = np.array([t.mast_height_m for t in site.towers])
    ranges = np.array([t.range_m for t in site.towers])
    if np.ptp(ranges) > 0:
        raise SystemExit("the towers' ranges differ; one max distance per call is assumed here")
    md = float(ranges[0])
    n = len(site.towers)

    def vigil_all() -> np.ndarray:
        return viewsheds(dem, ox, oy, heights, target_height_m=TARGET_M, max_distance_m=md).codes

    codes = vigil_all()  # compile (or load numba's cache) before timing
    with tempfile.TemporaryDirectory() as tmp:
        tif = dem.to_geotiff(Path(tmp) / "dem.tif")
        outs = [Path(tmp) / f"vs{k}.tif" for k in range(n)]

        def gdal_all() -> None:
            for k in range(n):
                gdal_run(tif, outs[k], ox[k], oy[k], heights[k], md)

        def timed(fn) -> float:
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return statistics.median(times)

        t_gdal = timed(gdal_all)
        fixed = Path(tmp) / "fixed.tif"
        t_gdal_fixed = timed(lambda: gdal_run(tif, fixed, ox[0], oy[0], heights[0], args.cell))
        t_gdal_mem = gdal_in_process(tif, ox, oy, heights, md, args.runs)
        agree = [float(np.mean(gdal_grid(dem, outs[k]) == codes[k])) for k in range(n)]
        threads = numba.get_num_threads()
        t_vigil = timed(vigil_all)
        numba.set_num_threads(1)
        try:
            t_vigil_1 = timed(vigil_all)
        finally:
            numba.set_num_threads(threads)
    print(
        f"DEM {dem.shape[1]} x {dem.shape[0]} cells of {dem.cell_m:g} m; {n} towers, range "
        f"{md:g} m, target {TARGET_M} m; medians of {args.runs} runs"
    )
    print(f"gdal_viewshed, one run per tower:  {t_gdal * 1e3:9.1f} ms")
    print(f"  of which fixed cost (1-cell run): {t_gdal_fixed * 1e3:9.1f} ms per run")
    if t_gdal_mem is not None:
        print(f"GDAL ViewshedGenerate in process:  {t_gdal_mem * 1e3:9.1f} ms (all towers)")
    print(f"vigil viewsheds ({threads} threads):   {t_vigil * 1e3:9.1f} ms")
    print(f"vigil viewsheds (1 thread):        {t_vigil_1 * 1e3:9.1f} ms")
    print(
        f"ratio gdal / vigil: {t_gdal / t_vigil:.1f} x ({threads} threads), "
        f"{t_gdal / t_vigil_1:.1f} x (1 thread)"
    )
    if t_gdal_mem is not None:
        print(
            f"ratio GDAL in process / vigil: {t_gdal_mem / t_vigil:.1f} x ({threads} threads), "
            f"{t_gdal_mem / t_vigil_1:.1f} x (1 thread)"
        )
    print(f"cells agreeing with gdal_viewshed: min {min(agree):.5f}, mean {np.mean(agree):.5f}")


if __name__ == "__main__":
    main()
