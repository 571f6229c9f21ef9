"""Issue 23, item 2: two sectors side by side on a multi-node broker layer on 127.0.0.1.

Four real Mosquitto processes written by ``vigil broker national`` and ``vigil broker init
--bridge`` (:mod:`multisector_layer`): each sector's broker bridges, over TLS, to both national
nodes. Each sector's service output identity publishes through Vigil's own MQTT publisher (the
outbox, QoS 1, the replay window: :class:`~vigil.ingest.mqtt.MqttBus`); national map
identities collect on each node with persistent sessions. Mid-run one national node is killed
with SIGKILL and restarted, then one sector broker (and with it that sector's two bridges).
Every message sent is then counted at the national layer.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import paho.mqtt.client as mqtt
import pytest
from broker import missing_reason
from multisector_layer import SECTORS, Layer, NodeCollector, build_layer, sector_publisher

pytestmark = pytest.mark.broker

PER_SECTOR = 300  # messages each sector sends
PACE_S = 0.008  # seconds between two sends of one sector: the run lasts about 2.4 s


@pytest.fixture(scope="module")
def layer():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    built = build_layer()
    yield built
    built.close()


def refused(layer: Layer, node: int, user: str, password: str, topic: str) -> bool:
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
        c.publish(topic, b"x", qos=1)
        assert done.wait(10), "no PUBACK"
    finally:
        c.disconnect()
        c.loop_stop()
    return codes[0].is_failure


def test_the_node_acl_keeps_each_sector_to_its_own_topics(layer):
    bridge_t = layer.national_login("bridge-tucson")
    national_map = layer.national_login("vigil-national-map-1")
    assert not refused(layer, 0, *bridge_t, "vigil/v1/tucson/tracks")
    assert refused(layer, 0, *bridge_t, "vigil/v1/swanton/tracks")
    assert refused(layer, 0, *bridge_t, "vigil/v1/tucson/cam/t03/detections")  # not sent up
    assert refused(layer, 1, *national_map, "vigil/v1/swanton/alerts")
    assert not refused(
        layer, 1, *national_map, "vigil/v1/swanton/alerts/actions/vigil-national-map-1"
    )
    assert refused(layer, 1, *national_map, "vigil/v1/swanton/alerts/actions/vigil-swanton-map-1")


def test_sigkill_of_a_node_and_of_a_bridged_sector_broker_loses_no_message(layer, tmp_path):
    collectors = [NodeCollector(layer, 0), NodeCollector(layer, 1)]
    buses = {s: sector_publisher(layer, s, tmp_path).connect(15) for s in SECTORS}
    sent: dict[str, list[bytes]] = defaultdict(list)

    def send(sector: str) -> None:
        for i in range(PER_SECTOR):
            payload = f'{{"sector":"{sector}","n":{i}}}'.encode()
            buses[sector].publish(f"vigil/v1/{sector}/tracks", payload)
            sent[sector].append(payload)  # committed to the outbox: "sent"
            time.sleep(PACE_S)

    threads = [threading.Thread(target=send, args=(s,)) for s in SECTORS]
    # node 1's reader is away: node 1 holds its messages in the session, then dies before
    # its next save (autosave every 2 s) and forgets those it took since (nothing resends)
    collectors[0].go_offline()
    try:
        for t in threads:
            t.start()
        time.sleep(PER_SECTOR * PACE_S * 0.4)
        layer.nodes[0].kill()  # national node 1, SIGKILL
        time.sleep(0.3)
        layer.nodes[0].start()
        collectors[0].come_back()
        time.sleep(PER_SECTOR * PACE_S * 0.2)
        layer.sector_brokers["swanton"].kill()  # Swanton's broker and both its bridges
        time.sleep(0.3)
        layer.sector_brokers["swanton"].start()
        for t in threads:
            t.join(30)
        # every message acknowledged by the sector brokers, the replay window past
        for s, bus in buses.items():
            assert bus.flush(20), f"{s}: the sector broker did not acknowledge everything"
        want = {p for s in SECTORS for p in sent[s]}
        assert len(want) == PER_SECTOR * len(SECTORS)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            union = collectors[0].snapshot() | collectors[1].snapshot()
            if want <= union:
                break
            time.sleep(0.2)
        per_node = [len(want & c.snapshot()) for c in collectors]
        union = collectors[0].snapshot() | collectors[1].snapshot()
        missing = sorted(want - union)
        assert not missing, (
            f"{len(missing)} of {len(want)} sent messages reached no national node "
            f"(per node {per_node}); first {missing[:5]}\n"
            + "\n".join(b.log_tail(8) for b in layer.all_brokers())
        )
        # the node that was not killed has every message of both sectors, alone
        assert collectors[1].snapshot() >= want, f"node 2 has {per_node[1]} of {len(want)}"
        assert union <= want  # nothing came that was not sent
        # (node 1 alone typically misses what it took in the last autosave interval)
    finally:
        for bus in buses.values():
            bus.close()
        for c in collectors:
            c.close()
