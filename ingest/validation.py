"""Where a msgspec validation error points: the key, the offending value and its line.

msgspec names the place of a bad value at the end of its message (``Expected `int`, got
`str` - at `$.towers[2].height_m```). Every reader of typed input (wire messages, the
deployment file, camera configuration, tracker settings) turns that into the key, the value
and the line the same way, with :func:`explain`.

A path is a tuple of keys (``str``) and list indices (``int``) from the top of the data;
``...`` stands for a key of a table that msgspec does not name (it writes ``$.probs[...]``
for a bad value in a dict), so the path ends at that table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import EllipsisType
from typing import Any, Literal

import msgspec

Path = tuple[str | int | EllipsisType, ...]
ProblemKind = Literal["unknown_field", "missing_field", "invalid"]

_AT = " - at `"
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


@dataclass(frozen=True)
class Problem:
    """One validation error, located.

    Attributes
    ----------
    kind
        ``"unknown_field"`` (a key the type does not have), ``"missing_field"`` (a required
        key left out) or ``"invalid"`` (a value of the wrong type or out of bounds).
    path
        From the top of the data to the offending key, the unknown or missing key included.
    value
        The offending value in the data; ``None`` when it is missing or cannot be found.
    line
        1-based line of the key in the source text, when the text was given and has it.
    message
        msgspec's own words without the location (``"Expected `float` <= 90.0"``).
    """

    kind: ProblemKind
    path: Path
    value: Any
    line: int | None
    message: str

    @property
    def key(self) -> str:
        """The path as written in the file (``"towers[2].height_m"``); ``""`` at the top."""
        return dotted(self.path)


def parse_error(error: msgspec.ValidationError | str) -> tuple[ProblemKind, Path, str]:
    """What kind of error a msgspec message reports, its path, and its words without the path.

    >>> parse_error("Expected `int`, got `str` - at `$.towers[2].height_m`")
    ('invalid', ('towers', 2, 'height_m'), 'Expected `int`, got `str`')
    >>> parse_error("Object contains unknown field `zoom` - at `$.camera`")
    ('unknown_field', ('camera', 'zoom'), 'Object contains unknown field `zoom`')
    """
    text = str(error)
    head, at, where = text.rpartition(_AT) if _AT in text else (text, "", "$")
    where = where.rstrip("`") if at else where
    path: list[str | int | EllipsisType] = []
    for name, index in _STEP.findall(where[1:] if where.startswith("$") else where):
        path.append(name if name else (... if index == "..." else int(index)))
    kind: ProblemKind = "invalid"
    if "unknown field" in head:
        kind = "unknown_field"
    elif "missing required field" in head:
        kind = "missing_field"
    if kind != "invalid":
        path.append(head.split("`")[1] if "`" in head else "?")
    return kind, tuple(path), head


def explain(
    error: msgspec.ValidationError | str, data: Any = None, text: str | None = None
) -> Problem:
    """Locate a msgspec validation error in the data it came from and in its TOML source.

    Parameters
    ----------
    error
        The error (or its message) from ``msgspec.convert`` or a typed decode.
    data
        The same input decoded without a type (``tomllib.loads``, ``msgspec.json.decode``),
        to read the offending value from; ``None`` when there is none.
    text
        The TOML source text, to find the line in; ``None`` leaves the line out.
    """
    kind, path, message = parse_error(error)
    line = toml_line(text, path) if text is not None else None
    return Problem(kind, path, value_at(data, path), line, message)


def value_at(data: Any, path: Path) -> Any:
    """The value at ``path`` in plain data (dicts and lists), or ``None`` when it is not there.

    At ``...`` (a table key msgspec did not name) it stops and gives the whole table.
    """
    cur = data
    for step in path:
        if step is ...:
            return cur
        try:
            cur = cur[step]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def dotted(path: Path) -> str:
    """A path as written in a file: ``towers[2].height_m``, ``probs[...]``; ``""`` for none."""
    out = ""
    for step in path:
        if step is ...:
            out += "[...]"
        elif isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}" if out else step
    return out


# -- lines in TOML text ---------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEYLINE = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")


def toml_line(text: str, path: Path | list[str | int]) -> int | None:
    """The 1-based line of a key path in TOML text, or of its table when the key is absent.

    Handles tables (``[a.b]``), arrays of tables (``[[a]]``, indexed) and ``key = value``
    lines; good enough for configuration files, which use no dotted keys in assignments.
    A path through a table msgspec did not name (``...``) gives the table's line.
    """
    parts: list[str | int] = []
    for p in path:
        if p is ...:
            break
        if p != "":
            parts.append(p)  # type: ignore[arg-type]
    if not parts:
        return None
    # split into table path (with array index) and the key within it
    table: list[str | int] = []
    key: str | None = None
    for i, p in enumerate(parts):
        rest = parts[i + 1 :]
        if isinstance(p, str) and (not rest or all(isinstance(r, int) for r in rest)):
            key = p
            break
        table.append(p)
    counts: dict[tuple[str, ...], int] = {}
    current: list[str | int] = []
    table_line: int | None = 1 if not table else None
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m and not _KEYLINE.match(line):
            names = tuple(n.strip().strip("\"'") for n in m.group(2).split("."))
            if m.group(1) == "[[":
                counts[names] = counts.get(names, -1) + 1
                current = [*names[:-1], names[-1], counts[names]]
            else:
                current = list(names)
                for n in range(len(names) - 1, 0, -1):  # [[a]] then [a.b]: the last a's b
                    if names[:n] in counts:
                        current = [*names[:n], counts[names[:n]], *names[n:]]
                        break
            if current == table:
                table_line = lineno
            if key is not None and [*table, key] in (list(names), current):
                return lineno
            continue
        if current == table and key is not None:
            k = _KEYLINE.match(line)
            if k and k.group(1).strip("\"'") == key:
                return lineno
    return table_line


__all__ = ["Path", "Problem", "dotted", "explain", "parse_error", "toml_line", "value_at"]
