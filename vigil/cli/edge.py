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


def _ptz_control(args: argparse.Namespace, d: Deployment, tower: str) -> Any:
    """The tower camera's ONVIF PTZ control: its ``[[cameras]]`` entry's ``[cameras.onvif]``
    and ``[cameras.ptz]``, with --onvif and --ptz-* winning (None when neither names one)."""
    from vigil.config import ConfigError
    from vigil.edge import onvif_camera
    from vigil.hardware.ptz import OnvifPtz
    from vigil.hardware.ptz_control import PtzControl

    try:
        cam = onvif_camera(
            d,
            tower,
            args.onvif,
            pan_zero_deg=args.ptz_pan_zero,
            pan_deg_per_unit=args.ptz_pan_per_unit,
            tilt_zero_deg=args.ptz_tilt_zero,
            tilt_deg_per_unit=args.ptz_tilt_per_unit,
            hfov_tele_deg=args.ptz_hfov_tele,
        )
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    if cam is None:
        return None
    client = OnvifPtz(cam.host, cam.port, cam.user, cam.password, profile=cam.profile)
    return PtzControl(client, cam.mapping)


class SensorChosen:
    """A tower's detector (:class:`vigil.edge.TowerDetector`) with its sensor kind chosen
    (issue 24): ``--sensor`` when it names one, else (``auto``) the first frame (grey or one
    channel: thermal, colour: daylight; :func:`vigil.detection.sensor_defaults.guess_sensor`),
    over the deployment's ``[detection] sensor``, with a warning on stderr where the two
    differ (``--sensor`` follows the deployment). The kind picks the deployment settings'
    defaults (``DetectionSettings.sensor``; the rest of the deployment's settings stay);
    camera health carries the settings in effect with ``sensor_from`` (``--sensor`` or
    ``frames``), and the choice is printed on stderr at the first frame."""

    def __init__(self, detect: Any, choice: str) -> None:
        self.detect = detect
        self.why: str | None = None
        self._base: dict[str, Any] | None = None
        self._out: dict[str, Any] = {}
        settings = detect.settings
        self.deployment_kind = settings.sensor if settings is not None else None
        if choice != "auto":
            self._use(choice, "--sensor")

    def _use(self, kind: str, why: str) -> None:
        from vigil.detection.settings import DetectionSettings

        base = self.detect.settings or DetectionSettings()
        self.detect.settings = DetectionSettings(sensor=kind).over(base)  # type: ignore[arg-type]
        self.detect.config = self.detect.settings.detector_config(thermal=self.detect.thermal)
        self.why = why

    def __call__(self, frame: Any, time_s: float, index: int) -> Any:
        if self.detect.detector is None:
            if self.why is None:
                from vigil.detection.sensor_defaults import guess_sensor

                kind, seen = guess_sensor([frame])
                if self.deployment_kind not in (None, kind):
                    print(f"warning: the deployment says sensor = {self.deployment_kind!r} but "
                          f"the camera gives {seen}: running as {kind} (--sensor "
                          f"{self.deployment_kind} follows the deployment)",
                          file=sys.stderr)  # fmt: skip
                self._use(kind, "frames")
            s = self.detection_settings()
            rest = " ".join(f"{k}={v}" for k, v in s.items() if k not in ("sensor", "sensor_from"))
            print(f"sensor {s['sensor']} ({s['sensor_from']}): {rest}", file=sys.stderr)
        return self.detect(frame, time_s, index)

    def repoint(self, pointing: Any) -> None:
        self.detect.repoint(pointing)

    def detection_settings(self) -> dict[str, Any]:
        """The tower detector's settings in effect with ``sensor_from`` (the same object
        until they change)."""
        base = self.detect.detection_settings()
        if base is not self._base:
            self._base, self._out = base, {**base, "sensor_from": self.why or "tower"}
        return self._out


