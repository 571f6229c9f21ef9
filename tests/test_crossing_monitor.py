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


def _across(border: Border, offsets, chainage_m: float = 20_000.0):
    """Points ``offsets`` metres from the line (+ US side) at one chainage."""
    p = border.line.interpolate(chainage_m)
    q = border.line.interpolate(chainage_m + 5)
    tx, ty = (q.x - p.x) / 5, (q.y - p.y) / 5
    off = np.asarray(offsets, dtype=float)
    return p.x + off * ty, p.y - off * tx, (ty, -tx)


def _cov_across(normal, sd_across: float, sd_along: float = 5.0) -> list:
    """A covariance (ee, en, ne, nn) with these standard deviations across and along the line."""
    n = np.asarray(normal)
    t = np.array([-n[1], n[0]])
    c = sd_across**2 * np.outer(n, n) + sd_along**2 * np.outer(t, t)
    return [float(c[0, 0]), float(c[0, 1]), float(c[1, 0]), float(c[1, 1])]


def test_an_unsure_track_gets_no_side_and_makes_no_crossing(border: Border) -> None:
    """A track 300 m into Mexico with a 400 m standard deviation across the line (a relief
    detection whose ray grazes a slope) that jumps 300 m into the US: by its positions alone
    it crosses; with its covariance it is never sure of a side, so nothing is committed. The
    same jump with a 5 m deviation is a crossing either way."""
    offsets = [-300.0, -290.0, 300.0, 310.0]
    x, y, normal = _across(border, offsets)
    t = 1_780_000_000.0 + np.arange(len(offsets))

    def run(sd: float, p: float | None) -> tuple[list, int]:
        mon = CrossingMonitor(border, side_probability=p, side_hold_s=0.0)
        events = []
        for i in range(len(offsets)):
            events += mon.update(["a"], t[i : i + 1], x[i : i + 1], y[i : i + 1],
                                 [_cov_across(normal, sd)])  # fmt: skip
        return events, mon.states["a"].side

    assert len(run(400.0, None)[0]) == 1  # positions alone (the default): a crossing
    events, side = run(400.0, 0.99)
    assert events == [] and side == 0
    events, side = run(5.0, 0.99)
    assert len(events) == 1 and events[0].entering_us and side == 1


def test_a_side_needs_the_probability_across_the_line(border: Border) -> None:
    """With a 100 m deviation across the line a track 200 m out is not sure of its side at
    0.99 (2.33 deviations: 233 m), at 250 m it is; at 0.9 (128 m) 200 m is enough."""
    for offset, p, want in ((200.0, 0.99, 0), (250.0, 0.99, -1), (200.0, 0.9, -1)):
        x, y, normal = _across(border, [-offset])
        mon = CrossingMonitor(border, side_probability=p, side_hold_s=0.0)
        mon.update(["a"], [1_780_000_000.0], x, y, np.array([_cov_across(normal, 100.0)]))
        assert mon.states["a"].side == want, (offset, p)
    with pytest.raises(ValueError, match="side_probability"):
        CrossingMonitor(border, side_probability=0.3)


def test_a_side_must_stay_sure_for_the_hold(border: Border) -> None:
    """On relief a person a pixel from a crest is placed now where they are, now on the far
    slope across the line: the track is sure of the wrong side for a few seconds. With a
    10 s hold that run neither gives it a side nor commits a crossing; a side sure at every
    update for 10 s is taken, and a crossing sure for 10 s is committed (once, at the
    interpolated zero), whatever the update rate."""
    sd = 20.0

    def run(offsets, hold: float, dt: float = 1.0) -> tuple[list, list[int]]:
        x, y, normal = _across(border, offsets)
        t = 1_780_000_000.0 + dt * np.arange(len(offsets))
        mon = CrossingMonitor(border, side_probability=0.99, side_hold_s=hold)
        events, sides = [], []
        for i in range(len(offsets)):
            events += mon.update(["a"], t[i : i + 1], x[i : i + 1], y[i : i + 1],
                                 [_cov_across(normal, sd)])  # fmt: skip
            sides.append(mon.states["a"].side)
        return events, sides

    # 300 m into Mexico, then 6 s sure of the US (the far slope), then Mexico again
    offsets = [-300.0] * 12 + [300.0] * 6 + [-300.0] * 12
    events, sides = run(offsets, 0.0)
    assert len(events) == 2 and sides[0] == -1  # at once: two false crossings
    events, sides = run(offsets, 10.0)
    assert events == [] and sides[:10] == [0] * 10 and sides[10] == -1 and sides[-1] == -1
    # a real crossing, sure for 10 s on the far side: committed when the hold is over
    offsets = [-300.0] * 12 + [300.0] * 12
    events, sides = run(offsets, 10.0)
    assert len(events) == 1 and events[0].entering_us and sides[21] == -1 and sides[22] == 1
    assert events[0].time == pytest.approx(1_780_000_000.0 + 11.5)
    # at 4 updates a second the same 10 s
    events, sides = run([-300.0] * 48, 10.0, dt=0.25)
    assert sides.index(-1) == 40
    # one update not sure restarts the hold
    events, sides = run([-300.0] * 8 + [-5.0] + [-300.0] * 10, 10.0)
    assert sides[-1] == 0
    with pytest.raises(ValueError, match="side_hold_s"):
        CrossingMonitor(border, side_probability=0.99, side_hold_s=-1.0)
