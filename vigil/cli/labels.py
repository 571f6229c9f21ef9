"""``vigil labels export``: the operators' track labels from the live map, as CSV.

On the live map a commander (or an agent) marks a track person, animal, vehicle or unknown
(click the track, pick the label, "label"). Each label is stored in the map's audit database
with its audit entry; relabelling keeps the earlier ones. This command writes the latest label
of every track, which ``vigil calibrate classes`` reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vigil.cli.arguments import output_file
from vigil.cli.common import EXIT_OK, CommandError, Subparsers, missing_action
from vigil.cli.users import DEFAULT_AUDIT, DEFAULT_USERS, audit_path


def cmd_labels_export(args: argparse.Namespace) -> int:
    """Write the latest operator label of every labelled track as CSV."""
    from vigil.maps.track_labels import LabelError, read_latest, write_csv

    source = audit_path(args.users, args.audit)
    try:
        labels = read_latest(source, args.sector)
    except LabelError as exc:
        raise CommandError(str(exc)) from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = write_csv(labels, out)
    sectors = sorted({x.sector for x in labels})
    where = f" of sector {', '.join(sectors)}" if sectors else ""
    print(f"{n} labelled track{'' if n == 1 else 's'}{where} from {source} -> {out}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``labels`` with its actions to the top-level subcommands."""
    p = sub.add_parser(
        "labels",
        help="operators' track labels from the live map",
        description=(
            "Operators' labels: on the live map (vigil serve, vigil demo --serve) a commander or "
            "an agent clicks a track and marks it person, animal, vehicle or unknown. Each label "
            "is kept, with the user and the time, in the map's audit database, written in one "
            "transaction with its audit entry; relabelling keeps the history."
        ),
    )
    lsub = p.add_subparsers(dest="labels_command", metavar="ACTION")
    pe = lsub.add_parser(
        "export",
        help="write the latest label of each track as CSV",
        description=(
            "Write the latest operator label of every labelled track as CSV (UTF-8), header "
            "track_id,label,labelled_at,user: label one of person, animal, vehicle, unknown; "
            "labelled_at the time it was given, ISO 8601 in the sector's time zone with its "
            "offset (2026-06-01T02:14:07-07:00); user the map user who gave it. One row per "
            "track, sorted by track id. vigil calibrate classes reads this file."
        ),
    )
    pe.add_argument(
        "--out", required=True, metavar="FILE", type=output_file, help="the CSV file to write"
    )
    pe.add_argument(
        "--users",
        default=DEFAULT_USERS,
        help=f"the live map's users file (default {DEFAULT_USERS}); the labels are read from "
        "the audit database beside it",
    )
    pe.add_argument(
        "--audit",
        default=None,
        metavar="FILE",
        help=f"the audit database the map wrote (vigil serve --audit; default {DEFAULT_AUDIT} "
        "beside --users; vigil demo --serve writes OUT/audit.sqlite)",
    )
    pe.add_argument(
        "--sector",
        default=None,
        help="the sector whose labels to write (needed when the file holds several: the "
        "national view)",
    )
    pe.set_defaults(func=cmd_labels_export)
    p.set_defaults(func=lambda a: missing_action(p))
