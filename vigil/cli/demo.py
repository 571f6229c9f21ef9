"""``vigil demo``: the whole chain on a simulated sector, in one process, or served live."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.cli.arguments import (
    add_deployment,
    nonnegative_float,
    output_dir,
    output_file,
    port,
    positive_float,
    time_arg,
)
from vigil.cli.common import EXIT_OK, EXIT_USAGE, CommandError, Subparsers, load_deployment
from vigil.cli.folder_lock import folder_lock
from vigil.cli.perturbation_args import add_perturbations, chosen_perturbations

if TYPE_CHECKING:
    from vigil.alerts.channels import DispatchChannel
    from vigil.config import Deployment
    from vigil.sim import SimSettings


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole chain on the shipped deployment and say where the results are."""
    from vigil.demo import demo_settings, demo_start, print_summary, run_demo

    args.chosen_perturbations = chosen_perturbations(args)
    d = load_deployment(args.deployment)
    for warning in d.warnings:
        print(f"warning: {d.path}: {warning}", file=sys.stderr, flush=True)
    if not (args.hours > 0):
        print(
            f"error: --hours {args.hours!r}: expected a positive number of hours", file=sys.stderr
        )
        return EXIT_USAGE
    if args.pointing_sigma > 5.0:
        print(f"error: --pointing-sigma {args.pointing_sigma!r}: at most 5", file=sys.stderr)
        return EXIT_USAGE
    start = demo_start(d) if args.start is None else args.start  # 02:00 local, its season
    sim = demo_settings(start_time=start, crossing_rate_scale=args.rate_scale, fps=args.fps)
    out_dir = Path(args.out)
    if args.serve:
        if args.relief:
            print("error: --relief is not available with --serve", file=sys.stderr)
            return EXIT_USAGE
        return _demo_serve(d, sim, args)
    channels = cot_channels(d)
    with folder_lock(out_dir, "vigil demo"):  # a second demo into this folder waits its turn
        summary = run_demo(
            d,
            out_dir,
            hours=args.hours,
            seed=args.seed,
            sim=sim,
            progress=not args.quiet,
            channels=channels,
            relief=args.relief,
            pointing_sigma_deg=args.pointing_sigma,
            calibrate=not args.no_calibration,
            perturbations=args.chosen_perturbations,
        )
    print_summary(summary, out_dir)
    return EXIT_OK


def cot_channels(d: Deployment) -> list[DispatchChannel]:
    """The CoT channels the deployment's ``[cot]`` section asks for (none unless enabled);
    said on stdout. A TLS file that is not there is a usage error naming it."""
    from vigil.alerts.channels import cot_channels_from

    try:
        channels = cot_channels_from(d.config.cot, d.sector, d.path.parent)
    except ValueError as exc:
        raise CommandError(f"{d.path}: {exc}", EXIT_USAGE) from None
    for channel in channels:
        print(f"alerts also go out as Cursor-on-Target to {channel.url}", flush=True)
    return channels


