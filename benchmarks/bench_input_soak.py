"""Resident memory of ``vigil run``'s two processes over a simulated day through a real broker
(issue 19 item 4: within 50 MB of the value after the first hour).

Setup, all on this machine: a local Mosquitto (tests/broker.py); ``vigil run`` as its own
process, started as bench_service starts it (``python -m vigil.cli run --broker ...``, journal
``synchronous=FULL``, snapshots and journal pruning at their defaults), which starts its MQTT
input child (``python -m vigil.ingest.mqtt_process``: receive, check, journal, PUBACK, batches
to the core over a pipe) itself; a bare paho publisher (QoS 1, MQTT 5) sending bench_restart's
recorded load: five walkers crossing the border seen by camera t03 plus the 60 ground sensors'
statuses every 10 minutes, ``--rate`` messages per simulated second on average (50: 4.32 M
messages in 24 h), stamped over ``--hours`` simulated hours from bench_restart's start time
(in the past, so no message is ahead of the wall clock).

The publisher sends as fast as the chain keeps up: it stays at most ``--window`` messages
ahead of what the core reports handled (``status.json``). At the end of each simulated
``--sample-s`` seconds (an hour by default) it waits until the core has handled everything
sent, then samples VmRSS of the core's process (``vigil run``), of the input child and of
Mosquitto. The result is each process's largest excess over its value at the first sample
after the first simulated hour (the issue's reference) against ``--target-mb`` (50).

Usage: ``python -m benchmarks input_soak --hours 24`` (the acceptance run; 30-90 min wall on
this machine); a short one: ``--hours 0.5 --sample-s 300``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

INPUT_MODULE = "vigil.ingest.mqtt_process"


def rss_mb(pid: int | None) -> float:
    """VmRSS of process ``pid``, MB (nan when it is gone or unknown)."""
    if pid is None:
        return float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def input_child(service_pid: int) -> int | None:
    """The pid of ``vigil run``'s input child (``python -m vigil.ingest.mqtt_process``)."""
    try:
        for child in psutil.Process(service_pid).children():
            if INPUT_MODULE in child.cmdline():
                return child.pid
    except psutil.Error:
        pass
    return None


def _handled(state: Path) -> int:
    from benchmarks.bench_service import _status

    return int(_status(state).get("handled", 0))


