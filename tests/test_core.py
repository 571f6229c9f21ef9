"""The field core (what ``vigil run`` runs) loads no simulator and holds bounded state."""

from __future__ import annotations

import gc
import math
import subprocess
import sys
import types

import numpy as np

from vigil.config import load_default
from vigil.core import SectorCore
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import CameraDetection, topic_for

_IMPORTED_SIM = (
    "import sys, importlib\n"
    "for name in sys.argv[1:]:\n"
    "    importlib.import_module(name)\n"
    "print(' '.join(sorted(m for m in sys.modules if m.startswith('vigil.sim'))))\n"
)


def _simulator_modules_loaded_by(*modules: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _IMPORTED_SIM, *modules],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_field_service_loads_no_simulator_or_scorer() -> None:
    assert _simulator_modules_loaded_by("vigil.core", "vigil.service") == []


def test_the_import_check_sees_the_simulator_where_it_is_loaded() -> None:
    # the demo's chain does load it: the check above is not blind
    loaded = _simulator_modules_loaded_by("vigil.pipeline")
    assert "vigil.sim.scoring" in loaded and "vigil.sim.world" in loaded


_SKIP = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)


def _retained_objects(root: object) -> int:
    """Objects reachable from ``root`` (modules, classes and functions not followed)."""
    seen = {id(root)}
    todo = [root]
    while todo:
        obj = todo.pop()
        for ref in gc.get_referents(obj):
            if id(ref) in seen or isinstance(ref, _SKIP):
                continue
            seen.add(id(ref))
            todo.append(ref)
    return len(seen)


def _steady_load(core: SectorCore, bus: InProcessBus, now: list[float], hours: float, seed: int):
    """People walking about north of the line in one camera's view, each for 10 minutes,
    a new one every minute (about ten at a time); a detection of each every 2 s."""
    rng = np.random.default_rng(seed)
    frame = core.frame
    tower = core.site.towers[0]
    tx, ty = frame.to_local([tower.lat], [tower.lon])
    t0 = now[0]
    walkers: list[list[float]] = []  # x, y, vx, vy, end time
    step = 2.0
    for k in range(int(hours * 3600 / step)):
        t = t0 + k * step
        if k % 30 == 0:
            a = rng.uniform(0, 2 * math.pi)
            r = rng.uniform(300, 1200)
            h = rng.uniform(0, 2 * math.pi)
            x0, y0 = tx[0] + r * math.cos(a), ty[0] + r * math.sin(a)
            walkers.append([x0, y0, math.cos(h), math.sin(h), t + 600.0])
        walkers = [w for w in walkers if w[4] > t]
        if walkers:
            xs = np.array([w[0] + (t - (w[4] - 600.0)) * w[2] for w in walkers])
            ys = np.array([w[1] + (t - (w[4] - 600.0)) * w[3] for w in walkers])
            xs += rng.normal(0, 5, xs.size)
            ys += rng.normal(0, 5, ys.size)
            lat, lon = frame.to_wgs84(xs, ys)
            now[0] = t
            for la, lo in zip(lat, lon, strict=True):
                d = CameraDetection(
                    camera=tower.id,
                    time=t,
                    lat=float(la),
                    lon=float(lo),
                    cov=(25.0, 0.0, 0.0, 25.0),
                    class_guess="person",
                    class_confidence=0.6,
                    range_m=800.0,
                )
                bus.publish(topic_for(core.sector, d), d)
        now[0] = t + 1.0
        core.tick(t + 1.0)


def test_core_state_stays_bounded_over_hours_of_steady_load(tmp_path) -> None:
    site = load_default().site
    start = 1780304400.0
    now = [start]
    bus = InProcessBus(site.sector.name, clock=lambda: now[0])
    core = SectorCore(site, bus, store_dir=tmp_path)
    try:
        _steady_load(core, bus, now, 1.0, seed=1)
        after_1h = _retained_objects(core)
        tracks_1h = core.track_messages
        _steady_load(core, bus, now, 3.0, seed=2)
        after_4h = _retained_objects(core)
        # the load went on (many more track-seconds) but what the core holds did not grow
        assert core.track_messages > 3 * tracks_1h
        assert after_4h < 1.25 * after_1h, (after_1h, after_4h)
    finally:
        core.close()
