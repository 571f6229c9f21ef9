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


class CommandError(Exception):
    """A command that cannot go on: the message is printed and the status returned."""

    def __init__(self, message: str, status: int = EXIT_DATA) -> None:
        super().__init__(message)
        self.status = status


def _deployment(path: str | None):
    """Load a deployment file (or the demo's); a bad file ends the command with its error."""
    from vigil.config import ConfigError, load, load_default

    try:
        return load(path) if path else load_default()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


# -- config -----------------------------------------------------------------------------------


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


# -- map --------------------------------------------------------------------------------------


def cmd_map(args: argparse.Namespace) -> int:
    """Draw a deployment on an offline map."""
    from vigil.maps.situation import write_situation_map

    d = _deployment(args.deployment)
    tiles = args.tiles or d.config.map.tiles_url
    out = write_situation_map(
        d.site, args.out, tiles_url=tiles, tiles_attribution=d.config.map.tiles_attribution
    )
    print(f"map written to {out.resolve()}")
    return EXIT_OK


# -- demo -------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole chain on the shipped deployment and say where the results are."""
    from vigil.demo import DEMO_START_UTC, demo_settings, print_summary, run_demo

    d = _deployment(args.deployment)
    if not (args.hours > 0):
        print(
            f"error: --hours {args.hours!r}: expected a positive number of hours", file=sys.stderr
        )
        return EXIT_USAGE
    start = DEMO_START_UTC if args.start is None else _parse_time(args.start)
    sim = demo_settings(start_time=start, crossing_rate_scale=args.rate_scale, fps=args.fps)
    out_dir = Path(args.out)
    if args.serve:
        return _demo_serve(d, sim, args)
    summary = run_demo(
        d, out_dir, hours=args.hours, seed=args.seed, sim=sim, progress=not args.quiet
    )
    print_summary(summary, out_dir)
    return EXIT_OK


def _demo_serve(d, sim, args: argparse.Namespace) -> int:
    """Run the simulated sector at ``--speed`` times real time and serve its live map."""
    import time

    from vigil.maps.live.app import LiveMapApp
    from vigil.maps.live.audit import AuditLog
    from vigil.maps.live.auth import UserStore
    from vigil.maps.live.server import ServerThread
    from vigil.pipeline import Pipeline

    if not (args.speed > 0):
        print(f"error: --speed {args.speed!r}: expected a positive factor", file=sys.stderr)
        return EXIT_USAGE
    users = UserStore(args.users)
    if not users.users():
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
    pipe = Pipeline(d.site, sim, args.seed, store_dir=None)
    app = LiveMapApp(d.site, pipe.bus, users, audit, tiles_url=d.config.map.tiles_url)
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
        audit.close()
        users.close()
    return EXIT_OK


# -- serve / users ----------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the live map of a sector fed by its MQTT broker."""
    from vigil.ingest.mqtt import MqttBus, MqttSettings
    from vigil.maps.live.server import run_live

    d = _deployment(args.deployment)
    b = d.config.broker
    user, password = b.credentials()
    settings = MqttSettings(
        host=b.host, port=b.port, tls=b.tls, ca_file=b.ca_file, username=user, password=password
    )
    bus = MqttBus(d.sector, settings, f"vigil-serve-{d.sector}")
    try:
        bus.connect(30.0)
    except ConnectionError as exc:
        raise CommandError(str(exc)) from None
    try:
        run_live(
            d.site,
            bus,
            args.host,
            args.port,
            users_path=args.users,
            audit_path=args.audit,
            certfile=args.cert,
            keyfile=args.key,
            tiles_url=d.config.map.tiles_url,
        )
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        bus.close()
    return EXIT_OK


