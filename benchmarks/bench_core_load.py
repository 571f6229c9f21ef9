"""CPU a message of vigil run's core work, in one process: bench_service's load without the
broker, its input process or the wall clock.

The same detections as ``bench_service`` (camera ``t03``, K = rate / 10 walkers each seen 10
times a second, new walkers at each rate; a 3 s warm-up at the first rate) go straight into a
:class:`~vigil.runner.SectorRunner` (reorder hold 1 s) as ``vigil run`` hands them over
(already checked), with message times 1.8e9 s onwards. As the service does, the stores are
written once a simulated second (outside the ticks) and the objects made during the warm-up are
frozen out of the collector (``gc.freeze``). Prints the process CPU a message and each tick's
CPU (median and the five worst, milliseconds): a tick longer than the 250 ms issue 19 allows
over the structural wait shows here without a broker's noise.

Usage: ``python -m benchmarks core_load`` or ``python -m benchmarks.bench_core_load --rates
2500 3000 --seconds 8``.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    """Run the load, print the figures, return them."""
    from benchmarks.bench_service import _detections, _walkers
    from vigil.config import load_default
    from vigil.ingest.schema import topic_for
    from vigil.runner import SectorRunner

    ap = argparse.ArgumentParser(prog="bench_core_load", description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[2500, 3000, 3250, 3500, 3750, 4000])
    ap.add_argument("--seconds", type=int, default=8, help="per rate, simulated")
    args = ap.parse_args(argv)
    site = load_default().site
    frame = site.frame()
    runner = SectorRunner(site, hold_s=1.0)
    runner.checked_inputs = True  # as the service hands over what its input bus decoded
    core, ticks = runner.core, []
    tick = core.tick

    def timed(t: float):
        c = time.process_time()
        out = tick(t)
        ticks.append(time.process_time() - c)
        return out

    core.tick = timed  # type: ignore[method-assign]
    t, n, cpu = 1.8e9, 0, 0.0
    for k, (rate, secs) in enumerate(
        [(args.rates[0], 3)] + [(r, args.seconds) for r in args.rates]
    ):
        start, t0 = _walkers(int(round(rate / 10.0))), t
        c = time.process_time()
        for i in range(int(secs * 10)):
            for d in _detections(frame, start, t0 + 0.1 * i + 0.0123, t0):
                runner.handle(topic_for("tucson", d), d)
                n += k > 0
            if i % 10 == 9:
                core.flush_stores()  # the service writes them each second, between ticks
        if k == 0:  # warm-up: compiled kernels loaded, objects so far frozen as the service does
            gc.collect()
            gc.freeze()
            ticks.clear()
        else:
            cpu += time.process_time() - c
        t = t0 + secs
    runner.finish()
    runner.close()
    ms = np.array(ticks) * 1e3
    out = {
        "messages": n,
        "cpu_us_per_msg": 1e6 * cpu / n,
        "tick_median_ms": float(np.median(ms)),
        "tick_worst_ms": sorted(ms.tolist())[-5:],
    }
    print(
        f"{n} detections at {', '.join(f'{r:g}' for r in args.rates)} msg/s, "
        f"{args.seconds} s each: "
        f"{out['cpu_us_per_msg']:.1f} us of CPU a message; ticks {len(ms)}, median "
        f"{out['tick_median_ms']:.0f} ms, worst {[round(x) for x in out['tick_worst_ms']]} ms"
    )
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
