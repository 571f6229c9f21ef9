"""``vigil track``: tracks from a CSV file of detections."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vigil.cli.arguments import existing_file, output_file
from vigil.cli.common import EXIT_OK, EXIT_USAGE, CommandError, Subparsers


def time_zone(text: str) -> str:
    """An IANA time zone name (``America/Phoenix``), checked."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r}: unknown time zone (expected an IANA name, e.g. America/Phoenix)"
        ) from None
    return text


def cmd_track(args: argparse.Namespace) -> int:
    """Track detections from a CSV file."""
    from vigil.tracks.csvfile import CsvError, run_track

    centre = None
    if args.centre:
        try:
            lat, lon = (float(v) for v in args.centre.split(","))
        except ValueError:
            print(f"error: --centre {args.centre!r}: expected LAT,LON in degrees", file=sys.stderr)
            return EXIT_USAGE
        centre = (lat, lon)
    try:
        s = run_track(args.detections, args.out, args.frame, centre=centre, timezone=args.timezone)
    except CsvError as exc:
        raise CommandError(str(exc)) from None
    print(
        f"{s.detections} detections in {s.batches} batches -> {s.tracks} confirmed tracks, "
        f"{s.rows_written} rows written to {Path(args.out).resolve()}"
    )
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``track`` to the top-level subcommands."""
    p = sub.add_parser(
        "track",
        help="track detections from a CSV file",
        description=(
            "Track detections from CSV (columns t,x,y in local metres, or t,lat,lon; optional "
            "sensor and sigma) or from a GeoJSON FeatureCollection of Points (properties t, "
            "optional sensor and sigma; with --frame wgs84) and write t,track_id,x,y,vx,vy (or "
            "lat,lon) and time (t as ISO 8601 with its offset, see --timezone) for confirmed "
            "tracks. A bad row stops with an error naming the line (or feature) and the column."
        ),
    )
    p.add_argument("detections", type=existing_file, help="detections CSV or GeoJSON")
    p.add_argument("--out", required=True, metavar="CSV", type=output_file, help="tracks CSV")
    p.add_argument("--frame", choices=("local", "wgs84"), default="local", help="output frame")
    p.add_argument(
        "--centre", metavar="LAT,LON", help="centre of the tracking frame for wgs84 input"
    )
    p.add_argument(
        "--timezone",
        default="UTC",
        type=time_zone,
        metavar="ZONE",
        help="IANA time zone of the output's time column (ISO 8601 with offset; default UTC)",
    )
    p.set_defaults(func=cmd_track)
