"""The true class of each track of a simulated run, through the scorer's matching (issue 22).

What an operator does on the live map (marks a track person, animal or vehicle), the
simulator can do from its truth: each second, every published track is matched one to one to
the bodies within :attr:`vigil.sim.scoring.Scorer.animal_match_m` of it (the scorer's own
matching, :func:`vigil.sim.scoring._assign`), and a track takes the class of the bodies it
was matched to most. A track matched too seldom, or to bodies of several classes with none
clearly ahead (a track that jumped from a cow to a walker), gets no label, as an operator
would mark it "unknown". ``vigil calibrate classes --truth`` fits class tables from these
labels (:mod:`vigil.tracks.label_fit`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from vigil.sim.scoring import Scorer, _assign
from vigil.sim.world import World

#: The classes a track can be labelled with (those of ``vigil.tracks.config.CLASSES``).
LABEL_CLASSES = ("person", "vehicle", "animal")


@dataclass(frozen=True)
class TrackTruth:
    """A track's truth: its label (``None``: none), the seconds it was matched to a body, and
    the share of those seconds on bodies of the label's class."""

    track_id: str
    label: str | None
    matched_s: int
    share: float


def truth_labels(
    world: World,
    samples: Iterable[tuple[str, float, float, float]],
    *,
    match_m: float = Scorer.animal_match_m,
    min_matched: int = 3,
    min_share: float = 2.0 / 3.0,
) -> dict[str, TrackTruth]:
    """Label tracks with the class of the bodies they followed.

    Parameters
    ----------
    world
        The run's world, re-made from its seed, settings and perturbations (cameras may be
        off: the movers do not depend on them).
    samples
        ``(track id, time UTC s, x m, y m)``: the published tracks' positions in the sector's
        local frame, several tracks a time (the sector core publishes once a second); times
        in increasing order.
    match_m
        Largest distance between a track and the body it is matched to, metres.
    min_matched, min_share
        A track gets a label when it was matched at least ``min_matched`` times and at least
        ``min_share`` of those to bodies of one class.

    Returns
    -------
    Every track seen, by id, with its :class:`TrackTruth`.
    """
    by_time: dict[float, list[tuple[str, float, float]]] = defaultdict(list)
    seen: list[str] = []
    for tid, t, x, y in samples:
        by_time[float(t)].append((tid, float(x), float(y)))
        seen.append(tid)
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for t in sorted(by_time):
        here = by_time[t]
        st = world.states(t)
        if not len(st):
            continue
        tx = np.array([x for _, x, _ in here])
        ty = np.array([y for _, _, y in here])
        for bi, ti in _assign(st.x, st.y, tx, ty, match_m):
            votes[here[ti][0]][str(st.classes[bi])] += 1
    out: dict[str, TrackTruth] = {}
    for tid in dict.fromkeys(seen):
        v = votes.get(tid, Counter())
        n = sum(v.values())
        cls, k = v.most_common(1)[0] if v else (None, 0)
        ok = cls in LABEL_CLASSES and n >= min_matched and k >= min_share * n
        out[tid] = TrackTruth(tid, cls if ok else None, n, k / n if n else 0.0)
    return out
