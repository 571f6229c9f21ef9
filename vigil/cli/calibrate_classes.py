"""``vigil calibrate classes`` and ``vigil calibrate simulate``: a sector's class and speed
tables fitted from labelled tracks, and simulated runs to fit them on (issue 22 item 4).

``classes`` reads recordings of the sector's topics (``vigil record``, or ``vigil calibrate
simulate``), labels their tracks from operators' labels CSVs (``--labels``) or, for simulated
recordings, from the simulator's truth (``--truth``), joins each tower-camera detection to its
labelled track, fits the camera confusion table and the track-speed table over the
deployment's current ones (:mod:`vigil.tracks.label_fit`), writes a calibration file for
``[classes] calibration`` and prints the confusion (true class by the class the tables give
each labelled track) before and after, with 95 % Wilson intervals.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.cli.arguments import add_deployment, existing_file, output_file, positive_float
from vigil.cli.common import EXIT_OK, EXIT_USAGE, CommandError, load_deployment
from vigil.cli.perturbation_args import add_perturbations, chosen_perturbations

if TYPE_CHECKING:
    from vigil.tracks.label_fit import Fit, Joined

#: At most this many recordings and labels files a run.
MAX_FILES = 64

CLASSES_HELP = """\
Fit a sector's tower-camera class table and track-speed table from labelled tracks
and write them as a calibration file to name in the deployment's [classes]
calibration.

Input: one or more recordings of the sector's topics (--recording: the file 'vigil
record' writes from the broker, or 'vigil calibrate simulate' from a simulated run),
whose camera detections (class guess, confidence, range) and published tracks (id,
position, velocity, sensors) are read; and labels for their tracks, either
operators' labels (--labels: CSV, UTF-8, header exactly 'track_id,label,labelled_at,
user'; label one of person, animal, vehicle, unknown; labelled_at ISO 8601 with its
UTC offset; user 1-64 printable characters; at most 200,000 rows and 16 MiB; a track
labelled twice takes its latest label, 'unknown' rows are left out) or, for simulated
recordings, the simulator's truth (--truth: each track takes the class of the bodies
the scorer matched it to). A simulated recording of an evaluation seed
(vigil.sim.seeds.EVALUATION_SEEDS) is refused: fit on calibration seeds only.

Each camera detection goes to the track nearest to it at its time (both covariances,
99 % gate); a labelled track labels its detections, and its speed once a message
while confirmed with 10 or more updates. The tables are fitted over the deployment's
current ones ([classes] calibration): a class with fewer than --min-detections labelled
detections (--min-speeds speeds) or fewer than --min-tracks tracks keeps the current
column; a track counts 30 detections' (speeds') worth at most; a class seen little at
some range takes what the current table says of it there.

