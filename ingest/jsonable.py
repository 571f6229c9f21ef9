"""Plain JSON from what the stages compute: numpy values unwrapped, NaN and infinities as null.

Summaries, status files and reports are dicts built from vectorised results, so numpy scalars
and arrays end up in them, and a missing figure is a NaN; :func:`json.dumps` refuses the
former and writes the latter as ``NaN``, which is not JSON. :func:`jsonable` turns such a value
into one that :mod:`json` writes as strict JSON, keeping the order of every dict and list;
:func:`dumps` writes it.

>>> import numpy as np
>>> dumps({"count": np.int64(3), "rate": np.float64("nan"), "xy": np.array([1.5, 2.0])})
'{"count": 3, "rate": null, "xy": [1.5, 2.0]}'
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np


def numpy_scalar(obj: Any) -> Any:
    """A numpy scalar (``np.float64``, ``np.int64``, ``np.bool_``) as the Python value it holds.

    The ``enc_hook`` of every msgspec encoder that may meet the output of a vectorised stage
    (wire messages, the event store, recordings); anything else raises
    :class:`NotImplementedError`, which msgspec reports as a type it cannot encode.
    """
    item = getattr(obj, "item", None)
    if item is not None and type(obj).__module__ == "numpy":
        return item()
    raise NotImplementedError(f"cannot encode {type(obj).__name__}: not a numpy scalar")


def jsonable(value: Any, default: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as plain JSON values that :func:`json.dumps` writes as strict JSON.

    Dicts and lists (and tuples, as lists) are converted item by item in their order; numpy
    integers, floats and booleans become ``int``, ``float`` and ``bool``; numpy arrays become
    (nested) lists; NaN, infinities and ``pandas.NaT`` become ``None`` (null); dates and times
    (``datetime``, ``pandas.Timestamp``) become ISO 8601 strings. Dict keys that JSON takes
    (``str``, ``int``, ``float``, ``bool``, ``None``) stay as they are, numpy scalar keys are
    unwrapped, and any other key becomes ``str(key)``.

    Parameters
    ----------
    value
        What to convert; it is not modified.
    default
        Called with any other object; what it returns is converted in turn. Without it such
        objects are returned unchanged (and :func:`json.dumps` then names their type).
    """
    if isinstance(value, dict):
        return {_key(k): jsonable(v, default) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, default) for v in value]
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), default)
    if isinstance(value, date):
        return None if value != value else value.isoformat()  # NaT, pandas' missing time
    if default is not None:
        return jsonable(default(value))
    return value


def dumps(
    value: Any, *, indent: int | None = None, default: Callable[[Any], Any] | None = None
) -> str:
    """Strict JSON text of ``value`` after :func:`jsonable` (keys in their order, no ``NaN``).

    Parameters
    ----------
    value, default
        As for :func:`jsonable`.
    indent
        Spaces per nesting level, as for :func:`json.dumps` (None: one line).
    """
    return json.dumps(jsonable(value, default), indent=indent, allow_nan=False)


def _key(key: Any) -> Any:
    if isinstance(key, str | int | float | None):
        return key
    if isinstance(key, np.generic):
        return key.item()
    return str(key)
