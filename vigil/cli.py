"""The ``vigil`` command line: one subcommand per job, each with its own ``--help``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from vigil import __version__

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DATA = 3

Command = Callable[[argparse.Namespace], int]


def _deployment(path: str | None):
    from vigil.config import load, load_default

    return load(path) if path else load_default()


# -- config -----------------------------------------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    """Check a deployment file and print what it describes."""
    from vigil.config import ConfigError, load

    try:
        d = load(args.file)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATA
    c = d.config
    border = c.border()
    print(
        f"{d.path}: ok: sector {c.sector.name!r}, {border.length_m / 1000:.1f} km of the "
        f"{c.sector.boundary} boundary in {len(border.segments)} segments; "
        f"{len(c.towers)} towers, {len(c.sensors)} ground sensors, {len(c.aircraft)} aircraft, "
        f"{len(c.units)} patrol units, {len(c.zones)} zones, {len(c.roads)} roads, "
        f"{len(c.corridors)} corridors"
    )
    return EXIT_OK


# -- map --------------------------------------------------------------------------------------


def cmd_map(args: argparse.Namespace) -> int:
    """Draw a deployment on an offline map."""
    from maps.situation import write_situation_map
    from vigil.config import ConfigError

    try:
        d = _deployment(args.deployment)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATA
    tiles = args.tiles or d.config.map.tiles_url
    out = write_situation_map(
        d.site, args.out, tiles_url=tiles, tiles_attribution=d.config.map.tiles_attribution
    )
    print(f"map written to {out.resolve()}")
    return EXIT_OK


# -- demo -------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the embedded demo and say where the results are."""
    from maps.situation import write_situation_map
    from vigil.config import ConfigError

    try:
        d = _deployment(args.deployment)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATA
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    map_path = write_situation_map(d.site, out_dir / "map.html", tiles_url=d.config.map.tiles_url)
    print(f"sector {d.sector}: deployment map written to {map_path.resolve()}")
    print(f"open it in a browser: file://{map_path.resolve()}")
    return EXIT_OK


# -- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="vigil",
        description=(
            "Vigil: between-ports border surveillance. Detect motion in tower video, fuse "
            "towers, ground sensors and aircraft into tracks, find border crossings, alert "
            "agents and map it all, offline."
        ),
    )
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "config",
        help="check a deployment file",
        description="Work with deployment files (one TOML file per sector).",
    )
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    pc = csub.add_parser(
        "check",
        help="validate a deployment file",
        description=(
            "Validate a deployment file: unknown keys, wrong types and out-of-range values are "
            "reported with the key, the value and the line; devices must be on the US side "
            "of the sector's border. Exit status 0 when valid, 3 when not."
        ),
    )
    pc.add_argument("file", help="deployment TOML file")
    pc.set_defaults(func=cmd_config_check)
    p.set_defaults(func=lambda a: _missing_action(p))

    p = sub.add_parser(
        "map",
        help="draw a deployment on an offline map",
        description=(
            "Draw a sector's border segments, towers with their fields of view, ground sensors, "
            "zones, the aircraft orbit and patrol units on a map that needs no network: "
            "Leaflet is inlined from the package and the base layer is the shipped boundary."
        ),
    )
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML (default: the demo's)")
    p.add_argument("--out", metavar="HTML", default="map.html", help="output (default map.html)")
    p.add_argument(
        "--tiles",
        metavar="URL",
        help="optional local tile server URL, e.g. http://host/{z}/{x}/{y}.png",
    )
    p.set_defaults(func=cmd_map)

    p = sub.add_parser(
        "demo",
        help="run the embedded demo on the shipped deployment",
        description="Run the embedded demo on the shipped Tucson deployment and write results.",
    )
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML (default: the demo's)")
    p.add_argument(
        "--out", metavar="DIR", default="demo-out", help="output folder (default demo-out)"
    )
    p.set_defaults(func=cmd_demo)
    return parser


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vigil`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
