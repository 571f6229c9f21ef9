"""The protocol's run-edge margins (issue 22): a warm-up simulated before and a tail after the
scored interval; only crossings, false alerts and exposure inside the interval are scored."""

from __future__ import annotations

import pytest

from benchmarks import bench_protocol
from vigil.sim.protocol import (
    AlertEvent,
    Margins,
    TrueCrossing,
    crowded,
    in_scored_interval,
    score_events,
)

T0 = 1_780_304_400.0  # the scored interval's start
D = 900.0  # the scored interval, s


def _ev(aid: str, t: float, x: float = 0.0, new: bool = True) -> AlertEvent:
    return AlertEvent(aid, f"T{aid}", t, x, 0.0, estimated=t - 30.0, new=new)


def test_margins_place_the_simulation_around_the_scored_interval():
    assert Margins().run(T0, D) == (T0 - 300.0, 300.0 + D + 900.0)
    assert Margins(0.0, 0.0).run(T0, D) == (T0, D)
    with pytest.raises(ValueError, match="margins"):
        Margins(-1.0, 900.0)


def test_a_crossing_at_the_edge_is_not_counted_and_exposure_is_the_interval():
    # one crossing in the warm-up, one inside, one in the tail (30 s after the interval), one
    # inside but outside coverage; every crossing has its own alert
    raw = [
        TrueCrossing("w", T0 - 100.0, 0.0, 0.0),
        TrueCrossing("in", T0 + 400.0, 5_000.0, 0.0),
        TrueCrossing("tail", T0 + D + 30.0, 10_000.0, 0.0),
        TrueCrossing("dark", T0 + 500.0, 15_000.0, 0.0, inside=False),
    ]
    crossings = in_scored_interval(raw, T0, T0 + D)
    assert [c.counted for c in crossings] == [False, True, False, False]
    events = [_ev("a", T0 - 40.0), _ev("b", T0 + 460.0, 5_000.0), _ev("c", T0 + D + 90.0, 1e4)]
    r = score_events(
        crossings, events, border_km=20.0, duration_s=D, start_time=T0, run_start=T0 - 300.0
    )
    # the tail crossing is alerted after the interval: neither a miss nor a false alert
    assert (r["crossings"], r["alerted"], r["false_alerts"]) == (1, 1, 0)
    assert r["latency_s"] == [60.0]
    assert r["exposure_10km_day"] == pytest.approx(2.0 * D / 86400.0)
    # the same run with margins 0 over its whole length counts the edge crossings
    whole = in_scored_interval(raw, T0 - 300.0, T0 + D + 900.0)
    assert sum(c.counted for c in whole) == 3


def test_false_alerts_are_those_published_inside_the_interval():
    crossings = in_scored_interval([TrueCrossing("c", T0 + 100.0, 0.0, 0.0)], T0, T0 + D)
    # unmatched new alerts far away: one in the warm-up, one inside, one in the tail
    events = [_ev("w", T0 - 200.0, 9e4), _ev("i", T0 + 300.0, 9e4), _ev("t", T0 + D + 5, 9e4)]
    r = score_events(
        crossings, events, border_km=20.0, duration_s=D, start_time=T0, run_start=T0 - 300.0
    )
    assert (r["false_alerts"], r["unmatched_outside"], r["alerted"]) == (1, 2, 0)
    # without margins every one of them would be in the interval
    r0 = score_events(crossings, events, border_km=20.0, duration_s=D + 1e4, start_time=T0 - 300)
    assert r0["false_alerts"] == 3


def test_crowded_crossings_and_the_recall_split():
    c = [
        TrueCrossing("a", T0, 0.0, 0.0),
        TrueCrossing("b", T0 + 120.0, 300.0, 0.0),  # 300 m and 2 min from a
        TrueCrossing("c", T0 + 200.0, 5_000.0, 0.0),  # alone
        TrueCrossing("d", T0 + 2_000.0, 0.0, 0.0),  # where a was, 33 min later
    ]
    assert crowded(c) == [True, True, False, False]
    # one alert event for a and b: one of the two crowded crossings is alerted
    r = score_events(c, [_ev("x", T0 + 150.0, 150.0)], border_km=20, duration_s=1e4, start_time=T0)
    assert r["isolated_crowded"] == [2, 0, 2, 1]


def test_rescore_over_the_whole_run_counts_the_edges():
    raw = [
        TrueCrossing("in", T0 + 400.0, 0.0, 0.0),
        TrueCrossing("tail", T0 + D + 30.0, 5_000.0, 0.0),
    ]
    crossings = in_scored_interval(raw, T0, T0 + D)
    events = [_ev("a", T0 + 430.0)]
    r = score_events(crossings, events, border_km=20.0, duration_s=D, start_time=T0)
    r["truth"] = [[c.crossing_id, c.time, c.x, c.y, c.counted, c.group_id, c.inside]
                  for c in crossings]  # fmt: skip
    r["events"] = [[e.alert_id, e.track_id, e.published, e.x, e.y, e.estimated, e.new]
                   for e in events]  # fmt: skip
    r["scored_interval"] = [T0, T0 + D]
    r["run_interval"] = [T0 - 300.0, T0 + D + 900.0]
    assert (r["alerted"], r["crossings"]) == (1, 1)
    whole = bench_protocol.rescore(r, whole_run=True)
    assert (whole["alerted"], whole["crossings"]) == (1, 2)
    assert whole["exposure_10km_day"] == pytest.approx(2.0 * (D + 1200.0) / 86400.0)
    assert bench_protocol.rescore(r)["crossings"] == 1


def test_margins_enter_the_cache_key_only_when_set():
    args = bench_protocol.argparse.Namespace(
        hours=0.25, fps=2.0, rate_scale=40.0, perturbations="field", without=[]
    )
    old = bench_protocol.run_key(args, T0)
    args.warmup, args.tail = 0.0, 0.0
    assert bench_protocol.run_key(args, T0) == old
    args.warmup, args.tail = 300.0, 900.0
    assert bench_protocol.run_key(args, T0) != old
