"""The evaluation protocol (issue 22): the demo's chain on evaluation seeds only, scored one to
one, every figure with its 95 % interval.

Runs the chain (simulator -> detection -> fusion -> crossings -> alerts, the shipped
deployment's settings) on the first ``--seeds`` of :data:`vigil.sim.seeds.EVALUATION_SEEDS`
(never a calibration seed: :func:`vigil.sim.seeds.check_evaluation`), records each crossing
alert event when the bus publishes it (:class:`vigil.sim.protocol.AlertRecorder`), matches
true entering person crossings and alert events one to one (:mod:`vigil.sim.protocol`) and
prints:

- crossing-alert recall over the true crossings inside coverage, with Wilson's interval;
- false crossing alerts per 10 km of border per day, with the exact Poisson interval;
- animals classed as animals (one vote per animal tracked: the class its track had most of
  the seconds it was matched), with Wilson's interval;
- the latency from the physical crossing to the alert's publication, p50 and p95 (seconds).

``--perturbations field`` runs the world with every perturbation family at its field default
(:meth:`vigil.sim.perturbations.Perturbations.field`), ``none`` (the default) as before;
``--without FAMILY`` switches families off one by one on top of ``field``.

**Run-edge margins** (``--warmup``, ``--tail``; :class:`vigil.sim.protocol.Margins`): each
seed simulates ``--warmup`` seconds (default 300) before the scored ``--hours`` and ``--tail``
seconds (default 900, the matcher's window) after them, and only the crossings, false alerts
and exposure inside the scored interval are scored: at the simulation's start the chain has no
tracks yet, and a crossing in its last minute cannot be alerted before it stops (artefacts of
the protocol, not misses of the system). ``--warmup 0 --tail 0`` is the protocol before the
margins (the interval is the run). ``--score-whole-run`` scores cached margin runs again
(:func:`rescore`) over the whole simulated time (warm-up and tail counted, as with margins 0
over a longer run), to show what the edges cost on the same simulation.

Each seed's result is kept in a JSON cache (``--cache``, by default
``build/protocol/runs.json``) under the run's settings as soon as the seed is done, so a run
stopped part-way goes on where it stopped, and ``--table-only`` prints the table of the seeds
already run. Each missed crossing and each false alert is put down to the stage of the chain
that lost it (:mod:`vigil.sim.protocol_diagnosis`), and the breakdown is printed with the table.

Usage: ``python -m benchmarks protocol`` (2 seeds, 0.1 h, 2 fps: a smoke run) or
``python -m benchmarks.bench_protocol --seeds 20 --hours 1 --fps 10 --perturbations field``;
``--first K`` skips the first K evaluation seeds (runs split over several invocations);
``--fps 10 --pool-fps 2`` takes each seed from its 10 fps run where the cache has one, else
from its 2 fps run (a subset at the deployed rate, the rest at a lower one: issue 22). The
crossing rate (``--rate-scale``, the simulator's ``crossing_rate_scale``), the frame rate(s)
and the optical blur are printed in the table's heading. Wall time on the shared 2-core
machine (2026-12-07): 0.25 simulated h of one seed at 10 fps took 2,990 s (~740 CPU-s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import Counter
from pathlib import Path


def perturbations_named(name: str, without: list[str]):
    """``none`` or ``field`` (:class:`vigil.sim.perturbations.Perturbations`), with the
    families in ``without`` switched off."""
    import msgspec

    from vigil.sim.perturbations import Perturbations

    if name not in ("none", "field"):
        raise ValueError(f"--perturbations is none or field, not {name!r}")
    p = Perturbations.none() if name == "none" else Perturbations.field()
    for family in without:
        if family not in Perturbations.__struct_fields__:
            raise ValueError(f"no perturbation family {family!r}")
        p = msgspec.structs.replace(
            p, **{family: msgspec.structs.replace(getattr(p, family), on=False)}
        )
    return p


def run_seed(
    deployment, sim, seed: int, duration_s: float, perturbations, margins=None, infer=False
) -> dict:
    """One run of the chain on ``seed`` over the scored interval ``[sim.start_time,
    sim.start_time + duration_s]`` (s), simulated with ``margins``
    (:class:`vigil.sim.protocol.Margins`, default none) before and after it:
    :func:`vigil.sim.protocol.score_events`'s counts, the per-animal tallies, the diagnosis of
    each miss and false alert, and the wall time (a JSON-ready dict)."""
    import msgspec
    import numpy as np

    from vigil.pipeline import Pipeline
    from vigil.sim.protocol import AlertRecorder, Margins, TrueCrossing, score_events
    from vigil.sim.protocol_diagnosis import WatchingScorer, diagnose

    margins = Margins(0.0, 0.0) if margins is None else margins
    start = sim.start_time
    end = start + duration_s
    run_start, run_s = margins.run(start, duration_s)
    run_end = run_start + run_s
    sim = msgspec.structs.replace(sim, start_time=run_start)
    code = code_version()  # as the run starts (others may commit while it runs)
    pipe = Pipeline(
        deployment.site,
        sim,
        seed,
        tracker=deployment.tracker_config(),
        rules=deployment.rules,
        detection=deployment.detection_for,
        perturbations=perturbations,
    )
    if infer:  # the field's inference of crossings not seen whole (vigil.core, issue 22)
        pipe.core.infer_crossings()
    book = pipe.core.engine.book
    seen = [0]

    def new_detections() -> np.ndarray:
        log = pipe.detection_log
        new, seen[0] = log[seen[0] :], len(log)
        if not new:
            return np.zeros((0, 2))
        x, y = pipe.frame.to_local([d.lat for d in new], [d.lon for d in new])
        return np.column_stack([x, y])

    pipe.scorer = WatchingScorer(detections=new_detections)

    def tracks_of(alert_id: str) -> set[str]:
        oa = book.open.get(alert_id)
        return set(oa.track_ids) if oa is not None else set()

    def to_local(lat: float, lon: float) -> tuple[float, float]:
        x, y = pipe.frame.to_local([lat], [lon])
        return float(x[0]), float(y[0])

    recorder = AlertRecorder(pipe.bus.clock, tracks_of, to_local)
    recorder.attach(pipe.bus, pipe.sector)
    wall = time.perf_counter()
    try:
        pipe.run(run_s)
        truth = pipe.world.crossings(until=run_end + 60.0)
        earlier = list(pipe.world.crossings_before_start())
        people = [c for c in [*earlier, *truth] if c.cls == "person"]
        crossings = []
        if people:
            entry = pipe.border.entry_direction([c.x for c in people], [c.y for c in people])
            for c, e in zip(people, entry, strict=True):
                if c.direction != e:
                    continue
                inside = bool(pipe.coverage(c.time).contains(_point(c.x, c.y)))
                counted = bool(start <= c.time <= end and inside)
                crossings.append(
                    TrueCrossing(c.crossing_id, c.time, c.x, c.y, counted, c.group_id, inside)
                )
        scored = score_events(
            crossings,
            recorder.events,
            border_km=pipe.border.length_m / 1000.0,
            duration_s=duration_s,
            start_time=start,
            run_start=run_start,
        )
        scored["animals"] = {k: list(v) for k, v in pipe.scorer.animal_by_id.items()}
        # the lenient scoring, for comparison (over the whole simulated run)
        old = pipe.summary(run_s)["alerts"]
        scored["lenient"] = [old["alerted"], old["inside_coverage"], old["false_crossing_alerts"]]
        sys_x = pipe.log.crossings
        if sys_x:
            x, y = pipe.frame.to_local([c.lat for c in sys_x], [c.lon for c in sys_x])
            entry = pipe.border.entry_direction(x, y)
            crossed = {c.track_id for c, e in zip(sys_x, entry, strict=True) if c.direction == e}
        else:
            crossed = set()
        scored["diagnosis"] = diagnose(
            crossings,
            recorder.events,
            pipe.scorer.witness,
            crossed,
            start_time=start,
            end_time=end,
            run_start=run_start,
        )
        scored["frames"] = pipe.stats.frames
        # what was scored, to score again from the cache (other windows, a warm-up)
        scored["truth"] = [[c.crossing_id, c.time, c.x, c.y, c.counted, c.group_id, c.inside]
                           for c in crossings]  # fmt: skip
        scored["events"] = [[e.alert_id, e.track_id, e.published, e.x, e.y, e.estimated, e.new]
                            for e in recorder.events]  # fmt: skip
    finally:
        pipe.close()
    scored["seed"] = seed
    scored["scored_interval"] = [start, end]
    scored["run_interval"] = [run_start, run_end]
    scored["wall_s"] = time.perf_counter() - wall
    scored["code"] = code
    return scored


def code_version() -> str:
    """The commit the run started from, and a hash of the uncommitted Python changes in the
    working tree then (the tree is shared: a run records what it ran)."""
    import subprocess

    def git(*a: str) -> str:
        r = subprocess.run(["git", *a], capture_output=True, text=True, timeout=30, check=False)
        return r.stdout.strip()

    import hashlib

    diff = git("diff", "HEAD", "--", "*.py")
    head = git("rev-parse", "--short", "HEAD")
    return f"{head} + diff {hashlib.sha256(diff.encode()).hexdigest()[:10]}" if diff else head


def _point(x: float, y: float):
    import shapely

    return shapely.Point(x, y)


def run_key(args, start: float, fps: float | None = None) -> str:
    """The settings a cached seed was run with (one cache entry per settings); ``fps``
    replaces ``args.fps``. Margins of 0 leave the key as it was before there were margins."""
    key = {
        "hours": args.hours,
        "fps": args.fps if fps is None else fps,
        "rate_scale": args.rate_scale,
        "start": start,
        "perturbations": args.perturbations,
        "without": sorted(args.without),
    }
    for name in ("warmup", "tail"):
        if getattr(args, name, 0.0):
            key[name] = getattr(args, name)
    if getattr(args, "crossing_inference", False):
        key["crossing_inference"] = "field"
    if getattr(args, "field_camera", False):
        key["camera"] = "field"
    return json.dumps(key, sort_keys=True)


def rescore(r: dict, whole_run: bool = False) -> dict:
    """A cached seed scored again from what it recorded (the true crossings and the alert
    events): over its scored interval, or with ``whole_run`` over the whole simulated run
    (warm-up and tail counted: what margins of 0 would count over that run). The figures of
    :func:`vigil.sim.protocol.score_events` only; the diagnosis is left as it was run."""
    from vigil.sim.protocol import AlertEvent, TrueCrossing, in_scored_interval, score_events

    start, end = r["scored_interval"]
    a, b = r.get("run_interval", r["scored_interval"]) if whole_run else (start, end)
    truth = in_scored_interval([TrueCrossing(*c) for c in r["truth"]], a, b)
    events = [AlertEvent(*e) for e in r["events"]]
    border_km = r["exposure_10km_day"] * 10.0 * 86400.0 / max(end - start, 1e-9)
    run_start = r.get("run_interval", r["scored_interval"])[0]
    scored = score_events(
        truth, events, border_km=border_km, duration_s=b - a, start_time=a, run_start=run_start
    )
    return {**r, **scored}


def load_cache(path: Path) -> dict:
    """The cache file's runs by settings key, then seed (empty when there is none)."""
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def save_cache(path: Path, cache: dict) -> None:
    """Write the cache atomically (a stopped run leaves the last whole file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(cache, allow_nan=False), encoding="utf-8")
    tmp.replace(path)


def print_table(s: dict, runs: list[dict], header: str, start: float) -> None:
    """The protocol's table with the intervals, then the diagnosis of the losses (``start``:
    the runs' start, UTC s)."""
    from vigil.sim.protocol import wilson
    from vigil.sim.protocol_diagnosis import FALSE_REASONS, MISS_REASONS, tally

    print(f"\n{header}")
    print(f"{'figure':44s} {'value':>8s}  {'95 % interval':>17s}  {'n':>10s}")

    def row(name, value, ci, n):
        lo, hi = ci
        shown = "n/a" if math.isnan(value) else f"{value:.3f}"
        interval = "n/a" if math.isnan(lo) else f"[{lo:.3f}, {hi:.3f}]"
        print(f"{name:44s} {shown:>8s}  {interval:>17s}  {n:>10s}")

    row(
        "crossing-alert recall (one to one)",
        s["recall"],
        s["recall_ci"],
        f"{s['alerted']}/{s['crossings']}",
    )
    row(
        "false crossing alerts per 10 km·day",
        s["false_per_10km_day"],
        s["false_per_10km_day_ci"],
        f"{s['false_alerts']}/{s['exposure_10km_day']:.3f}",
    )
    row("animals classed as animals (per animal)", s["animal_share"], s["animal_ci"],
        f"{s['animals_as_animal']}/{s['animals']}")  # fmt: skip
    print(
        f"{'latency crossing -> alert published, s':44s} p50 {s['latency_p50_s']:.1f}, "
        f"p95 {s['latency_p95_s']:.1f} (over {s['alerted']} alerted crossings)"
    )
    print(
        f"new alerts {s['new_alerts']}, joins {s['joins']} ({s['unmatched_joins']} matching no "
        f"crossing), alerts dated before the start {s['alerts_before_start']}, unmatched new "
        f"alerts published outside the scored interval {s.get('unmatched_outside', 0)}"
    )
    n_iso, k_iso, n_crowd, k_crowd = s.get("isolated_crowded", [0, 0, 0, 0])
    row("  recall, no other crossing in 600 m/900 s", k_iso / n_iso if n_iso else math.nan,
        wilson(k_iso, n_iso), f"{k_iso}/{n_iso}")  # fmt: skip
    row("  recall, another crossing in 600 m/900 s", k_crowd / n_crowd if n_crowd
        else math.nan, wilson(k_crowd, n_crowd), f"{k_crowd}/{n_crowd}")  # fmt: skip
    old = [sum(r["lenient"][i] for r in runs) for i in range(3)]
    print(f"lenient scoring (vigil.sim.scoring, whole simulated run): {old[0]}/{old[1]} alerted, "
          f"{old[2]} false")  # fmt: skip
    diags = [r["diagnosis"] for r in runs]
    misses, false = tally(diags)
    outside = sum(d["uncovered"] for d in diags)
    print(
        f"entering crossings outside coverage (not counted): {outside}, "
        f"{sum(d['uncovered_alerted'] for d in diags)} of them alerted all the same"
    )
    near_end = sum(m.get("to_end_s", math.inf) < 300.0 for d in diags for m in d["misses"])
    near_start = sum(
        m.get("from_start_s", m["time"] - start) < 120.0 for d in diags for m in d["misses"]
    )
    print(
        f"missed crossings, by the stage that lost them ({sum(misses.values())}; "
        f"{near_start} of them in the run's first 120 s, {near_end} in its last 300 s):"
    )
    for reason in MISS_REASONS:
        if misses[reason]:
            print(f"  {misses[reason]:4d}  {reason}")
    gaps = [(abs(m["credited_dt_s"]), m["credited_m"]) for d in diags for m in d["misses"]
            if "credited_dt_s" in m]  # fmt: skip
    if gaps:
        dt, dm = zip(*gaps, strict=True)
        print(
            f"  credited crossings lay {min(dt):.0f}-{max(dt):.0f} s (median "
            f"{sorted(dt)[len(dt) // 2]:.0f} s) and {min(dm):.0f}-{max(dm):.0f} m from the missed"
        )
        # two groups crossing at one spot within a minute read as one strung-out group to any
        # sensor (groups string out over 50-200 m, 40-150 s at a walk): not a separate recall
        # figure, a reading aid
        alike = sum(t <= 60.0 and m <= 50.0 for t, m in gaps)
        k, n = s["alerted"] + alike, s["crossings"]
        lo, hi = wilson(k, n)
        print(
            f"  {alike} of them within 60 s and 50 m of the credited one; recall if those "
            f"counted as alerted: {k}/{n} = {k / n:.3f} [{lo:.3f}, {hi:.3f}]"
        )
    print(f"false alerts, by what their track lay on ({sum(false.values())}):")
    for reason in FALSE_REASONS:
        if false[reason]:
            print(f"  {false[reason]:4d}  {reason}")


