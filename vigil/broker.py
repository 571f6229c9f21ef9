"""A hardened Mosquitto set-up written from a deployment (``vigil broker init``).

What the folder holds, every file mode 0600 (folders 0700):

- ``mosquitto.conf``: one listener; anonymous clients refused; ``password_file`` and
  ``acl_file``; ``use_username_as_clientid true``, so that a client's id *is* its user name:
  nobody can connect under another identity's client id without its password, so no device
  can take over (and knock off) the sector service's persistent session; ``max_packet_size``;
  persistence; optionally TLS.
- ``passwd``: one user per identity, hashed by ``mosquitto_passwd`` (PBKDF2-SHA512).
- ``acl``: per identity, exact topics (see :func:`identities`); whatever is not granted is
  refused (Mosquitto answers a refused QoS 1 publication with "Not authorized").
- ``credentials/{user}.env``: ``NAME=value`` lines with the environment variables the
  deployment's ``[broker]`` names, for the process (or device) of that identity. Passwords are
  random (192 bits) and written nowhere else.
- with TLS: ``ca.crt``/``ca.key`` (a throwaway CA for a test set-up) and ``server.crt``/
  ``server.key`` for the listener's address.

Because the client id is the user name, each *connection* needs its own user: the sector
service has two (``vigil-{sector}`` for its persistent input session and
``vigil-{sector}-out`` for its output session, the same password; see
:func:`output_username`), and each ``vigil serve`` instance its own map user
(``vigil-{sector}-map-{n}``, ``--maps N``): two instances sharing one user would knock each
other off the broker.

Many sectors: :mod:`vigil.bridge` (``vigil broker national``, ``vigil broker init --bridge``)
bridges a sector's broker written here to national Mosquitto nodes.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.service import output_username, service_client_id

#: Largest MQTT packet the broker takes, bytes (the whole packet, not just the payload).
MAX_PACKET_BYTES = 256 * 1024
#: Messages queued per offline persistent session before the broker drops (and logs) more.
MAX_QUEUED_MESSAGES = 1_000_000
#: Seconds between the broker's saves of its state; below the publishers' replay window (5 s).
AUTOSAVE_INTERVAL_S = 2
DEFAULT_USER_ENV = "VIGIL_MQTT_USER"
DEFAULT_PASSWORD_ENV = "VIGIL_MQTT_PASSWORD"


class BrokerSetupError(RuntimeError):
    """The broker folder cannot be written (a tool is missing, the folder is not empty, ...)."""


@dataclass(frozen=True)
class Identity:
    """One broker user: who it is, and the topics it may read and write (exact filters).

    Attributes
    ----------
    user
        The user name (with ``use_username_as_clientid``, also its client id).
    role
        ``service``, ``map``, ``agent``, ``tower``, ``gateway`` or ``aircraft``.
    read, write
        MQTT topic filters it may subscribe to and publish on.
    password_of
        Another identity's user whose password this one shares (the service's output user).
    """

    user: str
    role: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    password_of: str | None = None


def _gateways(deployment: Any) -> list[tuple[str, list[str]]]:
    """(speaker id, the sensors it speaks for): each ``[[gateways]]`` entry with its sensors,
    then each sensor no gateway lists, speaking for itself only."""
    cfg = deployment.config
    out: list[tuple[str, list[str]]] = []
    bound: set[str] = set()
    for g in getattr(cfg, "gateways", None) or []:
        out.append((g.id, list(g.sensors)))
        bound.update(g.sensors)
    out += [(s.id, [s.id]) for s in cfg.sensors if s.id not in bound]
    return out


def identities(deployment: Any, *, maps: int = 1) -> list[Identity]:
    """Every broker user of a sector and its exact topics.

    - the service (input and output users): reads the inputs (``cam/+/detections``,
      ``cam/+/status``, ``ugs/+/events``, ``ugs/+/status``, ``uas/+/telemetry``,
      ``alerts/actions/+``), writes ``tracks``, ``crossings``, ``alerts``,
      ``cam/+/commands``, ``quarantine`` and the retained ``state/alerts/+`` and
      ``state/sensors/+`` (ground sensors' and cameras' health);
    - each map (``maps`` of them): reads what the map draws, writes
      ``alerts/actions/{its user}``;
    - each patrol unit's agent: reads ``alerts`` and ``state/alerts/+``, writes
      ``alerts/actions/{its user}``;

    An identity writes alert actions only on its own topic, and receivers accept an action only
    when its ``by`` names that topic's user (:func:`vigil.ingest.sources.check_source`): nobody
    acts in another's name.
    - each tower: writes ``cam/{id}/detections`` and its camera's health on
      ``cam/{id}/status``, reads ``cam/{id}/commands``;
    - each ground-sensor gateway: writes ``ugs/{sensor}/events`` and ``/status`` for the
      sensors the deployment binds to it, and ``ugs/{gateway}/...``; a sensor no gateway
      lists gets a user of its own for its own topics;
    - each aircraft: writes ``uas/{id}/telemetry``.
    """
    if maps < 0:
        raise ValueError(f"maps = {maps!r}: expected a count >= 0")
    s = deployment.sector
    base = f"vigil/v1/{s}"

    def t(*levels: str) -> tuple[str, ...]:
        return tuple(f"{base}/{level}" for level in levels)

    inputs = ("cam/+/detections", "ugs/+/events", "ugs/+/status", "uas/+/telemetry")
    # state/...: the retained open alerts and sensor states (vigil.retained)
    outputs = (
        "tracks",
        "crossings",
        "alerts",
        "cam/+/commands",
        "state/alerts/+",
        "state/sensors/+",
    )
    service = service_client_id(deployment)
    out: list[Identity] = [
        Identity(
            service,
            "service",
            t(*inputs, "cam/+/status", "alerts/actions/+"),
            t(*outputs, "quarantine"),
        ),
        Identity(
            output_username(service),
            "service",
            t(*inputs, "cam/+/status", "alerts/actions/+"),
            t(*outputs, "quarantine"),
            password_of=service,
        ),
    ]
    drawn = t(*inputs, *outputs, "alerts/actions/+", "quarantine")
    for n in range(1, maps + 1):
        user = f"vigil-{s}-map-{n}"
        out.append(Identity(user, "map", drawn, t(f"alerts/actions/{user}")))
    for unit in deployment.config.units:
        user = f"vigil-{s}-agent-{unit.id}"
        out.append(
            Identity(user, "agent", t("alerts", "state/alerts/+"), t(f"alerts/actions/{user}"))
        )
    for tower in deployment.config.towers:
        out.append(
            Identity(
                f"cam-{tower.id}",
                "tower",
                t(f"cam/{tower.id}/commands"),
                t(f"cam/{tower.id}/detections", f"cam/{tower.id}/status"),
            )
        )
    for gateway, sensors in _gateways(deployment):
        # each of its sensors' topics, and its own (where it reports for them together)
        speaks = dict.fromkeys([*sensors, gateway])
        topics = [f"ugs/{sensor}/{kind}" for sensor in speaks for kind in ("events", "status")]
        out.append(Identity(f"ugs-{gateway}", "gateway", (), t(*topics)))
    for aircraft in deployment.config.aircraft:
        out.append(
            Identity(f"uas-{aircraft.id}", "aircraft", (), t(f"uas/{aircraft.id}/telemetry"))
        )
    users = [i.user for i in out]
    dup = sorted({u for u in users if users.count(u) > 1})
    if dup:
        raise BrokerSetupError(f"broker user names {dup} are used twice; rename the devices")
    return out


def acl_text(sector: str, ids: list[Identity]) -> str:
    """Mosquitto's ACL file: a ``user`` block per identity with its exact topics."""
    lines = [
        f"# Vigil sector {sector}: written by `vigil broker init`. Whatever is not granted here",
        "# is refused. Each block names one user; with use_username_as_clientid that is also",
        "# the client id.",
    ]
    for i in ids:
        lines += ["", f"# {i.role}", f"user {i.user}"]
        both = set(i.read) & set(i.write)
        lines += [f"topic readwrite {p}" for p in i.read if p in both]
        lines += [f"topic read {p}" for p in i.read if p not in both]
        lines += [f"topic write {p}" for p in i.write if p not in both]
    return "\n".join(lines) + "\n"


