"""The one numpy-aware JSON conversion: numpy values unwrapped, NaN and infinities as null."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime

import msgspec
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.ingest.jsonable import dumps, jsonable, numpy_scalar


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.int8(-3), -3),
        (np.int64(2**40), 2**40),
        (np.uint16(7), 7),
        (np.float64(0.1), 0.1),
        (np.float32(0.5), 0.5),
        (np.bool_(True), True),
        (np.bool_(False), False),
        (np.float64("nan"), None),
        (float("nan"), None),
        (float("inf"), None),
        (-np.inf, None),
        (np.float16("inf"), None),
        (1.25, 1.25),
        (7, 7),
        (True, True),
        (None, None),
        ("text", "text"),
        (pd.NaT, None),
        (pd.Timestamp("2024-03-01 02:30", tz="America/Phoenix"), "2024-03-01T02:30:00-07:00"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05+00:00"),
        (date(2024, 1, 2), "2024-01-02"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_scalars(value, expected) -> None:
    got = jsonable(value)
    assert got == expected and type(got) is type(expected)


def test_arrays_become_nested_lists_with_nulls() -> None:
    arr = np.array([[1.0, np.nan], [np.inf, -2.5]])
    assert jsonable(arr) == [[1.0, None], [None, -2.5]]
    assert jsonable(np.arange(3, dtype=np.int32)) == [0, 1, 2]
    assert jsonable(np.array([True, False])) == [True, False]
    assert jsonable(np.float64(3.0)[()]) == 3.0
    assert jsonable(np.array(4)) == 4  # a 0-d array is its value


def test_nested_containers_keep_order_and_convert_keys() -> None:
    data = {
        "z": (np.int64(1), [np.float64("nan"), {"b": np.bool_(True), "a": np.arange(2)}]),
        np.int64(2019): "year",
        3: "int key",
        1.5: "float key",
        ("a", 1): "tuple key",
    }
    got = jsonable(data)
    assert list(got) == ["z", 2019, 3, 1.5, "('a', 1)"]
    assert type(next(k for k in got if k == 2019)) is int
    assert got["z"] == [1, [None, {"b": True, "a": [0, 1]}]]
    assert list(got["z"][1][1]) == ["b", "a"]
    assert dumps(data) == (
        '{"z": [1, [null, {"b": true, "a": [0, 1]}]], "2019": "year", "3": "int key", '
        '"1.5": "float key", "(\'a\', 1)": "tuple key"}'
    )


def test_input_is_not_modified() -> None:
    data = {"x": [np.float64("nan")], "y": {"z": np.int64(1)}}
    jsonable(data)
    assert math.isnan(data["x"][0]) and type(data["y"]["z"]) is np.int64


def test_unknown_objects_go_through_default_or_stay() -> None:
    class Thing:
        pass

    thing = Thing()
    assert jsonable({"t": thing})["t"] is thing
    with pytest.raises(TypeError, match="Thing"):
        dumps({"t": thing})
    series = pd.Series([1.0, 2.0])
    assert jsonable([series], default=lambda o: None) == [None]
    # what default returns is converted in turn
    assert jsonable(series, default=lambda o: o.to_numpy()) == [1.0, 2.0]


def test_dumps_indents_like_json_and_is_strict() -> None:
    data = {"a": [1, np.float64("inf")], "b": {"c": np.int16(2)}}
    assert dumps(data, indent=2) == json.dumps({"a": [1, None], "b": {"c": 2}}, indent=2)
    assert dumps(data, indent=1) == json.dumps({"a": [1, None], "b": {"c": 2}}, indent=1)


_numpy_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers(0, 255).map(np.uint8),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.floats(width=32, allow_nan=True, allow_infinity=True).map(np.float32),
    st.booleans().map(np.bool_),
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    _numpy_scalars,
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4).map(np.array),
    ),
    max_leaves=20,
)


def _plain_equal(got, value) -> bool:
    """Whether ``got`` is ``value`` with numpy unwrapped and non-finite floats as None."""
    if isinstance(value, dict):
        return list(got) == list(value) and all(_plain_equal(got[k], v) for k, v in value.items())
    if isinstance(value, list | tuple | np.ndarray):
        return len(got) == len(value) and all(map(_plain_equal, got, value))
    if isinstance(value, float | np.floating):
        return got is None if not math.isfinite(value) else (type(got) is float and got == value)
    if isinstance(value, bool | np.bool_):
        return type(got) is bool and got == bool(value)
    if isinstance(value, int | np.integer):
        return type(got) is int and got == int(value)
    return got == value


@given(_values)
def test_any_nesting_round_trips_through_strict_json(value) -> None:
    got = jsonable(value)
    assert _plain_equal(got, value)
    text = dumps(value)  # allow_nan=False: raises if a NaN slipped through
    assert json.loads(text) == json.loads(json.dumps(got))


@pytest.mark.parametrize(
    ("value", "plain"),
    [(np.float64(1.5), 1.5), (np.int64(-3), -3), (np.bool_(True), True), (np.float32(0.25), 0.25)],
    ids=["float64", "int64", "bool", "float32"],
)
def test_numpy_scalar_hook_unwraps_numpy_scalars(value, plain) -> None:
    out = numpy_scalar(value)
    assert out == plain and type(out) is type(plain)


class _Gadget:
    """Something no encoder knows."""


def test_numpy_scalar_hook_refuses_anything_else() -> None:
    with pytest.raises(NotImplementedError, match="cannot encode _Gadget: not a numpy scalar"):
        numpy_scalar(_Gadget())
    # an encoder with the hook writes numpy scalars and still refuses the rest, naming it
    enc = msgspec.json.Encoder(enc_hook=numpy_scalar)
    assert enc.encode({"x": np.int64(2)}) == b'{"x":2}'
    with pytest.raises(NotImplementedError, match="_Gadget"):
        enc.encode({"x": _Gadget()})