def main(argv: list[str] | None = None) -> dict:
    """Run the protocol (or read it from the cache); print the table; return the figures."""
    import msgspec

    from benchmarks.protocol_deployment import field_camera_deployment
    from vigil.cli import _parse_time
    from vigil.config import load_default
    from vigil.demo import demo_start
    from vigil.sim.protocol import Margins, animal_tally, summarise
    from vigil.sim.seeds import EVALUATION_SEEDS, check_evaluation
    from vigil.sim.settings import SimSettings

    p = argparse.ArgumentParser(prog="bench_protocol")
    p.add_argument("--seeds", type=int, default=2, help="how many evaluation seeds (default 2)")
    p.add_argument("--first", type=int, default=0, help="skip this many evaluation seeds")
    p.add_argument("--hours", type=float, default=0.1, help="simulated hours per seed")
    p.add_argument("--fps", type=float, default=2.0, help="tower frames per second (field: 10)")
    p.add_argument("--rate-scale", type=float, default=20.0, help="crossing rate factor")
    p.add_argument("--start", help="UTC start, ISO 8601 (default: the demo's 02:00 local)")
    p.add_argument("--perturbations", default="none", help="none (default) or field")
    p.add_argument("--without", nargs="*", default=[], help="families off on top of field")
    p.add_argument("--cache", default="build/protocol/runs.json", help="per-seed JSON cache")
    p.add_argument("--table-only", action="store_true", help="run nothing: the cached seeds")
    p.add_argument("--json", help="also write the figures and the diagnosis here")
    p.add_argument("--pool-fps", type=float, help="seeds not cached at --fps: cached at this")
    p.add_argument("--warmup", type=float, default=300.0, help="s simulated before (def. 300)")
    p.add_argument("--tail", type=float, default=900.0, help="s simulated after (default 900)")
    p.add_argument("--score-whole-run", action="store_true", help="cached: score warm-up+tail")
    p.add_argument(
        "--crossing-inference",
        action="store_true",
        help="entries and fragment crossings (vigil.core.FIELD_*; issue 22; off by default)",
    )
    p.add_argument("--field-camera", action="store_true", help="blur 0.8 px + its class tables")
    args = p.parse_args(argv)

    deployment = field_camera_deployment() if args.field_camera else load_default()
    start = demo_start(deployment) if args.start is None else _parse_time(args.start)
    sim = msgspec.structs.replace(
        SimSettings(), start_time=start, crossing_rate_scale=args.rate_scale,
        frame_rate_hz=args.fps,
    )  # fmt: skip
    pert = perturbations_named(args.perturbations, args.without)
    margins = Margins(args.warmup, args.tail)
    n_eval = len(EVALUATION_SEEDS)
    if not (args.first >= 0 and args.seeds >= 1 and args.first + args.seeds <= n_eval):
        raise ValueError(f"--first {args.first} --seeds {args.seeds}: out of the evaluation seeds")
    seeds = check_evaluation(EVALUATION_SEEDS[args.first : args.first + args.seeds])
    cache_path = Path(args.cache)
    key = run_key(args, start)
    runs = []
    for seed in seeds:
        cache = load_cache(cache_path)  # re-read: another invocation may have added to it
        r = cache.get(key, {}).get(str(seed))
        if r is None and args.pool_fps is not None:
            r = cache.get(run_key(args, start, args.pool_fps), {}).get(str(seed))
            if r is not None:
                r = {**r, "fps": args.pool_fps}
        if r is None and args.table_only:
            continue
        if r is None:
            r = run_seed(
                deployment, sim, seed, args.hours * 3600.0, pert, margins, args.crossing_inference
            )
            cache = load_cache(cache_path)
            cache.setdefault(key, {})[str(seed)] = r
            save_cache(cache_path, cache)
            how = f"{r['wall_s']:.0f} s wall"
        else:
            how = "cached"
        recorded = "truth" in r and "scored_interval" in r
        if recorded and (args.score_whole_run or "isolated_crowded" not in r):
            r = rescore(r, whole_run=args.score_whole_run)
        d = r["diagnosis"]
        print(
            f"seed {seed}: {r['alerted']}/{r['crossings']} alerted, {r['false_alerts']} false "
            f"of {r['new_alerts']} new alerts (+{r['joins']} joins); lenient scoring "
            f"{r['lenient'][0]}/{r['lenient'][1]}, {r['lenient'][2]} false; misses "
            f"{dict(Counter(m['reason'] for m in d['misses']))}; false "
            f"{dict(Counter(f['reason'] for f in d['false']))}; {how}, code {r.get('code', '?')}",
            flush=True,
        )
        runs.append(r)
    if not runs:
        print("no seed run or cached for these settings")
        return {}
    done = [r["seed"] for r in runs]
    per_animal = {f"{r['seed']}:{k}": tuple(v) for r in runs for k, v in r["animals"].items()}
    s = summarise(runs, animal_tally(per_animal))
    off = ", without " + " ".join(args.without) if args.without else ""
    blur = f"PSF sigma {pert.blur.sigma_px:g} px" if pert.blur.on else "no PSF blur"
    print_table(
        s,
        runs,
        f"protocol: {len(done)} evaluation seeds ({', '.join(map(str, _ranges(done)))}), "
        f"{args.hours:g} h each, {_rates(runs, args.fps)}, crossing rate x{args.rate_scale:g}, "
        f"perturbations {args.perturbations}{off} ({blur}), scored "
        + (
            "over the whole simulated run (--score-whole-run; the losses below: the scored "
            "interval's)"
            if args.score_whole_run
            else f"after {args.warmup:g} s of warm-up, {args.tail:g} s of tail simulated"
        ),
        start,
    )
    out = {**s, "seeds": done, "hours": args.hours, "fps": args.fps,
           "rate_scale": args.rate_scale, "perturbations": args.perturbations,
           "warmup_s": args.warmup, "tail_s": args.tail, "whole_run": args.score_whole_run,
           "without": args.without,
           "lenient": [sum(r["lenient"][i] for r in runs) for i in range(3)],
           "diagnosis": {str(r["seed"]): r["diagnosis"] for r in runs}}  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float), encoding="utf-8")
    return out


def _rates(runs: list[dict], fps: float) -> str:
    """The frame rates the runs were made at: '10 fps' or '10 fps (1 seed), 2 fps (3)'."""
    n = Counter(r.get("fps", fps) for r in runs)
    if len(n) == 1:
        return f"{next(iter(n)):g} fps"
    return ", ".join(f"{f:g} fps ({k} seed{'s' if k > 1 else ''})" for f, k in n.most_common())


def _ranges(seeds: list[int]) -> list[str]:
    """Seeds written as runs: [50001, 50002, 50003, 50007] -> ['50001-50003', '50007']."""
    out: list[list[int]] = []
    for s in sorted(seeds):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return [f"{a}" if a == b else f"{a}-{b}" for a, b in out]


if __name__ == "__main__":
    main(__import__("sys").argv[1:])
