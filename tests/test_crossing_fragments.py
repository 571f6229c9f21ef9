"""Crossings split across track fragments (issue 22): a track lost on the far side and a new one
born on the US side within a walker's reach make one inferred crossing."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.geo.border import Border
from vigil.geo.crossing_fragments import FragmentSettings, LastSeen, best_predecessor
from vigil.geo.crossing_monitor import CrossingMonitor
from vigil.geo.frames import LocalFrame

T0 = 1_780_000_000.0
FS = FragmentSettings(gap_s=300.0, speed_mps=2.0, slack_m=60.0, confidence=0.7)


@pytest.fixture(scope="module")
def border() -> Border:
    return Border(
        "tucson", LocalFrame(31.33, -110.94), start=(31.333, -111.15), end=(31.333, -110.73)
    )


def _at(border: Border, chainage: float, offsets) -> tuple[np.ndarray, np.ndarray]:
    """Points ``offsets`` metres from the line (+ into the US) at ``chainage`` metres."""
    p = border.line.interpolate(chainage)
    q = border.line.interpolate(chainage + 5)
    tx, ty = (q.x - p.x) / 5, (q.y - p.y) / 5
    off = np.asarray(offsets, dtype=float)
    return p.x + off * ty, p.y - off * tx


def _walk(monitor: CrossingMonitor, tid: str, t, x, y) -> list:
    return [e for k in range(len(t)) for e in monitor.update([tid], [t[k]], [x[k]], [y[k]])]


def _fragments(monitor: CrossingMonitor, border: Border, gap_s: float, born_m: float, ch=9_000.0):
    """A walker at 1.2 m/s tracked from 200 m south to 40 m south of the line, lost, and a new
    track born ``born_m`` into the US ``gap_s`` later, walking on north for 60 s."""
    s = np.arange(134.0)
    x, y = _at(border, ch, -200.0 + 1.2 * s)
    events = _walk(monitor, "a", T0 + s, x, y)
    s2 = np.arange(60.0)
    x2, y2 = _at(border, ch + 10.0, born_m + 1.2 * s2)
    events += _walk(monitor, "b", T0 + 133.0 + gap_s + s2, x2, y2)
    return events


def test_a_crossing_between_two_fragments_is_inferred(border: Border) -> None:
    monitor = CrossingMonitor(border, fragments=FS)
    (ev,) = _fragments(monitor, border, gap_s=60.0, born_m=30.0)
    assert ev.track_id == "b" and ev.entering_us and ev.inferred
    assert ev.direction == "northbound" and ev.confidence == 0.7
    # on the straight step from (-40.4 m, t0+133) to (+30 m, t0+193): 40.4/70.4 of the way
    assert ev.time == pytest.approx(T0 + 133.0 + 60.0 * 40.4 / 70.4, abs=0.5)
    assert float(border.distance([ev.x], [ev.y])[0]) < 1.0
    assert monitor.fragment_crossings == 1
    # the same tracks with fragments off: no crossing at all
    assert _fragments(CrossingMonitor(border), border, gap_s=60.0, born_m=30.0) == []


@pytest.mark.parametrize(
    ("gap_s", "born_m", "crossed"),
    [
        (60.0, 30.0, True),
        (200.0, 300.0, True),  # 340 m in 200 s: within 60 + 2 * 200
        (60.0, 300.0, False),  # 340 m in 60 s: a runner's pace, not a walker's
        (400.0, 30.0, False),  # past gap_s
    ],
    ids=["near", "far-slow", "too-fast", "too-late"],
)
def test_only_a_walkers_reach_counts(border, gap_s, born_m, crossed) -> None:
    events = _fragments(CrossingMonitor(border, fragments=FS), border, gap_s, born_m)
    assert (len(events) == 1) is crossed


def test_a_predecessor_still_seen_after_the_birth_hands_nothing_on(border: Border) -> None:
    monitor = CrossingMonitor(border, fragments=FS)
    x, y = _at(border, 9_000.0, [-60.0, -59.0])
    monitor.update(["a"], [T0], x[:1], y[:1])
    xb, yb = _at(border, 9_000.0, [40.0, 45.0])
    # "b" is born while "a" is being updated in the same batch and after: "a" is still there
    got = monitor.update(["a", "b"], [T0 + 10.0, T0 + 10.0], [x[1], xb[0]], [y[1], yb[0]])
    assert got == []


def test_an_ended_track_hands_on_once(border: Border) -> None:
    monitor = CrossingMonitor(border, fragments=FS)
    s = np.arange(20.0)
    x, y = _at(border, 9_000.0, -60.0 + 1.2 * s)
    _walk(monitor, "a", T0 + s, x, y)
    monitor.forget("a")  # ended: kept aside for a successor
    assert "a" in monitor.departed
    x1, y1 = _at(border, 9_000.0, 40.0 + s)
    first = _walk(monitor, "b", T0 + 60.0 + s, x1, y1)
    x2, y2 = _at(border, 9_030.0, 40.0 + s)
    second = _walk(monitor, "c", T0 + 61.0 + s, x2, y2)
    assert [e.track_id for e in first] == ["b"] and second == []
    # the same id taken back after its end (reacquisition) continues it
    monitor2 = CrossingMonitor(border, fragments=FS)
    _walk(monitor2, "a", T0 + s, x, y)
    monitor2.forget("a")
    assert [e.track_id for e in _walk(monitor2, "a", T0 + 60.0 + s, x1, y1)] == ["a"]


def test_two_groups_each_bring_their_own_track(border: Border) -> None:
    """Two groups lost 400 m apart along the line; their successors are born each near its
    own group: two crossings, each placed by its own group."""
    monitor = CrossingMonitor(border, fragments=FS)
    s = np.arange(20.0)
    for tid, ch in (("a", 9_000.0), ("b", 9_400.0)):
        x, y = _at(border, ch, -50.0 + 1.2 * s)
        _walk(monitor, tid, T0 + s, x, y)
    got = []
    for tid, ch in (("a2", 9_390.0), ("b2", 9_010.0)):
        x, y = _at(border, ch, 30.0 + 1.2 * s)
        got += _walk(monitor, tid, T0 + 90.0 + s, x, y)
    assert sorted(e.track_id for e in got) == ["a2", "b2"]
    by = {e.track_id: e.chainage_km for e in got}
    assert by["a2"] == pytest.approx(9.395, abs=0.01)  # from "b" (near), not "a" (390 m off)
    assert by["b2"] == pytest.approx(9.005, abs=0.01)


def test_a_track_that_crossed_by_itself_is_not_counted_twice(border: Border) -> None:
    monitor = CrossingMonitor(border, fragments=FS)
    s = np.arange(120.0)
    x, y = _at(border, 9_000.0, -60.0 + 1.2 * s)
    got = _walk(monitor, "a", T0 + s, x, y)
    assert len(got) == 1 and not got[0].inferred


def test_best_predecessor_prefers_the_tightest_fit() -> None:
    born = LastSeen(100.0, 0.0, 50.0, 50.0)
    cands = {
        "near": LastSeen(90.0, 0.0, -20.0, -20.0),  # 70 m in 10 s: 70 / 80 of the reach
        "late": LastSeen(40.0, 0.0, -30.0, -30.0),  # 80 m in 60 s: 80 / 180
        "north": LastSeen(90.0, 0.0, 10.0, 10.0),  # on the US side: not a predecessor
        "after": LastSeen(101.0, 0.0, -5.0, -5.0),  # after the birth
    }
    assert best_predecessor(born, cands, FS) == "late"
    assert best_predecessor(born, {"near": cands["near"]}, FS) == "near"
    assert best_predecessor(born, {k: cands[k] for k in ("north", "after")}, FS) is None


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="gap_s"):
        FragmentSettings(gap_s=-1.0)
    with pytest.raises(ValueError, match="confidence"):
        FragmentSettings(confidence=0.0)


def test_the_core_infers_only_when_asked_and_keeps_it_on_relief() -> None:
    from vigil.config import load_default
    from vigil.core import FIELD_ENTRY_M, FIELD_FRAGMENTS, SectorCore
    from vigil.ingest.bus import InProcessBus

    site = load_default().site
    core = SectorCore(site, InProcessBus(site.sector.name))
    try:
        assert core.monitor.fragments is None and core.monitor.entry_m == 0.0
        core.infer_crossings()
        assert core.monitor.fragments == FIELD_FRAGMENTS
        assert core.monitor.entry_m == FIELD_ENTRY_M > 0.0
        core.use_image_side()  # the image-side monitor replaces the monitor: same inference
        assert core.monitor.fragments == FIELD_FRAGMENTS
        assert core.monitor.entry_m == FIELD_ENTRY_M
    finally:
        core.close()
