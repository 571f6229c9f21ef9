"""Thread CPU a message of the core's fusion stages under ``bench_core_load``'s load, with an
A/B switch for the tracker package.

Runs :mod:`benchmarks.bench_core_load` (the same detections straight into a
:class:`~vigil.runner.SectorRunner`, one rate) and times the per-batch and per-tick stages of
:class:`~vigil.tracks.fusion.FusionTracker` and the core's tick with ``time.thread_time``
(after the warm-up; each timed call costs about a microsecond, paid once per batch or tick,
not per message). ``--tracks-from DIR`` loads ``vigil.tracks`` from another copy of
``tracks/`` (say ``git archive <commit> tracks | tar -x -C /tmp/base``) so that two versions
run under one harness; the process CPU a message is printed as ``bench_core_load`` gives it.

Usage: ``python -m benchmarks.bench_core_stages --rate 4000 [--tracks-from /tmp/base/tracks]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import sys
import time
from collections import Counter
from collections.abc import Callable


def _timed(owner: object, name: str, acc: Counter, label: str, undo: list) -> None:
    """Replace ``owner.name`` with a wrapper adding its thread CPU (s) to ``acc[label]``;
    ``undo`` collects what to put back."""
    func: Callable = getattr(owner, name)
    undo.append((owner, name, func))

    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            acc[label] += time.thread_time() - start

    setattr(owner, name, wrapper)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the load, print each stage's thread CPU a message (us), return them."""
    ap = argparse.ArgumentParser(prog="bench_core_stages", description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=4000.0, help="detections a second")
    ap.add_argument("--seconds", type=int, default=8, help="simulated, after a 3 s warm-up")
    ap.add_argument("--tracks-from", default=None, help="a copy of tracks/ to load instead")
    args = ap.parse_args(argv)
    import vigil.tracks

    if args.tracks_from:  # before any vigil.tracks submodule is imported
        if any(m.startswith("vigil.tracks.") for m in sys.modules):
            raise RuntimeError(
                "--tracks-from needs a fresh process: vigil.tracks is imported already; "
                "expected python -m benchmarks.bench_core_stages --tracks-from DIR"
            )
        vigil.tracks.__path__[:] = [args.tracks_from]
    from benchmarks import bench_core_load
    from vigil import core
    from vigil.tracks import fusion, reacquire, tracker, trails

    acc: Counter = Counter()
    undo: list[tuple[object, str, Callable]] = []
    ft = fusion.FusionTracker
    for name in ("_apply", "_camera_arrays", "_speed_evidence", "track_messages", "_snapshot"):
        _timed(ft, name, acc, f"fusion.{name}", undo)
    for name in ("group_clusters", "merge_group", "merge_duplicates"):
        _timed(fusion, name, acc, f"groups.{name}", undo)
    _timed(tracker.Tracker, "update", acc, "Tracker.update", undo)
    _timed(reacquire.LostTracks, "before_batch", acc, "LostTracks.before_batch", undo)
    _timed(trails.Trails, "extend", acc, "Trails.extend", undo)
    _timed(core.SectorCore, "_tick", acc, "core tick (all)", undo)
    _timed(core.SectorCore, "_publish_own", acc, "core._publish_own (bus, alerts)", undo)
    freeze = gc.freeze

    def after_warm_up() -> None:  # bench_core_load freezes the heap after its warm-up
        acc.clear()
        freeze()

    gc.freeze = after_warm_up  # type: ignore[assignment]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            out = bench_core_load.main(
                ["--rates", f"{args.rate:g}", "--seconds", str(args.seconds)]
            )
    finally:
        gc.freeze = freeze  # type: ignore[assignment]
        for owner, name, func in reversed(undo):  # python -m benchmarks runs others after
            setattr(owner, name, func)
    n = out["messages"]
    per_msg = {k: 1e6 * v / n for k, v in acc.items()}
    source = args.tracks_from or str(vigil.tracks.__path__[0])
    print(
        f"{n} detections at {args.rate:g} msg/s, tracks from {source}: "
        f"{out['cpu_us_per_msg']:.2f} us of process CPU a message, tick median "
        f"{out['tick_median_ms']:.1f} ms"
    )
    for k, v in sorted(per_msg.items(), key=lambda kv: -kv[1]):
        print(f"  {v:7.2f} us/msg  {k}")
    return {"cpu_us_per_msg": out["cpu_us_per_msg"], **per_msg}


if __name__ == "__main__":
    main(sys.argv[1:])
