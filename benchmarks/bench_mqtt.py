"""MQTT transport: Mosquitto's own pub/sub rate (a bare paho loop) against the MqttBus path.

Both run in the same process against the same local Mosquitto (tests/broker.py), QoS 1:

- anchor: a paho publisher and a paho subscriber (automatic acks, nothing else);
- MqttBus: publish (outbox commit) -> broker -> decode and validate -> journal (SQLite WAL,
  ``synchronous=FULL``) -> PUBACK -> handler.

Each is measured flat out (messages per second, end to end) and paced (latency p50/p99 at a
fixed rate). Then ``--fuzz`` random and mutated messages go through an MqttBus service and
the verdicts are counted: every one accepted or quarantined with a reason.

Usage: ``python -m benchmarks mqtt`` or ``python -m benchmarks.bench_mqtt --n 20000``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _broker():
    sys.path.insert(0, str(REPO / "tests"))
    from broker import SERVICE_USER, missing_reason, sector_broker

    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    return sector_broker(autosave_interval_s=1), SERVICE_USER


def _payload(i: int, now: float) -> bytes:
    from vigil.ingest.schema import SensorEvent, encode

    return encode(SensorEvent(sensor="u117", time=now, modality="seismic", strength=float(i)))


def paced_send(send, n: int, rate: float | None, sent: np.ndarray) -> float:
    """Call ``send(i)`` for ``i`` in ``range(n)``, at ``rate`` a second (flat out when None),
    stamping each call's ``perf_counter`` time in ``sent[i]``; returns the start time (s)."""
    t0 = time.perf_counter()
    for i in range(n):
        if rate:
            due = t0 + i / rate
            while time.perf_counter() < due:
                time.sleep(max(0.0, due - time.perf_counter()))
        sent[i] = time.perf_counter()
        send(i)
    return t0


def _paho_run(port: int, user: str, n: int, rate: float | None) -> dict:
    import msgspec
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    topic = "vigil/v1/tucson/ugs/u117/events"
    now = time.time()
    payloads = [_payload(i, now) for i in range(n)]
    sent = np.zeros(n)
    recv = np.zeros(n)
    done = threading.Event()
    count = [0]
    ready = threading.Event()

    def on_message(c, u, msg) -> None:
        i = int(msgspec.json.decode(msg.payload)["strength"])
        recv[i] = time.perf_counter()
        count[0] += 1
        if count[0] >= n:
            done.set()

    def make(cid: str):
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=paho.MQTTv5)
        c.username_pw_set(user, f"pw-{user}")
        c.max_inflight_messages_set(200)
        return c

    sub = make(f"anchor-sub-{rate}")
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: ready.set()
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe(topic, qos=1)
    ready.wait(5)
    pub = make(f"anchor-pub-{rate}")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    time.sleep(0.2)
    t0 = paced_send(lambda i: pub.publish(topic, payloads[i], qos=1), n, rate, sent)
    done.wait(120)
    t1 = time.perf_counter()
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return _summary(n, count[0], t0, t1, sent, recv)


def _bus_run(port: int, user: str, n: int, rate: float | None, folder: Path) -> dict:
    from vigil.ingest.journal import Journal
    from vigil.ingest.mqtt import MqttBus, MqttSettings

    topic = "vigil/v1/tucson/ugs/u117/events"
    now = time.time()
    payloads = [_payload(i, now) for i in range(n)]
    sent = np.zeros(n)
    recv = np.zeros(n)
    done = threading.Event()
    count = [0]
    tag = f"{'paced' if rate else 'flat'}"
    settings = MqttSettings(port=port, username=user, password=f"pw-{user}")
    journal = Journal(folder / f"journal-{tag}.sqlite", synchronous="FULL")
    svc = MqttBus("tucson", settings, f"svc-{tag}", folder / f"svc-{tag}.sqlite", None, journal)

    def handler(t: str, m) -> None:
        i = int(m.strength)
        recv[i] = time.perf_counter()
        count[0] += 1
        if count[0] >= n:
            done.set()

    svc.subscribe(topic, handler)
    svc.connect(10)
    pub = MqttBus("tucson", settings, f"pub-{tag}", folder / f"pub-{tag}.sqlite").connect(10)
    t0 = paced_send(lambda i: pub.publish(topic, payloads[i]), n, rate, sent)
    done.wait(300)
    t1 = time.perf_counter()
    pub.close()
    svc.close()
    journal.close()
    return _summary(n, count[0], t0, t1, sent, recv)


def _summary(n: int, got: int, t0: float, t1: float, sent, recv) -> dict:
    ok = recv > 0
    lat_ms = (recv[ok] - sent[ok]) * 1e3
    return {
        "sent": n,
        "received": got,
        "rate_msg_s": got / (t1 - t0),
        "p50_ms": float(np.percentile(lat_ms, 50)) if ok.any() else float("nan"),
        "p99_ms": float(np.percentile(lat_ms, 99)) if ok.any() else float("nan"),
    }


