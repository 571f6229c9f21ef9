"""``vigil serve`` and ``vigil users``: the live map of a sector and the people who log in
(the ``users`` actions live in :mod:`vigil.cli.users`)."""

from __future__ import annotations

import argparse
import sys

from vigil.cli import users
from vigil.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Subparsers,
    load_deployment,
    require_credentials,
)

#: Seconds the broker keeps the session of a process that needs none across runs.
EPHEMERAL_SESSION_S = 300


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the live map of a sector fed by its MQTT broker."""
    from vigil.ingest.mqtt import MqttBus, MqttSettings
    from vigil.ingest.mqtt_link import instance_client_id
    from vigil.maps.live.server import run_live

    d = load_deployment(args.deployment)
    b = d.config.broker
    user, password = b.credentials()
    # a session of its own per instance (two maps under one id knock each other off), kept
    # only minutes: the map needs no messages from before it started
    settings = MqttSettings(
        host=b.host, port=b.port, tls=b.tls, ca_file=b.ca_file, username=user, password=password,
        session_expiry_s=EPHEMERAL_SESSION_S,
    )  # fmt: skip
    require_credentials(settings, args.insecure, (b.username_env, b.password_env))
    bus = MqttBus(d.sector, settings, args.client_id or instance_client_id(d.sector, "map"))
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
            allowed_hosts=args.allowed_host,
        )
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
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
    p.add_argument("--deployment", metavar="FILE", help="deployment TOML (default: the demo's)")
    p.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--users", default="vigil-users.sqlite", help="users file (vigil users add)")
    p.add_argument("--audit", default="vigil-audit.sqlite", help="audit log (SQLite)")
    p.add_argument("--cert", metavar="PEM", help="TLS certificate")
    p.add_argument("--key", metavar="PEM", help="TLS private key")
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
    p.set_defaults(func=cmd_serve)

    users.register(sub)