def mosquitto_conf(
    folder: Path,
    *,
    host: str,
    port: int,
    tls: bool,
    max_packet_bytes: int = MAX_PACKET_BYTES,
    max_queued_messages: int = MAX_QUEUED_MESSAGES,
) -> str:
    """The text of ``mosquitto.conf`` for a broker folder (absolute paths into ``folder``)."""
    d = folder.resolve()
    lines = [
        "# Vigil: written by `vigil broker init`; see `vigil broker init --help`.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {d / 'passwd'}",
        f"acl_file {d / 'acl'}",
        "allow_zero_length_clientid false",
        # the whole MQTT packet; a larger one disconnects its sender
        f"max_packet_size {max_packet_bytes}",
        # the service keeps the open alerts and device health retained (vigil.retained); a
        # broker without retain disconnects a client that sends a retained message
        "retain_available true",
        "persistence true",
        f"persistence_location {d}/",
        "persistence_file mosquitto.db",
        f"autosave_interval {AUTOSAVE_INTERVAL_S}",
        # a bound rather than Mosquitto's default 1000, which drops a down service's input
        f"max_queued_messages {max_queued_messages}",
        "max_inflight_messages 0",
        f"log_dest file {d / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        f"listener {port} {host}",
    ]
    try:
        if ipaddress.ip_address(host).version == 4:
            lines.append("socket_domain ipv4")
    except ValueError:
        pass
    # a client's id is replaced by its user name: no one can take another's session
    lines.append("use_username_as_clientid true")
    if tls:
        lines += [
            f"cafile {d / 'ca.crt'}",
            f"certfile {d / 'server.crt'}",
            f"keyfile {d / 'server.key'}",
            "tls_version tlsv1.2",
        ]
    return "\n".join(lines) + "\n"


