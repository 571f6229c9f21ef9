"""The diagnosis of a crossing whose alert event was credited to another (issue 22): one track
standing for both groups, or another group's track passing this one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from vigil.sim.protocol import AlertEvent, TrueCrossing
from vigil.sim.protocol_diagnosis import Witness, diagnose
from vigil.sim.scoring import TrackSample

T0 = 1_780_300_800.0


class _Movers(SimpleNamespace):
    def __len__(self) -> int:
        return len(self.ids)


def _witness(seconds_on_b: int) -> Witness:
    """Track T1 lies on group B (x = 300 m) for ``seconds_on_b`` of 5 seconds, then on group A
    (x = 0)."""
    w = Witness()
    for k in range(5):
        movers = _Movers(
            time=T0 + k, ids=["a", "b"], classes=["person", "person"], groups=["gA", "gB"],
            x=np.array([0.0, 300.0]), y=np.array([10.0 * k, 10.0 * k]),
        )  # fmt: skip
        x = 300.0 if k < seconds_on_b else 0.0
        w.observe(T0 + k, movers, [TrackSample("T1", x, 10.0 * k, "person")], np.zeros((0, 2)))
    return w


@pytest.mark.parametrize(
    ("seconds_on_b", "reason"),
    [
        (2, "alert credited to another crossing: another group's track passing"),
        (4, "alert credited to another crossing: one track on both groups"),
    ],
    ids=["passing", "one-track"],
)
def test_credited_to_another_crossing_says_whose_track_it_was(seconds_on_b, reason):
    crossings = [
        TrueCrossing("cA", T0 + 2, 0.0, 20.0, group_id="gA"),
        TrueCrossing("cB", T0 + 62, 300.0, 20.0, group_id="gB"),
    ]
    # one event, at A's crossing point: the matcher credits A, B is missed
    events = [AlertEvent("A1", "T1", T0 + 100.0, 0.0, 20.0, estimated=T0 + 2)]
    d = diagnose(
        crossings, events, _witness(seconds_on_b), {"T1"}, start_time=T0, end_time=T0 + 3600
    )
    (miss,) = d["misses"]
    assert (miss["crossing_id"], miss["reason"]) == ("cB", reason)
    assert (miss["credited_to"], miss["credited_dt_s"]) == ("gA", -60.0)
    assert miss["credited_m"] == pytest.approx(300.0)