def _fuzz_run(port: int, user: str, n: int, folder: Path, seed: int = 2024) -> dict:
    from vigil.ingest.fuzz import fuzz_messages
    from vigil.ingest.journal import Journal
    from vigil.ingest.mqtt import MqttBus, MqttSettings

    now = time.time()
    settings = MqttSettings(port=port, username=user, password=f"pw-{user}")
    journal = Journal(folder / "journal-fuzz.sqlite", synchronous="FULL")
    svc = MqttBus(
        "tucson", settings, "svc-fuzz", folder / "svc-fuzz.sqlite", folder / "q.jsonl", journal
    )
    accepted = [0]
    svc.subscribe("vigil/v1/tucson/#", lambda t, m: accepted.__setitem__(0, accepted[0] + 1))
    svc.connect(10)
    fuzzer = MqttBus("tucson", settings, "fuzzer", folder / "fuzzer.sqlite").connect(10)
    t0 = time.perf_counter()
    for topic, payload in fuzz_messages("tucson", n, seed=seed, now=now):
        fuzzer.publish(topic, payload)
    fuzzer.flush(600)
    deadline = time.monotonic() + 600
    while svc.counts["accepted"] + sum(svc.quarantine_counts.values()) < n:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    svc.wait_idle(120)
    t1 = time.perf_counter()
    out = {
        "sent": n,
        "accepted": accepted[0],
        "quarantined": sum(svc.quarantine_counts.values()),
        "reasons": dict(sorted(svc.quarantine_counts.items(), key=lambda kv: -kv[1])),
        "duplicates": svc.counts["duplicate"],
        "handler_errors": svc.counts["handler_error"],
        "ingest_errors": svc.counts["ingest_error"],
        "rate_msg_s": n / (t1 - t0),
        "service_up": svc.connected,
    }
    fuzzer.close()
    svc.close()
    journal.close()
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its table, return the numbers."""
    ap = argparse.ArgumentParser(prog="bench_mqtt", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="messages in the flat-out runs")
    ap.add_argument("--paced", type=int, default=3000, help="messages in the paced runs")
    ap.add_argument("--rate", type=float, default=1000.0, help="paced rate, messages/s")
    ap.add_argument("--fuzz", type=int, default=100_000, help="fuzzed messages (0: skip)")
    args = ap.parse_args(argv)
    broker, user = _broker()
    results: dict = {}
    with broker, tempfile.TemporaryDirectory(prefix="vigil-bench-mqtt-") as tmp:
        folder = Path(tmp)
        results["anchor_flat"] = _paho_run(broker.port, user, args.n, None)
        results["bus_flat"] = _bus_run(broker.port, user, args.n, None, folder)
        results["anchor_paced"] = _paho_run(broker.port, user, args.paced, args.rate)
        results["bus_paced"] = _bus_run(broker.port, user, args.paced, args.rate, folder)
        if args.fuzz:
            results["fuzz"] = _fuzz_run(broker.port, user, args.fuzz, folder)
    a, b = results["anchor_flat"], results["bus_flat"]
    results["rate_ratio_bus_over_anchor"] = b["rate_msg_s"] / a["rate_msg_s"]
    print(
        f"MQTT QoS 1 through a local Mosquitto; flat out {args.n} msgs, paced {args.paced} "
        f"at {args.rate:g}/s"
    )
    print(f"{'path':<34}{'received':>10}{'msg/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for key, label in (
        ("anchor_flat", "paho pub -> sub (anchor), flat"),
        ("bus_flat", "MqttBus -> journal -> handler, flat"),
        ("anchor_paced", "paho pub -> sub (anchor), paced"),
        ("bus_paced", "MqttBus -> journal -> handler, paced"),
    ):
        r = results[key]
        print(
            f"{label:<34}{r['received']:>10}{r['rate_msg_s']:>10.0f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
        )
    print(f"rate ratio MqttBus / anchor: {results['rate_ratio_bus_over_anchor']:.2f}")
    if "fuzz" in results:
        f = results["fuzz"]
        print(
            f"fuzz: {f['sent']} sent, {f['accepted']} accepted, {f['quarantined']} quarantined "
            f"(sum {f['accepted'] + f['quarantined']}), {f['rate_msg_s']:.0f} msg/s, "
            f"duplicates {f['duplicates']}, handler errors {f['handler_errors']}, "
            f"ingest errors {f['ingest_errors']}, service connected at the end: {f['service_up']}"
        )
        print("  reasons: " + ", ".join(f"{k} {v}" for k, v in Counter(f["reasons"]).items()))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
