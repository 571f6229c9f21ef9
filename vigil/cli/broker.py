"""``vigil broker init``: a hardened Mosquitto configuration written from the deployment."""

from __future__ import annotations

import argparse

from vigil.cli.arguments import add_deployment, output_dir, port, positive_int
from vigil.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Subparsers,
    load_deployment,
    missing_action,
)


def cmd_broker_init(args: argparse.Namespace) -> int:
    """Write mosquitto.conf, passwd, acl and per-identity credentials into a folder."""
    from vigil.broker import BrokerSetupError, write_broker_folder

    d = load_deployment(args.deployment)
    try:
        made = write_broker_folder(
            d,
            args.folder,
            host=args.host,
            port=args.port,
            tls=args.tls,
            maps=args.maps,
            max_packet_bytes=args.max_packet_kib * 1024,
            owner=args.owner,
        )
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except (BrokerSetupError, OSError) as exc:
        raise CommandError(str(exc)) from None
    by_role: dict[str, int] = {}
    for i in made.identities:
        by_role[i.role] = by_role.get(i.role, 0) + 1
    roles = ", ".join(f"{n} {role}" for role, n in by_role.items())
    print(f"broker folder {made.folder.resolve()} for sector {d.sector}: users {roles}")
    print(f"start it with: mosquitto -c {made.conf.resolve()}")
    print(
        f"credentials (mode 0600, one file per identity): {(made.folder / 'credentials').resolve()}"
    )
    if made.ca_file is not None:
        print(f"clients trust the test CA {made.ca_file.resolve()} ([broker] tls = true, ca_file)")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``broker`` and its actions to the top-level subcommands."""
    p = sub.add_parser(
        "broker",
        help="write a hardened Mosquitto configuration for a sector",
        description="Set up the sector's MQTT broker (Mosquitto) from the deployment.",
    )
    bsub = p.add_subparsers(dest="broker_command", metavar="ACTION")
    pi = bsub.add_parser(
        "init",
        help="write mosquitto.conf, password file, ACL and credentials",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Write a hardened Mosquitto configuration for the deployment's sector into FOLDER "
            "(every file 0600):\n\n"
            "  mosquitto.conf   one listener, anonymous refused, use_username_as_clientid\n"
            "                   (a client id is its user name, so no device can take the\n"
            "                   service's session), max_packet_size, persistence, TLS\n"
            "  passwd           one user per identity, hashed by mosquitto_passwd\n"
            "  acl              exact topics per identity: the service reads the inputs and\n"
            "                   writes tracks, crossings, alerts, commands; each map and each\n"
            "                   unit's agent reads what it shows and writes alert actions;\n"
            "                   each tower writes only its detections and reads its commands;\n"
            "                   each gateway writes only its sensors' events and status; each\n"
            "                   aircraft only its telemetry\n"
            "  credentials/USER.env  the deployment's [broker] username_env/password_env\n"
            "                   variables for that identity (random passwords, written nowhere\n"
            "                   else, never printed)\n\n"
            "Users: vigil-SECTOR (vigil run; its output session logs in as vigil-SECTOR-out\n"
            "with the same password), vigil-SECTOR-map-N (one per vigil serve instance:\n"
            "--maps), vigil-SECTOR-agent-UNIT (vigil alerts), cam-TOWER, ugs-GATEWAY,\n"
            "uas-AIRCRAFT (vigil edge). Run a process with its file's variables, e.g.\n"
            "  set -a; . FOLDER/credentials/vigil-tucson.env; set +a; vigil run\n"
            "Start the broker with: mosquitto -c FOLDER/mosquitto.conf (as root, give\n"
            "--owner mosquitto so the user Mosquitto drops to can read its files).\n"
            "--tls makes a throwaway CA and a server certificate, for a test set-up; use\n"
            "your own PKI in the field."
        ),
    )
    pi.add_argument(
        "folder", type=output_dir, help="where to write (refused if it already holds a passwd)"
    )
    add_deployment(pi)
    pi.add_argument("--host", default="127.0.0.1", help="listener address (default 127.0.0.1)")
    pi.add_argument("--port", type=port, default=1883, help="listener port (default 1883)")
    pi.add_argument("--tls", action="store_true", help="TLS listener with a generated test CA")
    pi.add_argument(
        "--maps",
        type=positive_int,
        default=1,
        help="vigil serve instances, one user each (default 1)",
    )
    pi.add_argument(
        "--max-packet-kib",
        type=positive_int,
        default=256,
        help="largest MQTT packet, KiB (default 256)",
    )
    pi.add_argument("--owner", metavar="USER", help="chown the broker's files to USER (as root)")
    pi.set_defaults(func=cmd_broker_init)
    p.set_defaults(func=lambda a: missing_action(p))
