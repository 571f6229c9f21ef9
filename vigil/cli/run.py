"""``vigil run``: the sector service on an MQTT broker, until stopped."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.cli.arguments import (
    add_broker,
    add_deployment,
    existing_file,
    nonnegative_float,
    output_dir,
    positive_float,
)
from vigil.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Subparsers,
    deployment_credential_names,
    load_deployment,
    require_credentials,
)

if TYPE_CHECKING:
    from vigil.alerts.channels import DispatchChannel
    from vigil.config import Deployment
    from vigil.geo.image_side import SideGeometry
    from vigil.tracks.config import TrackerConfig


def cmd_run(args: argparse.Namespace) -> int:
    """Run the sector service until SIGTERM, SIGINT or --seconds."""
    import signal
    import threading
    import time

    from vigil.geo.crossing_monitor import side_probability_for
    from vigil.service import SectorService, mqtt_settings, service_client_id

    d = load_deployment(args.deployment)
    for warning in d.warnings:
        print(f"warning: {d.path}: {warning}", file=sys.stderr, flush=True)
    limits = d.service
    settings = mqtt_settings(d, args.broker, max_payload_bytes=limits.max_payload_bytes)
    require_credentials(settings, args.insecure, deployment_credential_names(d))
    state = Path(args.state_dir or f".vigil-{d.sector}")
    client_id = args.client_id or service_client_id(d)
    channels = cot_channels(args, d)
    service = SectorService(
        d.site,
        settings,
        state,
        hold_s=limits.hold_s if args.hold is None else args.hold,
        tick_s=limits.tick_s,
        idle_s=limits.idle_s if args.idle is None else args.idle,
        client_id=client_id,
        tracker=tracker_for(d),
        rules=d.rules,
        journal_synchronous=limits.journal_synchronous,
        channels=channels,
        snapshot_every=limits.snapshot_every,
        snapshot_s=limits.snapshot_s,
        snapshot_keep=limits.snapshot_keep,
        journal_keep=limits.journal_keep,
        side_probability=side_probability_for(d.config.terrain),
    )
    service.side_geometries = side_geometries(d)  # relief: sides judged in the images too
    service.crossing_inference = d.config.crossings.inference()  # [crossings] infer
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        try:
            timeout = limits.connect_timeout_s
            r = service.start(timeout if args.connect_timeout is None else args.connect_timeout)
        except ConnectionError as exc:
            r = service.report
            print(f"warning: {exc}; still trying", file=sys.stderr, flush=True)
        print(
            f"sector {d.sector}: replayed {r.replayed} journaled messages in {r.replay_s:.2f} s "
            f"({r.outputs_skipped} outputs already sent); serving {settings.host}:{settings.port}, "
            f"state in {state.resolve()}",
            flush=True,
        )
        for channel in channels:
            print(f"alerts also go out as Cursor-on-Target to {channel.url}", flush=True)
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


def side_geometries(d: Deployment) -> dict[str, SideGeometry]:
    """Each tower's geometry for judging its detections' sides in its image (issue 21,
    :meth:`vigil.core.SectorCore.use_image_side`): the camera its detector places detections
    with on the deployment's ``[terrain]`` (pointing calibration applied, :mod:`vigil.edge`),
    the DEM and the pointing's standard errors. Empty on flat ground (no DEM, no image side).

    Raises
    ------
    vigil.geo.dem.TerrainError
        A DEM or pointing file that cannot be read or placed.
    """
    from vigil.detection.terrain import TerrainGeometry
    from vigil.edge import deployment_detector
    from vigil.geo.image_side import SideGeometry

    terrain = d.config.terrain
    if terrain.dem is None and terrain.synthetic is None:
        return {}
    out = {}
    for tower in d.site.towers:
        det = deployment_detector(d, tower.id)
        geometry = det._geometry(det.base.width, det.base.height)
        if isinstance(geometry, TerrainGeometry):
            out[tower.id] = SideGeometry.of(geometry)
    return out


def tracker_for(d: Deployment) -> TrackerConfig:
    """The tracker ``vigil run`` runs: ``[tracker]``, with the relief's changes on relief
    (:meth:`Deployment.tracker_config_on_ground`, as ``vigil demo --relief`` runs)."""
    return d.tracker_config_on_ground()


def cot_url(text: str) -> str:
    """``--cot``: a CoT URL (``tcp://HOST:PORT``, ``udp://``, ``udp+wo://``, ``tls://``)."""
    from vigil.alerts.channels import check_cot_url

    try:
        return check_cot_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cot_channels(args: argparse.Namespace, d: Deployment) -> list[DispatchChannel]:
    """The CoT dispatch channels: the deployment's ``[cot]`` section (none unless enabled), or
    ``--cot URL`` (with ``--cot-cert``/``--cot-key``/``--cot-ca`` for tls://), which overrides
    the section's destination and TLS files and sends whether or not it is enabled; stale
    times, track classes and the uid prefix still come from the section."""
    import msgspec

    from vigil.alerts.channels import CotChannel, cot_channels_from

    settings = d.config.cot
    if not args.cot:
        if args.cot_cert or args.cot_key or args.cot_ca:
            raise CommandError(
                "--cot-cert, --cot-key and --cot-ca need --cot tls://HOST:PORT", EXIT_USAGE
            )
        if args.cot_tracks and settings.enabled:
            settings = msgspec.structs.replace(settings, tracks=True)
        try:
            return cot_channels_from(settings, d.sector, d.path.parent)
        except ValueError as exc:
            raise CommandError(f"{d.path}: {exc}", EXIT_USAGE) from None
    tls: dict[str, str] = {}
    if args.cot.startswith("tls:"):
        if not args.cot_cert:
            raise CommandError(f"--cot {args.cot}: tls:// needs --cot-cert FILE", EXIT_USAGE)
        if not args.cot_key and not args.cot_cert.endswith(".p12"):
            raise CommandError(
                f"--cot {args.cot}: a PEM --cot-cert needs --cot-key FILE", EXIT_USAGE
            )
        tls["PYTAK_TLS_CLIENT_CERT"] = args.cot_cert
        if args.cot_key:
            tls["PYTAK_TLS_CLIENT_KEY"] = args.cot_key
        if args.cot_ca:
            tls["PYTAK_TLS_CLIENT_CAFILE"] = args.cot_ca
    elif args.cot_cert or args.cot_key or args.cot_ca:
        raise CommandError(
            f"--cot {args.cot}: --cot-cert/--cot-key/--cot-ca are for tls://", EXIT_USAGE
        )
    channel = CotChannel(
        args.cot,
        d.sector,
        tracks=args.cot_tracks or settings.tracks,
        tls=tls,
        reconnect_s=settings.reconnect_s,
        alert_stale_s=settings.alert_stale_s,
        track_stale_s=settings.track_stale_s,
        track_classes=settings.track_classes,
        uid_prefix=settings.uid_prefix,
    )
    return [channel]


def register(sub: Subparsers) -> None:
    """Add ``run`` to the top-level subcommands."""
    p = sub.add_parser(
        "run",
        help="run the sector service on an MQTT broker",
        description=(
            "The sector service: subscribe to the sector's detections, ground-sensor messages, "
            "telemetry and alert actions; journal each accepted message to SQLite before "
            "acknowledging it; order them by message time; track, detect crossings, alert; "
            "store; publish tracks, crossings, alerts and camera commands. Restarted after a "
            "crash it replays its journal and sends nothing twice. Stops on SIGTERM or Ctrl-C. "
            "Credentials come from the environment variables the deployment's [broker] names "
            "(username_env, password_env); without them it refuses to start unless --insecure. "
            "The output session logs in as USER-out with the same password. The tracker, "
            "alert rules, class model and service limits come from the deployment's "
            "[tracker], [alerts], [classes] and [service] (vigil config show prints them); "
            "--hold, --idle and --connect-timeout override the file."
        ),
    )
    add_deployment(p)
    add_broker(p)
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        type=output_dir,
        help="journal, outboxes, stores (.vigil-SECTOR)",
    )
    p.add_argument(
        "--hold",
        type=nonnegative_float,
        help="reorder hold, message s (default: the deployment's [service] hold_s)",
    )
    p.add_argument(
        "--idle",
        type=positive_float,
        help="idle clock after, wall s (default: the deployment's [service] idle_s)",
    )
    p.add_argument(
        "--client-id",
        help="MQTT client id of the persistent input session; keep it stable across restarts "
        "(default: the deployment's [broker] client_id, else vigil-SECTOR)",
    )
    p.add_argument(
        "--insecure", action="store_true", help="connect without broker credentials (warns)"
    )
    p.add_argument(
        "--connect-timeout",
        type=positive_float,
        help="seconds (default: the deployment's [service] connect_timeout_s)",
    )
    p.add_argument("--seconds", type=positive_float, help="stop after this long")
    cot = p.add_argument_group("Cursor-on-Target (TAK)")
    cot.add_argument(
        "--cot",
        metavar="URL",
        type=cot_url,
        help="also send alerts as CoT to a TAK server or client: tcp://HOST:PORT, "
        "udp://HOST:PORT, or tls://HOST:PORT with --cot-cert and --cot-key (overrides the "
        "deployment's [cot] host, port and files; without it, [cot] enabled = true sends)",
    )
    cot.add_argument(
        "--cot-tracks",
        action="store_true",
        help="send tracks too, typed by class (also: [cot] tracks = true)",
    )
    cot.add_argument("--cot-cert", metavar="FILE", type=existing_file, help="client cert (PEM)")
    cot.add_argument("--cot-key", metavar="FILE", type=existing_file, help="its key (PEM)")
    cot.add_argument("--cot-ca", metavar="FILE", type=existing_file, help="CA to trust (PEM)")
    p.set_defaults(func=cmd_run)
