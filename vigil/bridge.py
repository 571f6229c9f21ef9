"""Many sectors on one broker layer: each sector's Mosquitto bridged to national nodes.

The layout (``docs/scale.md`` explains the choice):

- every sector keeps its own broker (``vigil broker init``, :mod:`vigil.broker`): its devices
  and its ``vigil run`` service talk to it alone, so a sector goes on working when the wide
  area network or the centre is down;
- the centre runs one or more *national nodes*: independent Mosquitto processes (on separate
  machines in the field), written by :func:`write_national_folder` (``vigil broker
  national``);
- each sector broker bridges to **every** national node (:func:`bridge_conf`, written into
  the sector's ``mosquitto.conf`` by ``vigil broker init --bridge HOST:PORT ...``), with two
  connections per node, QoS 1, ``cleansession false``, TLS when the node's CA is given: the
  up bridge (MQTT 5, so that user properties go along; its queue at the sector broker
  persists, in its persistence file) and the down bridge (MQTT 3.1.1, user
  ``bridge-{sector}-down``: Mosquitto 2.0 keeps no session at the node for an MQTT 5 bridge,
  so what came for it while it was down would be dropped; a 3.1.1 session is kept).

What goes up (:data:`UP_TOPICS`, below ``vigil/v1/{sector}/``): the service's outputs and the
devices' messages the map draws, and the retained state; never the raw detections. What comes
down: only the alert actions of the national map users (``alerts/actions/{user}``, one exact
topic per user, so a message cannot loop between a sector and a node).

Why two nodes and not a failover pair: Mosquitto saves its state every
``autosave_interval`` seconds, so a node killed with SIGKILL forgets what it acknowledged
since its last save. Inside a sector the publishers cover that (they send again the last
seconds after any reconnect, :mod:`vigil.ingest.mqtt_publisher`); a bridge does not. With a
bridge to each of two nodes, every message a sector broker took is delivered to both; a
national consumer that must not miss one (an archive, an alert relay) subscribes on both and
drops repeats by the ``vigil-key`` user property (the bridge forwards MQTT 5 properties), as
every Vigil receiver does. ``tests/test_multisector.py`` kills a node, and a sector broker
with its bridges, mid-run and counts.

At a node, each sector's bridge user may write only that sector's up topics (its down user
reads only its down topics), and each national map user reads every sector's drawn topics
and writes only its own action topic in each sector: a sector cannot speak for another.
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

from vigil.broker import (
    AUTOSAVE_INTERVAL_S,
    MAX_QUEUED_MESSAGES,
    BrokerSetupError,
    Identity,
    _certificates,
    _chown_broker_files,
    _hash_passwords,
    _private_write,
    acl_text,
    mosquitto_conf,
)

#: What a sector's bridge sends to the national nodes, below ``vigil/v1/{sector}/``.
UP_TOPICS = (
    "tracks",
    "crossings",
    "alerts",
    "cam/+/commands",
    "ugs/+/events",
    "ugs/+/status",
    "uas/+/telemetry",
    "state/alerts/+",
    "state/sensors/+",
)
#: Messages in flight per client at a bridged sector broker. Mosquitto 2.0 sends a bridge's
#: ``max_inflight_messages`` as MQTT 5 "Receive Maximum", where 0 (Mosquitto's "unlimited",
#: which ``vigil broker init`` writes) is a protocol error: the node drops the bridge at once.
BRIDGED_MAX_INFLIGHT = 1000
#: Seconds a bridge waits before its first reconnection attempt, and at most between two.
BRIDGE_RESTART_S = (1, 10)


def bridge_user(sector: str) -> str:
    """The national nodes' user of a sector's bridges (its client id there too)."""
    return f"bridge-{sector}"


def down_user(bridge: str) -> str:
    """The user of a bridge's down connection (the bridge user's password)."""
    return f"{bridge}-down"


def national_map_user(n: int) -> str:
    """The national nodes' user of the ``n``-th national ``vigil serve`` (from 1)."""
    return f"vigil-national-map-{n}"


