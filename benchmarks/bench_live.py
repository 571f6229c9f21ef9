"""The live map with 1,000 tracks updating at 1 Hz: how long the page takes to apply updates.

A publisher thread puts ``N`` Track messages on the in-process bus once a second (a tracker's
scan: all tracks at once), each track walking at 1 to 2 m/s from a seeded random start in the
Tucson sector. The live map server batches them per tick and pushes them over its WebSocket
to a logged-in commander's page in headless Chromium (Debian's), every non-local request
blocked. The page records, for each WebSocket message, in the browser (``performance.now``):

- ``apply``: from the message event to the end of its DOM and Leaflet updates;
- ``frame``: from the message event to the next animation frame (the update on screen);
- ``bus->applied``: from the first message of the batch reaching the server's bus handler
  to the end of the page's updates (wall clock, same machine): tick wait, encoding,
  transfer, queueing in the page and applying.

The target is 1 s from arrival to applied; ratios are printed against it (the anchor).

Run: ``python -m benchmarks live`` or ``python -m benchmarks.bench_live --tracks 1000
--seconds 20``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from vigil.config import load_default
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import Track
from vigil.maps.live import AuditLog, LiveMapApp, ServerThread, UserStore

TARGET_MS = 1000.0
LOCAL = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _publisher(bus, sector, n, seed, stop, period_s=1.0, ready=None, slices=1):
    """Publish ``n`` tracks every ``period_s``: at once (``slices=1``) or in ``slices`` equal
    groups spread over the period."""
    site_frame = load_default().site.frame()
    rng = np.random.default_rng(seed)
    x = rng.uniform(-18_000.0, 18_000.0, n)
    y = rng.uniform(-2_000.0, 9_000.0, n)
    speed = rng.uniform(1.0, 2.0, n)
    heading = rng.uniform(0.0, 2 * math.pi, n)
    vx, vy = speed * np.sin(heading), speed * np.cos(heading)
    classes = np.array(["person", "vehicle", "animal", "unknown"])[rng.integers(0, 4, n)]
    topic = f"vigil/v1/{sector}/tracks"
    ids = [f"b{i:05d}" for i in range(n)]
    scans = 0
    next_t = time.monotonic()
    while not stop.is_set():
        now = time.time()
        lat, lon = site_frame.to_wgs84(x, y)
        for i in range(n):
            if slices > 1 and i and i % math.ceil(n / slices) == 0:
                stop.wait(period_s / slices * 0.9)
            bus.publish(
                topic,
                Track(
                    track_id=ids[i],
                    time=now,
                    lat=float(lat[i]),
                    lon=float(lon[i]),
                    vx=float(vx[i]),
                    vy=float(vy[i]),
                    cov=(25.0, 0.0, 0.0, 25.0),
                    state="confirmed",
                    class_guess=str(classes[i]),
                ),
            )
        scans += 1
        if ready is not None and scans == 1:
            ready.set()
        x += vx * period_s
        y += vy * period_s
        next_t += period_s
        stop.wait(max(0.0, next_t - time.monotonic()))
    return scans


def _pct(values, q):
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def run(
    n_tracks: int, seconds: float, warmup_s: float, tick_s: float, seed: int, slices: int = 1
) -> dict:
    """One run; returns the percentiles (ms) and counts."""
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    site = load_default().site
    sector = site.sector.name
    tmp = Path(tempfile.mkdtemp(prefix="vigil-bench-live-"))
    bus = InProcessBus(sector)
    users = UserStore(tmp / "users.sqlite")
    users.add("bench", "commander", "bench-password")
    audit = AuditLog(tmp / "audit.sqlite")
    app = LiveMapApp(site, bus, users, audit, tick_s=tick_s)
    blocked: list[str] = []
    stop = threading.Event()
    ready = threading.Event()
    result: dict = {}
    with ServerThread(app) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 860})

        def route(r):
            if urlparse(r.request.url).hostname in LOCAL or r.request.url.startswith("data:"):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.goto(server.url + "/login")
        page.fill("#username", "bench")
        page.fill("#password", "bench-password")
        page.click("#login-button")
        page.wait_for_selector("#live-status[data-state=live]", timeout=30_000)
        pub = threading.Thread(
            target=_publisher,
            args=(bus, sector, n_tracks, seed, stop),
            kwargs={"ready": ready, "slices": slices},
        )
        pub.start()
        ready.wait(30)
        page.wait_for_function(
            f"() => Object.keys(VigilLive.tracks).length >= {n_tracks}", timeout=60_000
        )
        page.wait_for_timeout(int(warmup_s * 1000))
        page.evaluate("VigilLive.stats.reset()")
        t0 = time.perf_counter()
        page.wait_for_timeout(int(seconds * 1000))
        stats = page.evaluate(
            "() => { const s = VigilLive.stats; return {messages: s.messages,"
            " trackUpdates: s.trackUpdates, apply: s.applyMs, frame: s.frameMs,"
            " e2e: s.busToAppliedMs, markers: document.querySelectorAll('.vigil-track').length};"
            " }"
        )
        elapsed = time.perf_counter() - t0
        stop.set()
        pub.join()
        context.close()
        browser.close()
    app.close()
    result = {
        "tracks": n_tracks,
        "mode": "burst" if slices == 1 else f"spread/{slices}",
        "seconds": elapsed,
        "messages": stats["messages"],
        "track_updates_per_s": stats["trackUpdates"] / elapsed,
        "markers": stats["markers"],
        "blocked": len(blocked),
        "client_resyncs": app.live.counts["client_resyncs"],
    }
    for name in ("apply", "frame", "e2e"):
        for q in (50, 99):
            result[f"{name}_p{q}_ms"] = _pct(stats[name], q)
        result[f"{name}_max_ms"] = max(stats[name]) if stats[name] else float("nan")
    return result


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the table, return the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, nargs="+", default=[1000])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--tick", type=float, default=0.15, help="server batch tick, seconds")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--slices",
        type=int,
        nargs="+",
        default=[1, 10],
        help="1: each scan published at once; k: in k groups spread over the second",
    )
    args = ap.parse_args(argv)
    results = {}
    print(
        f"{'tracks':>6} {'mode':>9} {'upd/s':>7} {'msgs':>5} | "
        f"{'apply p50':>9} {'p99':>7} {'max':>7} | "
        f"{'frame p50':>9} {'p99':>7} | {'bus->applied p50':>16} {'p99':>7} | "
        f"{'p99/1s':>6} {'blocked':>7}"
    )
    for n in args.tracks:
        for k in args.slices:
            r = run(n, args.seconds, args.warmup, args.tick, args.seed, k)
            results[(n, r["mode"])] = r
            print(
                f"{n:>6} {r['mode']:>9} {r['track_updates_per_s']:>7.0f} {r['messages']:>5} | "
                f"{r['apply_p50_ms']:>9.1f} {r['apply_p99_ms']:>7.1f} {r['apply_max_ms']:>7.1f} | "
                f"{r['frame_p50_ms']:>9.1f} {r['frame_p99_ms']:>7.1f} | "
                f"{r['e2e_p50_ms']:>16.1f} {r['e2e_p99_ms']:>7.1f} | "
                f"{r['e2e_p99_ms'] / TARGET_MS:>6.3f} {r['blocked']:>7}",
                flush=True,
            )
    return results


if __name__ == "__main__":
    main()
