"""The evaluation protocol's scoring (issue 22): one-to-one matching, publication-time
latency, the intervals, and the seeds' split."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import Alert, Crossing
from vigil.sim.protocol import (
    AlertEvent,
    AlertRecorder,
    TrueCrossing,
    animal_tally,
    match_one_to_one,
    poisson_rate,
    score_events,
    summarise,
    wilson,
)
from vigil.sim.seeds import (
    CALIBRATION_SEEDS,
    EVALUATION_SEEDS,
    OTHER_BENCHMARK_SEEDS,
    SeedError,
    check_evaluation,
    evaluation_seeds,
)

T0 = 1_780_300_800.0


def _ev(t: float, x: float = 0.0, y: float = 0.0, new: bool = True, aid: str = "A1"):
    return AlertEvent(aid, "T1", t, x, y, estimated=t, new=new)


def test_one_alert_credits_one_crossing():
    # two crossings 100 m and 20 s apart, one alert near both: one is alerted, not both
    crossings = [TrueCrossing("c1", T0, 0.0, 0.0), TrueCrossing("c2", T0 + 20, 100.0, 0.0)]
    pairs = match_one_to_one(crossings, [_ev(T0 + 60)])
    assert len(pairs) == 1
    r = score_events(crossings, [_ev(T0 + 60)], border_km=10, duration_s=86400, start_time=T0)
    assert (r["alerted"], r["crossings"], r["false_alerts"]) == (1, 2, 0)


def test_matching_makes_the_most_pairs():
    # greedy-by-nearest would give alert a1 to c1 and leave c2 without one; the assignment
    # gives a1 to c2 (the only crossing it can reach besides c1) and a2 to c1
    crossings = [TrueCrossing("c1", T0, 0.0, 0.0), TrueCrossing("c2", T0, 500.0, 0.0)]
    events = [_ev(T0 + 10, 250.0, aid="a1"), _ev(T0 + 10, -200.0, aid="a2")]
    assert sorted(match_one_to_one(crossings, events)) == [(0, 1), (1, 0)]


def test_a_new_alert_takes_its_crossing_before_a_join_does():
    # one group's crossing, announced by a new alert and, 10 s later and nearer in place, by
    # a track joining that alert: pairing the join (nearer) would leave the new alert false
    crossings = [TrueCrossing("c1", T0, 0.0, 0.0)]
    events = [_ev(T0 + 60, 180.0, aid="a1"), _ev(T0 + 70, 5.0, new=False, aid="a1")]
    assert match_one_to_one(crossings, events) == [(0, 0)]
    r = score_events(crossings, events, border_km=10, duration_s=86400, start_time=T0)
    assert (r["alerted"], r["false_alerts"], r["unmatched_joins"]) == (1, 0, 1)
    # with two crossings both events are paired: the most pairs still come first
    two = [*crossings, TrueCrossing("c2", T0 + 5, 20.0, 0.0)]
    assert sorted(match_one_to_one(two, events)) in ([(0, 0), (1, 1)], [(0, 1), (1, 0)])
    # a new alert no crossing can reach stays false whatever the joins do
    far = [_ev(T0 + 60, 5000.0, aid="a2"), _ev(T0 + 70, 5.0, new=False, aid="a1")]
    r = score_events(crossings, far, border_km=10, duration_s=86400, start_time=T0)
    assert (r["alerted"], r["false_alerts"]) == (1, 1)


def test_late_alert_beyond_the_window_misses_and_is_false():
    crossings = [TrueCrossing("c1", T0, 0.0, 0.0)]
    late = [_ev(T0 + 901.0)]
    assert match_one_to_one(crossings, late) == []
    r = score_events(crossings, late, border_km=10, duration_s=86400, start_time=T0)
    assert (r["alerted"], r["false_alerts"]) == (0, 1)
    assert match_one_to_one(crossings, [_ev(T0 + 899.0)]) == [(0, 0)]
    # too early, too far
    assert match_one_to_one(crossings, [_ev(T0 - 61.0)]) == []
    assert match_one_to_one(crossings, [_ev(T0 + 10, 601.0)]) == []


def test_uncounted_crossing_takes_its_alert_without_recall():
    # a crossing outside coverage: its alert is not false, and it does not count for recall
    crossings = [TrueCrossing("c1", T0, 0.0, 0.0, counted=False)]
    r = score_events(crossings, [_ev(T0 + 30)], border_km=10, duration_s=3600, start_time=T0)
    assert (r["crossings"], r["alerted"], r["false_alerts"], r["latency_s"]) == (0, 0, 0, [])


def test_latency_is_from_the_true_crossing_to_publication():
    crossings = [TrueCrossing("c1", T0, 0.0, 0.0)]
    # the system estimated the crossing at T0 + 5 but published the alert at T0 + 240
    ev = AlertEvent("A1", "T1", T0 + 240.0, 10.0, 0.0, estimated=T0 + 5.0)
    r = score_events(crossings, [ev], border_km=10, duration_s=3600, start_time=T0)
    assert r["latency_s"] == [240.0]


def test_recorder_stamps_publication_time_and_reads_joins_from_the_book():
    now = [T0 + 100.0]
    bus = InProcessBus("s", clock=lambda: now[0])
    book = {"A1": {"T1"}}
    rec = AlertRecorder(lambda: now[0], lambda a: book.get(a, set()), lambda la, lo: (lo, la))
    rec.attach(bus, "s")
    base = dict(kind="crossing", priority=1, lat=31.3, lon=-110.9, track_id="T1")
    bus.publish("vigil/v1/s/alerts", Alert(alert_id="A1", time=T0 + 2.0, **base))
    assert rec.events[0].published == T0 + 100.0  # the bus clock, not the alert's time
    assert rec.events[0].estimated == T0 + 2.0
    # a position update names no new track: no event, whatever its notes say
    now[0] = T0 + 130.0
    bus.publish("vigil/v1/s/alerts", Alert(alert_id="A1", time=T0 + 129, state="updated", **base))
    assert len(rec.events) == 1
    # track T2 crosses, joins the alert in the book; the next publication is a join event
    cross = Crossing(crossing_id="X2", track_id="T2", time=T0 + 140.0, lat=31.31, lon=-110.91,
                     segment_id="seg", direction="northbound")  # fmt: skip
    bus.publish("vigil/v1/s/crossings", cross)
    book["A1"].add("T2")
    now[0] = T0 + 150.0
    bus.publish("vigil/v1/s/alerts", Alert(alert_id="A1", time=T0 + 150, state="updated", **base))
    assert len(rec.events) == 2
    j = rec.events[1]
    assert (j.new, j.track_id, j.published, j.estimated) == (False, "T2", T0 + 150.0, T0 + 140.0)
    assert (j.x, j.y) == (-110.91, 31.31)


def test_wilson_known_values():
    # 9/9: Wilson's lower bound is n / (n + z^2) = 0.7009 (the 0.66 is Clopper-Pearson's);
    # 8/10: 0.4902-0.9433 (statsmodels' proportion_confint(method="wilson") gives the same)
    lo, hi = wilson(9, 9)
    assert lo == pytest.approx(9 / (9 + 1.959964**2), abs=1e-6) and hi == pytest.approx(1.0)
    lo, hi = wilson(8, 10)
    assert (lo, hi) == (pytest.approx(0.49016, abs=1e-5), pytest.approx(0.94332, abs=1e-5))
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_poisson_exact_known_values():
    # Garwood: 0 events -> [0, 3.689]; 1 -> [0.0253, 5.572]; 10 -> [4.795, 18.39]
    assert poisson_rate(0, 1.0) == (0.0, 0.0, pytest.approx(3.6889, abs=1e-4))
    _, lo, hi = poisson_rate(1, 1.0)
    assert (lo, hi) == (pytest.approx(0.02532, abs=1e-4), pytest.approx(5.5716, abs=1e-4))
    rate, lo, hi = poisson_rate(10, 2.0)
    assert rate == 5.0
    assert (lo, hi) == (pytest.approx(4.7954 / 2, abs=1e-4), pytest.approx(18.3904 / 2, abs=1e-4))


def test_summarise_and_animals():
    run = score_events(
        [TrueCrossing("c1", T0, 0.0, 0.0), TrueCrossing("c2", T0 + 3600, 5000.0, 0.0)],
        [_ev(T0 + 120), _ev(T0 + 7200, 5000.0)],
        border_km=10,
        duration_s=86400,
        start_time=T0,
    )
    # animal a: 10 s matched, 6 as animal (counts); b: 4 of 10 (does not); c never matched
    animals = animal_tally({"a": (10, 6), "b": (10, 4), "c": (0, 0)})
    assert animals == (2, 1)
    s = summarise([run], animals)
    assert (s["alerted"], s["crossings"], s["false_alerts"]) == (1, 2, 1)
    assert s["false_per_10km_day"] == 1.0
    assert s["latency_p50_s"] == 120.0
    assert s["animal_ci"] == wilson(1, 2)


def test_calibration_and_evaluation_seeds_are_disjoint():
    assert not CALIBRATION_SEEDS & set(EVALUATION_SEEDS)
    assert not OTHER_BENCHMARK_SEEDS & set(EVALUATION_SEEDS)
    assert {1, 2, 5, 7, 11} <= CALIBRATION_SEEDS
    assert len(set(EVALUATION_SEEDS)) == len(EVALUATION_SEEDS) >= 100
    assert check_evaluation(evaluation_seeds(3)) == list(EVALUATION_SEEDS[:3])
    with pytest.raises(SeedError, match=r"\[7\]"):
        check_evaluation([50_001, 7])


def test_recorder_ignores_other_kinds_of_alert():
    # the recorder ignores other kinds of alert
    rec = AlertRecorder(lambda: T0, lambda a: set(), lambda la, lo: (lo, la))
    rec.on_alert("t", SimpleNamespace(kind="intrusion"))
    assert rec.events == []


class _Movers(SimpleNamespace):
    """Movers at one time, as :class:`vigil.sim.movers.MoverStates` lays them out."""

    def __len__(self) -> int:
        return len(self.ids)


def _movers(t: float, rows: list[tuple[str, str, str, float, float]]) -> _Movers:
    """Movers at ``t``: (id, class, group, x, y) rows."""
    import numpy as np

    return _Movers(
        time=t,
        ids=[r[0] for r in rows],
        classes=[r[1] for r in rows],
        groups=[r[2] for r in rows],
        x=np.array([r[3] for r in rows], dtype=float),
        y=np.array([r[4] for r in rows], dtype=float),
    )


def test_diagnosis_names_the_stage_that_lost_each_crossing():
    import numpy as np

    from vigil.sim.protocol_diagnosis import Witness, diagnose, tally
    from vigil.sim.scoring import TrackSample

    w = Witness()
    none = np.zeros((0, 2))
    for k in range(5):
        t = T0 + k
        movers = _movers(
            t,
            [
                ("p1", "person", "gA", 0.0, 10.0 * k),  # detected, never tracked
                ("p2", "person", "gB", 5000.0, 10.0 * k),  # tracked, classed animal
                ("p3", "person", "gC", 9000.0, 10.0 * k),  # tracked as person, alerted late
                ("p4", "person", "gD", 20000.0, 0.0),  # never seen
                ("a1", "animal", "", 30000.0, 0.0),  # the false alert's track is on it
            ],
        )
        tracks = [
            TrackSample("T2", 5000.0, 10.0 * k + 3, "animal"),
            TrackSample("T3", 9000.0, 10.0 * k, "person"),
            TrackSample("T9", 30000.0, 5.0, "person"),
            TrackSample("T0", 50000.0, 0.0, "person"),  # on nothing
        ]
        w.observe(t, movers, tracks, np.array([[1.0, 10.0 * k]]) if k < 2 else none)
    crossings = [
        TrueCrossing("cA", T0 + 2, 0.0, 20.0, group_id="gA"),
        TrueCrossing("cB", T0 + 2, 5000.0, 20.0, group_id="gB"),
        TrueCrossing("cC", T0 + 2, 9000.0, 20.0, group_id="gC"),
        TrueCrossing("cD", T0 + 2, 20000.0, 0.0, group_id="gD"),
        TrueCrossing("cE", T0 + 2, 40000.0, 0.0, counted=False, group_id="gE", inside=False),
    ]
    events = [
        AlertEvent("A3", "T3", T0 + 2000.0, 9000.0, 20.0, estimated=T0 + 2),
        AlertEvent("A9", "T9", T0 + 3.0, 30000.0, 5.0, estimated=T0 + 3),
        AlertEvent("A0", "T0", T0 + 3.0, 50000.0, 0.0, estimated=T0 + 3),
        AlertEvent("Ax", "Tx", T0 + 3.0, 60000.0, 0.0, estimated=T0 + 3),
    ]
    d = diagnose(crossings, events, w, {"T3"}, start_time=T0, end_time=T0 + 3600)
    why = {m["crossing_id"]: m["reason"] for m in d["misses"]}
    assert why == {
        "cA": "detected, no confirmed track",
        "cB": "track classed animal",
        "cC": "alert late (> 900 s after the crossing)",
        "cD": "not detected",
    }
    false = {f["alert_id"]: f["reason"] for f in d["false"]}
    assert false == {
        "A3": "people crossing, alert outside the window",
        "A9": "an animal",
        "A0": "nothing (no mover within 50 m)",
        "Ax": "track never confirmed",
    }
    assert (d["uncovered"], d["uncovered_alerted"]) == (1, 0)
    misses, falses = tally([d, d])
    assert misses["not detected"] == 2 and falses["an animal"] == 2
    # the same crossing alerted in time by T3, credited to it: no miss left for cC
    ok = [AlertEvent("A3", "T3", T0 + 100.0, 9000.0, 20.0, estimated=T0 + 2)]
    d = diagnose(crossings, ok, w, {"T3"}, start_time=T0, end_time=T0 + 3600)
    assert "cC" not in {m["crossing_id"] for m in d["misses"]}
