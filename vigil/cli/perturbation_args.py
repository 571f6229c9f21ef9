"""The ``--perturbations`` and ``--without`` options of ``vigil demo`` and ``vigil simulate``
(issue 22): which perturbation families make the simulated world as hard as the field."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from vigil.cli.common import EXIT_USAGE, CommandError

if TYPE_CHECKING:
    from vigil.sim.perturbations import Perturbations

#: The families' names, as ``--without`` takes them: the fields of
#: :class:`vigil.sim.perturbations.Perturbations`, spelled out so that ``--help`` imports no
#: simulator (tests/test_perturbations_cli.py checks they agree).
FAMILIES: tuple[str, ...] = (
    "blur", "fixed_pattern", "flat_field", "agc", "crossover", "attenuation", "brush", "dust",
    "birds", "bodies", "groups", "runners", "lay_ups", "off_road", "small_animals",
    "uas_classifier", "ugs_nuisance",
)  # fmt: skip
PRESETS = ("none", "field")


def family(text: str) -> str:
    """One perturbation family's name (argparse type of ``--without``)."""
    name = text.strip().replace("-", "_")
    if name not in FAMILIES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: not a perturbation family; expected one of {', '.join(FAMILIES)}"
        )
    return name


def add_perturbations(p: argparse.ArgumentParser) -> None:
    """Add ``--perturbations none|field`` and the repeatable ``--without FAMILY``."""
    p.add_argument(
        "--perturbations",
        choices=PRESETS,
        default="none",
        help=(
            "the simulated world: 'none' (default) is the easy world as before; 'field' turns "
            "every perturbation family on at the field's sizes (issue 22): " + ", ".join(FAMILIES)
        ),
    )
    p.add_argument(
        "--without",
        metavar="FAMILY",
        type=family,
        action="append",
        default=[],
        help="with --perturbations field: turn this family off (repeatable)",
    )


def chosen_perturbations(args: argparse.Namespace) -> Perturbations:
    """The perturbations the options ask for; a usage error for ``--without`` on ``none``."""
    from vigil.sim.perturbations import Perturbations

    if args.perturbations == "none":
        if args.without:
            raise CommandError(
                "argument --without: only with --perturbations field (none has every family off)",
                EXIT_USAGE,
            )
        return Perturbations.none()
    field = Perturbations.field()
    keep = [n for n in FAMILIES if n not in set(args.without)]
    return field.only(*keep)
