"""Restart time and memory of the sector service after a long recorded load (issue 19 item 4).

A synthetic recorded load at ``--rate`` messages per second (default 50) for ``--hours``
simulated hours goes through a :class:`~vigil.service.SectorService` as its core thread takes
it: each second's messages are journaled (one transaction, as the input bus journals a batch)
and handed to the runner; the stores are flushed every 5 simulated seconds and the service
snapshots every ``--snapshot-every`` messages and prunes its journal, as ``vigil run`` does.
No broker: the outputs go to the output outbox on disk (never sent), so this measures the
core's own work. Resident memory (VmRSS) is sampled at every simulated hour.

Load: ``--walkers`` people walking north across the border at 1.2 m/s, each seen by a tower
camera often enough that the load averages ``rate`` over a walker's cycle; a walker is dropped
1,500 m past the line and a new one starts south of it 5 minutes later (crossings, alerts,
tracks that end), and the 60 ground
sensors report their status every 10 minutes.

At the end the run stops without a clean close (as after a SIGKILL: the newest snapshot is up
to ``--snapshot-every`` messages old), and a new process restarts the service from the state
folder. Restart time is that process's wall time from its start to the end of the replay
(imports, snapshot load, journal tail); the same journal replayed without snapshots would take
``messages / replay rate``, shown for comparison.

Usage (the full acceptance run, about an hour on one core):
``python -m benchmarks.bench_restart --hours 24``; a short one: ``--hours 2``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
START = 1_780_300_800.0  # 2026-06-01T08:00:00Z


def rss_mb() -> float:
    """This process's resident set size, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class Load:
    """The synthetic recorded load, one simulated second at a time."""

    def __init__(self, site, rate: float, walkers: int, seed: int = 19) -> None:
        self.site = site
        self.frame = site.frame()
        border = site.border(self.frame)
        bx, by = np.asarray(border.line.coords).T
        order = np.argsort(bx)
        rng = np.random.default_rng(seed)
        self.x = np.linspace(-12_000.0, 12_000.0, walkers) + rng.normal(0, 100.0, walkers)
        self.y0 = np.interp(self.x, bx[order], by[order])  # the line under each walker
        self.walk_s = walk_s = (300.0 + 1500.0) / 1.2  # 300 m south of the line to 1500 m north
        self.cycle_s = walk_s + 300.0  # then 5 minutes before the next one
        self.hz = rate / walkers * self.cycle_s / walk_s  # rate on average over a cycle
        self.offset = rng.uniform(0, self.cycle_s, walkers)
        self.sensors = [s.id for s in site.sensors]

    def second(self, s: int) -> list:
        """The messages stamped within simulated second ``s`` (from the start), in time order."""
        from vigil.ingest.schema import CameraDetection, SensorStatus, topic_for

        out = []
        n = max(1, int(round(self.hz)))
        for j in range(n):
            t = s + j / n
            phase = (t + self.offset) % self.cycle_s
            walking = phase < self.walk_s
            if not walking.any():
                continue
            y = self.y0 - 300.0 + 1.2 * phase
            lat, lon = self.frame.to_wgs84(self.x[walking], y[walking])
            for a, o in zip(lat, lon, strict=True):
                d = CameraDetection(
                    camera="t03", time=START + t, lat=float(a), lon=float(o),
                    cov=(25.0, 0.0, 0.0, 25.0), class_guess="person", class_confidence=0.8,
                )  # fmt: skip
                out.append((topic_for("tucson", d), d))
        if s % 600 == 0:
            for sid in self.sensors:
                st = SensorStatus(sensor=sid, time=START + s, battery=0.9, last_heard=START + s)
                out.append((topic_for("tucson", st), st))
        return out


