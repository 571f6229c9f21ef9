"""Two sectors on a national broker layer, on 127.0.0.1, as ``vigil broker`` writes it.

:func:`build_layer` runs ``vigil broker national`` (two independent nodes, TLS) and, per
sector, ``vigil broker init --bridge NODE1 --bridge NODE2`` (each sector's Mosquitto bridged
to both nodes), then starts the four Mosquitto processes from those folders. The sectors are
the two shipped deployments, Tucson (US-Mexico) and Swanton (US-Canada), each with its own
broker, users and topics.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from broker import Broker, free_port
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vigil.cli import main as vigil_main
from vigil.config import default_deployment_path
from vigil.ingest.mqtt import MqttBus, MqttSettings

SECTORS = ("tucson", "swanton")


def read_env(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a credentials file."""
    out = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            out[name] = value
    return out


def login(path: Path) -> tuple[str, str]:
    """(user, password) from a credentials file."""
    env = read_env(path)
    return env["VIGIL_MQTT_USER"], env["VIGIL_MQTT_PASSWORD"]


@dataclass
class Layer:
    """The running set-up: folders, brokers and where each listens."""

    root: Path
    deployments: dict[str, Path]
    nodes: list[Broker] = field(default_factory=list)
    sector_brokers: dict[str, Broker] = field(default_factory=dict)

    @property
    def ca_file(self) -> Path:
        return self.root / "national" / "ca.crt"

    def national_login(self, user: str) -> tuple[str, str]:
        return login(self.root / "national" / "credentials" / f"{user}.env")

    def sector_login(self, sector: str, user: str) -> tuple[str, str]:
        return login(self.root / sector / "credentials" / f"{user}.env")

    def all_brokers(self) -> list[Broker]:
        return [*self.nodes, *self.sector_brokers.values()]

    def wait_bridges(self, timeout: float = 15.0) -> None:
        """Until every node's log shows every sector's bridges (up and down) connected."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = [n.log_path.read_text(errors="replace") for n in self.nodes]
            names = [f"as bridge-{s}{end} " for s in SECTORS for end in ("", "-down")]
            if all(name in log for log in logs for name in names):
                return
            time.sleep(0.1)
        raise AssertionError("bridges not up:\n" + "\n".join(n.log_tail() for n in self.nodes))

    def close(self) -> None:
        for b in self.all_brokers():
            b.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _run(*args: str) -> None:
    rc = vigil_main(list(args))
    assert rc == 0, f"vigil {' '.join(args)} -> {rc}"


def build_layer() -> Layer:
    """Write (with the ``vigil broker`` commands) and start two sector brokers and two nodes."""
    # under /tmp: Mosquitto started as root reads its files as the mosquitto user
    root = Path(tempfile.mkdtemp(prefix="vigil-layer-", dir="/tmp"))
    os.chmod(root, 0o755)
    data = default_deployment_path().parent
    deployments = {s: data / f"{s}.toml" for s in SECTORS}
    layer = Layer(root, deployments)
    owner = ["--owner", "mosquitto"] if os.geteuid() == 0 else []
    if owner:
        try:
            pwd.getpwnam("mosquitto")
        except KeyError:
            owner = []
    node_ports = [free_port(), free_port()]
    nodes = [a for p in node_ports for a in ("--node", f"127.0.0.1:{p}")]
    sectors = [a for s in SECTORS for a in ("--sector", s)]
    # two national map users: the test's readers and a vigil serve process
    _run(
        "broker", "national", str(root / "national"), *sectors, *nodes, "--tls", "--maps", "2",
        *owner,
    )  # fmt: skip
    bridges = [a for p in node_ports for a in ("--bridge", f"127.0.0.1:{p}")]
    sector_ports = {}
    for s in SECTORS:
        sector_ports[s] = free_port()
        cred = root / "national" / "credentials" / f"bridge-{s}.env"
        _run(
            "broker", "init", str(root / s), "--deployment", str(deployments[s]),
            "--port", str(sector_ports[s]), *bridges, "--bridge-credentials", str(cred),
            "--bridge-ca", str(root / "national" / "ca.crt"), "--national-maps", "2", *owner,
        )  # fmt: skip
    try:
        for k, p in enumerate(node_ports, start=1):
            layer.nodes.append(Broker.from_folder(root / "national" / f"node-{k}", p).start())
        for s in SECTORS:
            layer.sector_brokers[s] = Broker.from_folder(root / s, sector_ports[s]).start()
        layer.wait_bridges()
    except BaseException:
        layer.close()
        raise
    return layer


class NodeCollector:
    """A national map identity on one node: persistent session, QoS 1, payloads kept."""

    def __init__(self, layer: Layer, node: int, user: str = "vigil-national-map-1") -> None:
        self.got: set[bytes] = set()
        #: messages that arrived without the publisher's ``vigil-key`` user property
        self.unkeyed = 0
        self.lock = threading.Lock()
        b = layer.nodes[node]
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
        c.username_pw_set(*layer.national_login(user))
        c.tls_set(ca_certs=str(layer.ca_file))
        c.reconnect_delay_set(0.1, 0.5)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect(b.host, b.port, clean_start=False, properties=props)
        self.subscribed = threading.Event()
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.loop_start()
        self.client = c
        assert self.subscribed.wait(10), "collector not subscribed"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe([(f"vigil/v1/{s}/tracks", 1) for s in SECTORS])

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.got.add(bytes(msg.payload))
            props = getattr(msg.properties, "UserProperty", None) or []
            if not any(name == "vigil-key" for name, _ in props):
                self.unkeyed += 1

    def snapshot(self) -> set[bytes]:
        with self.lock:
            return set(self.got)

    def go_offline(self) -> None:
        """Disconnect, keeping the session: the node queues what comes for it meanwhile."""
        self.client.disconnect()
        self.client.loop_stop()

    def come_back(self) -> None:
        """Reconnect to the session (paho's loop resumes it)."""
        self.subscribed.clear()
        self.client.reconnect()
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sector_publisher(layer: Layer, sector: str, tmp) -> MqttBus:
    """The sector service's output identity on its own sector broker, through Vigil's bus."""
    user, password = layer.sector_login(sector, f"vigil-{sector}")
    b = layer.sector_brokers[sector]
    settings = MqttSettings(
        host=b.host,
        port=b.port,
        username=f"{user}-out",
        password=password,
        reconnect_max_delay_s=0.3,
    )
    Path(tmp).mkdir(parents=True, exist_ok=True)
    return MqttBus(
        sector, settings, f"{user}-out", outbox_path=Path(tmp) / f"{sector}-outbox.sqlite"
    )


def refused(
    layer: Layer, node: int, user: str, password: str, topic: str, payload: bytes = b"x"
) -> bool:
    """Whether a node refuses (PUBACK "not authorized") a QoS 1 publication by ``user``."""
    b = layer.nodes[node]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    c.tls_set(ca_certs=str(layer.ca_file))
    codes: list = []
    done = threading.Event()

    def on_publish(client, userdata, mid, reason_code, properties) -> None:
        codes.append(reason_code)
        done.set()

    c.on_publish = on_publish
    c.connect(b.host, b.port)
    c.loop_start()
    try:
        c.publish(topic, payload, qos=1)
        assert done.wait(10), "no PUBACK"
    finally:
        c.disconnect()
        c.loop_stop()
    return codes[0].is_failure
