"""``vigil analyze``: planners' analyses of a crossing table or an aggregate counts table."""

from __future__ import annotations

import argparse
from pathlib import Path

from vigil.cli.arguments import (
    EmptyOutputsRemoved,
    add_deployment,
    month,
    output_dir,
)
from vigil.cli.common import EXIT_OK, EXIT_USAGE, CommandError, Subparsers, load_deployment


def cmd_analyze(args: argparse.Namespace) -> int:
    """Planners' analyses of a crossing table, or of an aggregate counts table."""
    from vigil.alerts.store_pg import dsn_from, is_dsn
    from vigil.geo.patterns.io import PatternInputError

    inputs = list(args.input)
    dsn = dsn_from(args.db) if not inputs else None
    if inputs and len(inputs) == 1 and is_dsn(inputs[0]):
        raise CommandError(
            "give a database with --db DSN or the VIGIL_DB environment variable, not as INPUT "
            "(a password on the command line shows in the process list)",
            EXIT_USAGE,
        )
    if args.db and inputs:
        raise CommandError("give INPUT or --db, not both", EXIT_USAGE)
    if dsn is not None:
        return _analyze_db(args, dsn)
    if not inputs:
        raise CommandError("give INPUT, --db DSN or set VIGIL_DB", EXIT_USAGE)
    counts = args.input[0] == "counts"
    if counts and (len(args.input) != 2 or not (args.time and args.group and args.value)):
        raise CommandError(
            "usage: vigil analyze counts CSV --time COL --group COL --value COL --out DIR",
            EXIT_USAGE,
        )
    if not counts and len(args.input) != 1:
        raise CommandError(
            "give one crossing table (CSV, GeoParquet, GeoPackage, GeoJSON or the store)",
            EXIT_USAGE,
        )
    # the input is checked before anything is written: a missing file leaves no empty report
    table = args.input[-1]
    if not Path(table).exists():
        raise CommandError(f"argument input: {table!r}: no such file", EXIT_USAGE)
    out = Path(args.out)
    try:
        with EmptyOutputsRemoved(out):
            if counts:
                from vigil.maps.report import analyze_counts

                analyze_counts(
                    table,
                    args.time,
                    args.group,
                    args.value,
                    out,
                    dask=args.dask,
                    year_start_month=args.year_start_month,
                    busiest_year_start_month=args.year_start_month,
                )
            else:
                from vigil.maps.report import analyze_crossings, relief_coverage

                d = load_deployment(args.deployment)
                # with [terrain]: coverage and tower advice by what the relief lets towers see
                relief = relief_coverage(d.site, d.config.terrain, d.path.parent)
                analyze_crossings(
                    table,
                    out,
                    border=d.site.border(),
                    timezone=d.site.sector.timezone,
                    dask=args.dask,
                    footprints=relief[0] if relief else None,
                    candidates=relief[1] if relief else None,
                    coverage_from="viewsheds" if relief else None,
                )
    except (PatternInputError, FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    written = sorted(p.name for p in out.iterdir() if p.is_file())
    print(f"analysis written to {out.resolve()}: {', '.join(written)}")
    return EXIT_OK


def _analyze_db(args: argparse.Namespace, dsn: str) -> int:
    """The crossing analyses of the PostgreSQL history store, counted in the database."""
    from vigil.alerts.store_pg import redact, scrub
    from vigil.maps.report import analyze_crossings, relief_coverage

    if args.dask:
        raise CommandError("--db is aggregated in the database; drop --dask", EXIT_USAGE)
    out = Path(args.out)
    try:
        with EmptyOutputsRemoved(out):
            d = load_deployment(args.deployment)
            relief = relief_coverage(d.site, d.config.terrain, d.path.parent)
            analyze_crossings(
                dsn,
                out,
                border=d.site.border(),
                timezone=d.site.sector.timezone,
                footprints=relief[0] if relief else None,
                candidates=relief[1] if relief else None,
                coverage_from="viewsheds" if relief else None,
                schema=args.db_schema,
            )
    except (ConnectionError, ValueError) as exc:
        raise CommandError(scrub(str(exc), dsn)) from None
    except Exception as exc:  # psycopg's errors: the message is scrubbed of the password
        import psycopg

        if not isinstance(exc, psycopg.Error):
            raise
        raise CommandError(f"{redact(dsn)}: {scrub(str(exc), dsn)}") from None
    written = sorted(p.name for p in out.iterdir() if p.is_file())
    print(f"analysis of {redact(dsn)} written to {out.resolve()}: {', '.join(written)}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``analyze`` to the top-level subcommands."""
    p = sub.add_parser(
        "analyze",
        help="planners' analyses of crossings or aggregate counts",
        description=(
            "vigil analyze INPUT --out DIR: crossings per segment and period, time-of-day and "
            "weekday profiles, STL trend, Gi* hotspots, H3 cells, displacement and coverage, "
            "written as report.html, segments.gpkg, hotspots.gpkg, segments.parquet and "
            "summary.json. "
            "INPUT is a CSV, GeoParquet, GeoPackage (layer crossings, as the demo's events.gpkg), "
            "GeoJSON, or the SQLite store (vigil run's or the demo's events.sqlite). "
            "vigil analyze counts CSV --time COL --group COL --value COL --out DIR: the same for "
            "an aggregate table, plus seasonality.json. "
            "vigil analyze --db DSN --out DIR (or the VIGIL_DB environment variable): the "
            "crossings of the PostgreSQL/PostGIS history store, counted in the database."
        ),
    )
    p.add_argument("input", nargs="*", help="INPUT, or: counts CSV")
    p.add_argument(
        "--db",
        metavar="DSN",
        help="the PostgreSQL history store (postgresql://user@host/db); default: the VIGIL_DB "
        "environment variable when no INPUT is given. The password is never printed; prefer "
        "VIGIL_DB or ~/.pgpass to a password on the command line",
    )
    p.add_argument(
        "--db-schema", default="vigil", metavar="NAME", help="the history store's schema"
    )
    p.add_argument("--out", required=True, metavar="DIR", type=output_dir, help="output folder")
    add_deployment(p, help="deployment TOML whose border to use")
    p.add_argument("--time", metavar="COL", help="counts: the time column")
    p.add_argument("--group", metavar="COL", help="counts: the area column")
    p.add_argument("--value", metavar="COL", help="counts: the count column")
    p.add_argument(
        "--year-start",
        "--year-start-month",
        dest="year_start_month",
        metavar="MONTH",
        type=month,
        default=None,
        help="counts: first month of the year, 1-12 (10 for US fiscal years); default: from "
        "the table's fiscal-year column (fy) or its span, else calendar years; the report "
        "says which",
    )
    p.add_argument("--dask", metavar="ADDRESS", help="run on Dask: 'local' or a scheduler address")
    p.set_defaults(func=cmd_analyze)
