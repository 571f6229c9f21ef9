"""The simulator's scoring of tracks against truth: ID switches and animal classes."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.sim.movers import MoverStates
from vigil.sim.scoring import Scorer, TrackSample


def states(rows: list[tuple[str, str, str, float, float]]) -> MoverStates:
    """Movers from ``(id, class, group, x, y)`` rows (local metres)."""
    n = len(rows)
    zeros = np.zeros(n)
    return MoverStates(
        time=0.0,
        ids=[r[0] for r in rows],
        kinds=["walker"] * n,
        classes=[r[1] for r in rows],
        groups=[r[2] for r in rows],
        x=np.array([r[3] for r in rows], dtype=float),
        y=np.array([r[4] for r in rows], dtype=float),
        vx=zeros, vy=zeros, width_m=zeros, height_m=zeros, contrast_dn=zeros,
    )  # fmt: skip


def walk_past(scorer: Scorer, track_on_own_group: bool) -> None:
    """Groups g1 and g2 (a pair of people 4 m apart each) walk towards each other at 10 m/s
    on lines 10 m apart; tracks T1 and T2 follow 15 m behind their groups; one observation
    a second."""
    for k in range(21):
        x1 = -100.0 + 10.0 * k
        x2 = 100.0 - 10.0 * k
        movers = [
            ("a", "person", "g1", x1, -2.0), ("b", "person", "g1", x1, 2.0),
            ("c", "person", "g2", x2, 8.0), ("d", "person", "g2", x2, 12.0),
        ]  # fmt: skip
        t1, t2 = (x1 - 15.0, 0.0), (x2 + 15.0, 10.0)
        if not track_on_own_group and k >= 10:  # the tracks traded groups as they met
            t1, t2 = (x2 + 15.0, 10.0), (x1 - 15.0, 0.0)
        tracks = [TrackSample("T1", *t1, "person"), TrackSample("T2", *t2, "person")]
        scorer.observe(states(movers), tracks)


def test_groups_walking_past_each_other_keep_their_tracks() -> None:
    # As they meet, each group is nearer the other's (lagging) track: a one-to-one nearest
    # match of the moment hands the tracks over and back (four switches); a group keeps the
    # track it had while that track stays within the match distance (CLEAR MOT).
    scorer = Scorer()
    walk_past(scorer, track_on_own_group=True)
    assert scorer.id_switches_per_group({"g1", "g2"}) == (0.0, 0, 2)
    assert scorer.group_matched_s == {"g1": 21, "g2": 21}


def test_tracks_that_trade_groups_are_two_switches() -> None:
    scorer = Scorer()
    walk_past(scorer, track_on_own_group=False)
    ratio, switches, groups = scorer.id_switches_per_group({"g1", "g2"})
    assert (switches, groups) == (2, 2) and ratio == pytest.approx(1.0)
    assert scorer.group_last == {"g1": "T2", "g2": "T1"}


def test_a_group_whose_track_runs_off_takes_the_nearest_and_counts_a_switch() -> None:
    scorer = Scorer()
    group = [("a", "person", "g1", 0.0, 0.0)]
    scorer.observe(states(group), [TrackSample("T1", 5.0, 0.0, "person")])
    # T1 ran 60 m off (over the 50 m match distance); T7 is on the group now
    scorer.observe(
        states(group),
        [TrackSample("T1", 60.0, 0.0, "person"), TrackSample("T7", 3.0, 0.0, "person")],
    )
    assert scorer.id_switches_per_group({"g1"}) == (1.0, 1, 1)
    # a group never near a track is not counted as tracked
    assert scorer.id_switches_per_group({"g1", "g9"})[2] == 1


def test_animal_seconds_count_the_class_of_the_matched_track() -> None:
    scorer = Scorer()
    deer = [("z", "animal", "", 0.0, 0.0)]
    scorer.observe(states(deer), [TrackSample("T3", 10.0, 0.0, "animal")])
    scorer.observe(states(deer), [TrackSample("T3", 10.0, 0.0, "person")])
    scorer.observe(states(deer), [TrackSample("T3", 40.0, 0.0, "animal")])  # over 30 m
    assert (scorer.animal_seconds, scorer.animal_as_animal) == (2, 1)