def _edge_camera(args: argparse.Namespace, d: Deployment) -> int:
    """``vigil edge camera SOURCE --id TOWER``: capture, detect, publish; with --onvif, steer."""
    import signal
    import threading

    from vigil.edge import deployment_detector
    from vigil.hardware.camera import CameraSourceError, run_camera_edge
    from vigil.hardware.camera_health import HealthSettings
    from vigil.hardware.ptz import PtzError

    towers = [t.id for t in d.config.towers]
    tower = args.id or (towers[0] if len(towers) == 1 else None)
    if tower not in towers:
        print(f"error: --id {tower!r}: expected one of the deployment's towers {towers}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    ptz = _ptz_control(args, d, tower)
    if args.source == "onvif" and ptz is None:
        print("error: source 'onvif' (the camera's own RTSP address) needs --onvif HOST:PORT "
              f"or [cameras.onvif] for {tower} in the deployment", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    source = args.source
    if ptz is not None and source == "onvif":
        try:
            source = ptz.client.stream_uri()
        except PtzError as exc:
            ptz.client.close()
            where = f"{ptz.client.host}:{ptz.client.port}"
            raise CommandError(f"ONVIF camera {where}: {exc}") from None
    # the deployment's [detection] with the tower's [[cameras]] override, and its [terrain]
    try:
        detect = SensorChosen(deployment_detector(d, tower), args.sensor)
    except ValueError as exc:  # a DEM or pointing file that cannot be read or placed
        if ptz is not None:
            ptz.client.close()
        raise CommandError(f"{d.path}: [terrain]: {exc}") from None
    pacer = _pacer(args)
    start_time = args.start
    bus = _edge_bus(args, d.sector, args.client_id or f"edge-{tower}")
    # SIGINT or SIGTERM ends a live camera after its frame (or wait): counts are printed
    stop = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set())
        for sig in ((signal.SIGINT, signal.SIGTERM) if main_thread else ())
    }
    try:
        health = HealthSettings(
            dropped_after_s=args.dropped_after, frozen_after_s=args.frozen_after
        )
        counts = run_camera_edge(
            source, bus, d.sector, tower, detect,
            fps=args.fps, start_time=start_time, pacer=pacer,
            ptz=ptz, repoint=detect.repoint, health=health, stop=stop,
            detection=detect.detection_settings,
        )  # fmt: skip
    except CameraSourceError as exc:
        raise CommandError(str(exc)) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        close_bus(bus)
    print(
        f"{counts.frames} frames, {counts.detections} detections published from {tower}; "
        f"{counts.reconnects} reconnects, {counts.commands} commands received "
        f"({counts.commands_carried} carried out, {counts.commands_refused} refused), "
        f"{counts.pointing_changes} pointing changes; camera health reports "
        f"{dict(counts.health)}"
    )
    if ptz is not None:
        c = ptz.counts
        print(
            f"PTZ: {c.moves} moves ({c.move_failures} failed), {c.polls} status polls "
            f"({c.poll_failures} failed, {c.status_refused} refused), {c.reconnects} reconnects"
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
            "RTSP URL or device through OpenCV's FFmpeg backend, runs the tower's motion "
            "detector (--id TOWER from the deployment), reconnects to a lost stream with "
            "backoff and reports a dropped or frozen one as camera health; with --onvif it "
            "turns the camera on the service's camera commands and places detections with the "
            "pointing the camera reports; 'ugs' reads the "
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
    p.add_argument(
        "--id", "--camera", dest="id", help="device id (camera: the tower; uas: the aircraft)"
    )
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
        "--sensor",
        choices=("thermal", "daylight", "auto"),
        default="auto",
        help="camera: sensor kind whose detection defaults to use (default auto: from the "
        "first frame, grey is thermal, colour daylight, over the deployment's [detection] "
        "sensor, with a warning where they differ); in camera health as sensor, sensor_from",
    )
    p.add_argument(
        "--onvif",
        metavar="HOST:PORT",
        type=broker_address,
        help="camera: steer it over ONVIF PTZ (over the tower's [cameras.onvif]; credentials "
        "where that names them, else VIGIL_ONVIF_USER and VIGIL_ONVIF_PASSWORD); SOURCE "
        "'onvif' reads the RTSP address the camera gives",
    )
    p.add_argument(
        "--ptz-pan-zero",
        type=float,
        metavar="DEG",
        help="azimuth at ONVIF pan 0 (default: [cameras.ptz], else the tower's pan_deg)",
    )
    p.add_argument(
        "--ptz-pan-per-unit",
        type=positive_float,
        metavar="DEG",
        help="degrees per unit of ONVIF pan (default: [cameras.ptz], else 180: -1..1 is the "
        "full circle)",
    )
    p.add_argument(
        "--ptz-tilt-zero",
        type=float,
        metavar="DEG",
        help="tilt below horizontal at ONVIF tilt 0 (default: [cameras.ptz], else the tower's "
        "tilt_deg)",
    )
    p.add_argument(
        "--ptz-tilt-per-unit",
        type=positive_float,
        metavar="DEG",
        help="degrees per unit of ONVIF tilt, which grows upward (default: [cameras.ptz], else 45)",
    )
    p.add_argument(
        "--ptz-hfov-tele",
        type=positive_float,
        metavar="DEG",
        help="horizontal field of view at full zoom (default: [cameras.ptz], else the tower's "
        "hfov_deg, no zoom)",
    )
    p.add_argument(
        "--dropped-after",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="live camera: report it offline after this long without a frame (default 5)",
    )
    p.add_argument(
        "--frozen-after",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="live camera: report it degraded after this long on one picture (default 10)",
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
