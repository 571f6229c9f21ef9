"""Cost of the field's perturbations (issue 22) in the simulator: rendered frames per second at
640x480 with every family on (``Perturbations.field()``) against the world as before
(``Perturbations.none()``, the anchor), in the same run, interleaved repeats, medians.

Also counts, over the same frames, how many bodies the towers see with and without them (the
brush, attenuation and crossover hide some; bodies vary in size and pose).
Usage: ``python -m benchmarks perturbations`` [``--frames 200 --repeat 3``].
"""

from __future__ import annotations

import argparse
import statistics
import time


def _run(site, pert, frames: int, hour_offset_h: float) -> tuple[float, int]:
    from vigil.sim import SimSettings, World

    settings = SimSettings(start_time=SimSettings().start_time + hour_offset_h * 3600,
                           towers=("t03",), ugs=False, uas=False, render_threads=1,
                           crossing_rate_scale=20.0)  # fmt: skip
    world = World(site, settings, 11, perturbations=pert)
    world.step(1.0)  # compile, build the background
    t = time.perf_counter()
    n = seen = 0
    for item in world.run(frames / 10.0):
        if getattr(item, "image", None) is not None:
            n += 1
            seen += len(item.objects)
    fps = n / (time.perf_counter() - t)
    world.close()
    return fps, seen


def main(argv: list[str] | None = None) -> dict:
    """Print the table; return the figures."""
    from vigil.config import load_default
    from vigil.sim.perturbations import Perturbations

    p = argparse.ArgumentParser(prog="bench_perturbations")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    site = load_default().site
    out: dict = {}
    for label, hour in (("night 23:00", 6.0), ("afternoon 15:00", 22.0)):
        fps = {"none": [], "field": []}
        seen = {}
        for _ in range(args.repeat):
            for name, pert in (("none", Perturbations.none()), ("field", Perturbations.field())):
                f, s = _run(site, pert, args.frames, hour)
                fps[name].append(f)
                seen[name] = s
        med = {k: statistics.median(v) for k, v in fps.items()}
        out[label] = {"fps": med, "ratio": med["field"] / med["none"], "bodies_seen": seen}
        print(f"{label}: frames/s none {med['none']:.1f}, field {med['field']:.1f} "
              f"(ratio {med['field'] / med['none']:.2f}); body-frames seen none "
              f"{seen['none']}, field {seen['field']} over {args.frames} frames")  # fmt: skip
    return out


if __name__ == "__main__":
    main()