@dataclass(frozen=True)
class BridgeLink:
    """One bridge from a sector broker to one national node.

    Attributes
    ----------
    host, port
        The node's listener.
    username, password
        The sector's bridge user at the node (:func:`bridge_user`).
    ca_file
        The CA that signed the node's certificate: with it the bridge speaks TLS (and checks
        the node's name); without it, plain TCP (a test set-up on one machine).
    national_maps
        National map users whose alert actions come down to the sector.
    name
        The connection's name in the sector's ``mosquitto.conf`` (unique per node).
    """

    host: str
    port: int
    username: str
    password: str
    ca_file: Path | None = None
    national_maps: int = 1
    name: str = "national-1"


def local_action_users(ids: list[Identity]) -> list[str]:
    """The sector's users that write alert actions (maps and agents): their actions go up."""
    return [i.user for i in ids if i.role in ("map", "agent")]


def _connection(
    sector: str, link: BridgeLink, name: str, user: str, protocol: str, topics: list[str]
) -> list[str]:
    """One ``connection`` block's lines."""
    lines = [
        "",
        f"connection {name}",
        f"address {link.host}:{link.port}",
        f"bridge_protocol_version {protocol}",
        # with use_username_as_clientid at the node, the client id there is the user name
        f"remote_clientid {user}",
        # the bridge's own session at the sector broker (its queue), one per connection
        f"local_clientid bridge-{sector}-{name}",
        f"remote_username {user}",
        f"remote_password {link.password}",
        "cleansession false",
        "local_cleansession false",
        "try_private false",
        "notifications false",
        "start_type automatic",
        f"restart_timeout {BRIDGE_RESTART_S[0]} {BRIDGE_RESTART_S[1]}",
        "keepalive_interval 20",
        "bridge_outgoing_retain true",
    ]
    if link.ca_file is not None:
        lines += [f"bridge_cafile {Path(link.ca_file).resolve()}", "bridge_insecure false"]
    return lines + topics


def bridge_conf(sector: str, link: BridgeLink, local_actors: list[str]) -> str:
    """The ``connection`` blocks of one node's bridges, appended to the sector's
    ``mosquitto.conf``: ``{name}`` sends the sector's topics up (MQTT 5, so that the
    ``vigil-key`` user property goes along), ``{name}-down`` takes the national map users'
    alert actions down (MQTT 3.1.1 as :func:`down_user`: Mosquitto 2.0 keeps no session at the
    node for an MQTT 5 bridge, so an action sent while the bridge is down would be dropped
    there; a 3.1.1 ``cleansession false`` session is kept and delivered on reconnection)."""
    if not 1 <= link.port <= 65535:
        raise ValueError(f"bridge port = {link.port!r}: expected an integer in [1, 65535]")
    for text in (link.host, link.username, link.password, link.name):
        if not text or any(c.isspace() for c in text):
            raise ValueError(f"bridge setting {text!r}: expected a non-empty word")
    base = f"vigil/v1/{sector}"
    up = [f"topic {base}/{t} out 1" for t in UP_TOPICS]
    up += [f"topic {base}/alerts/actions/{u} out 1" for u in local_actors]
    down = [
        f"topic {base}/alerts/actions/{national_map_user(n)} in 1"
        for n in range(1, link.national_maps + 1)
    ]
    lines = ["", "# bridges to a national node (vigil.bridge): QoS 1, persistent sessions"]
    lines += _connection(sector, link, link.name, link.username, "mqttv50", up)
    lines += _connection(
        sector, link, f"{link.name}-down", down_user(link.username), "mqttv311", down
    )
    return "\n".join(lines) + "\n"


