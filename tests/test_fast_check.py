"""The quick value pass in front of the full check: it never accepts what the full check
refuses, and decoding gives the same messages and the same errors (field, reason) with it and
without it, over the seeded fuzz stream and values on and past every numeric rule's edges."""

from __future__ import annotations

import math
import time

import msgspec
import pytest

from vigil.ingest import schema
from vigil.ingest.fast_check import passes
from vigil.ingest.fuzz import fuzz_messages
from vigil.ingest.schema import CameraDetection, MessageError, decode

NOW = 1.8e9


def _outcome(topic: str, payload: bytes):
    try:
        return ("ok", msgspec.structs.asdict(decode(topic, payload, now=NOW)))
    except MessageError as err:
        return ("refused", err.field, err.reason)


def _full_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "passes", lambda *a: False)


def test_decoding_the_fuzz_stream_is_the_same_with_and_without_the_quick_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = [m for seed in (1, 2, 3) for m in fuzz_messages("tucson", 3000, seed=seed, now=NOW)]
    quick = [_outcome(t, p) for t, p in stream]
    with monkeypatch.context() as m:
        _full_only(m)
        full = [_outcome(t, p) for t, p in stream]
    assert quick == full
    kinds = {o[0] for o in full}
    assert kinds == {"ok", "refused"}  # both sides exercised
    # the quick pass answers for many accepted messages (tracks with class_probs: the full)
    accepted = [
        decode(t, p, now=NOW) for (t, p), o in zip(stream, full, strict=True) if o[0] == "ok"
    ]
    fast = sum(passes(msg, NOW, schema.DEFAULT_MAX_SKEW_S) for msg in accepted)
    assert fast > 0.3 * len(accepted)


def _detection(**changes) -> CameraDetection:
    base = CameraDetection(
        camera="t03", time=NOW, lat=31.5, lon=-111.0, cov=(25.0, 0.0, 0.0, 25.0),
        class_guess="person", class_confidence=0.8,
    )  # fmt: skip
    return msgspec.structs.replace(base, **changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"time": NOW + schema.DEFAULT_MAX_SKEW_S + 1e-3},
        {"time": schema.EARLIEST_TIME - 1.0},
        {"time": math.nan},
        {"lat": 90.0000001},
        {"lon": -math.inf},
        {"class_confidence": 1.5},
        {"score": -0.1},
        {"range_m": 2e6},
        {"frame": -2},
        {"cov": (25.0, 1.0, 0.0, 25.0)},
        {"cov": (-1.0, 0.0, 0.0, 25.0)},
        {"cov": (1.0, 5.0, 5.0, 1.0)},
        {"cov": (25.0, math.nan, math.nan, 25.0)},
        {"camera": "<img src=x>"},
    ],
)
def test_the_quick_pass_defers_every_bad_value_and_the_full_check_names_it(changes) -> None:
    msg = _detection(**changes)
    assert not passes(msg, NOW, schema.DEFAULT_MAX_SKEW_S)
    with pytest.raises(MessageError):
        schema.validate(msg, now=NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"time": NOW + schema.DEFAULT_MAX_SKEW_S},
        {"time": schema.EARLIEST_TIME},
        {"lat": 90.0, "lon": -180.0, "class_confidence": 1.0, "score": 0.0},
        {"range_m": 1e6, "frame": 2**62},
        {"cov": (0.0, 0.0, 0.0, 0.0)},
    ],
)
def test_the_quick_pass_accepts_values_on_the_edges(changes) -> None:
    msg = _detection(**changes)
    assert passes(msg, NOW, schema.DEFAULT_MAX_SKEW_S)
    schema.validate(msg, now=NOW)  # and the full check agrees


def test_the_quick_pass_takes_a_fraction_of_the_full_checks_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    msg = _detection()

    def per_call() -> float:
        best = math.inf
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(2000):
                schema.validate(msg, now=NOW)
            best = min(best, time.perf_counter() - t)
        return best

    quick = per_call()
    with monkeypatch.context() as m:
        _full_only(m)
        full = per_call()
    assert quick < 0.75 * full