def run(args, state: Path) -> dict:
    """The recorded load through the service; stops without a clean close."""
    from vigil.config import load_default
    from vigil.ingest.journal import Arrival
    from vigil.ingest.mqtt import MqttSettings
    from vigil.ingest.schema import encode
    from vigil.service import SectorService

    site = load_default().site
    load = Load(site, args.rate, args.walkers)
    svc = SectorService(
        site, MqttSettings(host="127.0.0.1", port=1), state, hold_s=1.0,
        snapshot_every=args.snapshot_every, snapshot_s=0.0, snapshot_min_s=0.0,
        journal_synchronous="NORMAL",
    )  # fmt: skip
    svc._replay()
    runner = svc.runner
    seconds = int(args.hours * 3600)
    stop_at = seconds - 1
    rss: list[tuple[float, float]] = [(0.0, rss_mb())]
    t0 = time.perf_counter()
    core_s = 0.0
    n = 0
    done = 0
    for s in range(seconds):
        if args.max_wall_s and time.perf_counter() - t0 > args.max_wall_s:
            break  # out of time: restart from what is there
        done = s + 1
        msgs = load.second(s)
        svc.journal.append_many(
            [Arrival(f"b{n + i}", topic, encode(m), START + s) for i, (topic, m) in enumerate(msgs)]
        )
        c0 = time.perf_counter()
        for topic, msg in msgs:
            svc.handled += 1
            runner.handle(topic, msg)
        if s % 5 == 0:
            runner.core.flush_stores()
        if svc._snapshot_due(time.monotonic()) and s < stop_at - 60:
            svc._take_snapshot(runner)  # none in the last minute: a tail to replay
        core_s += time.perf_counter() - c0
        n += len(msgs)
        if (s + 1) % 3600 == 0:
            rss.append(((s + 1) / 3600.0, rss_mb()))
            print(
                f"  {(s + 1) / 3600:5.1f} h simulated: {n} messages, RSS {rss[-1][1]:.1f} MB, "
                f"{time.perf_counter() - t0:.0f} s wall",
                flush=True,
            )
    wall = time.perf_counter() - t0
    out = {
        "messages": n,
        "hours": done / 3600.0,
        "wall_s": wall,
        "core_msg_s": n / core_s,
        "rss_mb": rss,
        "snapshots": dict(svc.snapshot_counts),
        "tail": svc.handled - svc._snap[1],
        "journal_rows": svc.journal.count(),
    }
    os.sync()
    return out  # no close: what a SIGKILL leaves


RESTART = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from vigil.config import load_default
from vigil.ingest.mqtt import MqttSettings
from vigil.service import SectorService
svc = SectorService(load_default().site, MqttSettings(host="127.0.0.1", port=1), Path(sys.argv[1]),
                    hold_s=1.0, snapshot_s=0.0)
r = svc._replay()
print(json.dumps({"process_s": time.perf_counter() - t0, "replay_s": r.replay_s,
                  "replayed": r.replayed, "snapshot_handled": r.snapshot_handled}))
"""


def restart(state: Path) -> dict:
    """Start a new process on the state folder; its timings."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RESTART, str(state)],
        capture_output=True, text=True, env=env, cwd=REPO, check=True,
    )  # fmt: skip
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its results, return them."""
    ap = argparse.ArgumentParser(prog="bench_restart", description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0, help="simulated hours of load")
    ap.add_argument("--rate", type=float, default=50.0, help="messages per simulated second")
    ap.add_argument("--walkers", type=int, default=5)
    ap.add_argument("--snapshot-every", type=int, default=5_000, help="messages")
    ap.add_argument("--keep", type=Path, help="leave the state folder here (must not exist)")
    ap.add_argument(
        "--max-wall-s", type=float, default=0.0, help="stop the load after this (0: never)"
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-restart-") as tmp:
        state = args.keep or Path(tmp) / "state"
        res = run(args, state)
        sizes = {p.name: p.stat().st_size for p in state.iterdir() if p.is_file()}
        res["restart"] = restart(state)
    res["files_bytes"] = sizes
    first = res["rss_mb"][1][1] if len(res["rss_mb"]) > 1 else float("nan")
    later = [m for h, m in res["rss_mb"][2:]]
    res["rss_growth_after_1h_mb"] = (max(later) - first) if later else float("nan")
    r = res["restart"]
    full_s = res["messages"] / res["core_msg_s"]
    print(
        f"\n{res['hours']:.2f} h at {args.rate:g} msg/s: {res['messages']} messages through the "
        f"service core at {res['core_msg_s']:.0f} msg/s ({res['wall_s']:.0f} s wall), "
        f"{res['snapshots']['written']} snapshots, journal left {res['journal_rows']} rows"
    )
    snap = max((v for k, v in sizes.items() if k.startswith("snapshot-")), default=0)
    print(
        f"restart in a new process: {r['wall_s']:.2f} s wall (replay {r['replay_s']:.2f} s: "
        f"snapshot of {r['snapshot_handled']} messages, {r['replayed']} replayed after it); "
        f"snapshot file {snap / 1e6:.2f} MB, journal {sizes.get('journal.sqlite', 0) / 1e6:.1f} MB"
    )
    print(f"the whole journal replayed instead (no snapshots): about {full_s:.0f} s")
    print(
        "RSS by simulated hour (MB): "
        + ", ".join(f"{h:g} h {m:.1f}" for h, m in res["rss_mb"])
        + f"; growth after the first hour {res['rss_growth_after_1h_mb']:+.1f} MB"
    )
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
