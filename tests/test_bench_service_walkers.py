"""The service benchmark's two load protocols (benchmarks/bench_service.py ``--walkers``):
``replace`` starts a new set of walkers at each rate, ``persist`` keeps them walking from rate
to rate and adds only the difference."""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.bench_service import _offer, _walker_pool
from vigil.config import load_default


class _Recorder:
    def __init__(self) -> None:
        self.sent: list = []

    def publish(self, topic: str, msg) -> None:
        self.sent.append(msg)


def _positions(pub: _Recorder, frame) -> np.ndarray:
    lat = np.array([m.lat for m in pub.sent])
    lon = np.array([m.lon for m in pub.sent])
    return np.column_stack(frame.to_local(lat, lon))


def test_persist_keeps_the_walkers_and_adds_the_difference() -> None:
    frame = load_default().site.frame()
    pool = (_walker_pool(40), time.time() - 10.0)  # walking for 10 s already
    first, second = _Recorder(), _Recorder()
    _offer(first, frame, 200.0, 0.05, pool=pool)  # 20 walkers, one batch
    _offer(second, frame, 300.0, 0.05, pool=pool)  # the same 20 and 10 more
    a, b = _positions(first, frame), _positions(second, frame)
    assert len(a) == 20 and len(b) == 30
    # walking north at 1.2 m/s since the pool's start, from rate to rate
    np.testing.assert_allclose(a[:, 1], pool[0][:20, 1] + 1.2 * (first.sent[0].time - pool[1]))
    np.testing.assert_allclose(b[:20, 0], a[:, 0], atol=0.01)
    dt = second.sent[0].time - first.sent[0].time
    np.testing.assert_allclose(b[:20, 1] - a[:, 1], 1.2 * dt, atol=0.01)
    # any first walkers of the pool spread over the sector
    assert np.ptp(pool[0][:20, 0]) > 15_000.0
    with pytest.raises(ValueError, match="needs 50 walkers"):
        _offer(_Recorder(), frame, 500.0, 0.05, pool=pool)


def test_replace_brings_new_walkers_at_each_rate() -> None:
    frame = load_default().site.frame()
    first, second = _Recorder(), _Recorder()
    _offer(first, frame, 200.0, 0.05)
    _offer(second, frame, 300.0, 0.05)
    a, b = _positions(first, frame), _positions(second, frame)
    assert len(a) == 20 and len(b) == 30
    assert not np.isin(np.round(a[:, 0], 1), np.round(b[:, 0], 1)).all()
