"""Why animals are classed person or vehicle: per body, what the detector guessed and what the
track published (issue 22; calibration seeds only).

Not a ``bench_*`` module (it is not run by ``python -m benchmarks``): a tool for the class
evidence's tuning. It reads recordings made by ``benchmarks calibrate_classes --out DIR``
(simulated runs with their truth), fits the class tables on some of them as ``vigil calibrate
classes --truth`` does (:func:`fit_on`) and replays the others through the sector core
(:func:`replay_bodies`), keeping for each body: its class, range from the nearest tower,
seconds matched to a live track and the class published in each, the tracks it was matched to,
and the guesses of the camera detections placed within the scorer's radius of it.

Usage: ``python -m benchmarks.class_diagnosis DIR --folds 7,11 0,1 2,5`` (fit on the other
calibration recordings in ``DIR``, replay each fold's seeds) prints a line per animal the vote
got wrong and a summary of causes.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Bodies and detections/tracks are matched within this, metres (the scorer's radius).
MATCH_M = 30.0


@dataclass
class Body:
    """One body of a replayed run, as the vote saw it."""

    id: str
    cls: str
    range_m: list[float] = field(default_factory=list)
    published: Counter[str] = field(default_factory=Counter)
    tracks: Counter[str] = field(default_factory=Counter)
    guesses: Counter[str] = field(default_factory=Counter)
    probs: list[tuple[float, float, float]] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> int:
        return sum(self.published.values())

    def voted(self) -> str:
        """The vote's class: the published class of most matched seconds, else ``wrong``."""
        right = self.published[self.cls]
        return self.cls if 2 * right > self.seconds else "wrong"


def fit_on(paths: list[Path], deployment, **fit_kw):
    """Class tables fitted on simulated recordings labelled by their truth, over the
    deployment's tables (as ``vigil calibrate classes --truth``)."""
    from vigil.cli.class_runs import read_run, truth_of
    from vigil.tracks import label_fit as lf

    d = deployment
    frame = d.site.frame()
    joined, speeds = lf.Joined(), ([], [], [])
    for k, path in enumerate(paths):
        run = read_run(path, frame, d.sector)
        here = lf.prefix_tracks(run.tracks, truth_of(d.site, run), f"{k}/")
        lf.add_run(joined, speeds, run.detections, run.tracks, here)
    return lf.fit_tables(joined, speeds, d.class_model, **fit_kw)


def replay_bodies(site, path: Path, tracker, towers=("t05",)) -> list[Body]:
    """Replay a simulated recording through a fresh sector core with ``tracker`` and keep
    each body's :class:`Body` (as :func:`vigil.cli.class_runs.replay_classes` scores it)."""
    import msgspec

    from vigil.cli.class_runs import _INPUT_KINDS, META_KEY, SimulatedRun, StoredTruth
    from vigil.core import SectorCore
    from vigil.ingest.bus import InProcessBus
    from vigil.ingest.recording import read_recording
    from vigil.ingest.schema import CameraDetection, decode
    from vigil.ingest.topics import expected_kind
    from vigil.sim.scoring import _assign

    header, messages = read_recording(path)
    run = msgspec.convert(header.meta[META_KEY], SimulatedRun)
    truth = StoredTruth(run.truth)
    start, end = run.sim.start_time, run.sim.start_time + run.duration_s
    clock = [start]
    bus = InProcessBus(header.sector, clock=lambda: clock[0])
    core = SectorCore(site, bus, tracker=tracker)
    frame = core.frame
    tw = [t for t in site.towers if t.id in towers]
    tx, ty = frame.to_local([t.lat for t in tw], [t.lon for t in tw])
    tx, ty = np.atleast_1d(tx), np.atleast_1d(ty)
    bodies: dict[str, Body] = {}

    def body(st, i: int) -> Body:
        b = bodies.get(str(st.ids[i]))
        if b is None:
            b = bodies[str(st.ids[i])] = Body(str(st.ids[i]), str(st.classes[i]))
        return b

    def tick(t: float) -> None:
        clock[0] = t
        core.tick(t)
        live = core.live
        st = truth.states(t)
        if not live or not len(st):
            return
        lx = np.array([x for _, x, _ in live])
        ly = np.array([y for _, _, y in live])
        for bi, ti in _assign(np.asarray(st.x), np.asarray(st.y), lx, ly, MATCH_M):
            b, m = body(st, bi), live[ti][0]
            b.published[m.class_guess] += 1
            b.tracks[m.track_id] += 1
            b.probs.append(
                tuple(m.class_probs.get(k, 0.0) for k in ("person", "vehicle", "animal"))
            )
            b.speeds.append(float(np.hypot(m.vx, m.vy)))
            b.range_m.append(float(np.hypot(st.x[bi] - tx, st.y[bi] - ty).min()))

    try:
        next_tick = start + 1.0
        for msg in messages:
            kind = expected_kind(msg.topic)
            if kind not in _INPUT_KINDS:
                continue
            while msg.t >= next_tick:
                tick(next_tick)
                next_tick += 1.0
            clock[0] = msg.t
            bus.publish(msg.topic, msg.raw)
            if kind == "camera_detection":
                d = decode(msg.topic, msg.raw, now=msg.t, max_skew_s=7 * 86_400.0)
                if isinstance(d, CameraDetection):
                    _detection_guess(d, frame, truth, body)
        while next_tick <= end:
            tick(next_tick)
            next_tick += 1.0
    finally:
        core.close()
    return list(bodies.values())


