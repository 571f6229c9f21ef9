"""What every command group of the ``vigil`` command line shares: exit statuses, the error
that ends a command, loading the deployment, reading times and broker addresses.

Nothing heavy is imported here: each helper imports what it needs when called, so that
``vigil --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vigil.config import Deployment
    from vigil.ingest.mqtt import MqttSettings

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DATA = 3

Command = Callable[[argparse.Namespace], int]
Subparsers = argparse._SubParsersAction  # what ``add_subparsers`` returns: each group adds to it


class CommandError(Exception):
    """A command that cannot go on: the message is printed and the status returned."""

    def __init__(self, message: str, status: int = EXIT_DATA) -> None:
        super().__init__(message)
        self.status = status


def load_deployment(path: str | None) -> Deployment:
    """Load a deployment file (or the demo's); a bad file ends the command with its error.

    Parameters
    ----------
    path
        The deployment TOML, or None (or empty) for the deployment shipped with the package.
    """
    from vigil.config import ConfigError, load, load_default

    try:
        return load(path) if path else load_default()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def parse_time(text: str) -> float:
    """A time given on the command line, as UTC seconds since the epoch.

    Parameters
    ----------
    text
        Epoch seconds, or ISO 8601 with ``Z`` or an offset.

    Raises
    ------
    ValueError
        Naming the text, when it is neither, or has no time zone.
    """
    import math
    from datetime import datetime

    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"time {text!r}: expected a finite number of epoch seconds")
        return value
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"time {text!r}: expected ISO 8601 with a zone (2026-06-01T02:00:00Z, "
            "2026-06-01T02:00-07:00) or epoch seconds"
        ) from None
    if dt.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone; add Z or an offset")
    return dt.timestamp()


def broker_settings(address: str, **options: Any) -> MqttSettings:
    """MQTT settings for a ``HOST:PORT`` given on the command line, credentials from the
    environment (VIGIL_MQTT_USER, VIGIL_MQTT_PASSWORD).

    Parameters
    ----------
    address
        ``HOST:PORT``; an empty host is 127.0.0.1 and a missing port 1883.
    options
        Further ``MqttSettings`` fields.
    """
    from vigil.ingest.mqtt import MqttSettings

    host, _, port = address.partition(":")
    return MqttSettings.from_env(host=host or "127.0.0.1", port=int(port or 1883), **options)


def require_credentials(
    settings: MqttSettings,
    insecure: bool,
    names: tuple[str | None, str | None] = ("VIGIL_MQTT_USER", "VIGIL_MQTT_PASSWORD"),
) -> None:
    """End the command (usage status) when the broker settings carry no user name and
    password, unless ``insecure``; with ``insecure`` and none, warn on stderr.

    Parameters
    ----------
    settings
        The broker settings the command would connect with.
    insecure
        The command's ``--insecure``: connect without credentials anyway.
    names
        The environment variables the credentials come from (the deployment's ``[broker]``
        ``username_env`` and ``password_env``), for the message.
    """
    if settings.username and settings.password:
        return
    user_env, password_env = names
    if user_env and password_env:
        where = f"set {user_env} and {password_env}"
    else:
        where = "name username_env and password_env in the deployment's [broker] and set them"
    if not insecure:
        raise CommandError(
            f"no broker credentials for {settings.host}:{settings.port}: {where} "
            "(vigil broker init writes them), or give --insecure to connect without",
            EXIT_USAGE,
        )
    print(
        f"warning: --insecure: connecting to {settings.host}:{settings.port} without "
        "credentials; any client on the network can do the same",
        file=sys.stderr,
        flush=True,
    )


def deployment_credential_names(deployment: Deployment) -> tuple[str | None, str | None]:
    """The environment variables a deployment's ``[broker]`` takes credentials from."""
    b = deployment.config.broker
    return b.username_env, b.password_env


def close_bus(bus: Any) -> None:
    """Flush what a bus still holds (up to 30 s), then close it."""
    flush = getattr(bus, "flush", None)
    if flush is not None:
        flush(30.0)
    bus.close()


def missing_action(parser: argparse.ArgumentParser) -> int:
    """A command group called without its action: its help on stderr, usage status."""
    parser.print_help(sys.stderr)
    return EXIT_USAGE
