"""``vigil simulate``: a simulated sector's feeds and truth, written as files."""

from __future__ import annotations

import argparse
from pathlib import Path

from vigil.cli.common import EXIT_OK, Subparsers, load_deployment, parse_time


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write a simulated sector's feeds and truth to files."""
    from vigil.sim import SimSettings
    from vigil.sim.files import simulate_to_files

    d = load_deployment(args.deployment)
    kwargs = {}
    if args.start is not None:
        kwargs["start_time"] = parse_time(args.start)
    if args.fps is not None:
        kwargs["frame_rate_hz"] = args.fps
    if args.towers:
        kwargs["towers"] = tuple(args.towers.split(","))
    if args.no_video:
        kwargs["cameras"] = "truth"
    settings = SimSettings(**kwargs)
    manifest = simulate_to_files(
        d.site, settings, args.minutes, args.seed, Path(args.out), progress=not args.quiet
    )
    counts = manifest.get("counts", {})
    print(
        f"simulated {args.minutes:g} min of sector {d.sector} (seed {args.seed}) "
        f"into {Path(args.out).resolve()}"
    )
    for k, v in counts.items():
        print(f"  {k}: {v}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``simulate`` to the top-level subcommands."""
    p = sub.add_parser(
        "simulate",
        help="write a simulated sector's feeds and truth to files",
        description=(
            "Simulate a sector and write its feeds as files: cameras/{tower}.avi (lossless "
            "FFV1), ugs.jsonl, uas.tlog (MAVLink), truth/ and manifest.json. The same seed "
            "gives the same files byte for byte."
        ),
    )
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML (default: the demo's)")
    p.add_argument("--minutes", type=float, required=True, help="simulated minutes")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder")
    p.add_argument("--start", metavar="TIME", help="start, ISO 8601 with zone or epoch seconds")
    p.add_argument("--fps", type=float, help="camera frame rate override")
    p.add_argument("--towers", metavar="IDS", help="comma-separated towers to render (default all)")
    p.add_argument("--no-video", action="store_true", help="camera truth only, no video files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)
