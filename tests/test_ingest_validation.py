"""Locating msgspec validation errors: key, value and line, for every reader of typed input."""

from __future__ import annotations

import tomllib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.ingest.validation import dotted, explain, parse_error, toml_line, value_at


@pytest.mark.parametrize(
    ("message", "kind", "path", "words"),
    [
        (
            "Expected `int`, got `str` - at `$.towers[2].height_m`",
            "invalid",
            ("towers", 2, "height_m"),
            "Expected `int`, got `str`",
        ),
        (
            "Object contains unknown field `zoom` - at `$.camera`",
            "unknown_field",
            ("camera", "zoom"),
            "Object contains unknown field `zoom`",
        ),
        ("Object contains unknown field `zz`", "unknown_field", ("zz",), None),
        (
            "Object missing required field `lon` - at `$.predicted[0]`",
            "missing_field",
            ("predicted", 0, "lon"),
            None,
        ),
        ("Expected `float`, got `str` - at `$.probs[...]`", "invalid", ("probs", ...), None),
        ("Expected `float`, got `str` - at `$.rows[1][3]`", "invalid", ("rows", 1, 3), None),
        ("Expected `object`, got `array`", "invalid", (), "Expected `object`, got `array`"),
    ],
    ids=["nested", "unknown", "unknown-top", "missing", "dict-value", "tuple-item", "top"],
)
def test_parse_error(message, kind, path, words) -> None:
    got_kind, got_path, got_words = parse_error(message)
    assert (got_kind, got_path) == (kind, path)
    assert " - at " not in got_words
    if words is not None:
        assert got_words == words


def test_paths_read_as_written_and_values_are_found() -> None:
    data = {"towers": [{"id": "t1"}, {"id": "t2", "lat": 3}], "probs": {"a": 1}}
    assert dotted(("towers", 1, "lat")) == "towers[1].lat"
    assert dotted(("probs", ...)) == "probs[...]"
    assert dotted(()) == ""
    assert value_at(data, ("towers", 1, "lat")) == 3
    assert value_at(data, ("towers", 5, "lat")) is None
    assert value_at(data, ("probs", ...)) == {"a": 1}  # the table holding the bad value
    assert value_at(None, ("x",)) is None


def test_toml_line_of_an_unnamed_table_key_is_the_tables() -> None:
    """(Tables, arrays of tables and absent keys: tests/test_config.py, through ``locate``.)"""
    text = "[sector]\nname = 'a'\n\n[sector.probs]\nperson = 'x'\n"
    assert toml_line(text, ("sector", "probs", ...)) == 4
    assert toml_line(text, ("sector", ...)) == 1
    assert toml_line(text, ()) is None


# -- property: a planted error is found where it was planted ---------------------------------


class _Item(msgspec.Struct, forbid_unknown_fields=True):
    a: float
    b: int
    c: float


class _Head(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    size: float


class _File(msgspec.Struct, forbid_unknown_fields=True):
    head: _Head
    items: list[_Item] = []


@given(
    n=st.integers(1, 6),
    data=st.data(),
    mode=st.sampled_from(["wrong_type", "unknown", "missing"]),
    pad=st.integers(0, 2),
)
def test_a_planted_error_is_located(n: int, data, mode: str, pad: int) -> None:
    i = data.draw(st.integers(0, n - 1), label="item")
    field = data.draw(st.sampled_from(["a", "b", "c"]), label="field")
    lines = ["[head]", 'name = "x"', "size = 1.0", ""]
    for k in range(n):
        lines += [""] * pad + ["[[items]]"]
        for f, v in (("a", "1.5"), ("b", "2"), ("c", "-3.0")):
            if k == i and f == field:
                if mode == "wrong_type":
                    v = '"bad"'
                elif mode == "missing":
                    continue
            lines.append(f"{f} = {v}")
        if k == i and mode == "unknown":
            lines.append("zz = 7")
    text = "\n".join(lines) + "\n"
    raw = tomllib.loads(text)
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(raw, _File)
    problem = explain(info.value, raw, text)
    key = "zz" if mode == "unknown" else field
    assert problem.path == ("items", i, key)
    assert problem.key == f"items[{i}].{key}"
    assert problem.kind == {"wrong_type": "invalid", "unknown": "unknown_field"}.get(
        mode, "missing_field"
    )
    assert problem.value == {"wrong_type": "bad", "unknown": 7}.get(mode)
    written = text.splitlines()[: problem.line]
    assert sum(ln == "[[items]]" for ln in written) == i + 1  # in the planted item's table
    if mode == "missing":
        assert written[-1] == "[[items]]"  # the table's line, for a key that is not there
    else:
        assert written[-1].startswith(f"{key} = ")