def _detection_guess(d, frame, truth, body) -> None:
    """Count a detection's guess on the body nearest to it (within :data:`MATCH_M`)."""
    st = truth.states(d.time)
    if not len(st):
        return
    x, y = frame.to_local([d.lat], [d.lon])
    dist = np.hypot(
        np.asarray(st.x) - float(np.ravel(x)[0]), np.asarray(st.y) - float(np.ravel(y)[0])
    )
    i = int(np.argmin(dist))
    if dist[i] <= MATCH_M:
        body(st, i).guesses[d.class_guess] += 1


def describe(b: Body) -> str:
    """One line: the body and what the chain made of it."""
    r = np.median(b.range_m) if b.range_m else float("nan")
    g = ", ".join(f"{k} {v}" for k, v in b.guesses.most_common())
    p = ", ".join(f"{k} {v}" for k, v in b.published.most_common())
    pr = np.mean(b.probs, axis=0) if b.probs else np.zeros(3)
    sp = np.median(b.speeds) if b.speeds else float("nan")
    return (
        f"{b.cls:>7} {b.id:>12} range {r:6.0f} m, {b.seconds:3d} s on {len(b.tracks)} track(s); "
        f"published {p}; detections {g}; mean probs p/v/a {pr[0]:.2f}/{pr[1]:.2f}/{pr[2]:.2f}; "
        f"speed {sp:.1f}"
    )


def main(argv: list[str] | None = None) -> dict:
    """Fit on the other calibration recordings, replay each fold; print the wrong votes."""
    import msgspec

    from vigil.config import load_default
    from vigil.sim.seeds import CALIBRATION_SEEDS

    p = argparse.ArgumentParser(prog="class_diagnosis")
    p.add_argument("folder", type=Path)
    p.add_argument("--folds", nargs="+", default=["7,11", "0,1", "2,5"])
    p.add_argument("--all", action="store_true", help="print every body, not only wrong votes")
    p.add_argument("--fit", default="default", help="fit_tables options, as class_folds' --grid")
    p.add_argument("--pool", type=int, nargs="+", help="fit on these seeds (less the fold's)")
    args = p.parse_args(argv)
    from benchmarks.class_folds import parse_setting

    fit_kw = parse_setting(args.fit)
    d = load_default()
    seeds = sorted(CALIBRATION_SEEDS)
    files = {s: args.folder / f"seed{s}.vrec.gz" for s in seeds}
    pool = sorted(set(args.pool or seeds) & CALIBRATION_SEEDS)
    out: list[Body] = []
    for fold in args.folds:
        held = [int(s) for s in fold.split(",")]
        if not set(held) <= CALIBRATION_SEEDS:
            raise SystemExit(f"fold {fold}: calibration seeds only")
        fit = fit_on([files[s] for s in pool if s not in held and files[s].exists()], d, **fit_kw)
        config = msgspec.structs.replace(
            d.tracker_config(), camera_class_model=fit.camera, speed_class_model=fit.speed
        )
        for s in held:
            for b in replay_bodies(d.site, files[s], config):
                out.append(b)
                wrong = b.cls in ("animal", "person") and b.voted() == "wrong"
                if b.seconds and (args.all or wrong):
                    print(f"seed {s:>2} " + describe(b))
    summarise(out)
    return {"bodies": len(out)}


def summarise(bodies: list[Body]) -> None:
    """Votes per class, and for the wrong ones: what the detections said, range and time."""
    for cls in ("animal", "person"):
        seen = [b for b in bodies if b.cls == cls and b.seconds > 0]
        wrong = [b for b in seen if b.voted() == "wrong"]
        print(f"\n{cls}: {len(seen) - len(wrong)}/{len(seen)} right by the vote")
        det_right = [b for b in wrong if b.guesses and b.guesses.most_common(1)[0][0] == cls]
        print(f"  wrong with the detections' majority right: {len(det_right)}/{len(wrong)}")
        for lo, hi in ((0, 750), (750, 1250), (1250, 1750), (1750, 2250), (2250, 1e6)):
            here = [b for b in seen if lo <= np.median(b.range_m) < hi]
            w = sum(b.voted() == "wrong" for b in here)
            print(f"  range {lo:>4}-{hi:<7g}: wrong {w}/{len(here)}")
        for lo, hi in ((0, 10), (10, 30), (30, 60), (60, 1e6)):
            here = [b for b in seen if lo <= b.seconds < hi]
            w = sum(b.voted() == "wrong" for b in here)
            print(f"  matched {lo:>3}-{hi:<7g} s: wrong {w}/{len(here)}")
        pub = Counter(b.published.most_common(1)[0][0] for b in wrong)
        print(f"  wrong ones' most published class: {dict(pub)}")


if __name__ == "__main__":
    main()
