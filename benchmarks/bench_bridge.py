"""The national broker layer: what a bridge costs, and what a node's crash loses.

Set-up: ``tests/multisector_layer.build_layer`` (two sector Mosquittos, each bridged over TLS
to two independent national nodes, as ``vigil broker national`` / ``init --bridge`` write
them). QoS 1, MQTT 5, paho clients, one process, on 127.0.0.1.

1. Rate and latency. Anchor: paho publisher -> the sector broker -> paho subscriber on the
   same sector broker (what a sector's own map gets). Bridged: the same publisher -> the
   sector broker -> bridge -> national node 2 -> paho subscriber there (what the national
   view gets). Flat out (N messages) for the rate; paced for the latency (publish call ->
   handler). The ratio bridged / anchor is the headline.
2. Crash: each sector's service output identity sends M messages through Vigil's MqttBus
   (outbox, replay window) at a paced rate; national node 1 is killed with SIGKILL while its
   reader is away and restarted; then one sector broker (and its bridges). Counted: messages
   sent, reaching node 1's reader, node 2's reader, and either.

``python -m benchmarks bridge [--n 20000] [--paced 2000] [--rate 1000] [--crash 3]``
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_mqtt import paced_send

REPO = Path(__file__).resolve().parents[1]


def _client(user: str, password: str, ca: str | None, cid: str | None = None):
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=cid or user, protocol=paho.MQTTv5)
    c.username_pw_set(user, password)
    if ca:
        c.tls_set(ca_certs=ca)
    c.max_inflight_messages_set(200)
    return c


def _run(layer, path: str, n: int, rate: float | None) -> dict:
    """Publish ``n`` messages on Tucson's tracks; receive on the sector (``path='sector'``) or
    on national node 2 (``'bridged'``). Returns msg/s and latency percentiles (ms)."""
    topic = "vigil/v1/tucson/tracks"
    sent = np.zeros(n)
    recv = np.zeros(n)
    count = [0]
    done = threading.Event()
    ready = threading.Event()

    def on_message(c, u, msg) -> None:
        i = int(msg.payload)
        if recv[i] == 0:
            recv[i] = time.perf_counter()
            count[0] += 1
            if count[0] >= n:
                done.set()

    sb = layer.sector_brokers["tucson"]
    if path == "sector":
        sub = _client(*layer.sector_login("tucson", "vigil-tucson-map-1"), None)
        host, port = sb.host, sb.port
    else:
        node = layer.nodes[1]
        sub = _client(*layer.national_login("vigil-national-map-1"), str(layer.ca_file))
        host, port = node.host, node.port
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: ready.set()
    sub.connect(host, port)
    sub.loop_start()
    sub.subscribe(topic, qos=1)
    ready.wait(10)
    user, password = layer.sector_login("tucson", "vigil-tucson")
    pub = _client(f"{user}-out", password, None)
    pub.connect(sb.host, sb.port)
    pub.loop_start()
    time.sleep(0.3)
    t0 = paced_send(lambda i: pub.publish(topic, str(i).encode(), qos=1), n, rate, sent)
    done.wait(180)
    t1 = max(recv.max(), t0)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    got = recv > 0
    lat = (recv[got] - sent[got]) * 1000.0
    return {
        "received": int(got.sum()),
        "rate": got.sum() / max(t1 - t0, 1e-9),
        "p50": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "p99": float(np.percentile(lat, 99)) if lat.size else float("nan"),
    }


def _crash(layer, per_sector: int, rate: float, folder: Path, seed: int) -> dict:
    """One crash run (see the module's docstring); kill times drawn from ``seed``."""
    sys.path.insert(0, str(REPO / "tests"))
    from multisector_layer import NodeCollector, sector_publisher

    rng = np.random.default_rng(seed)
    collectors = [NodeCollector(layer, 0), NodeCollector(layer, 1)]
    buses = {
        s: sector_publisher(layer, s, folder / f"run{seed}").connect(15)
        for s in layer.sector_brokers
    }
    sent: list[bytes] = []
    lock = threading.Lock()

    def send(sector: str) -> None:
        for i in range(per_sector):
            payload = f'{{"run":{seed},"sector":"{sector}","n":{i}}}'.encode()
            buses[sector].publish(f"vigil/v1/{sector}/tracks", payload)
            with lock:
                sent.append(payload)
            time.sleep(1.0 / rate)

    span = per_sector / rate
    threads = [threading.Thread(target=send, args=(s,)) for s in buses]
    collectors[0].go_offline()
    for t in threads:
        t.start()
    time.sleep(span * rng.uniform(0.2, 0.4))
    layer.nodes[0].kill()
    time.sleep(0.3)
    layer.nodes[0].start()
    collectors[0].come_back()
    time.sleep(span * rng.uniform(0.1, 0.3))
    victim = sorted(layer.sector_brokers)[int(rng.integers(len(layer.sector_brokers)))]
    layer.sector_brokers[victim].kill()
    time.sleep(0.3)
    layer.sector_brokers[victim].start()
    for t in threads:
        t.join()
    for bus in buses.values():
        bus.flush(30)
    want = set(sent)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if want <= collectors[0].snapshot() | collectors[1].snapshot():
            break
        time.sleep(0.2)
    a, b = collectors[0].snapshot() & want, collectors[1].snapshot() & want
    for bus in buses.values():
        bus.close()
    for c in collectors:
        c.close()
    return {"sent": len(want), "node1": len(a), "node2": len(b), "either": len(a | b)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks bridge")
    p.add_argument("--n", type=int, default=20_000, help="flat-out messages")
    p.add_argument("--paced", type=int, default=2_000, help="paced messages")
    p.add_argument("--rate", type=float, default=500.0, help="paced rate, msg/s")
    p.add_argument("--crash", type=int, default=3, help="crash runs")
    p.add_argument("--per-sector", type=int, default=2_000, help="messages per sector per crash")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from broker import missing_reason
    from multisector_layer import build_layer

    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    import contextlib
    import io
    import tempfile

    with contextlib.redirect_stdout(io.StringIO()):
        layer = build_layer()
    try:
        rows = []
        for path in ("sector", "bridged"):
            flat = _run(layer, path, args.n, None)
            paced = _run(layer, path, args.paced, args.rate)
            rows.append((path, flat, paced))
        print("| path | flat-out received | msg/s | paced msg/s | paced p50 ms | paced p99 ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for path, flat, paced in rows:
            name = "sector broker (anchor)" if path == "sector" else "bridged to national node"
            print(
                f"| {name} | {flat['received']:,} | {flat['rate']:,.0f} | {paced['rate']:,.0f} "
                f"| {paced['p50']:.2f} | {paced['p99']:.2f} |"
            )
        print(f"rate ratio bridged / anchor: {rows[1][1]['rate'] / rows[0][1]['rate']:.2f}")
        with tempfile.TemporaryDirectory() as tmp:
            print("\n| crash run | sent | node 1 (killed) | node 2 | either node |")
            print("|---:|---:|---:|---:|---:|")
            for seed in range(101, 101 + args.crash):
                r = _crash(layer, args.per_sector, args.rate / 2, Path(tmp), seed)
                print(
                    f"| {seed} | {r['sent']:,} | {r['node1']:,} | {r['node2']:,} "
                    f"| {r['either']:,} |",
                    flush=True,
                )
    finally:
        layer.close()


if __name__ == "__main__":
    main(sys.argv[1:])
