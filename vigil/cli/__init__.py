"""The ``vigil`` command line: one subcommand per job, each with its own ``--help``.

Each command group is a module here that adds its subparser(s) next to its handler through
``register(subparsers)``; :func:`build_parser` puts them together in the order of
:data:`GROUPS`, which is the order ``vigil --help`` lists them in. Handlers import what they
need when they run, so ``vigil --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vigil import __version__
from vigil.cli import (
    alerts,
    analyze,
    broker,
    calibrate,
    config,
    demo,
    detect,
    edge,
    labels,
    recording,
    run,
    serve,
    simulate,
    situation,
    track,
)
from vigil.cli.arguments import VigilParser
from vigil.cli.common import (
    EXIT_DATA,
    EXIT_OK,
    EXIT_USAGE,
    Command,
    CommandError,
    parse_time,
)

__all__ = [
    "EXIT_DATA",
    "EXIT_OK",
    "EXIT_USAGE",
    "GROUPS",
    "Command",
    "CommandError",
    "build_parser",
    "main",
    "parse_time",
]

#: The command groups, in the order ``vigil --help`` lists their commands.
GROUPS = (config, situation, demo, serve, simulate, detect, track, analyze, edge, calibrate,
          labels, recording, run, alerts, broker)  # fmt: skip

# the name the benchmarks import (benchmarks/bench_demo.py)
_parse_time = parse_time


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = VigilParser(
        prog="vigil",
        description=(
            "Vigil: between-ports border surveillance. Detect motion in tower video, fuse "
            "towers, ground sensors and aircraft into tracks, find border crossings, alert "
            "agents and map it all, offline."
        ),
    )
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vigil`` console script.

    Parameters
    ----------
    argv
        The arguments after the program's name (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