Output: --out FILE, a calibration file (TOML, the format of vigil:sim_towers.toml)
with a header saying how it was fitted; and a report: what was read and joined, and
the confusion of the labelled tracks (true class by the class the tables alone give
them: their detections' and speeds' evidence weighed as the tracker weighs it) with
the current tables and with the new ones, counts and proportions with 95 % Wilson
intervals. Exit status 0 when written, 3 on bad input (naming file, line and column)
or too little to fit.
"""


def cmd_calibrate_classes(args: argparse.Namespace) -> int:
    """Fit the class tables from labelled recordings; write the file; print the report."""
    import msgspec

    from vigil.cli.class_runs import read_run, truth_of
    from vigil.ingest.recording import RecordingError
    from vigil.sim.seeds import EVALUATION_SEEDS
    from vigil.tracks import label_fit as lf
    from vigil.tracks.calibration import (
        format_calibration,
        parse_calibration,
        sim_calibration_path,
    )

    if bool(args.labels) == bool(args.truth):
        raise CommandError(
            "give one of --labels CSV (operators' labels) and --truth (simulated recordings)",
            EXIT_USAGE,
        )
    for option, files in (("--recording", args.recording), ("--labels", args.labels or [])):
        if len(files) > MAX_FILES:
            raise CommandError(f"{option}: {len(files)} files; at most {MAX_FILES}", EXIT_USAGE)
    out = Path(args.out)
    if out.resolve().parent == sim_calibration_path().parent.resolve():
        raise CommandError(f"--out {args.out}: the calibration files shipped with Vigil stay")
    if out.exists() and not args.force:
        raise CommandError(f"--out {args.out} exists; add --force to replace it")
    d = load_deployment(args.deployment)
    frame = d.site.frame()
    labels = lf.Labels()
    try:
        for path in args.labels or []:
            lf.read_labels(path, labels)
    except lf.LabelError as exc:
        raise CommandError(str(exc)) from None
    joined, speeds = lf.Joined(), ([], [], [])
    truth: dict[str, str] = {}
    seeds: list[int] = []
    owner: dict[str, str] = {}
    bad: Counter[str] = Counter()
    for k, path in enumerate(args.recording):
        try:
            run = read_run(path, frame, d.sector)
            if run.simulated is not None:
                if run.simulated.seed in EVALUATION_SEEDS:
                    raise CommandError(
                        f"{path}: simulated on evaluation seed {run.simulated.seed}; fit on "
                        "calibration seeds only (vigil.sim.seeds)"
                    )
                seeds.append(run.simulated.seed)
            here = truth_of(d.site, run) if args.truth else labels.by_track
        except RecordingError as exc:
            raise CommandError(str(exc)) from None
        bad.update(run.undecodable)
        if args.truth:  # track ids of simulated runs repeat from run to run: one name each
            here = lf.prefix_tracks(run.tracks, here, f"{k}/")
        present = set(run.tracks.track_id)
        for tid in present & set(here):
            if tid in owner:
                raise CommandError(
                    f"labelled track {tid} is in both {owner[tid]} and {path}; labels name "
                    "tracks by id, so give recordings whose track ids differ"
                )
            owner[tid] = path
            truth[tid] = here[tid]
        lf.add_run(joined, speeds, run.detections, run.tracks, here)
    if not joined.truth:
        raise CommandError(
            "no camera detection joined to a labelled track: nothing to fit (are the labels "
            "for these recordings' tracks?)"
        )
    base = d.class_model
    fit = lf.fit_tables(
        joined,
        speeds,
        base,
        min_detections=args.min_detections,
        min_speeds=args.min_speeds,
        min_tracks=args.min_tracks,
        backoff_bands=args.backoff_bands,
        speed_temper=args.speed_temper,
    )
    config = d.tracker_config()
    new = msgspec.structs.replace(
        config, camera_class_model=fit.camera, speed_class_model=fit.speed
    )
    evidence = set(joined.track_id) | set(speeds[0])
    scored = {tid: truth[tid] for tid in truth if tid in evidence}
    before = lf.confusion(scored, lf.decide(base.camera, base.speed, joined, speeds, config))
    after = lf.confusion(scored, lf.decide(fit.camera, fit.speed, joined, speeds, new))
    sources = _sources(args, labels, seeds)
    counts = _counts(truth, joined, speeds)
    fitted = (
        f"vigil calibrate classes {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%MZ}: {counts}; "
        f"{sources}; over {d.config.classes.calibration or 'no tables'}"
    )[:2000]
    header = _header(fitted, fit, base.fitted)
    text = format_calibration(fit.camera, fit.speed, fitted=fitted, header=header)
    parse_calibration(text, out)  # what is written reads back
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{out}: cannot write ({exc.strerror})") from None
    _report(args, labels, truth, joined, speeds, bad, fit, before, after, seeds)
    print(f'written to {out}; name it in the deployment\'s [classes] calibration = "{out}"')
    return EXIT_OK


def _sources(args: argparse.Namespace, labels, seeds: list[int]) -> str:
    what = "the simulator's truth" if args.truth else f"{len(labels.files)} labels file(s)"
    line = f"{len(args.recording)} recording(s) labelled by {what}"
    if seeds:
        line += f", simulated seeds {','.join(str(s) for s in sorted(set(seeds)))}"
    return line


def _counts(truth: dict[str, str], joined: Joined, speeds) -> str:
    t, j, s = Counter(truth.values()), Counter(joined.truth), Counter(speeds[2])
    return "; ".join(
        f"{what}: " + ", ".join(f"{c[k]} {k}" for k in ("person", "vehicle", "animal"))
        for what, c in (("tracks", t), ("detections", j), ("speeds", s))
    )


def _header(fitted: str, fit: Fit, base: str) -> str:
    cam = ", ".join(f"{k} {v}" for k, v in fit.camera_source.items())
    spd = ", ".join(f"{k} {v}" for k, v in fit.speed_source.items())
    return (
        "Vigil class calibration fitted from a sector's labelled tracks.\n"
        f"How: {fitted}\n"
        f"Camera columns: {cam}; speed columns: {spd} ('base': too few labelled to fit, kept\n"
        f"from the base tables: {base[:200]}). Camera cells without labelled data keep the\n"
        "base rows after the fitted ones.\n"
        "Columns of `classes`: the order of the probability columns below.\n"
        "camera rows: guess, confidence_from, confidence_to (exclusive), range_from_m,\n"
        "  range_to_m (exclusive), P(guess in band | person), ... | vehicle, ... | animal\n"
        "speed rows: speed_from_mps, speed_to_mps (exclusive), P(speed band | person),\n"
        "  ... | vehicle, ... | animal"
    )


def _report(args, labels, truth, joined, speeds, bad, fit, before, after, seeds) -> None:
    from vigil.sim.protocol import wilson
    from vigil.tracks.label_fit import DECIDED

    print(
        f"read {len(args.recording)} recording(s)"
        + (f" (seeds {sorted(set(seeds))})" if seeds else "")
    )
    if args.labels:
        print(
            f"labels: {labels.rows} rows in {len(labels.files)} file(s), {labels.unknown} "
            f"'unknown', {labels.relabelled} relabellings; {len(labels.by_track)} tracks labelled"
        )
    print(f"labelled tracks in the recordings: {_counts(truth, joined, speeds)}")
    c = joined.counts
    print(
        f"camera detections: {c['joined']} joined to a labelled track, {c['unlabelled']} to "
        f"an unlabelled one, {c['ambiguous']} ambiguous, {c['no_track']} near no track"
    )
    if bad:
        print(
            "messages that did not decode (left out): "
            + ", ".join(f"{k} {n}" for k, n in bad.items())
        )
    print(
        "columns: camera "
        + ", ".join(f"{k} {v}" for k, v in fit.camera_source.items())
        + "; speed "
        + ", ".join(f"{k} {v}" for k, v in fit.speed_source.items())
    )
    for name, m in (("before (current tables)", before), ("after (new tables)", after)):
        print(f"confusion {name}: labelled tracks, true class (rows) by decided class")
        print(f"  {'true':<8} {'n':>4}  " + "  ".join(f"{k:>22}" for k in DECIDED))
        for i, k in enumerate(("person", "vehicle", "animal")):
            n = int(m[i].sum())
            if n == 0:
                print(f"  {k:<8} {n:>4}  (no labelled track)")
                continue
            cells = []
            for j in range(len(DECIDED)):
                lo, hi = wilson(int(m[i, j]), n)
                p = m[i, j] / n if n else float("nan")
                cells.append(f"{int(m[i, j]):>4} {p:4.2f} [{lo:4.2f}, {hi:4.2f}]")
            print(f"  {k:<8} {n:>4}  " + "  ".join(f"{s:>22}" for s in cells))
    for what, row in (("animals as animal", 2), ("people as person", 0)):
        for name, m in (("before", before), ("after", after)):
            k, n = int(m[row, row]), int(m[row].sum())
            lo, hi = wilson(k, n)
            p = k / n if n else float("nan")
            print(f"{what} {name}: {k}/{n} = {p:.2f} [{lo:.2f}, {hi:.2f}]")


SIMULATE_HELP = """\
Simulate the deployment's sector on one seed (the demo's chain: rendering, motion
detection, fusion, alerts) and record what its bus carried, on the simulated clock,
as a Vigil recording (the file 'vigil record' writes), its header naming the seed,
the simulator settings and the perturbations, so that 'vigil calibrate classes
--truth' can label its tracks from the simulator's truth. Fit on calibration seeds
(vigil.sim.seeds.CALIBRATION_SEEDS); record evaluation seeds only to evaluate.
"""


def cmd_calibrate_simulate(args: argparse.Namespace) -> int:
    """Record a simulated run for ``vigil calibrate classes``."""
    import msgspec

    from vigil.cli.class_runs import record_simulated
    from vigil.demo import demo_settings

    pert = chosen_perturbations(args)
    d = load_deployment(args.deployment)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CommandError(f"--out {args.out} exists; add --force to replace it")
    have = [t.id for t in d.config.towers]
    towers = tuple(args.towers.split(",")) if args.towers else ()
    if unknown := [t for t in towers if t not in have]:
        raise CommandError(f"--towers: {unknown} not in the deployment; have {have}", EXIT_USAGE)
    changes: dict = {"towers": towers}
    if args.animals_per_km is not None:
        changes["animals_per_km"] = args.animals_per_km
    try:
        sim = msgspec.structs.replace(
            demo_settings(crossing_rate_scale=args.rate_scale, fps=args.fps), **changes
        )
        if args.start is not None:
            sim = msgspec.structs.replace(sim, start_time=args.start)
        sim = msgspec.convert(msgspec.to_builtins(sim), type(sim))  # bounds checked
    except (TypeError, ValueError, msgspec.ValidationError) as exc:
        raise CommandError(f"simulator settings: {exc}", EXIT_USAGE) from None
    s = record_simulated(
        d, sim, args.seed, args.minutes * 60.0, out, perturbations=pert, overwrite=args.force
    )
    t = s["throughput"]
    print(
        f"recorded {args.minutes:g} simulated min of sector {d.sector} (seed {args.seed}): "
        f"{t['camera_detections']} camera detections, {t['track_messages']} track messages "
        f"into {out}"
    )
    return EXIT_OK


def register_classes(csub) -> None:
    """Add ``classes`` and ``simulate`` to ``vigil calibrate``'s actions."""
    from vigil.cli.arguments import time_arg

    pc = csub.add_parser(
        "classes",
        help="fit the class and speed tables from labelled tracks",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=CLASSES_HELP,
    )
    pc.add_argument(
        "--recording",
        action="append",
        required=True,
        metavar="FILE",
        type=existing_file,
        help=f"a recording of the sector's topics (repeatable, at most {MAX_FILES})",
    )
    pc.add_argument(
        "--labels",
        action="append",
        metavar="CSV",
        type=existing_file,
        help="operators' labels (repeatable): track_id,label,labelled_at,user",
    )
    pc.add_argument(
        "--truth", action="store_true", help="label simulated recordings' tracks from the truth"
    )
    pc.add_argument("--out", required=True, metavar="FILE", type=output_file,
                    help="calibration file to write (TOML)")  # fmt: skip
    pc.add_argument("--force", action="store_true", help="replace an existing --out")
    pc.add_argument(
        "--min-detections",
        type=_count,
        default=200,
        metavar="N",
        help="labelled detections a class needs to fit its column (default 200)",
    )
    pc.add_argument(
        "--min-speeds",
        type=_count,
        default=100,
        metavar="N",
        help="labelled speeds a class needs to fit its column (default 100)",
    )
    pc.add_argument(
        "--min-tracks",
        type=_count,
        default=5,
        metavar="N",
        help="labelled tracks a class needs to fit its columns (default 5)",
    )
    pc.add_argument(
        "--backoff-bands",
        type=_bands,
        default=-1,
        metavar="N",
        help="a camera cell seen little leans on the fit's own detections in the range bands "
        "within N of its own (default -1: on the current tables' cell, or all ranges)",
    )
    pc.add_argument(
        "--speed-temper",
        type=positive_float,
        default=1.0,
        metavar="POWER",
        help="raise each speed row's probabilities to POWER (default 1; the tracker weighs "
        "speeds by speed_class_weight, 0.3: 3 reads the fitted ratios at about full strength)",
    )
    add_deployment(pc)
    pc.set_defaults(func=cmd_calibrate_classes)

    ps = csub.add_parser(
        "simulate",
        help="record a simulated run to fit class tables on (with --truth)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=SIMULATE_HELP,
    )
    ps.add_argument("--seed", type=int, required=True, help="simulation seed")
    ps.add_argument("--minutes", type=positive_float, default=10.0,
                    help="simulated minutes (default 10)")  # fmt: skip
    ps.add_argument("--start", type=time_arg, help="start, ISO 8601 with zone or epoch seconds")
    ps.add_argument("--fps", type=positive_float, default=2.0,
                    help="tower camera frame rate (default 2)")  # fmt: skip
    ps.add_argument("--rate-scale", type=float, default=20.0,
                    help="crossing-rate multiplier (default 20)")  # fmt: skip
    ps.add_argument("--animals-per-km", type=float, help="animals per km of border")
    ps.add_argument("--towers", metavar="IDS", help="comma-separated towers (default all)")
    add_perturbations(ps)
    ps.add_argument("--out", required=True, metavar="FILE", type=output_file,
                    help="recording to write (gzip JSON lines)")  # fmt: skip
    ps.add_argument("--force", action="store_true", help="replace an existing --out")
    add_deployment(ps)
    ps.set_defaults(func=cmd_calibrate_simulate)


def _bands(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -2
    if not -1 <= n <= 10:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer from -1 to 10")
    return n


def _count(text: str) -> int:
    value = int(text) if text.strip().isdigit() else -1
    if not 0 <= value <= 10_000_000:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number from 0 to 10000000")
    return value
