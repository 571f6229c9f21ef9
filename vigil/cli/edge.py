"""``vigil edge camera|ugs|uas``: a device adapter that publishes a device's wire messages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.cli.arguments import (
    add_deployment,
    broker_address,
    output_dir,
    positive_float,
    time_arg,
)
from vigil.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Subparsers,
    broker_settings,
    close_bus,
    load_deployment,
    require_credentials,
)

if TYPE_CHECKING:
    from vigil.config import Deployment
    from vigil.hardware.pacing import Pacer


def _edge_bus(args: argparse.Namespace, sector: str, client_id: str) -> Any:
    """The bus an adapter publishes on: MQTT with an outbox with --broker, else in process."""
    from vigil.ingest.bus import InProcessBus

    if args.broker is None:
        return InProcessBus(sector)
    from vigil.ingest.mqtt import MqttBus

    # every message of a device is for the sector service: one no session took is sent again
    settings = broker_settings(args.broker, resend_unrouted=True)
    require_credentials(settings, args.insecure)
    bus = MqttBus(
        sector, settings, client_id, outbox_path=Path(args.state_dir) / f"{client_id}.outbox"
    )
    return bus.connect(30.0)


def cmd_edge(args: argparse.Namespace) -> int:
    """Run a device adapter: read a device's output and publish wire messages."""

    d = load_deployment(args.deployment)
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
            close_bus(bus)
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
            close_bus(bus)
        print(
            f"{counts.telemetry} telemetry messages published from {counts.messages} "
            f"messages read; skipped: {dict(counts.skipped)}"
        )
        return EXIT_OK
    print(f"error: edge device {args.device!r} is not available yet", file=sys.stderr)
    return EXIT_USAGE


def _pacer(args: argparse.Namespace) -> Pacer | None:
    """The shared playback clock of --speed, --pace-origin and --pace-start (None without)."""
    if not args.speed:
        return None
    from vigil.hardware.pacing import Pacer

    origin = args.pace_origin
    start = args.pace_start
    return Pacer(args.speed, origin=origin, start_wall=start)


def _paced(args: argparse.Namespace, bus: Any) -> Any:
    """Put a pacer in front of an edge bus when --speed plays a file back in time."""
    pacer = _pacer(args)
    if pacer is None:
        return bus
    from vigil.hardware.pacing import PacedBus

    return PacedBus(bus, pacer)


def _edge_camera(args: argparse.Namespace, d: Deployment) -> int:
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
    start_time = args.start
    bus = _edge_bus(args, d.sector, args.client_id or f"edge-{tower}")
    try:
        counts = run_camera_edge(
            args.source, bus, d.sector, tower, tower_detector(d.site, tower),
            fps=args.fps, start_time=start_time, pacer=pacer,
        )  # fmt: skip
    except CameraSourceError as exc:
        raise CommandError(str(exc)) from None
    finally:
        close_bus(bus)
    print(
        f"{counts.frames} frames, {counts.detections} detections published from {tower}; "
        f"{counts.reconnects} reconnects, {counts.commands} commands received"
    )
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``edge`` to the top-level subcommands."""
    p = sub.add_parser(
        "edge",
        help="run a device adapter (camera, ugs, uas)",
        description=(
            "Read a device's output and publish wire messages: 'camera' reads a video file "
            "(or a CPTV thermal recording), "
            "RTSP URL or device through OpenCV, runs the tower's motion detector (--id TOWER "
            "from the deployment) and reconnects to a lost stream; 'ugs' reads the "
            "ground-sensor gateway's JSON lines (file, tcp://host:port, "
            "serial:///dev/ttyUSB0, or - for stdin); 'uas' reads MAVLink or an ArduPilot log "
            "(a tlog, a DataFlash .bin or .log, or udpin:0.0.0.0:14550). With --broker "
            "the messages go to MQTT (credentials from VIGIL_MQTT_USER/VIGIL_MQTT_PASSWORD), "
            "otherwise they are validated in process and counted."
        ),
    )
    p.add_argument("device", choices=("camera", "ugs", "uas"), help="which adapter")
    p.add_argument("source", help="where the device's output comes from")
    add_deployment(p)
    p.add_argument("--broker", metavar="HOST:PORT", type=broker_address, help="MQTT broker")
    p.add_argument("--id", help="device id (uas: the aircraft)")
    p.add_argument("--client-id", help="MQTT client id")
    p.add_argument(
        "--insecure", action="store_true", help="with --broker: connect without credentials"
    )
    p.add_argument(
        "--state-dir",
        type=output_dir,
        default=".vigil-edge",
        help="outbox folder (default .vigil-edge)",
    )
    p.add_argument("--follow", action="store_true", help="keep reading a live source")
    p.add_argument(
        "--fps", type=positive_float, help="camera: frame rate of a file (default: its own)"
    )
    p.add_argument(
        "--start", metavar="TIME", type=time_arg, help="camera: time of a file's first frame"
    )
    p.add_argument(
        "--speed",
        type=positive_float,
        help="play a file back in time: message seconds per wall second (default: flat out)",
    )
    p.add_argument(
        "--pace-origin", metavar="TIME", type=time_arg, help="with --speed: message time at start"
    )
    p.add_argument(
        "--pace-start",
        metavar="TIME",
        type=time_arg,
        help="with --speed: wall time of the origin (default now)",
    )
    p.set_defaults(func=cmd_edge)
