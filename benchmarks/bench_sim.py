"""World simulator: frames rendered per second at 640x480, simulated minutes per wall minute.

Anchor: the same frame composed with numpy/scipy (``map_coordinates``), in the same run.
Usage: ``python -m benchmarks sim`` or ``python -m benchmarks.bench_sim --minutes 10``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np


def _frames_per_second(site, frames: int) -> tuple[float, float]:
    from scipy import ndimage

    from vigil.sim import SimSettings, World

    settings = SimSettings(start_time=SimSettings().start_time + 6 * 3600, towers=("t03",),
                           ugs=False, uas=False, render_threads=1)  # fmt: skip
    world = World(site, settings, 1)
    world.step(1.0)  # compile, build the background
    t = time.perf_counter()
    n = sum(1 for item in world.run(frames / 10.0) if getattr(item, "image", None) is not None)
    fps = n / (time.perf_counter() - t)
    view = world.views["t03"]
    bg = view.bg.astype(np.float64)
    rows, cols = bg.shape
    ii, jj = np.mgrid[0:rows, 0:cols].astype(np.float64)
    t = time.perf_counter()
    for k in range(max(frames // 10, 5)):
        shift = 0.3 * np.sin(0.35 * np.arange(rows) + k)
        img = ndimage.map_coordinates(bg, [ii + 0.2, jj + shift[:, None]], order=1, mode="nearest")
        img = img + view.veg_w * 2.0 + np.tile(np.roll(view.noise, k, axis=0), (2, 2))[:rows, :cols]
        np.clip(np.floor(img + 0.5), 0, 255).astype(np.uint8)
    numpy_fps = max(frames // 10, 5) / (time.perf_counter() - t)
    world.close()
    return fps, numpy_fps


def main(argv: list[str] | None = None) -> dict:
    """Print the table; return the figures."""
    from vigil.config import load_default
    from vigil.sim import SimSettings, World, simulate_to_files

    p = argparse.ArgumentParser(prog="bench_sim")
    p.add_argument("--minutes", type=float, default=1.0, help="simulated minutes to files")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    site = load_default().site
    fps, anchor = [], []
    for _ in range(args.repeat):
        a, b = _frames_per_second(site, 300)
        fps.append(a)
        anchor.append(b)
    fps_m, anchor_m = statistics.median(fps), statistics.median(anchor)

    t = time.perf_counter()
    world = World(site, SimSettings(cameras="off"), 1)
    world.step(3600.0)
    headless = 60.0 / (time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        cpu = time.process_time()
        m = simulate_to_files(site, SimSettings(), args.minutes, 1, out, progress=False)
        wall = time.perf_counter() - t
        cpu = time.process_time() - cpu
        frames = sum(m["counts"]["frames"].values())
    files_rate = args.minutes / (wall / 60.0)
    print(f"{'measure':58s} {'value':>10s}")
    print(f"{'frames/s rendered, 640x480, one thread (median)':58s} {fps_m:10.1f}")
    print(f"{'frames/s, numpy/scipy anchor (median)':58s} {anchor_m:10.1f}")
    print(f"{'ratio kernel / anchor':58s} {fps_m / anchor_m:10.1f}")
    print(f"{'headless (no video): simulated min per wall min':58s} {headless:10.1f}")
    print(f"{f'default deployment to files, {args.minutes:g} min: sim min per wall min':58s} "
          f"{files_rate:10.2f}")  # fmt: skip
    print(f"{'  wall s for that run':58s} {wall:10.1f}")
    print(f"{'  frames written (6 towers, 640x480, 10 Hz)':58s} {frames:10d}")
    print(f"{'  main-process CPU s per frame (ms)':58s} {1000 * cpu / max(frames, 1):10.2f}")
    print(f"{'  projected wall min for a 10-min run':58s} {10.0 / files_rate:10.2f}")
    return {
        "fps_640x480": fps_m,
        "fps_numpy_anchor": anchor_m,
        "ratio": fps_m / anchor_m,
        "headless_sim_min_per_wall_min": headless,
        "files_sim_min_per_wall_min": files_rate,
        "files_wall_s": wall,
        "frames": frames,
    }


if __name__ == "__main__":
    main(__import__("sys").argv[1:])
