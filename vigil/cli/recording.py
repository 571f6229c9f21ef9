"""``vigil record`` and ``vigil replay``: a sector's topics to a file and back to a broker."""

from __future__ import annotations

import argparse
from pathlib import Path

from vigil.cli.arguments import (
    broker_address,
    existing_file,
    nonnegative_float,
    output_file,
    positive_float,
    positive_int,
)
from vigil.cli.common import (
    EXIT_OK,
    CommandError,
    Subparsers,
    broker_settings,
    close_bus,
    require_credentials,
)


def cmd_record(args: argparse.Namespace) -> int:
    """Record everything on a sector's topics from a broker; an existing file only with --force."""
    from vigil.ingest.record_replay import record

    settings = broker_settings(args.broker)
    require_credentials(settings, args.insecure)
    try:
        s = record(
            settings,
            args.sector,
            args.out,
            duration_s=args.seconds,
            max_messages=args.max_messages,
            overwrite=args.force,
        )
    except FileExistsError:
        raise CommandError(f"{args.out} exists; add --force to replace it") from None
    print(f"recorded {s.messages} messages to {Path(args.out).resolve()}")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    """Publish a recording back to a broker with its original timing scaled."""
    import math

    from vigil.ingest.mqtt import MqttBus
    from vigil.ingest.record_replay import replay
    from vigil.ingest.recording import RecordingError, read_header

    settings = broker_settings(args.broker)
    require_credentials(settings, args.insecure)
    try:
        header = read_header(args.file)
    except (OSError, RecordingError) as exc:
        raise CommandError(str(exc)) from None
    bus = MqttBus(args.sector or header.sector, settings, args.client_id).connect(30.0)
    try:
        s = replay(args.file, bus, math.inf if args.speed == 0 else args.speed)
    except RecordingError as exc:
        raise CommandError(str(exc)) from None
    finally:
        close_bus(bus)
    print(f"replayed {s.messages} messages from {args.file}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``record`` and ``replay`` to the top-level subcommands."""
    p = sub.add_parser(
        "record",
        help="record a sector's topics from a broker",
        description=(
            "Write everything on vigil/v1/{sector}/# to a recording file (gzip-compressed "
            "JSON lines); an existing file is refused unless --force."
        ),
    )
    p.add_argument("--sector", required=True)
    p.add_argument("--out", required=True, metavar="FILE", type=output_file)
    p.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT", type=broker_address)
    p.add_argument("--seconds", type=positive_float, help="stop after this long")
    p.add_argument("--max-messages", type=positive_int, help="stop after this many")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.add_argument(
        "--insecure", action="store_true", help="connect without broker credentials (warns)"
    )
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "replay",
        help="publish a recording back with its timing",
        description=(
            "Publish a recording to a broker with the original gaps divided by --speed "
            "(0: no waits)."
        ),
    )
    p.add_argument("file", type=existing_file)
    p.add_argument("--speed", type=nonnegative_float, default=1.0, help="0: no waits (default 1)")
    p.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT", type=broker_address)
    p.add_argument("--sector", help="sector (default: from the recording)")
    p.add_argument("--client-id", default="vigil-replay")
    p.add_argument(
        "--insecure", action="store_true", help="connect without broker credentials (warns)"
    )
    p.set_defaults(func=cmd_replay)
