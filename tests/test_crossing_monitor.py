"""The streaming crossing monitor agrees with the batch detector on the same paths."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.geo.border import Border
from vigil.geo.crossing_monitor import CrossingMonitor
from vigil.geo.crossings import detect_crossings
from vigil.geo.frames import LocalFrame


@pytest.fixture(scope="module")
def border() -> Border:
    return Border(
        "tucson", LocalFrame(31.33, -110.94), start=(31.333, -111.15), end=(31.333, -110.73)
    )


def _paths(border: Border, n: int, seed: int):
    """Walkers crossing north, some turning back, some jittering along the line."""
    rng = np.random.default_rng(seed)
    ids, ts, xs, ys = [], [], [], []
    for k in range(n):
        c = rng.uniform(1_000, border.length_m - 1_000)
        p = border.line.interpolate(c)
        q = border.line.interpolate(c + 5)
        tx, ty = (q.x - p.x) / 5, (q.y - p.y) / 5
        rx, ry = ty, -tx  # towards the US
        kind = k % 3
        steps = 400
        s = np.arange(steps)
        if kind == 0:  # crosses north
            off = -150 + 1.2 * s + rng.normal(0, 1.5, steps)
        elif kind == 1:  # comes to the line and goes back
            off = -150 + 1.2 * np.minimum(s, 120) - 1.2 * np.maximum(s - 120, 0)
        else:  # jitters along the line within 6 m
            off = rng.normal(0, 3.0, steps).clip(-6, 6)
        along = 0.3 * s
        ids += [f"k{k}"] * steps
        ts += list(1_780_000_000.0 + s)
        xs += list(p.x + off * rx + along * tx)
        ys += list(p.y + off * ry + along * ty)
    return np.array(ids), np.array(ts), np.array(xs), np.array(ys)


def test_stream_matches_batch(border: Border) -> None:
    ids, t, x, y = _paths(border, 60, seed=4)
    batch = detect_crossings(ids, t, x, y, border, hysteresis_m=10.0).crossings
    monitor = CrossingMonitor(border, hysteresis_m=10.0)
    events = []
    for step in np.unique(t):  # one update per second with every live track
        sel = t == step
        events += monitor.update(list(ids[sel]), t[sel], x[sel], y[sel])
    assert len(events) == len(batch) == 20
    got = sorted((e.track_id, round(e.time, 3), e.segment_id, e.direction) for e in events)
    want = sorted(
        (r.track_id, round(r.time, 3), r.segment_id, r.direction) for r in batch.itertuples()
    )
    assert got == want
    assert all(e.direction == "northbound" for e in events)


def test_jitter_and_turn_back_make_no_crossing(border: Border) -> None:
    ids, t, x, y = _paths(border, 30, seed=9)
    monitor = CrossingMonitor(border)
    crossed = set()
    for step in np.unique(t):
        sel = t == step
        crossed |= {e.track_id for e in monitor.update(list(ids[sel]), t[sel], x[sel], y[sel])}
    assert crossed == {f"k{k}" for k in range(0, 30, 3)}


def _offset_path(border: Border, chainage: float, offsets: np.ndarray):
    p = border.line.interpolate(chainage)
    q = border.line.interpolate(chainage + 5)
    tx, ty = (q.x - p.x) / 5, (q.y - p.y) / 5
    return p.x + offsets * ty, p.y - offsets * tx  # offsets > 0: into the US


def test_entry_is_inferred_back_to_the_line(border: Border) -> None:
    t = 1_780_000_000.0 + np.arange(120.0)
    monitor = CrossingMonitor(border, entry_m=400.0, entry_rise_m=30.0)
    # first seen 200 m into the US, walking north at 1.5 m/s: it crossed 133 s earlier
    x, y = _offset_path(border, 12_300.0, 200.0 + 1.5 * np.arange(120.0))
    events = [e for k in range(120) for e in monitor.update(["new"], [t[k]], [x[k]], [y[k]])]
    (ev,) = events
    assert ev.inferred and ev.entering_us and ev.direction == "northbound"
    assert ev.time == pytest.approx(t[0] - 200.0 / 1.5, abs=1.0)
    assert ev.segment_id == "tucson-0012"
    assert float(border.distance([ev.x], [ev.y])[0]) < 1.0
    # first seen far from the line, or walking toward it, or standing: nothing inferred
    for name, start, v in [("far", 600.0, 1.5), ("toward", 200.0, -1.0), ("still", 100.0, 0.1)]:
        x, y = _offset_path(border, 20_000.0, start + v * np.arange(120.0))
        got = [e for k in range(60) for e in monitor.update([name], [t[k]], [x[k]], [y[k]])]
        assert got == [], name
    # without entry_m the monitor infers nothing
    plain = CrossingMonitor(border)
    x, y = _offset_path(border, 12_300.0, 200.0 + 1.5 * np.arange(120.0))
    assert [e for k in range(120) for e in plain.update(["n"], [t[k]], [x[k]], [y[k]])] == []