def _demo_serve(d: Deployment, sim: SimSettings, args: argparse.Namespace) -> int:
    """Run the simulated sector at ``--speed`` times real time and serve its live map."""
    import time

    from vigil.alerts.channels import feed_from_bus
    from vigil.maps.live.app import LiveMapApp
    from vigil.maps.live.audit import AuditLog
    from vigil.maps.live.auth import UserStore
    from vigil.maps.live.coverage import live_relief
    from vigil.maps.live.server import ServerThread
    from vigil.pipeline import Pipeline

    if not (args.speed > 0):
        print(f"error: --speed {args.speed!r}: expected a positive factor", file=sys.stderr)
        return EXIT_USAGE
    try:  # with [terrain] the towers' coverage is drawn on the relief (viewsheds)
        dem = live_relief(d.config.terrain, d.site, d.path.parent)
    except ValueError as exc:  # a DEM that cannot be read or placed
        raise CommandError(f"{d.path}: [terrain]: {exc}") from None
    # a users file that is not there is not created: the command stops and says what to run
    users = UserStore(args.users) if Path(args.users).is_file() else None
    if users is None or not users.users():
        if users is not None:
            users.close()
        print(
            f"error: no users in {args.users}; add one first: "
            f"vigil users add NAME --role commander --users {args.users}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    audit = AuditLog(out_dir / "audit.sqlite")
    pipe = Pipeline(
        d.site,
        sim,
        args.seed,
        store_dir=None,
        tracker=d.tracker_config(),
        rules=d.rules,
        detection=d.detection_for,
        perturbations=args.chosen_perturbations,
    )
    pipe.core.use_crossings(d.config.crossings)
    app = LiveMapApp(d.site, pipe.bus, users, audit, tiles_url=d.config.map.tiles_url, dem=dem)
    channels = cot_channels(d)
    feed_from_bus(pipe.bus, d.sector, channels)
    server = ServerThread(app, args.host, args.port)
    server.start()
    print(f"live map of sector {d.sector} at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        wall0 = time.monotonic()
        simulated = 0.0
        total = args.hours * 3600.0
        while simulated < total:
            step = min(1.0, total - simulated)
            pipe.run(step)
            simulated += step
            ahead = simulated / args.speed - (time.monotonic() - wall0)
            if ahead > 0:
                time.sleep(ahead)
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    finally:
        server.stop()
        app.close()
        pipe.close()
        for channel in channels:
            channel.close()
        audit.close()
        users.close()
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``demo`` to the top-level subcommands."""
    p = sub.add_parser(
        "demo",
        help="run the whole chain on a simulated sector",
        description=(
            "Simulate the shipped Tucson deployment (towers, ground sensors, aircraft, walkers, "
            "traffic, animals) and run every stage in one process: motion detection, fusion "
            "and tracking, crossing detection, alerts, the store, the map and the planners' "
            "report. Writes map.html, report.html, events.gpkg (for QGIS), geoparquet/ (for "
            "Dask or DuckDB), events.sqlite (vigil analyze reads it) and summary.json and prints "
            "the truth-scored summary. By default it starts at 02:00 local time with crossing "
            "rates scaled up, so that a short run shows something."
        ),
    )
    add_deployment(p)
    p.add_argument(
        "--out",
        metavar="DIR",
        type=output_dir,
        default="demo-out",
        help="output folder (default demo-out)",
    )
    p.add_argument(
        "--hours", type=positive_float, default=0.1, help="simulated hours (default 0.1)"
    )
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    p.add_argument(
        "--start", metavar="TIME", type=time_arg, help="start, ISO 8601 with zone or epoch seconds"
    )
    p.add_argument(
        "--rate-scale",
        type=nonnegative_float,
        default=20.0,
        help="crossing-rate multiplier (default 20)",
    )
    p.add_argument(
        "--fps", type=positive_float, default=2.0, help="tower camera frame rate (default 2)"
    )
    p.add_argument(
        "--relief",
        action="store_true",
        help=(
            "run on relief: the deployment's [terrain] DEM or synthetic relief (else the demo's "
            "synthetic relief); bodies stand on it and hide behind it, each tower camera points "
            "off by a hidden error (--pointing-sigma), the towers are calibrated from simulated "
            "surveyed landmarks first (pointing.toml) and detections are placed on the DEM; "
            "summary.json's 'relief' scores the people's ground positions (default: flat)"
        ),
    )
    p.add_argument(
        "--pointing-sigma",
        metavar="DEG",
        type=nonnegative_float,
        default=0.05,
        help="with --relief: standard deviation of the hidden pan, tilt and roll errors, "
        "degrees (default 0.05, at most 5)",
    )
    p.add_argument(
        "--no-calibration",
        action="store_true",
        help="with --relief: no landmark calibration; detectors take the deployment's pointing",
    )
    add_perturbations(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--serve", action="store_true", help="run in real time and serve the live map")
    p.add_argument(
        "--speed", type=positive_float, default=1.0, help="with --serve: speed factor (default 1)"
    )
    p.add_argument("--host", default="127.0.0.1", help="with --serve: address (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8080, help="with --serve: port (default 8080)")
    p.add_argument(
        "--users", type=output_file, default="vigil-users.sqlite", help="with --serve: users file"
    )
    p.set_defaults(func=cmd_demo)
