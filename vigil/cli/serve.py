"""``vigil serve`` and ``vigil users``: the live map of a sector and the people who log in."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vigil.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Subparsers,
    load_deployment,
    missing_action,
)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the live map of a sector fed by its MQTT broker."""
    from vigil.ingest.mqtt import MqttBus, MqttSettings
    from vigil.maps.live.server import run_live

    d = load_deployment(args.deployment)
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
    p.set_defaults(func=lambda a: missing_action(p))
