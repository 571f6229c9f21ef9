"""Record a live run's sensor messages; replay them through the sector's core with other settings.

``record`` runs the whole chain (``vigil.pipeline.Pipeline``: simulator, rendered towers,
detector, fusion, crossings, alerts) and keeps every message the sector's core took from
outside (camera detections, ground-sensor events and status, aircraft telemetry, operator
actions) with the pipeline time it arrived at, together with what scoring needs: the true
crossings, the towers' footprints as they turned, the site, the simulator settings and seed,
and the live run's summary. ``replay`` feeds those messages, in order and at their times,
through a fresh ``SectorCore`` (fusion, crossings, alert rules) with optional changes to
``TrackerConfig.for_sector(**changes)`` and ``AlertRules``, and scores it with
``vigil.sim.scoring`` exactly as the live run was scored (``Pipeline.summary``): crossing
alert recall, false crossing alerts per 10 km per day, ID switches per crossing group and
animals classified as animals. A replay skips rendering and motion detection, so tracking
and alerting changes can be tried on long recordings without running the towers again.

**What a replay can and cannot measure.** A replay feeds the recorded detections, so cameras
cannot be re-cued by the replayed tracker: the towers look where the live run turned them,
and a change that would have turned a tower elsewhere is not seen. Detector changes (and
simulator changes) need a new recording. A replay measures tracking, fusion, crossings and
alerts only. A replay with no changes reproduces the live run's figures exactly; the
replay checks that the simulator still makes the recorded world (it re-simulates the truth
for the per-second scoring) and stops with an error if it does not.

The file is Vigil's recording (``vigil.ingest.recording``, the one ``vigil record`` writes,
gzip-compressed JSON lines): the messages with their times, and in its header the rest,
decoded into typed structs (no code runs on loading); a file of another version is refused
with the version it has and the one this module reads. The parts: ``replay_recording`` (the
file), ``replay_live`` (record), ``replay_core`` (replay), ``replay_figures`` (figures,
pooling, ``score``); this module is the command line and keeps their names importable.

Usage::

    python -m benchmarks replay          # record a short run, replay it unchanged, compare
    python -m benchmarks.bench_replay record --hours 12 --rate-scale 1 --fps 1 \\
        --start 2026-06-01T07:00:00Z --seed 1 --out day_a.vrec
    python -m benchmarks.bench_replay replay day_a.vrec \\
        --tracker '{"reacquire_s": 900}' --rules '{"min_person_probability": 0.5}' \\
        [--verbose] [--by-range]
    python -m benchmarks.bench_replay score day_a.vrec day_b.vrec

``score`` pools the live figures of several recordings (the halves of a day) and prints the
acceptance targets of issues 5 and 7 as met or missed; its exit status is 1 when one is
missed. ``--tracker`` and ``--rules`` take a JSON object of field changes (unknown fields
and values out of bounds are refused). ``--verbose`` lists every crossing alert (``ok`` or
``FALSE``), the unalerted crossings and, per northbound crossing group, each change of the
track it is matched to. ``--by-range`` prints the animal track-seconds by 500 m range bin
from the nearest simulated tower and the tracks' class guess.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.replay_core import RANGE_BIN_M, replay
from benchmarks.replay_figures import FIGURES, differences, line, pooled, score, show, shown
from benchmarks.replay_live import record
from benchmarks.replay_recording import (
    Footprint,
    Recording,
    RecordingError,
    ReplayMeta,
    load,
    load_meta,
    save,
)
from vigil.ingest.recording import FORMAT_VERSION

__all__ = [
    "FIGURES",
    "FORMAT_VERSION",
    "RANGE_BIN_M",
    "Footprint",
    "Recording",
    "RecordingError",
    "ReplayMeta",
    "differences",
    "load",
    "load_meta",
    "main",
    "pooled",
    "record",
    "replay",
    "save",
]


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of field changes: {text!r}")
    return value


def main(argv: list[str] | None = None) -> dict:
    """Record, replay, or (with no command, as ``python -m benchmarks`` runs it) record a
    short run and replay it unchanged; print the figures; return them."""
    from benchmarks.bench_demo import add_sim_options, sim_settings

    p = argparse.ArgumentParser(prog="bench_replay", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command")
    rec_p = sub.add_parser("record", help="run the chain live and write a recording")
    add_sim_options(rec_p)
    rec_p.add_argument("--out", required=True, help="the recording file to write")
    trip = sub.add_parser("roundtrip", help="record to a temporary file, replay it unchanged")
    add_sim_options(trip)
    rep = sub.add_parser("replay", help="replay a recording through the sector's core")
    rep.add_argument("file", help="a recording made by `record`")
    rep.add_argument("--tracker", type=_json_object, default=None, help="TrackerConfig changes")
    rep.add_argument("--rules", type=_json_object, default=None, help="AlertRules changes")
    rep.add_argument("--verbose", action="store_true", help="list alerts and group tracks")
    rep.add_argument("--by-range", action="store_true", help="animal seconds by range bin")
    score_p = sub.add_parser(
        "score",
        help="pool recordings' live figures (a day's halves) and check the targets; "
        "exit status 1 when one is missed",
    )
    score_p.add_argument("files", nargs="+", help="recordings made by `record`")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv or ["roundtrip"])

    if args.command == "record":
        live = record(args.out, hours=args.hours, seed=args.seed, sim=sim_settings(args))
        for k in (*FIGURES, "wall_s"):
            print(f"{k:<{max(map(len, FIGURES))}}  {shown(live[k])}")
        print(f"recorded {args.hours} h, seed {args.seed}, to {args.out}")
        return live
    if args.command == "roundtrip":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run.vrec"
            live = record(path, hours=args.hours, seed=args.seed, sim=sim_settings(args))
            rec = load(path)
            again = replay(rec)
        show(live, again)
        print(f"live:   {line(live)}")
        print(f"replay: {line(again)}")
        print(f"replay took {again['wall_s'] / live['wall_s']:.3f} of the live run's wall time")
        diff = differences(live, again)
        if diff:
            raise RuntimeError(f"an unchanged replay differs from the live run in {diff}")
        return again

    if args.command == "score":
        return score([load_meta(f) for f in args.files], args.files)

    rec = load(args.file)
    started = datetime.fromtimestamp(rec.sim.start_time, UTC).isoformat(timespec="seconds")
    print(
        f"{args.file}: seed {rec.seed}, {rec.duration_s / 3600:g} h from {started}, "
        f"{len(rec.stream)} messages, recorded {rec.made_utc} by {rec.code}"
    )
    print(f"tracker changes {args.tracker or {}}, rules changes {args.rules or {}}")
    out = replay(rec, args.tracker, args.rules, verbose=args.verbose, by_range=args.by_range)
    show(rec.live, out)
    for b, row in out.get("animal_seconds_by_range", {}).items():
        print(f"animal seconds at {b}-{b + RANGE_BIN_M:.0f} m: {row}")
    print(f"replay: {line(out)}")
    return out


if __name__ == "__main__":
    try:
        main()
    except (RecordingError, ValueError) as exc:  # a bad file or change: the reason, no trace
        raise SystemExit(f"bench_replay: {exc}") from None
