"""``vigil serve`` and ``vigil users``: the live map of a sector and the people who log in
(the ``users`` actions live in :mod:`vigil.cli.users`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from vigil.cli import users
from vigil.cli.arguments import (
    add_broker,
    add_deployment,
    existing_file,
    output_file,
    port,
    positive_float,
)
from vigil.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Subparsers,
    load_deployment,
    require_credentials,
)

if TYPE_CHECKING:
    from vigil.ingest.mqtt import MqttBus

#: Seconds the broker keeps the session of a process that needs none across runs.
EPHEMERAL_SESSION_S = 300


def _connect(bus: MqttBus, timeout_s: float, waiting: str, hint: str) -> None:
    """Connect ``bus`` within ``timeout_s`` seconds, saying on stderr what it waits for
    (``waiting``) and how the connection goes; a failure is a one-line error ending in
    ``hint``."""
    from vigil.cli.connection import ConnectionWatch

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    say(waiting)
    watch = ConnectionWatch(bus, say).start()
    try:
        bus.connect(timeout_s)
        watch.check()
    except ConnectionError as exc:
        bus.close()
        raise CommandError(f"{exc}; {hint}") from None
    finally:
        watch.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the live map of a sector fed by its MQTT broker (or, with ``--sector``, the
    national view of several)."""
    if args.sector:
        return _serve_national(args)
    from vigil.ingest.mqtt import MqttBus
    from vigil.ingest.mqtt_link import instance_client_id
    from vigil.maps.live.coverage import live_relief
    from vigil.maps.live.server import run_live
    from vigil.service import mqtt_settings

    d = load_deployment(args.deployment)
    try:  # with [terrain] the towers' coverage is drawn on the relief (viewsheds)
        dem = live_relief(d.config.terrain, d.site, d.path.parent)
    except ValueError as exc:  # a DEM that cannot be read or placed
        raise CommandError(f"{d.path}: [terrain]: {exc}") from None
    b = d.config.broker
    # a session of its own per instance (two maps under one id knock each other off), kept
    # only minutes: the map needs no messages from before it started
    settings = mqtt_settings(d, args.broker, session_expiry_s=EPHEMERAL_SESSION_S)
    require_credentials(settings, args.insecure, (b.username_env, b.password_env))
    bus = MqttBus(d.sector, settings, args.client_id or instance_client_id(d.sector, "map"))

    # say what it waits for, and how that goes, rather than sit silent until the timeout
    _connect(
        bus, args.connect_timeout, f"sector {d.sector}: the live map serves once the sector's "
        "broker is reached", "give the broker with --broker HOST:PORT",
    )  # fmt: skip
    try:
        run_live(
            d.site,
            bus,
            args.host,
            args.port,
            users_path=args.users,
            audit_path=users.audit_path(args.users, args.audit),
            certfile=args.cert,
            keyfile=args.key,
            tiles_url=d.config.map.tiles_url,
            allowed_hosts=args.allowed_host,
            dem=dem,
        )
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        bus.close()
    return EXIT_OK


def _serve_national(args: argparse.Namespace) -> int:
    """``vigil serve --sector A.toml --sector B.toml``: the national view from one broker node."""
    from vigil.ingest.mqtt import MqttBus
    from vigil.ingest.mqtt_link import instance_client_id
    from vigil.maps.live.audit import AuditLog
    from vigil.maps.live.auth import UserStore
    from vigil.maps.live.coverage import live_relief
    from vigil.maps.live.guard import certificate_names
    from vigil.maps.live.national import NationalApp
    from vigil.maps.live.server import serve
    from vigil.service import mqtt_settings

    deployments = [load_deployment(path) for path in args.sector]
    names = [d.sector for d in deployments]
    if len(set(names)) != len(names):
        raise CommandError(f"--sector: sectors {names} are not distinct", EXIT_USAGE)
    dems = {}
    for d in deployments:
        try:
            dems[d.sector] = live_relief(d.config.terrain, d.site, d.path.parent)
        except ValueError as exc:
            raise CommandError(f"{d.path}: [terrain]: {exc}") from None
    first = deployments[0]
    b = first.config.broker
    tls = {"tls": True, "ca_file": args.national_ca} if args.national_ca else {}
    settings = mqtt_settings(first, args.broker, session_expiry_s=EPHEMERAL_SESSION_S, **tls)
    require_credentials(settings, args.insecure, (b.username_env, b.password_env))
    # one connection for every sector; it reports nothing to a sector's quarantine topic
    bus = MqttBus(
        "national",
        settings,
        args.client_id or instance_client_id("national", "map"),
        publish_quarantine=False,
    )

    _connect(
        bus, args.connect_timeout, f"sectors {', '.join(names)}: the national view serves once "
        "the broker is reached", "give the national node with --broker HOST:PORT",
    )  # fmt: skip
    users_store = UserStore(args.users)
    if not users_store.users():
        bus.close()
        raise CommandError(
            f"no users in {args.users}; add one first: vigil users add NAME --role commander",
            EXIT_USAGE,
        )
    audit = AuditLog(users.audit_path(args.users, args.audit))
    app = NationalApp(
        [d.site for d in deployments],
        bus,
        users_store,
        audit,
        dems=dems,
        tiles_url=first.config.map.tiles_url,
        allowed_hosts=[args.host, *certificate_names(args.cert), *args.allowed_host],
    )
    try:
        serve(app, args.host, args.port, args.cert, args.key)
    finally:
        app.close()
        audit.close()
        users_store.close()
        bus.close()
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``serve`` and ``users`` (with its actions) to the top-level subcommands."""
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
    add_deployment(p)
    add_broker(p)
    p.add_argument(
        "--connect-timeout", type=positive_float, default=30.0, help="seconds (default 30)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8080, help="port (default 8080)")
    p.add_argument(
        "--users",
        type=output_file,
        default="vigil-users.sqlite",
        help="users file (vigil users add)",
    )
    p.add_argument(
        "--audit",
        type=output_file,
        default=None,
        help="audit log (SQLite; default vigil-audit.sqlite beside --users)",
    )
    p.add_argument("--cert", metavar="PEM", type=existing_file, help="TLS certificate")
    p.add_argument("--key", metavar="PEM", type=existing_file, help="TLS private key")
    p.add_argument("--client-id", help="MQTT client id (default vigil-SECTOR-map-RANDOM)")
    p.add_argument(
        "--insecure", action="store_true", help="connect without broker credentials (warns)"
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help=(
            "a host name browsers use to reach the map (repeatable); besides it the server "
            "answers only to local names, its address and its certificate's names"
        ),
    )
    p.add_argument(
        "--sector",
        action="append",
        metavar="DEPLOYMENT",
        type=existing_file,
        help=(
            "serve the national view: every sector named (repeatable; a deployment file each) "
            "from one broker node (--broker; see vigil broker national), with an overview of "
            "open alerts per sector at / and each sector's map at /s/SECTOR/"
        ),
    )
    p.add_argument(
        "--national-ca",
        metavar="PEM",
        type=existing_file,
        help="with --sector: reach the node over TLS, trusting this CA (vigil broker national "
        "--tls wrote FOLDER/ca.crt)",
    )
    p.set_defaults(func=cmd_serve)

    users.register(sub)
