"""``vigil simulate``: a simulated sector's feeds and truth, written as files."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.cli.arguments import (
    add_deployment,
    nonnegative_float,
    output_dir,
    positive_float,
    time_arg,
)
from vigil.cli.common import EXIT_OK, EXIT_USAGE, CommandError, Subparsers, load_deployment
from vigil.cli.perturbation_args import add_perturbations, chosen_perturbations

if TYPE_CHECKING:
    from vigil.config import Deployment


#: Bytes of FFV1 video per rendered pixel: 0.28 measured on the Tucson deployment's thermal
#: frames (seed 1, 30 s: 156 MB for 553 million pixels), rounded up. Sensor noise keeps it
#: near constant from scene to scene.
VIDEO_BYTES_PER_PIXEL = 0.3
#: Room left free on the disk beyond the estimate, bytes.
DISK_MARGIN_BYTES = 100_000_000


def video_estimate_bytes(d: Deployment, args: argparse.Namespace) -> float:
    """The video ``vigil simulate`` will write, bytes (0 with --no-video)."""
    if args.no_video:
        return 0.0
    chosen = set(args.towers.split(",")) if args.towers else None
    pixels_per_s = sum(
        t.width * t.height * (args.fps or t.fps)
        for t in d.config.towers
        if chosen is None or t.id in chosen
    )
    return pixels_per_s * args.minutes * 60.0 * VIDEO_BYTES_PER_PIXEL


def _free_bytes(out: Path) -> int:
    folder = out
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write a simulated sector's feeds and truth to files."""
    from vigil.sim import SimSettings
    from vigil.sim.files import simulate_to_files

    pert = chosen_perturbations(args)
    d = load_deployment(args.deployment)
    have = [t.id for t in d.config.towers]
    if args.towers:
        unknown = [t for t in args.towers.split(",") if t not in have]
        if unknown:
            raise CommandError(
                f"argument --towers: {args.towers!r}: {unknown} not in the deployment; have {have}",
                EXIT_USAGE,
            )
    # absolute: the video encoders run in child processes with their own working folder
    out = Path(args.out).resolve()
    size = video_estimate_bytes(d, args)
    free = _free_bytes(out)
    if size + DISK_MARGIN_BYTES > free:
        raise CommandError(
            f"argument --out: {args.out!r}: {args.minutes:g} min of video needs about "
            f"{_mb(size)}, {_mb(free)} free there; use fewer --minutes, --towers or --no-video",
            EXIT_USAGE,
        )
    kwargs: dict[str, Any] = {"crossing_rate_scale": args.rate_scale}
    if args.start is not None:
        kwargs["start_time"] = args.start
    if args.fps is not None:
        kwargs["frame_rate_hz"] = args.fps
    if args.towers:
        kwargs["towers"] = tuple(args.towers.split(","))
    if args.no_video:
        kwargs["cameras"] = "truth"
    try:
        settings = SimSettings(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CommandError(f"simulator settings: {exc}", EXIT_USAGE) from None
    if size:
        print(f"writing about {_mb(size)} of video (lossless FFV1) into {out}; "
              "--no-video writes the truth only", flush=True)  # fmt: skip
    manifest = simulate_to_files(
        d.site,
        settings,
        args.minutes,
        args.seed,
        out,
        progress=not args.quiet,
        perturbations=pert,
    )
    counts = manifest.get("counts", {})
    print(f"simulated {args.minutes:g} min of sector {d.sector} (seed {args.seed}) into {out}")
    print(f"  perturbations: {_families_line(manifest)}")
    for k, v in counts.items():
        print(f"  {k}: {v}")
    print(crossings_line(counts, args.minutes, args.rate_scale))
    return EXIT_OK


def crossings_line(counts: dict[str, Any], minutes: float, rate_scale: float) -> str:
    """What a run holds of what matters most, people crossing the border, in words."""
    by = counts.get("crossings_by", {})
    people = sum(n for key, n in by.items() if key.startswith("person:"))
    total = counts.get("crossings", 0)
    line = (
        f"border crossings: {total} in {minutes:g} simulated min, {people} of them by people "
        "(truth/crossings.csv)"
    )
    if people == 0:
        line += (
            f"; crossings are rare at {rate_scale:g}x the modelled rates: simulate longer or "
            "raise --rate-scale (vigil demo uses 20)"
        )
    return line


def _families_line(manifest: dict[str, Any]) -> str:
    on = manifest.get("perturbations", {}).get("on", [])
    return ", ".join(on) if on else "none"


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def register(sub: Subparsers) -> None:
    """Add ``simulate`` to the top-level subcommands."""
    p = sub.add_parser(
        "simulate",
        help="write a simulated sector's feeds and truth to files",
        description=(
            "Simulate a sector and write its feeds as files: cameras/{tower}.avi (lossless "
            "FFV1), ugs.jsonl, uas.tlog (MAVLink), truth/ and manifest.json (which also records "
            "the --perturbations). The same seed gives the same files byte for byte."
        ),
    )
    add_deployment(p)
    p.add_argument("--minutes", type=positive_float, required=True, help="simulated minutes")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", metavar="DIR", type=output_dir, required=True, help="output folder")
    p.add_argument(
        "--start", metavar="TIME", type=time_arg, help="start, ISO 8601 with zone or epoch seconds"
    )
    p.add_argument("--fps", type=positive_float, help="camera frame rate override")
    p.add_argument("--towers", metavar="IDS", help="comma-separated towers to render (default all)")
    p.add_argument(
        "--rate-scale",
        type=nonnegative_float,
        default=1.0,
        help="crossing-rate multiplier (default 1: the modelled rates)",
    )
    p.add_argument("--no-video", action="store_true", help="camera truth only, no video files")
    add_perturbations(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)