def _private_write(path: Path, text: str) -> None:
    """Write ``text`` to a new file created with mode 0600, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _hash_passwords(passwd: Path, users: dict[str, str]) -> None:
    """``passwd`` with each user's password hashed by ``mosquitto_passwd -U`` (no password on
    any command line)."""
    tool = shutil.which("mosquitto_passwd") or (
        "/usr/bin/mosquitto_passwd" if os.access("/usr/bin/mosquitto_passwd", os.X_OK) else None
    )
    if tool is None:
        raise BrokerSetupError("mosquitto_passwd not found; install Mosquitto (it ships it)")
    _private_write(passwd, "".join(f"{u}:{p}\n" for u, p in users.items()))
    done = subprocess.run([tool, "-U", str(passwd)], capture_output=True, text=True)
    if done.returncode != 0:
        passwd.unlink(missing_ok=True)
        raise BrokerSetupError(f"mosquitto_passwd -U failed: {done.stderr.strip()[:200]}")
    os.chmod(passwd, 0o600)


def _certificates(folder: Path, host: str) -> None:
    """A throwaway CA and a server certificate for ``host`` (an IP or a DNS name), by openssl."""
    tool = shutil.which("openssl")
    if tool is None:
        raise BrokerSetupError("openssl not found; it is needed for --tls")
    try:
        san = f"IP:{ipaddress.ip_address(host)}"
    except ValueError:
        san = f"DNS:{host}"
    d = folder
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _private_write(d / "san.cnf", f"subjectAltName={san}\n")
    for cmd in (
        [tool, "req", "-x509", *key, "-keyout", d / "ca.key", "-out", d / "ca.crt"]
        + ["-days", "365", "-subj", "/CN=vigil-broker-test-ca"],
        [tool, "req", *key, "-keyout", d / "server.key", "-out", d / "server.csr"]
        + ["-subj", f"/CN={host}"],
        [tool, "x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.crt"]
        + ["-CAkey", d / "ca.key", "-CAcreateserial", "-out", d / "server.crt"]
        + ["-days", "365", "-extfile", d / "san.cnf"],
    ):
        done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
        if done.returncode != 0:
            raise BrokerSetupError(f"openssl failed: {done.stderr.strip()[:200]}")
    for name in ("san.cnf", "server.csr", "ca.srl"):
        (d / name).unlink(missing_ok=True)
    for name in ("ca.key", "ca.crt", "server.key", "server.crt"):
        os.chmod(d / name, 0o600)


@dataclass
class BrokerFolder:
    """What :func:`write_broker_folder` wrote: paths and, per user, its credentials file."""

    folder: Path
    conf: Path
    passwd: Path
    acl: Path
    identities: list[Identity]
    credentials: dict[str, Path] = field(default_factory=dict)
    ca_file: Path | None = None


def write_broker_folder(
    deployment: Any,
    folder: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 1883,
    tls: bool = False,
    maps: int = 1,
    max_packet_bytes: int = MAX_PACKET_BYTES,
    max_queued_messages: int = MAX_QUEUED_MESSAGES,
    owner: str | None = None,
) -> BrokerFolder:
    """Write a hardened Mosquitto folder for a deployment (see the module's docstring).

    Parameters
    ----------
    deployment
        A loaded :class:`~vigil.config.Deployment`.
    folder
        Where to write; created (0700) if missing, refused if it holds a ``passwd`` already.
    host, port
        The listener's address.
    tls
        Also write a test CA and a server certificate, and make the listener speak TLS.
    maps
        How many ``vigil serve`` instances get a user of their own.
    max_packet_bytes, max_queued_messages
        Broker limits (bytes; messages per offline session).
    owner
        A system user (usually ``mosquitto``) that gets the broker's own files (not the
        credentials), when run as root: Mosquitto started as root reads them as that user.
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"port = {port!r}: expected an integer in [1, 65535]")
    if not 1024 <= max_packet_bytes <= 268_435_455:
        raise ValueError(f"max_packet_bytes = {max_packet_bytes!r}: expected 1 KiB..256 MiB")
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    if (d / "passwd").exists():
        raise BrokerSetupError(f"{d / 'passwd'} exists; refusing to overwrite a broker folder")
    os.chmod(d, 0o700)
    ids = identities(deployment, maps=maps)
    passwords: dict[str, str] = {}
    for i in ids:
        passwords[i.user] = passwords[i.password_of] if i.password_of else secrets.token_urlsafe(24)
    b = deployment.config.broker
    user_env = b.username_env or DEFAULT_USER_ENV
    password_env = b.password_env or DEFAULT_PASSWORD_ENV
    creds = d / "credentials"
    creds.mkdir(exist_ok=True)
    os.chmod(creds, 0o700)
    result = BrokerFolder(d, d / "mosquitto.conf", d / "passwd", d / "acl", ids)
    for i in ids:
        if i.password_of:
            continue  # the service's output user: the service derives it (output_username)
        path = creds / f"{i.user}.env"
        _private_write(
            path, f"# {i.role} {i.user}\n{user_env}={i.user}\n{password_env}={passwords[i.user]}\n"
        )
        result.credentials[i.user] = path
    _hash_passwords(d / "passwd", passwords)
    _private_write(d / "acl", acl_text(deployment.sector, ids))
    if tls:
        _certificates(d, host)
        result.ca_file = d / "ca.crt"
    _private_write(
        d / "mosquitto.conf",
        mosquitto_conf(
            d,
            host=host,
            port=port,
            tls=tls,
            max_packet_bytes=max_packet_bytes,
            max_queued_messages=max_queued_messages,
        ),
    )
    if owner is not None:
        _chown_broker_files(d, owner)
    return result


def _chown_broker_files(folder: Path, owner: str) -> None:
    """Hand the folder and the broker's files (not ``credentials/``) to ``owner``."""
    import pwd

    try:
        who = pwd.getpwnam(owner)
    except KeyError:
        raise BrokerSetupError(f"--owner {owner!r}: no such system user") from None
    for path in [folder, *folder.iterdir()]:
        if path.name == "credentials":
            continue
        os.chown(path, who.pw_uid, who.pw_gid)


__all__ = [
    "MAX_PACKET_BYTES",
    "BrokerFolder",
    "BrokerSetupError",
    "Identity",
    "acl_text",
    "identities",
    "mosquitto_conf",
    "output_username",
    "service_client_id",
    "write_broker_folder",
]
