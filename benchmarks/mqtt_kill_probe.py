"""Probe of the broker-SIGKILL test (tests/test_mqtt.py), instrumented: which messages are lost,
and when the broker saved, acknowledged, died and came back.

A device streams 3,000 events to the sector service through a real Mosquitto, which is
SIGKILLed once the service has handled a third and started again 0.3 s later. Each run prints
one line: messages lost, the broker's saves between the service's subscription and the kill,
replays answered "no matching subscribers" (``unrouted``), the first sequence number replayed
and what the window counted back from, and the counts that CI printed
(``ack_after_disconnect``, ``connect_failed``).

Usage::

    python -m benchmarks.mqtt_kill_probe --runs 20 [--premise sleep|saved|never]
        [--service-delay 0.05] [--resend-unrouted] [--pace 0.01] [--json out.json]

``--premise sleep`` is the test as it was at b14b643 (a fixed 1.1 s sleep after the sessions
are made, which Mosquitto's autosave every ~2 s may not have followed); ``saved`` waits for two
autosaves (the test now); ``never`` runs a broker that never autosaves. ``--service-delay``
is the service's first reconnect delay, seconds (the device keeps 0.05 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N = 3000


def run_once(premise: str, service_delay: float, resend_unrouted: bool, pace: float) -> dict:
    """One instrumented run; returns what it saw."""
    sys.path.insert(0, str(REPO / "tests"))
    from broker import SECTOR, sector_broker
    from test_mqtt import EVENTS, device, event, service, wait_for

    from vigil.ingest.journal import Journal

    tmp = Path(tempfile.mkdtemp(prefix="vigil-kill-probe-"))
    b = sector_broker(autosave_interval_s=3600 if premise == "never" else 1)
    saves: list[float] = []
    acks: dict[int, float] = {}  # seq -> its first acknowledgement, time.time()
    replays: list[tuple[int, float]] = []  # first seq of each replay, and its since
    stop = threading.Event()

    def watch_saves() -> None:
        last = 0
        while not stop.is_set():
            try:
                m = b.persistence_path.stat().st_mtime_ns
            except FileNotFoundError:
                m = 0
            if m != last:
                saves.append(m / 1e9)
                last = m
            time.sleep(0.005)

    b.start()
    threading.Thread(target=watch_saves, daemon=True).start()
    try:
        now = time.time()
        journal = Journal(tmp / "journal.sqlite")
        delays = {"reconnect_min_delay_s": service_delay}
        delays["reconnect_max_delay_s"] = max(0.5, service_delay)
        svc = service(b, tmp, journal, **delays)
        got: list[int] = []
        svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(int(m.strength)))
        svc.connect(5)
        subscribed = time.time()
        dev = device(b, tmp, resend_unrouted=resend_unrouted).connect(5)
        box = dev.outbox
        mark_acked, to_send = box.mark_acked, box.to_send

        def on_ack(seq: int, t: float) -> None:
            acks.setdefault(seq, t)
            mark_acked(seq, t)

        def on_to_send(after: int, since: float, limit: int = 500):
            rows = to_send(after, since, limit)
            if after == 0 and rows:
                replays.append((rows[0].seq, since))
            return rows

        box.mark_acked, box.to_send = on_ack, on_to_send
        if premise == "saved":
            b.wait_saved()
        else:
            time.sleep(1.1)

        def publish_all() -> None:
            for i in range(N):
                dev.publish(EVENTS, event(i, now))
                if i % 100 == 0:
                    time.sleep(pace)

        sender = threading.Thread(target=publish_all)
        sender.start()
        wait_for(lambda: len(got) >= N // 3, 60)
        killed = time.time()
        b.kill()
        killed_at = len(got)
        time.sleep(0.3)
        b.start()
        sender.join(120)
        dev.flush(30)
        wait_for(lambda: len(set(got)) >= N, 15)
        svc.wait_idle(5)
        lost = sorted(set(range(N)) - set(got))
        saved = [s for s in saves if subscribed < s < killed]
        last_save = max((s for s in saves if s < killed), default=None)
        out = {
            "lost": len(lost),
            "lost_first_last": [lost[0], lost[-1]] if lost else [],
            "lost_acked_after_kill_s": (
                [round(acks[lost[0] + 1] - killed, 3), round(acks[lost[-1] + 1] - killed, 3)]
                if lost and lost[0] + 1 in acks and lost[-1] + 1 in acks
                else None
            ),
            "handled_at_kill": killed_at,
            "saves_subscribed_to_kill": len(saved),
            "last_save_before_kill_s": None if last_save is None else round(last_save - killed, 3),
            "unrouted": dev.counts["acked_no_subscribers"],
            "replay_from_seq": [seq for seq, _ in replays],
            "replay_since_before_kill_s": [round(s - killed, 3) for _, s in replays],
            "in_order": got == sorted(got),
            "ack_after_disconnect": svc.counts["ack_after_disconnect"],
            "svc_connect_failed": svc.counts["connect_failed"],
            "dev_connect_failed": dev.counts["connect_failed"],
        }
        dev.close()
        svc.close()
        journal.close()
        return out
    finally:
        stop.set()
        b.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Run the probe ``--runs`` times; print one line a run and the totals."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--premise", choices=("sleep", "saved", "never"), default="saved")
    p.add_argument("--service-delay", type=float, default=0.05)
    p.add_argument("--resend-unrouted", action="store_true")
    p.add_argument("--pace", type=float, default=0.01, help="sleep per 100 messages, s")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    runs = []
    for i in range(a.runs):
        r = run_once(a.premise, a.service_delay, a.resend_unrouted, a.pace)
        runs.append(r)
        print(i + 1, json.dumps(r), flush=True)
    failed = sum(r["lost"] > 0 for r in runs)
    unrouted = sum(r["unrouted"] > 0 for r in runs)
    print(f"runs {a.runs}: with a loss {failed}, with unrouted replays {unrouted}")
    if a.json is not None:
        a.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
