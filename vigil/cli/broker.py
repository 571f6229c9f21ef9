"""``vigil broker init``: a hardened Mosquitto configuration written from the deployment."""

from __future__ import annotations

import argparse

from vigil.cli.arguments import (
    add_deployment,
    broker_address,
    existing_file,
    output_dir,
    port,
    positive_int,
)
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
    links = _bridge_links(args, d.sector)
    try:
        made = write_broker_folder(
            d,
            args.folder,
            host=args.host,
            port=args.port,
            tls=args.tls,
            maps=args.maps,
            max_packet_bytes=args.max_packet_kib * 1024,
            owner=None if links else args.owner,
        )
        if links:
            from vigil.bridge import add_bridges

            add_bridges(made.folder, d, links)
            if args.owner is not None:
                from vigil.broker import _chown_broker_files

                _chown_broker_files(made.folder, args.owner)
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
    for link in links:
        tls = "TLS" if link.ca_file else "plain TCP"
        print(f"bridge {link.name}: {link.host}:{link.port} as {link.username} ({tls}, QoS 1)")
    return EXIT_OK


def _bridge_links(args: argparse.Namespace, sector: str) -> list:
    """The :class:`~vigil.bridge.BridgeLink` of each ``--bridge``, with the credentials file's
    user and password."""
    from vigil.bridge import BridgeLink

    if not args.bridge:
        if args.bridge_credentials or args.bridge_ca:
            raise CommandError("--bridge-credentials and --bridge-ca need --bridge", EXIT_USAGE)
        return []
    if not args.bridge_credentials:
        raise CommandError(
            "--bridge needs --bridge-credentials FILE (vigil broker national wrote "
            f"credentials/bridge-{sector}.env)",
            EXIT_USAGE,
        )
    values = read_env_file(args.bridge_credentials)
    user, password = values.get("VIGIL_MQTT_USER"), values.get("VIGIL_MQTT_PASSWORD")
    if not user or not password:
        raise CommandError(
            f"{args.bridge_credentials}: expected VIGIL_MQTT_USER= and VIGIL_MQTT_PASSWORD= lines"
        )
    if user != f"bridge-{sector}":
        raise CommandError(
            f"{args.bridge_credentials} is for {user!r}; sector {sector!r} bridges as "
            f"'bridge-{sector}'"
        )
    links = []
    for n, address in enumerate(args.bridge, start=1):
        host, _, number = address.rpartition(":")
        links.append(
            BridgeLink(
                host or "127.0.0.1",
                int(number) if number else 1883,
                user,
                password,
                ca_file=args.bridge_ca,
                national_maps=args.national_maps,
                name=f"national-{n}",
            )
        )
    return links


def read_env_file(path: str) -> dict[str, str]:
    """``NAME=value`` lines of a credentials file (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(64 * 1024)
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: cannot be read: {exc}") from None
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            out[name.strip()] = value.strip()
    return out


def cmd_broker_national(args: argparse.Namespace) -> int:
    """Write the national nodes' folders for the sectors' bridges and the national maps."""
    from vigil.bridge import BrokerSetupError, write_national_folder

    sectors = list(args.sector or [])
    for path in args.deployment or []:
        sectors.append(load_deployment(path).sector)
    if len(sectors) < 1:
        raise CommandError("give the sectors: --sector NAME or --deployment FILE", EXIT_USAGE)
    nodes = []
    for address in args.node:
        host, _, number = address.rpartition(":")
        nodes.append((host or "127.0.0.1", int(number) if number else 1883))
    try:
        made = write_national_folder(
            sectors, args.folder, nodes=nodes, tls=args.tls, maps=args.maps, owner=args.owner
        )
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except (BrokerSetupError, OSError) as exc:
        raise CommandError(str(exc)) from None
    for node, (host, port_) in zip(made.nodes, nodes, strict=True):
        conf = (node / "mosquitto.conf").resolve()
        print(f"national node {node.resolve()} on {host}:{port_}: mosquitto -c {conf}")
    print(f"sectors {', '.join(sectors)}; credentials: {(made.folder / 'credentials').resolve()}")
    print(
        "bridge each sector: vigil broker init FOLDER --deployment D "
        + " ".join(f"--bridge {h}:{p}" for h, p in nodes)
        + " --bridge-credentials credentials/bridge-SECTOR.env"
        + (f" --bridge-ca {made.ca_file}" if made.ca_file else "")
    )
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
    pi.add_argument(
        "--bridge",
        action="append",
        type=broker_address,
        metavar="HOST:PORT",
        help="a national node to bridge to (repeatable: one bridge per node; see "
        "vigil broker national)",
    )
    pi.add_argument(
        "--bridge-credentials",
        metavar="FILE",
        type=existing_file,
        help="the national set's credentials/bridge-SECTOR.env",
    )
    pi.add_argument(
        "--bridge-ca",
        metavar="PEM",
        type=existing_file,
        help="the nodes' CA: the bridges speak TLS",
    )
    pi.add_argument(
        "--national-maps",
        type=positive_int,
        default=1,
        help="national vigil serve users whose alert actions come down (default 1)",
    )
    pi.set_defaults(func=cmd_broker_init)

    pn = bsub.add_parser(
        "national",
        help="write the national broker nodes that the sectors bridge to",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Write one Mosquitto folder per national node (FOLDER/node-N: mosquitto.conf,\n"
            "passwd, acl, persistence) and FOLDER/credentials: a bridge user per sector\n"
            "(bridge-SECTOR: writes only that sector's tracks, crossings, alerts, device\n"
            "messages and retained state; bridge-SECTOR-down, same password: reads only the\n"
            "national maps' actions for it) and\n"
            "national map users (vigil-national-map-N: read every sector, write only their\n"
            "own action topic). The nodes are independent; each sector bridges to every\n"
            "node (vigil broker init --bridge HOST:PORT ... --bridge-credentials FILE),\n"
            "so a node killed before its next save loses nothing the other has. See\n"
            "docs/scale.md."
        ),
    )
    pn.add_argument("folder", type=output_dir, help="where to write")
    pn.add_argument("--sector", action="append", metavar="NAME", help="a sector (repeatable)")
    pn.add_argument(
        "--deployment",
        action="append",
        metavar="FILE",
        type=existing_file,
        help="a sector's deployment (repeatable)",
    )
    pn.add_argument(
        "--node",
        action="append",
        type=broker_address,
        metavar="HOST:PORT",
        required=True,
        help="a national node's listener (repeatable; two or more for no loss on a crash)",
    )
    pn.add_argument("--tls", action="store_true", help="TLS listeners with a generated test CA")
    pn.add_argument(
        "--maps", type=positive_int, default=1, help="national vigil serve users (default 1)"
    )
    pn.add_argument("--owner", metavar="USER", help="chown the nodes' files to USER (as root)")
    pn.set_defaults(func=cmd_broker_national)
    p.set_defaults(func=lambda a: missing_action(p))