def cmd_users_add(args: argparse.Namespace) -> int:
    """Add a user of the live map."""
    import getpass
    import os

    from vigil.maps.live.auth import AuthError, add_user

    password = os.environ.get("VIGIL_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            print(
                "error: set VIGIL_PASSWORD or run in a terminal to type the password",
                file=sys.stderr,
            )
            return EXIT_USAGE
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return EXIT_USAGE
    try:
        user = add_user(
            args.users, args.name, args.role, password, unit=args.unit, replace=args.replace
        )
    except AuthError as exc:
        raise CommandError(str(exc)) from None
    print(f"user {user.name!r} ({user.role}) added to {Path(args.users).resolve()}")
    return EXIT_OK


def _parse_time(text: str) -> float:
    from datetime import datetime

    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise SystemExit(f"error: time {text!r} has no time zone; add Z or an offset")
    return dt.timestamp()


# -- simulate ---------------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write a simulated sector's feeds and truth to files."""
    from vigil.sim import SimSettings
    from vigil.sim.files import simulate_to_files

    d = _deployment(args.deployment)
    kwargs = {}
    if args.start is not None:
        kwargs["start_time"] = _parse_time(args.start)
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


# -- detect -----------------------------------------------------------------------------------


def cmd_detect(args: argparse.Namespace) -> int:
    """Detect motion in a video file or image sequence."""
    from vigil.detection.background import DetectionError
    from vigil.detection.detector import DetectorConfig
    from vigil.detection.video import VideoInputError, load_camera_config, run_detect

    geometry = None
    fps = args.fps
    start = _parse_time(args.start) if args.start is not None else None
    try:
        if args.camera_config:
            setup = load_camera_config(args.camera_config)
            geometry = setup.geometry
            fps = fps or setup.fps
            start = start if start is not None else setup.start_time
        elif args.tower:
            from vigil.detection.objects import CameraGeometry
            from vigil.geo.site import tower_camera

            d = _deployment(args.deployment)
            towers = {t.id: t for t in d.config.towers}
            if args.tower not in towers:
                print(
                    f"error: --tower {args.tower!r}: not in the deployment; have {sorted(towers)}",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            frame = d.site.frame()
            geometry = CameraGeometry(tower_camera(towers[args.tower], frame), frame, args.tower)
        config = DetectorConfig.for_tower() if args.tower_settings else DetectorConfig()
        summary = run_detect(
            args.input, args.out, geometry, args.masks, config=config, fps=fps, start_time=start
        )
    except VideoInputError as exc:
        raise CommandError(str(exc)) from None
    except DetectionError as exc:
        raise CommandError(str(exc)) from None
    print(
        f"{summary.frames} frames, {summary.detections} detections written to "
        f"{Path(args.out).resolve()}"
        + (f"; {summary.masks_written} masks in {Path(args.masks).resolve()}" if args.masks else "")
    )
    return EXIT_OK


# -- track ------------------------------------------------------------------------------------


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
        s = run_track(args.detections, args.out, args.frame, centre=centre)
    except CsvError as exc:
        raise CommandError(str(exc)) from None
    print(
        f"{s.detections} detections in {s.batches} batches -> {s.tracks} confirmed tracks, "
        f"{s.rows_written} rows written to {Path(args.out).resolve()}"
    )
    return EXIT_OK


# -- analyze ----------------------------------------------------------------------------------


def cmd_analyze(args: argparse.Namespace) -> int:
    """Planners' analyses of a crossing table, or of an aggregate counts table."""
    from vigil.geo.patterns.io import PatternInputError

    out = Path(args.out)
    try:
        if args.input[0] == "counts":
            from vigil.maps.report import analyze_counts

            if len(args.input) != 2 or not (args.time and args.group and args.value):
                print(
                    "error: usage: vigil analyze counts CSV --time COL --group COL "
                    "--value COL --out DIR",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            analyze_counts(
                args.input[1],
                args.time,
                args.group,
                args.value,
                out,
                dask=args.dask,
                year_start_month=args.year_start_month,
                busiest_year_start_month=args.year_start_month,
            )
        else:
            from vigil.maps.report import analyze_crossings

            if len(args.input) != 1:
                print(
                    "error: give one crossing table (CSV, GeoParquet, GeoPackage or the store)",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            d = _deployment(args.deployment)
            analyze_crossings(
                args.input[0],
                out,
                border=d.site.border(),
                timezone=d.site.sector.timezone,
                dask=args.dask,
            )
    except (PatternInputError, FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    written = sorted(p.name for p in out.iterdir() if p.is_file())
    print(f"analysis written to {out.resolve()}: {', '.join(written)}")
    return EXIT_OK


# -- edge adapters ----------------------------------------------------------------------------


def _edge_bus(args: argparse.Namespace, sector: str, client_id: str):
    from vigil.ingest.bus import InProcessBus

    if args.broker is None:
        return InProcessBus(sector)
    from vigil.ingest.mqtt import MqttBus, MqttSettings

    host, _, port = args.broker.partition(":")
    # every message of a device is for the sector service: one no session took is sent again
    settings = MqttSettings.from_env(
        host=host or "127.0.0.1", port=int(port or 1883), resend_unrouted=True
    )
    bus = MqttBus(
        sector, settings, client_id, outbox_path=Path(args.state_dir) / f"{client_id}.outbox"
    )
    return bus.connect(30.0)


def cmd_edge(args: argparse.Namespace) -> int:
    """Run a device adapter: read a device's output and publish wire messages."""

    d = _deployment(args.deployment)
    sector = d.sector
    Path(args.state_dir).mkdir(parents=True, exist_ok=True)
    if args.device == "camera":
        return _edge_camera(args, d)
    if args.device == "ugs":
        from vigil.hardware.ugs import GatewaySourceError, run_ugs_edge

        bus = _paced(args, _edge_bus(args, sector, args.client_id or "edge-ugs"))
        try:
            counts = run_ugs_edge(args.source, bus, sector, follow=args.follow)
        except GatewaySourceError as exc:
            raise CommandError(str(exc)) from None
        finally:
            _close(bus)
        print(
            f"{counts.published} gateway lines published ({counts.unroutable} unroutable); "
            f"quarantined: {dict(bus.quarantine_counts)}"
        )
        return EXIT_OK
    if args.device == "uas":
        from vigil.hardware.uas import MavlinkSourceError, run_uas_edge

        aircraft = args.id or (d.config.aircraft[0].id if d.config.aircraft else "uas1")
        bus = _paced(args, _edge_bus(args, sector, args.client_id or f"edge-{aircraft}"))
        try:
            counts = run_uas_edge(args.source, bus, sector, aircraft, follow=args.follow)
        except MavlinkSourceError as exc:
            raise CommandError(str(exc)) from None
        finally:
            _close(bus)
        print(
            f"{counts.telemetry} telemetry messages published from {counts.messages} "
            f"MAVLink messages; skipped: {dict(counts.skipped)}"
        )
        return EXIT_OK
    print(f"error: edge device {args.device!r} is not available yet", file=sys.stderr)
    return EXIT_USAGE


def _close(bus) -> None:
    flush = getattr(bus, "flush", None)
    if flush is not None:
        flush(30.0)
    bus.close()


def _pacer(args: argparse.Namespace):
    """The shared playback clock of --speed, --pace-origin and --pace-start (None without)."""
    if not args.speed:
        return None
    from vigil.hardware.pacing import Pacer

    origin = _parse_time(args.pace_origin) if args.pace_origin else None
    start = _parse_time(args.pace_start) if args.pace_start else None
    return Pacer(args.speed, origin=origin, start_wall=start)


def _paced(args: argparse.Namespace, bus):
    """Put a pacer in front of an edge bus when --speed plays a file back in time."""
    pacer = _pacer(args)
    if pacer is None:
        return bus
    from vigil.hardware.pacing import PacedBus

    return PacedBus(bus, pacer)


def _edge_camera(args: argparse.Namespace, d) -> int:
    """``vigil edge camera SOURCE --id TOWER``: capture, detect, publish."""
    from vigil.edge import tower_detector
    from vigil.hardware.camera import CameraSourceError, run_camera_edge

    towers = [t.id for t in d.config.towers]
    tower = args.id or (towers[0] if len(towers) == 1 else None)
    if tower not in towers:
        print(f"error: --id {tower!r}: expected one of the deployment's towers {towers}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    pacer = _pacer(args)
    start_time = _parse_time(args.start) if args.start else None
    bus = _edge_bus(args, d.sector, args.client_id or f"edge-{tower}")
    try:
        counts = run_camera_edge(
            args.source, bus, d.sector, tower, tower_detector(d.site, tower),
            fps=args.fps, start_time=start_time, pacer=pacer,
        )  # fmt: skip
    except CameraSourceError as exc:
        raise CommandError(str(exc)) from None
    finally:
        _close(bus)
    print(
        f"{counts.frames} frames, {counts.detections} detections published from {tower}; "
        f"{counts.reconnects} reconnects, {counts.commands} commands received"
    )
    return EXIT_OK


# -- sector service and alert console ---------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Run the sector service until SIGTERM, SIGINT or --seconds."""
    import signal
    import threading
    import time

    from vigil.service import SectorService, mqtt_settings

    d = _deployment(args.deployment)
    settings = mqtt_settings(d, args.broker)
    state = Path(args.state_dir or f".vigil-{d.sector}")
    service = SectorService(
        d.site, settings, state, hold_s=args.hold, idle_s=args.idle, client_id=args.client_id
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        try:
            r = service.start(args.connect_timeout)
        except ConnectionError as exc:
            r = service.report
            print(f"warning: {exc}; still trying", file=sys.stderr, flush=True)
        print(
            f"sector {d.sector}: replayed {r.replayed} journaled messages in {r.replay_s:.2f} s "
            f"({r.outputs_skipped} outputs already sent); serving {settings.host}:{settings.port}, "
            f"state in {state.resolve()}",
            flush=True,
        )
        t0 = time.monotonic()
        while not stop.wait(0.5):
            if args.seconds and time.monotonic() - t0 >= args.seconds:
                break
    except KeyboardInterrupt:
        pass
    finally:
        service.close()
    s = service.status()
    print(
        f"handled {s['handled']} messages; published {s['runner'].get('published', 0)}; "
        f"late {s['runner'].get('late', 0)}; quarantined {sum(s['quarantine'].values())}"
    )
    return EXIT_OK


def cmd_alerts(args: argparse.Namespace) -> int:
    """An agent's console: show a unit's alerts as they arrive; acknowledge, assign, close."""
    from vigil.console import HELP, AlertConsole, run_console
    from vigil.ingest.mqtt import MqttBus
    from vigil.service import mqtt_settings

    d = _deployment(args.deployment)
    units = [u.id for u in d.config.units]
    if not args.all and args.unit not in units:
        print(f"error: --unit {args.unit!r}: expected one of {units} (or --all)", file=sys.stderr)
        return EXIT_USAGE
    settings = mqtt_settings(d, args.broker)
    who = args.unit or "all"
    bus = MqttBus(d.sector, settings, args.client_id or f"console-{d.sector}-{who}",
                  publish_quarantine=False)  # fmt: skip
    console = AlertConsole(d.sector, args.unit or "console", bus, show_all=args.all)
    try:
        bus.connect(args.connect_timeout)
    except ConnectionError as exc:
        print(f"warning: {exc}; still trying", file=sys.stderr, flush=True)
    console.say(f"alerts of sector {d.sector} for {'every unit' if args.all else args.unit}")
    console.say(HELP)
    try:
        run_console(console)
    except KeyboardInterrupt:
        pass
    finally:
        console.close()
        bus.flush(10.0)
        bus.close()
    return EXIT_OK


# -- record / replay --------------------------------------------------------------------------


def cmd_record(args: argparse.Namespace) -> int:
    """Record everything on a sector's topics from a broker."""
    from vigil.ingest.mqtt import MqttSettings
    from vigil.ingest.recording import record

    host, _, port = args.broker.partition(":")
    settings = MqttSettings.from_env(host=host or "127.0.0.1", port=int(port or 1883))
    s = record(
        settings, args.sector, args.out, duration_s=args.seconds, max_messages=args.max_messages
    )
    print(f"recorded {s.messages} messages to {Path(args.out).resolve()}")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    """Publish a recording back to a broker with its original timing scaled."""
    import math

    from vigil.ingest.mqtt import MqttBus, MqttSettings
    from vigil.ingest.recording import read_recording, replay

    host, _, port = args.broker.partition(":")
    settings = MqttSettings.from_env(host=host or "127.0.0.1", port=int(port or 1883))
    first = next(iter(read_recording(args.file)), None)
    sector = args.sector or (first.topic.split("/")[2] if first is not None else "replay")
    bus = MqttBus(sector, settings, args.client_id).connect(30.0)
    try:
        s = replay(args.file, bus, math.inf if args.speed == 0 else args.speed)
    finally:
        _close(bus)
    print(f"replayed {s.published} messages from {args.file}")
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
        help="run the whole chain on a simulated sector",
        description=(
            "Simulate the shipped Tucson deployment (towers, ground sensors, aircraft, walkers, "
            "traffic, animals) and run every stage in one process: motion detection, fusion "
            "and tracking, crossing detection, alerts, the store, the map and the planners' "
            "report. Writes map.html, report.html, events.gpkg and summary.json and prints "
            "the truth-scored summary. By default it starts at 02:00 local time with crossing "
            "rates scaled up, so that a short run shows something."
        ),
    )
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML (default: the demo's)")
    p.add_argument(
        "--out", metavar="DIR", default="demo-out", help="output folder (default demo-out)"
    )
    p.add_argument("--hours", type=float, default=0.1, help="simulated hours (default 0.1)")
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    p.add_argument("--start", metavar="TIME", help="start, ISO 8601 with zone or epoch seconds")
    p.add_argument(
        "--rate-scale", type=float, default=20.0, help="crossing-rate multiplier (default 20)"
    )
    p.add_argument("--fps", type=float, default=2.0, help="tower camera frame rate (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--serve", action="store_true", help="run in real time and serve the live map")
    p.add_argument(
        "--speed", type=float, default=1.0, help="with --serve: speed factor (default 1)"
    )
    p.add_argument("--host", default="127.0.0.1", help="with --serve: address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="with --serve: port (default 8080)")
    p.add_argument("--users", default="vigil-users.sqlite", help="with --serve: users file")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "serve",
        help="serve the live map of a sector from its broker",
        description=(
            "Serve the watch commander's live map: tracks, crossings, sensors, towers, the "
            "aircraft and the alert queue, updated over a WebSocket from the sector's MQTT "
            "broker; login with roles, CSRF-protected actions, an audit log; HTTPS with --cert "
            "and --key. Every script and style is served by the app (no CDN)."
        ),
    )
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML (default: the demo's)")
    p.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--users", default="vigil-users.sqlite", help="users file (vigil users add)")
    p.add_argument("--audit", default="vigil-audit.sqlite", help="audit log (SQLite)")
    p.add_argument("--cert", metavar="PEM", help="TLS certificate")
    p.add_argument("--key", metavar="PEM", help="TLS private key")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "users",
        help="manage the live map's users",
        description="Manage the live map's users (roles: commander, agent, planner, admin).",
    )
    usub = p.add_subparsers(dest="users_command", metavar="ACTION")
    pa = usub.add_parser(
        "add",
        help="add a user",
        description=(
            "Add a user. The password is read from VIGIL_PASSWORD or typed twice at a prompt; "
            "it is stored as an argon2 hash. Agents need --unit: they see their unit's alerts."
        ),
    )
    pa.add_argument("name")
    pa.add_argument("--role", required=True, choices=("commander", "agent", "planner", "admin"))
    pa.add_argument("--unit", help="agent's patrol unit id")
    pa.add_argument("--users", default="vigil-users.sqlite", help="users file")
    pa.add_argument("--replace", action="store_true", help="replace an existing user")
    pa.set_defaults(func=cmd_users_add)
    p.set_defaults(func=lambda a: _missing_action(p))

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

    p = sub.add_parser(
        "detect",
        help="detect motion in a video file or image sequence",
        description=(
            "Detect moving objects in a video (any file OpenCV reads, or an image sequence "
            "pattern such as input/in%%06d.jpg). With a camera model (--camera-config FILE, "
            "or --tower ID from the deployment) each line of the output is a CameraDetection "
            "with its ground position; without one, a pixel detection. --masks DIR writes each "
            "frame's foreground mask as DIR/%%06d.png. A corrupt or truncated input stops with "
            "an error naming the frame, after the earlier frames were written."
        ),
    )
    p.add_argument("input", help="video file or image-sequence pattern")
    p.add_argument("--out", required=True, metavar="JSONL", help="detections, one per line")
    p.add_argument("--masks", metavar="DIR", help="write foreground masks here")
    p.add_argument("--camera-config", metavar="FILE", help="camera TOML (see detection/video.py)")
    p.add_argument("--tower", metavar="ID", help="use this tower of the deployment as the camera")
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML for --tower")
    p.add_argument("--fps", type=float, help="frame rate when the input does not say")
    p.add_argument("--start", metavar="TIME", help="time of the first frame (default: file time)")
    p.add_argument("--tower-settings", action="store_true", help="thermal tower detector settings")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser(
        "track",
        help="track detections from a CSV file",
        description=(
            "Track detections from CSV (columns t,x,y in local metres, or t,lat,lon; optional "
            "sensor and sigma) and write t,track_id,x,y,vx,vy (or lat,lon) for confirmed tracks. "
            "A bad row stops with an error naming the line and the column."
        ),
    )
    p.add_argument("detections", help="detections CSV")
    p.add_argument("--out", required=True, metavar="CSV", help="tracks CSV")
    p.add_argument("--frame", choices=("local", "wgs84"), default="local", help="output frame")
    p.add_argument(
        "--centre", metavar="LAT,LON", help="centre of the tracking frame for wgs84 input"
    )
    p.set_defaults(func=cmd_track)

    p = sub.add_parser(
        "analyze",
        help="planners' analyses of crossings or aggregate counts",
        description=(
            "vigil analyze INPUT --out DIR: crossings per segment and period, time-of-day and "
            "weekday profiles, STL trend, Gi* hotspots, H3 cells, displacement and coverage, "
            "written as report.html, segments.gpkg, hotspots.gpkg and summary.json. INPUT is a "
            "CSV, GeoParquet, GeoPackage or the SQLite store. "
            "vigil analyze counts CSV --time COL --group COL --value COL --out DIR: the same for "
            "an aggregate table, plus seasonality.json."
        ),
    )
    p.add_argument("input", nargs="+", help="INPUT, or: counts CSV")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML whose border to use")
    p.add_argument("--time", metavar="COL", help="counts: the time column")
    p.add_argument("--group", metavar="COL", help="counts: the area column")
    p.add_argument("--value", metavar="COL", help="counts: the count column")
    p.add_argument(
        "--year-start-month",
        type=int,
        default=1,
        help="counts: first month of the year (10 for US fiscal years)",
    )
    p.add_argument("--dask", metavar="ADDRESS", help="run on Dask: 'local' or a scheduler address")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser(
        "edge",
        help="run a device adapter (camera, ugs, uas)",
        description=(
            "Read a device's output and publish wire messages: 'camera' reads a video file, "
            "RTSP URL or device through OpenCV, runs the tower's motion detector (--id TOWER "
            "from the deployment) and reconnects to a lost stream; 'ugs' reads the "
            "ground-sensor gateway's JSON lines (file, tcp://host:port, "
            "serial:///dev/ttyUSB0, or - for stdin); 'uas' reads MAVLink (a tlog file or "
            "udpin:0.0.0.0:14550). With --broker "
            "the messages go to MQTT (credentials from VIGIL_MQTT_USER/VIGIL_MQTT_PASSWORD), "
            "otherwise they are validated in process and counted."
        ),
    )
    p.add_argument("device", choices=("camera", "ugs", "uas"), help="which adapter")
    p.add_argument("source", help="where the device's output comes from")
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML (default: the demo's)")
    p.add_argument("--broker", metavar="HOST:PORT", help="MQTT broker")
    p.add_argument("--id", help="device id (uas: the aircraft)")
    p.add_argument("--client-id", help="MQTT client id")
    p.add_argument("--state-dir", default=".vigil-edge", help="outbox folder (default .vigil-edge)")
    p.add_argument("--follow", action="store_true", help="keep reading a live source")
    p.add_argument("--fps", type=float, help="camera: frame rate of a file (default: its own)")
    p.add_argument("--start", metavar="TIME", help="camera: time of a file's first frame")
    p.add_argument(
        "--speed",
        type=float,
        help="play a file back in time: message seconds per wall second (default: flat out)",
    )
    p.add_argument("--pace-origin", metavar="TIME", help="with --speed: message time at start")
    p.add_argument(
        "--pace-start", metavar="TIME", help="with --speed: wall time of the origin (default now)"
    )
    p.set_defaults(func=cmd_edge)

    p = sub.add_parser(
        "record",
        help="record a sector's topics from a broker",
        description="Write everything on vigil/v1/{sector}/# to a recording file (JSON lines).",
    )
    p.add_argument("--sector", required=True)
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT")
    p.add_argument("--seconds", type=float, help="stop after this long")
    p.add_argument("--max-messages", type=int, help="stop after this many")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "replay",
        help="publish a recording back with its timing",
        description=(
            "Publish a recording to a broker with the original gaps divided by --speed "
            "(0: no waits)."
        ),
    )
    p.add_argument("file")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT")
    p.add_argument("--sector", help="sector (default: from the recording)")
    p.add_argument("--client-id", default="vigil-replay")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "run",
        help="run the sector service on an MQTT broker",
        description=(
            "The sector service: subscribe to the sector's detections, ground-sensor messages, "
            "telemetry and alert actions; journal each accepted message to SQLite before "
            "acknowledging it; order them by message time; track, detect crossings, alert; "
            "store; publish tracks, crossings, alerts and camera commands. Restarted after a "
            "crash it replays its journal and sends nothing twice. Stops on SIGTERM or Ctrl-C."
        ),
    )
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML (default: the demo's)")
    p.add_argument("--broker", metavar="HOST:PORT", help="override the deployment's broker")
    p.add_argument("--state-dir", metavar="DIR", help="journal, outboxes, stores (.vigil-SECTOR)")
    p.add_argument("--hold", type=float, default=1.0, help="reorder hold, message s (default 1)")
    p.add_argument("--idle", type=float, default=3.0, help="idle clock after, wall s (default 3)")
    p.add_argument("--client-id", help="MQTT client id (default vigil-SECTOR)")
    p.add_argument("--connect-timeout", type=float, default=30.0, help="seconds (default 30)")
    p.add_argument("--seconds", type=float, help="stop after this long")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "alerts",
        help="an agent's alert console",
        description=(
            "Show a patrol unit's alerts (recommended or assigned) as they arrive, or every "
            "alert with --all, and act on them with typed commands: a [REF] acknowledge, "
            "s [REF] [UNIT] assign, c [REF] close, l list, q quit."
        ),
    )
    p.add_argument("--unit", help="the patrol unit at this console")
    p.add_argument("--all", action="store_true", help="show every alert of the sector")
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML (default: the demo's)")
    p.add_argument("--broker", metavar="HOST:PORT", help="override the deployment's broker")
    p.add_argument("--client-id", help="MQTT client id (default console-SECTOR-UNIT)")
    p.add_argument("--connect-timeout", type=float, default=30.0, help="seconds (default 30)")
    p.set_defaults(func=cmd_alerts)
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
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
