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

Usage: ``python -m benchmarks protocol`` (2 seeds, 0.1 h, 2 fps: a smoke run) or
``python -m benchmarks.bench_protocol --seeds 20 --hours 1 --fps 10 --perturbations field``.
"""

from __future__ import annotations

import argparse
import math
import time


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


def run_seed(deployment, sim, seed: int, duration_s: float, perturbations) -> dict:
    """One run of the chain on ``seed``: :func:`vigil.sim.protocol.score_events`'s counts
    plus the per-animal tallies and the wall time."""
    from vigil.pipeline import Pipeline
    from vigil.sim.protocol import AlertRecorder, TrueCrossing, score_events

    pipe = Pipeline(
        deployment.site,
        sim,
        seed,
        tracker=deployment.tracker_config(),
        rules=deployment.rules,
        detection=deployment.detection_for,
        perturbations=perturbations,
    )
    book = pipe.core.engine.book

    def tracks_of(alert_id: str) -> set[str]:
        oa = book.open.get(alert_id)
        return set(oa.track_ids) if oa is not None else set()

    def to_local(lat: float, lon: float) -> tuple[float, float]:
        x, y = pipe.frame.to_local([lat], [lon])
        return float(x[0]), float(y[0])

    recorder = AlertRecorder(pipe.bus.clock, tracks_of, to_local)
    recorder.attach(pipe.bus, pipe.sector)
    start = sim.start_time
    end = start + duration_s
    wall = time.perf_counter()
    try:
        pipe.run(duration_s)
        truth = pipe.world.crossings(until=end + 60.0)
        earlier = list(pipe.world.crossings_before_start())
        people = [c for c in [*earlier, *truth] if c.cls == "person"]
        crossings = []
        if people:
            entry = pipe.border.entry_direction([c.x for c in people], [c.y for c in people])
            for c, e in zip(people, entry, strict=True):
                if c.direction != e:
                    continue
                inside = pipe.coverage(c.time).contains(_point(c.x, c.y))
                counted = bool(start <= c.time <= end and inside)
                crossings.append(TrueCrossing(c.crossing_id, c.time, c.x, c.y, counted))
        scored = score_events(
            crossings,
            recorder.events,
            border_km=pipe.border.length_m / 1000.0,
            duration_s=duration_s,
            start_time=start,
        )
        scored["animals"] = {k: tuple(v) for k, v in pipe.scorer.animal_by_id.items()}
        old = pipe.summary(duration_s)["alerts"]  # the lenient scoring, for comparison
        scored["lenient"] = (old["alerted"], old["inside_coverage"], old["false_crossing_alerts"])
    finally:
        pipe.close()
    scored["seed"] = seed
    scored["wall_s"] = time.perf_counter() - wall
    return scored


def _point(x: float, y: float):
    import shapely

    return shapely.Point(x, y)


def main(argv: list[str] | None = None) -> dict:
    """Run the protocol; print the table; return the figures."""
    import msgspec

    from vigil.cli import _parse_time
    from vigil.config import load_default
    from vigil.demo import demo_start
    from vigil.sim.protocol import animal_tally, summarise
    from vigil.sim.seeds import check_evaluation, evaluation_seeds
    from vigil.sim.settings import SimSettings

    p = argparse.ArgumentParser(prog="bench_protocol")
    p.add_argument("--seeds", type=int, default=2, help="how many evaluation seeds (default 2)")
    p.add_argument("--hours", type=float, default=0.1, help="simulated hours per seed")
    p.add_argument("--fps", type=float, default=2.0, help="tower frames per second (field: 10)")
    p.add_argument("--rate-scale", type=float, default=20.0, help="crossing rate factor")
    p.add_argument("--start", help="UTC start, ISO 8601 (default: the demo's 02:00 local)")
    p.add_argument("--perturbations", default="none", help="none (default) or field")
    p.add_argument("--without", nargs="*", default=[], help="families off on top of field")
    args = p.parse_args(argv)

    deployment = load_default()
    start = demo_start(deployment) if args.start is None else _parse_time(args.start)
    sim = msgspec.structs.replace(
        SimSettings(), start_time=start, crossing_rate_scale=args.rate_scale,
        frame_rate_hz=args.fps,
    )  # fmt: skip
    pert = perturbations_named(args.perturbations, args.without)
    seeds = check_evaluation(evaluation_seeds(args.seeds))
    runs = []
    for seed in seeds:
        r = run_seed(deployment, sim, seed, args.hours * 3600.0, pert)
        print(
            f"seed {seed}: {r['alerted']}/{r['crossings']} alerted, {r['false_alerts']} false "
            f"of {r['new_alerts']} new alerts (+{r['joins']} joins); lenient scoring "
            f"{r['lenient'][0]}/{r['lenient'][1]}, {r['lenient'][2]} false; "
            f"{r['wall_s']:.0f} s wall",
            flush=True,
        )
        runs.append(r)
    per_animal = {f"{r['seed']}:{k}": v for r in runs for k, v in r["animals"].items()}
    s = summarise(runs, animal_tally(per_animal))
    off = ", without " + " ".join(args.without) if args.without else ""
    print(
        f"\nprotocol: {len(seeds)} evaluation seeds ({seeds[0]}..{seeds[-1]}), "
        f"{args.hours:g} h each, {args.fps:g} fps, crossing rate x{args.rate_scale:g}, "
        f"perturbations {args.perturbations}{off}"
    )
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
        f"crossing), alerts dated before the start {s['alerts_before_start']}"
    )
    old = [sum(r["lenient"][i] for r in runs) for i in range(3)]
    print(f"lenient scoring (vigil.sim.scoring, for comparison): {old[0]}/{old[1]} alerted, "
          f"{old[2]} false")  # fmt: skip
    return {**s, "lenient": old, "seeds": seeds, "hours": args.hours, "fps": args.fps}


if __name__ == "__main__":
    main(__import__("sys").argv[1:])