def _wait_handled(state: Path, proc, n: int, timeout: float) -> bool:
    """Wait until the core has handled ``n`` messages; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _handled(state) >= n:
            return True
        if proc.poll() is not None:
            raise RuntimeError(f"vigil run exited with {proc.returncode}")
        time.sleep(0.05)
    return False


def soak(args, broker, user: str, folder: Path) -> dict:
    """The load through ``vigil run``; samples per ``args.sample_s`` simulated seconds."""
    from benchmarks.bench_restart import Load
    from benchmarks.bench_service import _client, _service
    from vigil.config import load_default
    from vigil.ingest.schema import encode

    state = folder / "state"
    state.mkdir()
    log = folder / "run.log"
    load = Load(load_default().site, args.rate, args.walkers)
    proc = _service(broker, user, state, 1.0, log, timeout=120.0)
    pub = _client("bench-soak-pub", user, broker.port)
    broker_pid = broker._proc.pid if broker._proc is not None else None
    rows: list[dict] = []
    pids: set[int] = set()

    def sample(sim_s: float, sent: int, wall: float) -> None:
        child = input_child(proc.pid)
        if child is not None:
            pids.add(child)
        row = {
            "sim_h": sim_s / 3600.0,
            "messages": sent,
            "wall_s": wall,
            "input_mb": rss_mb(child),
            "core_mb": rss_mb(proc.pid),
            "broker_mb": rss_mb(broker_pid),
            "load1": os.getloadavg()[0],
            "input_pid": child,
        }
        rows.append(row)
        print(
            f"  {row['sim_h']:6.2f} h simulated: {sent} messages, input {row['input_mb']:.1f} MB, "
            f"core {row['core_mb']:.1f} MB, broker {row['broker_mb']:.1f} MB, "
            f"{wall:.0f} s wall, load {row['load1']:.1f}",
            flush=True,
        )

    seconds = int(round(args.hours * 3600))
    sent = 0
    done_s = 0
    t0 = time.perf_counter()
    try:
        sample(0.0, 0, 0.0)  # connected, before the load
        handled = 0
        for s in range(seconds):
            if args.max_wall_s and time.perf_counter() - t0 > args.max_wall_s:
                break
            for topic, msg in load.second(s):
                while sent - handled >= args.window:
                    time.sleep(0.01)
                    handled = _handled(state)
                    if proc.poll() is not None:
                        raise RuntimeError(f"vigil run exited: {log.read_text()[-2000:]}")
                pub.publish(topic, encode(msg), qos=1)
                sent += 1
            done_s = s + 1
            if done_s % args.sample_s == 0:
                if not _wait_handled(state, proc, sent, 300.0):
                    raise RuntimeError(f"the core did not handle {sent} messages within 300 s")
                handled = sent
                sample(done_s, sent, time.perf_counter() - t0)
        if done_s % args.sample_s:
            _wait_handled(state, proc, sent, 300.0)
            sample(done_s, sent, time.perf_counter() - t0)
        wall = time.perf_counter() - t0
        from benchmarks.bench_service import _status

        status = _status(state)
    finally:
        pub.disconnect()
        pub.loop_stop()
        proc.terminate()
        try:
            proc.wait(120)
        except Exception:
            proc.kill()
            proc.wait(10)
    return {
        "rows": rows,
        "messages": sent,
        "hours": done_s / 3600.0,
        "wall_s": wall,
        "msg_s": sent / wall if wall > 0 else float("nan"),
        "input_pids": sorted(pids),
        "status": status,
    }


def excess(rows: list[dict], key: str, ref_h: float = 1.0) -> tuple[float, float, float]:
    """(reference value, largest excess over it, hour of that excess) for column ``key``: the
    reference is the first sample at or after ``ref_h`` simulated hours (the first sample
    after the start when the run is shorter)."""
    later = [r for r in rows[1:] if r["sim_h"] >= ref_h - 1e-9]
    if not later:
        return float("nan"), float("nan"), float("nan")
    ref = later[0][key]
    if len(later) == 1:
        return ref, float("nan"), float("nan")
    top = max(later[1:], key=lambda r: r[key])
    return ref, top[key] - ref, top["sim_h"]


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its table, return the numbers."""
    from benchmarks.bench_mqtt import _broker

    ap = argparse.ArgumentParser(prog="bench_input_soak", description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0, help="simulated hours of load")
    ap.add_argument("--rate", type=float, default=50.0, help="messages per simulated second")
    ap.add_argument("--walkers", type=int, default=5)
    ap.add_argument(
        "--sample-s", type=int, default=3600, help="simulated seconds between RSS samples"
    )
    ap.add_argument(
        "--window", type=int, default=4000, help="messages the publisher may be ahead of the core"
    )
    ap.add_argument(
        "--max-wall-s", type=float, default=0.0, help="stop the load after this (0: never)"
    )
    ap.add_argument("--target-mb", type=float, default=50.0, help="issue 19: 50 MB")
    args = ap.parse_args(argv)
    if args.sample_s < 1:
        ap.error("--sample-s must be at least 1")
    broker, user = _broker()
    with broker, tempfile.TemporaryDirectory(prefix="vigil-bench-soak-") as tmp:
        res = soak(args, broker, user, Path(tmp))
    rows = res["rows"]
    print(
        f"\n{res['hours']:.2f} simulated h at {args.rate:g} msg/s: {res['messages']} messages "
        f"through Mosquitto and vigil run in {res['wall_s']:.0f} s wall "
        f"({res['msg_s']:.0f} msg/s); "
        f"input process pid(s) {res['input_pids']}"
    )
    print(
        f"{'sim h':>7}{'messages':>11}{'wall s':>8}{'input MB':>10}{'core MB':>9}"
        f"{'broker MB':>11}{'load':>6}"
    )
    for r in rows:
        print(
            f"{r['sim_h']:>7.2f}{r['messages']:>11}{r['wall_s']:>8.0f}{r['input_mb']:>10.1f}"
            f"{r['core_mb']:>9.1f}{r['broker_mb']:>11.1f}{r['load1']:>6.1f}"
        )
    ref_h = 1.0 if res["hours"] >= 1.0 + args.sample_s / 3600.0 - 1e-9 else 0.0
    res["excess"] = {}
    for key, name in (("input_mb", "input process"), ("core_mb", "core process")):
        ref, over, at = excess(rows, key, ref_h)
        res["excess"][key] = {"ref_mb": ref, "excess_mb": over, "at_h": at}
        verdict = (
            "no later sample to compare"
            if over != over
            else ("within" if over <= args.target_mb else "NOT within")
        )
        print(
            f"{name}: {ref:.1f} MB at {ref_h:g} h; largest excess after it {over:+.1f} MB "
            f"(at {at:.2f} h): {verdict} the {args.target_mb:g} MB target"
        )
    st = res["status"]
    print(
        f"service at the end: handled {st.get('handled')}, input bus {st.get('input_bus')}, "
        f"quarantine {st.get('quarantine')}, snapshots {st.get('snapshots')}"
    )
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
