"""``vigil config check FILE``: validate a deployment file and say what it describes."""

from __future__ import annotations

import argparse

from vigil.cli.arguments import existing_file
from vigil.cli.common import EXIT_OK, CommandError, Subparsers, missing_action


def cmd_config_check(args: argparse.Namespace) -> int:
    """Check a deployment file and print what it describes."""
    from vigil.config import ConfigError, load

    try:
        d = load(args.file)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
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


def register(sub: Subparsers) -> None:
    """Add ``config`` and its actions to the top-level subcommands."""
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
    pc.add_argument("file", type=existing_file, help="deployment TOML file")
    pc.set_defaults(func=cmd_config_check)
    p.set_defaults(func=lambda a: missing_action(p))