def add_bridges(folder: str | Path, deployment: Any, links: list[BridgeLink]) -> Path:
    """Append a bridge per link to the sector broker folder's ``mosquitto.conf``.

    The folder is one :func:`vigil.broker.write_broker_folder` wrote for ``deployment``. The
    bridge passwords stand in the file in clear (Mosquitto reads them only so); it is 0600.
    """
    from vigil.broker import identities

    names = [link.name for link in links]
    if len(set(names)) != len(names):
        raise ValueError(f"bridge names {names}: expected each once")
    conf = Path(folder) / "mosquitto.conf"
    if not conf.exists():
        raise BrokerSetupError(f"{conf}: no sector broker folder (run vigil broker init first)")
    actors = local_action_users(identities(deployment, maps=_maps_in(folder)))
    text = conf.read_text()
    unlimited = "\nmax_inflight_messages 0\n"
    if unlimited in text:
        text = text.replace(unlimited, f"\nmax_inflight_messages {BRIDGED_MAX_INFLIGHT}\n")
    text += "".join(bridge_conf(deployment.sector, link, actors) for link in links)
    _private_write(conf, text)
    return conf


def _maps_in(folder: str | Path) -> int:
    """How many sector map users a broker folder's ACL holds (``user vigil-X-map-N`` lines)."""
    acl = (Path(folder) / "acl").read_text()
    return sum(1 for line in acl.splitlines() if line.startswith("user ") and "-map-" in line)


def national_identities(sectors: list[str], *, maps: int = 1) -> list[Identity]:
    """The national nodes' users: a bridge user per sector, ``maps`` national map users."""
    if len(set(sectors)) != len(sectors) or not sectors:
        raise ValueError(f"sectors = {sectors!r}: expected distinct sector names")
    out: list[Identity] = []
    for s in sectors:
        base = f"vigil/v1/{s}"
        down = tuple(f"{base}/alerts/actions/{national_map_user(n)}" for n in range(1, maps + 1))
        up = tuple(f"{base}/{t}" for t in UP_TOPICS) + (f"{base}/alerts/actions/+",)
        out.append(Identity(bridge_user(s), "bridge", (), up))
        out.append(Identity(down_user(bridge_user(s)), "bridge", down, password_of=bridge_user(s)))
    for n in range(1, maps + 1):
        user = national_map_user(n)
        read = tuple(f"vigil/v1/{s}/{t}" for s in sectors for t in (*UP_TOPICS, "alerts/actions/+"))
        write = tuple(f"vigil/v1/{s}/alerts/actions/{user}" for s in sectors)
        out.append(Identity(user, "national-map", read, write))
    return out


@dataclass
class NationalFolder:
    """What :func:`write_national_folder` wrote: one folder per node and the credentials."""

    folder: Path
    nodes: list[Path]
    identities: list[Identity]
    credentials: dict[str, Path] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    ca_file: Path | None = None
    addresses: list[tuple[str, int]] = field(default_factory=list)

    def link(self, sector: str, node: int, *, national_maps: int | None = None) -> BridgeLink:
        """The :class:`BridgeLink` of ``sector``'s bridge to node ``node`` (from 1)."""
        host, port = self.addresses[node - 1]
        user = bridge_user(sector)
        return BridgeLink(
            host,
            port,
            user,
            self.passwords[user],
            ca_file=self.ca_file,
            national_maps=national_maps
            if national_maps is not None
            else sum(i.role == "national-map" for i in self.identities),
            name=f"national-{node}",
        )


