"""``vigil alerts``: an agent's alert console on the sector's broker."""

from __future__ import annotations

import argparse
import sys

from vigil.cli.arguments import (
    add_broker,
    add_deployment,
    positive_float,
)
from vigil.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    deployment_credential_names,
    load_deployment,
    require_credentials,
)


def cmd_alerts(args: argparse.Namespace) -> int:
    """An agent's console: show a unit's alerts as they arrive; acknowledge, assign, close."""
    from vigil.cli.connection import ConnectionWatch
    from vigil.console import HELP, AlertConsole, run_console
    from vigil.ingest.mqtt import MqttBus
    from vigil.ingest.mqtt_link import instance_client_id
    from vigil.ingest.sources import bus_identity
    from vigil.service import mqtt_settings

    d = load_deployment(args.deployment)
    units = [u.id for u in d.config.units]
    if not args.all and args.unit not in units:
        print(f"error: --unit {args.unit!r}: expected one of {units} (or --all)", file=sys.stderr)
        return EXIT_USAGE
    # a session of its own per console, kept minutes: two consoles of a unit must coexist
    settings = mqtt_settings(d, args.broker, session_expiry_s=300)
    require_credentials(settings, args.insecure, deployment_credential_names(d))
    who = args.unit or "all"
    client_id = args.client_id or instance_client_id(d.sector, f"console-{who}")
    bus = MqttBus(d.sector, settings, client_id, publish_quarantine=False)
    # actions go on the console's own broker identity's topic, by "{unit}@{identity}"
    console = AlertConsole(
        d.sector,
        args.unit or "console",
        bus,
        show_all=args.all,
        timezone=d.config.sector.timezone,
        identity=bus_identity(bus),
    )
    # the connection's state is said as it changes: without a broker the console must not
    # look like a quiet sector; the console opens once connected, or after --connect-timeout
    # and goes on trying
    watch = ConnectionWatch(bus, console.say, notice_s=args.notice).start()
    try:
        bus.connect(args.connect_timeout)
        watch.check()
    except ConnectionError:
        console.say(f"opening the console unconnected after {args.connect_timeout:g} s; "
                    "alerts will show once the broker is reached")  # fmt: skip
    console.say(f"alerts of sector {d.sector} for {'every unit' if args.all else args.unit}")
    console.say(HELP)
    try:
        run_console(console)
    except KeyboardInterrupt:
        pass
    finally:
        watch.stop()
        console.close()
        bus.flush(10.0)
        bus.close()
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``alerts`` to the top-level subcommands."""
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
    add_deployment(p)
    add_broker(p)
    p.add_argument("--client-id", help="MQTT client id (default vigil-SECTOR-console-UNIT-RANDOM)")
    p.add_argument(
        "--insecure", action="store_true", help="connect without broker credentials (warns)"
    )
    p.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=30.0,
        help="seconds to wait for the broker before opening the console (default 30)",
    )
    p.add_argument(
        "--notice",
        type=positive_float,
        default=5.0,
        help="seconds between 'not connected yet' notices (default 5)",
    )
    p.set_defaults(func=cmd_alerts)
