"""``vigil record`` and ``vigil replay``: a sector's topics to a file and back to a broker."""

from __future__ import annotations

import argparse
from pathlib import Path

from vigil.cli.common import EXIT_OK, Subparsers, broker_settings, close_bus


def cmd_record(args: argparse.Namespace) -> int:
    """Record everything on a sector's topics from a broker."""
    from vigil.ingest.recording import record

    settings = broker_settings(args.broker)
    s = record(
        settings, args.sector, args.out, duration_s=args.seconds, max_messages=args.max_messages
    )
    print(f"recorded {s.messages} messages to {Path(args.out).resolve()}")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    """Publish a recording back to a broker with its original timing scaled."""
    import math

    from vigil.ingest.mqtt import MqttBus
    from vigil.ingest.recording import read_recording, replay

    settings = broker_settings(args.broker)
    first = next(iter(read_recording(args.file)), None)
    sector = args.sector or (first.topic.split("/")[2] if first is not None else "replay")
    bus = MqttBus(sector, settings, args.client_id).connect(30.0)
    try:
        s = replay(args.file, bus, math.inf if args.speed == 0 else args.speed)
    finally:
        close_bus(bus)
    print(f"replayed {s.published} messages from {args.file}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``record`` and ``replay`` to the top-level subcommands."""
    p = sub.add_parser(
        "record",
        help="record a sector's topics from a broker",
        description="Write everything on vigil/v1/{sector}/# to a recording file (JSON lines).",
    )
    p.add_argument("--sector", required=True)
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT")
    p.add_argument("--seconds", type=float, help="stop after this long")
    p.add_argument("--max-messages", type=int, help="stop after this many")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "replay",
        help="publish a recording back with its timing",
        description=(
            "Publish a recording to a broker with the original gaps divided by --speed "
            "(0: no waits)."
        ),
    )
    p.add_argument("file")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT")
    p.add_argument("--sector", help="sector (default: from the recording)")
    p.add_argument("--client-id", default="vigil-replay")
    p.set_defaults(func=cmd_replay)