def write_national_folder(
    sectors: list[str],
    folder: str | Path,
    *,
    nodes: list[tuple[str, int]],
    tls: bool = False,
    maps: int = 1,
    max_queued_messages: int = MAX_QUEUED_MESSAGES,
    owner: str | None = None,
) -> NationalFolder:
    """Write the national nodes' folders: ``node-N/`` (``mosquitto.conf``, ``passwd``,
    ``acl``, persistence) for each ``(host, port)`` of ``nodes``, and ``credentials/USER.env``
    (``VIGIL_MQTT_USER``/``VIGIL_MQTT_PASSWORD``) for each bridge and national map user.

    Every node has the same users (a sector's bridges log in to each with one password) and is
    independent of the others: no node bridges to another. With ``tls`` one throwaway CA signs
    every node's certificate (for a test set-up; use your own PKI in the field); its
    ``ca.crt`` is at the folder's top, for the bridges (``bridge_cafile``) and the maps.
    ``owner``: as in :func:`vigil.broker.write_broker_folder` (``credentials/`` stays).
    """
    if not nodes:
        raise ValueError("nodes: expected at least one (host, port)")
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    if any((d / f"node-{k}" / "passwd").exists() for k in range(1, len(nodes) + 1)):
        raise BrokerSetupError(f"{d} holds national nodes already; refusing to overwrite")
    os.chmod(d, 0o700)
    ids = national_identities(sectors, maps=maps)
    passwords: dict[str, str] = {}
    for i in ids:  # a bridge's down user has the bridge user's password
        own = secrets.token_urlsafe(24)
        passwords[i.user] = passwords[i.password_of] if i.password_of else own
    creds = d / "credentials"
    creds.mkdir(exist_ok=True)
    os.chmod(creds, 0o700)
    result = NationalFolder(d, [], ids, passwords=passwords, addresses=list(nodes))
    for i in ids:
        if i.password_of:
            continue  # derived by the sector from the bridge user's file (down_user)
        path = creds / f"{i.user}.env"
        _private_write(
            path,
            f"# {i.role} {i.user}\nVIGIL_MQTT_USER={i.user}\n"
            f"VIGIL_MQTT_PASSWORD={passwords[i.user]}\n",
        )
        result.credentials[i.user] = path
    if tls:  # one throwaway CA for the set, at the top; each node its own certificate
        _certificates(d, nodes[0][0])
        for name in ("server.crt", "server.key"):
            (d / name).unlink(missing_ok=True)
        result.ca_file = d / "ca.crt"
    for k, (host, port) in enumerate(nodes, start=1):
        node = d / f"node-{k}"
        node.mkdir(exist_ok=True)
        os.chmod(node, 0o700)
        _hash_passwords(node / "passwd", passwords)
        _private_write(node / "acl", acl_text("national", ids))
        if tls:
            _private_write(node / "ca.crt", (d / "ca.crt").read_text())
            _server_certificate(node, host, d)
        _private_write(
            node / "mosquitto.conf",
            mosquitto_conf(
                node, host=host, port=port, tls=tls, max_queued_messages=max_queued_messages
            ),
        )
        result.nodes.append(node)
    if owner is not None:  # the nodes' files and the CA certificate (the bridges read it)
        _chown_broker_files(d, owner)
        for node in result.nodes:
            _chown_broker_files(node, owner)
    return result


def _server_certificate(d: Path, host: str, ca_dir: Path) -> None:
    """``d/server.{crt,key}`` for ``host`` signed by the CA in ``ca_dir`` (``ca.crt``/``.key``)."""
    tool = shutil.which("openssl")
    if tool is None:
        raise BrokerSetupError("openssl not found; it is needed for --tls")
    try:
        san = f"IP:{ipaddress.ip_address(host)}"
    except ValueError:
        san = f"DNS:{host}"
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _private_write(d / "san.cnf", f"subjectAltName={san}\n")
    for cmd in (
        [tool, "req", *key, "-keyout", d / "server.key", "-out", d / "server.csr"]
        + ["-subj", f"/CN={host}"],
        [tool, "x509", "-req", "-in", d / "server.csr", "-CA", ca_dir / "ca.crt"]
        + ["-CAkey", ca_dir / "ca.key", "-CAcreateserial", "-out", d / "server.crt"]
        + ["-days", "365", "-extfile", d / "san.cnf"],
    ):
        done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
        if done.returncode != 0:
            raise BrokerSetupError(f"openssl failed: {done.stderr.strip()[:200]}")
    for name in ("san.cnf", "server.csr"):
        (d / name).unlink(missing_ok=True)
    (ca_dir / "ca.srl").unlink(missing_ok=True)
    for name in ("server.key", "server.crt"):
        os.chmod(d / name, 0o600)


__all__ = [
    "AUTOSAVE_INTERVAL_S",
    "UP_TOPICS",
    "BridgeLink",
    "NationalFolder",
    "add_bridges",
    "bridge_conf",
    "bridge_user",
    "national_identities",
    "national_map_user",
    "write_national_folder",
]
