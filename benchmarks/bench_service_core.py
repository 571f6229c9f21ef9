"""``vigil run``'s core thread without the broker: thread CPU a message and the pauses of its
periodic work (store writes, snapshot starts), paced at the wall clock.

The detections of ``bench_service`` (as ``bench_core_load`` makes them) are journaled as the
input process journals them, encoded, then handed to a :class:`~vigil.service.SectorService`
that never connects, as its core thread takes a batch: decoded with ``trusted_decode`` and
handled, then, every 0.1 s, the core loop's periodic step (stores each second, snapshots by
the service's defaults: 5,000 messages but at most one per 5 s, forked; status). One batch a
0.1 s of wall clock, so the snapshot's child and the output writer compete for the CPU as in
the service. ``--stores-on-core`` writes the stores and prunes the journal on the core thread
(as before vigil.store_writer).

Prints, after a 3 s warm-up: the core thread's CPU a message (decode, handling, ticks and the
periodic steps; the journaling is the input process's and not counted), and the wall and CPU
of each periodic step that wrote stores or started a snapshot (median and max, ms), and of the
ticks.

Usage: ``python -m benchmarks.bench_service_core --rates 3500 4250 --seconds 8``.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    """Run the load, print the figures, return them."""
    from benchmarks.bench_service import _detections, _walkers
    from vigil.config import load_default
    from vigil.ingest.journal import Arrival
    from vigil.ingest.mqtt import MqttSettings
    from vigil.ingest.mqtt_process import trusted_decode
    from vigil.ingest.schema import encode, topic_for
    from vigil.service import STORE_FLUSH_S, SectorService

    ap = argparse.ArgumentParser(prog="bench_service_core", description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[3500, 4250])
    ap.add_argument("--seconds", type=int, default=8, help="per rate, wall")
    ap.add_argument("--stores-on-core", action="store_true", help="the old way, for A/B")
    args = ap.parse_args(argv)
    site = load_default().site
    frame = site.frame()
    tmp = tempfile.TemporaryDirectory(prefix="vigil-bench-core-")
    svc = SectorService(site, MqttSettings(host="127.0.0.1", port=1), Path(tmp.name) / "state")
    svc._replay()
    runner = svc.runner
    assert runner is not None
    runner.checked_inputs = True
    stores = svc._stores
    if args.stores_on_core:
        svc._stores = None  # type: ignore[assignment]
    else:
        stores.attach(runner.core)
    ticks: list[tuple[float, float]] = []
    core_class = type(runner.core)
    tick = core_class.tick

    def timed_tick(self, t: float):
        w, c = time.perf_counter(), time.thread_time()
        out = tick(self, t)
        ticks.append((time.perf_counter() - w, time.thread_time() - c))
        return out

    core_class.tick = timed_tick  # type: ignore[method-assign]  (on the class: not state)
    steps: dict[str, list[tuple[float, float]]] = {"flush": [], "snapshot": []}
    cpu, n, t = 0.0, 0, 1.8e9
    wall0 = time.monotonic()
    last_flush = wall0
    plan = [(args.rates[0], 3)] + [(r, args.seconds) for r in args.rates]
    for k, (rate, secs) in enumerate(plan):
        start, t0 = _walkers(int(round(rate / 10.0))), t
        for i in range(int(secs * 10)):
            due = wall0 + 0.1 * i
            time.sleep(max(0.0, due - time.monotonic()))
            dets = _detections(frame, start, t0 + 0.1 * i + 0.0123, t0)
            batch = [(topic_for("tucson", d), encode(d)) for d in dets]
            seq = svc.journal.last_seq
            svc.journal.append_many(
                [Arrival(f"k{seq + j}", tp, p, time.time()) for j, (tp, p) in enumerate(batch)]
            )
            c = time.thread_time()
            for tp, p in batch:
                svc._handle(runner, tp, trusted_decode(p))
            svc._seq_of = (svc.handled, svc.journal.last_seq)
            now = time.monotonic()
            w0, c0 = time.perf_counter(), time.thread_time()
            what = None
            if now - last_flush >= STORE_FLUSH_S:
                last_flush = now
                runner.core.flush_stores()
                what = "flush"
            svc._reap_snapshot()
            if svc._snapshot_due(now) and svc._snap_child is None:
                svc._snap_wall = now
                svc._start_snapshot(runner)
                what = "snapshot"
            svc._write_status()
            if what and k > 0:
                steps[what].append((time.perf_counter() - w0, time.thread_time() - c0))
            if k > 0:
                cpu += time.thread_time() - c
                n += len(batch)
        if k == 0:
            gc.collect()
            gc.freeze()
            ticks.clear()
        t = t0 + secs
        wall0 += secs
    svc._reap_snapshot(block=True)
    core_class.tick = tick  # type: ignore[method-assign]
    if args.stores_on_core:
        svc._stores = stores
    svc._stopping.set()
    svc._writer.drain()
    stores.detach()
    runner.close()
    svc.close(1.0)
    tmp.cleanup()
    tw = np.array([w for w, _ in ticks]) * 1e3
    tc = np.array([c for _, c in ticks]) * 1e3
    out: dict = {
        "messages": n,
        "core_cpu_us_per_msg": 1e6 * cpu / max(n, 1),
        "tick_wall_ms": (float(np.median(tw)), float(tw.max())),
        "tick_cpu_ms": (float(np.median(tc)), float(tc.max())),
        "snapshots": dict(svc.snapshot_counts),
    }
    for name, vals in steps.items():
        w = np.array([v[0] for v in vals] or [0.0]) * 1e3
        c = np.array([v[1] for v in vals] or [0.0]) * 1e3
        out[f"{name}_n"] = len(vals)
        out[f"{name}_wall_ms"] = (float(np.median(w)), float(w.max()))
        out[f"{name}_cpu_ms"] = (float(np.median(c)), float(c.max()))
    mode = "stores on the core thread" if args.stores_on_core else "stores on their thread"
    print(
        f"{mode}: {n} detections at {', '.join(f'{r:g}' for r in args.rates)} msg/s: core "
        f"thread {out['core_cpu_us_per_msg']:.1f} us a message; ticks median/max wall "
        f"{out['tick_wall_ms'][0]:.0f}/{out['tick_wall_ms'][1]:.0f} ms, cpu "
        f"{out['tick_cpu_ms'][0]:.0f}/{out['tick_cpu_ms'][1]:.0f} ms; store flush steps "
        f"({out['flush_n']}) median/max wall {out['flush_wall_ms'][0]:.1f}/"
        f"{out['flush_wall_ms'][1]:.1f} ms, cpu {out['flush_cpu_ms'][0]:.1f}/"
        f"{out['flush_cpu_ms'][1]:.1f}; snapshot starts ({out['snapshot_n']}) wall "
        f"{out['snapshot_wall_ms'][0]:.1f}/{out['snapshot_wall_ms'][1]:.1f} ms, cpu "
        f"{out['snapshot_cpu_ms'][0]:.1f}/{out['snapshot_cpu_ms'][1]:.1f}; "
        f"snapshots {out['snapshots']}"
    )
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
