"""Class models: what a sensor's guess, a camera's confusion table and a track's speed say
about whether a track is a person, a vehicle or an animal.

Each function returns a likelihood over :data:`vigil.tracks.config.CLASSES` (person, vehicle,
animal), to be added to a track's class evidence or to weigh its probabilities. The tables
are fitted by :mod:`vigil.tracks.calibration`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from vigil.tracks.config import CLASSES, ClassRow, SpeedRow

#: Class factors (person, vehicle, animal) for a track known to move slowly, or fast.
_SLOW = np.array([1.0, 0.1, 1.0])
_FAST = np.array([0.05, 1.0, 0.05])


def class_likelihood(class_guess: str, confidence: float) -> NDArray[np.float64]:
    """Likelihood of a sensor's class guess under each of person, vehicle, animal.

    The guess with confidence ``c`` is read as "right with probability c, else uninformative":
    ``(1 - c) / 3`` for every class plus ``c`` for the guessed one. ``"unknown"`` or ``c = 0``
    carries no information.
    """
    c = min(max(float(confidence), 0.0), 1.0)
    lik = np.full(len(CLASSES), (1.0 - c) / len(CLASSES))
    if class_guess in CLASSES:
        lik[CLASSES.index(class_guess)] += c
    else:
        lik[:] = 1.0
    return lik


def table_likelihood(
    rows: Iterable[ClassRow],
    class_guess: str,
    confidence: float,
    range_m: float | None,
    weight: float = 1.0,
) -> NDArray[np.float64]:
    """Likelihood of a class guess from a confusion table (see ``camera_class_model``).

    The row for the guess, the confidence band and the range band gives
    ``P(guess, band | class, range)``; the result is normalised to a maximum of 1 and raised
    to ``weight`` (evidence from correlated frames counts less). Without a row (or without
    a range), :func:`class_likelihood` is used.
    """
    r = -1.0 if range_m is None else float(range_m)
    table = _table(rows) if isinstance(rows, tuple) else None
    if table is None:  # not a tuple: the plain search (a tuple's index is cached)
        for guess, lo, hi, r_lo, r_hi, *probs in rows:
            if guess == class_guess and lo <= confidence < hi and r_lo <= r < r_hi:
                lik = np.maximum(np.asarray(probs, dtype=np.float64), 1e-6)
                break
        else:
            lik = class_likelihood(class_guess, confidence)
        lik = lik / lik.max()
        return lik**weight if weight != 1.0 else lik
    for j, lo, hi, r_lo, r_hi in table.get(class_guess, ()):
        if lo <= confidence < hi and r_lo <= r < r_hi:
            return _weighted(rows, j, weight)
    lik = class_likelihood(class_guess, confidence)
    lik = lik / lik.max()
    return lik**weight if weight != 1.0 else lik


#: Per class table (kept alive with it, by id): guess -> its rows' (index, bands) in order.
_TABLES: dict[int, tuple[tuple, dict[str, list[tuple[int, float, float, float, float]]]]] = {}
#: (table id, row index, weight) -> the row's normalised, weighted likelihood, shared by
#: every call (callers copy it or only read it; class table rows are read-only).
_ROW_LIK: dict[tuple[int, int, float], NDArray[np.float64]] = {}


def _table(rows: tuple) -> dict[str, list[tuple[int, float, float, float, float]]]:
    """A class table's rows grouped by guess, in table order (so the first row that fits a
    guess is the same one the plain search finds); built once per table."""
    hit = _TABLES.get(id(rows))
    if hit is not None and hit[0] is rows:
        return hit[1]
    if len(_TABLES) > 64:
        _TABLES.clear()
        _ROW_LIK.clear()
    by_guess: dict[str, list[tuple[int, float, float, float, float]]] = {}
    for j, (guess, lo, hi, r_lo, r_hi, *_probs) in enumerate(rows):
        by_guess.setdefault(guess, []).append((j, lo, hi, r_lo, r_hi))
    _TABLES[id(rows)] = (rows, by_guess)
    return by_guess


def _weighted(rows: tuple, j: int, weight: float) -> NDArray[np.float64]:
    """Row ``j``'s likelihood, normalised to a maximum of 1 and raised to ``weight``, computed
    as :func:`table_likelihood` always did and kept (read-only) for the next call."""
    key = (id(rows), j, weight)
    lik = _ROW_LIK.get(key)
    if lik is None:
        lik = np.maximum(np.asarray(rows[j][5:], dtype=np.float64), 1e-6)
        lik = lik / lik.max()
        lik = lik**weight if weight != 1.0 else lik
        lik.setflags(write=False)
        _ROW_LIK[key] = lik
    return lik


def speed_likelihood(
    rows: Sequence[SpeedRow], speed_mps: float, weight: float = 1.0
) -> NDArray[np.float64] | None:
    """Likelihood of a track's speed (m/s) under person, vehicle, animal from a speed table
    (see ``speed_class_model``), normalised to a maximum of 1 and raised to ``weight``;
    ``None`` when no row covers the speed."""
    for j, (lo, hi, *probs) in enumerate(rows):
        if lo <= speed_mps < hi:
            if not isinstance(rows, tuple):
                lik = np.maximum(np.asarray(probs, dtype=np.float64), 1e-6)
                return (lik / lik.max()) ** weight
            return _speed_row(rows, j, weight)
    return None


def speed_likelihoods(
    rows: tuple[SpeedRow, ...], speeds_mps: Sequence[float], weight: float = 1.0
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """:func:`speed_likelihood` of many speeds (m/s) at once, the same values: the indices
    of the speeds some row covers ``(k,)`` and their likelihoods ``(k, classes)``."""
    s = np.asarray(speeds_mps, dtype=np.float64)
    if not rows or not s.size:
        return np.empty(0, dtype=np.int64), np.empty((0, len(CLASSES)))
    lo, hi, liks = _speed_table(rows, weight)
    cover = (lo <= s[:, None]) & (s[:, None] < hi)  # (speeds, rows)
    row = np.argmax(cover, axis=1)  # the first row that covers a speed
    idx = np.flatnonzero(cover[np.arange(s.size), row])
    return idx, liks[row[idx]]


#: (speed table id, weight) -> the table, its rows' bounds and likelihoods (m/s; as
#: :func:`_speed_row` makes them), kept alive with the table.
_SPEED_TABLES: dict[tuple[int, float], tuple[tuple, NDArray, NDArray, NDArray]] = {}


def _speed_table(
    rows: tuple, weight: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A speed table's lower and upper bounds ``(rows,)`` and likelihoods ``(rows,
    classes)``, built once per table and weight."""
    hit = _SPEED_TABLES.get((id(rows), weight))
    if hit is None or hit[0] is not rows:
        if len(_SPEED_TABLES) > 64:
            _SPEED_TABLES.clear()
        lo = np.array([r[0] for r in rows], dtype=np.float64)
        hi = np.array([r[1] for r in rows], dtype=np.float64)
        liks = np.stack([_speed_row(rows, j, weight) for j in range(len(rows))])
        hit = _SPEED_TABLES[(id(rows), weight)] = (rows, lo, hi, liks)
    return hit[1], hit[2], hit[3]


def _speed_row(rows: tuple, j: int, weight: float) -> NDArray[np.float64]:
    """Speed table row ``j``'s likelihood, normalised to a maximum of 1 and raised to
    ``weight``, kept for the next call."""
    key = (id(rows), -1 - j, weight)
    hit = _ROW_LIK.get(key)
    if hit is None or _TABLES.get(id(rows), (None,))[0] is not rows:
        _table_keep(rows)
        lik = np.maximum(np.asarray(rows[j][2:], dtype=np.float64), 1e-6)
        hit = (lik / lik.max()) ** weight  # writeable: compiled kernels read it
        _ROW_LIK[key] = hit
    return hit


def _table_keep(rows: tuple) -> None:
    """Keep a speed table alive while its rows' likelihoods are cached by its id."""
    if _TABLES.get(id(rows), (None,))[0] is not rows:
        if len(_TABLES) > 64:
            _TABLES.clear()
            _ROW_LIK.clear()
        _TABLES[id(rows)] = (rows, {})


def pace_factor(
    speed_mps: float, walk_max_mps: float, vehicle_min_mps: float
) -> NDArray[np.float64] | None:
    """Class factors for a pace: people and animals do not keep up vehicle speeds, and a
    vehicle on the move does not creep at walking pace.

    Returns the slow factors at or below ``walk_max_mps``, the fast ones at or above
    ``vehicle_min_mps`` (m/s), and ``None`` between them (the pace says nothing).
    """
    if speed_mps <= walk_max_mps:
        return _SLOW
    if speed_mps >= vehicle_min_mps:
        return _FAST
    return None


def speed_says(
    v: NDArray[np.float64],
    Pv: NDArray[np.float64],
    sigma_max_mps: float,
    model: Callable[[float], NDArray[np.float64] | None],
) -> NDArray[np.float64] | None:
    """What a track's speed says of its class: ``model(speed)`` when the velocity is known
    well enough, else ``None``.

    The one place where speed is read as class evidence, for both its uses: the calibrated
    speed table added to a settled track's evidence (:func:`speed_likelihood`) and the
    walking-or-driving factors on the published probabilities (:func:`pace_factor`).

    Parameters
    ----------
    v, Pv
        The track's velocity ``(2,)`` (m/s) and its covariance ``(2, 2)`` (m^2/s^2).
    sigma_max_mps
        The largest per-axis velocity sigma (m/s, root of half the covariance's trace) at
        which the speed is trusted.
    model
        Speed (m/s) to a likelihood over person, vehicle, animal, or ``None``.
    """
    if 0.5 * (Pv[0, 0] + Pv[1, 1]) > sigma_max_mps**2:
        return None
    return model(math.hypot(float(v[0]), float(v[1])))


def pace_weighted(
    probs: NDArray[np.float64],
    v: NDArray[np.float64],
    Pv: NDArray[np.float64],
    sigma_max_mps: float,
    walk_max_mps: float,
    vehicle_min_mps: float,
) -> NDArray[np.float64]:
    """Many tracks' class probabilities ``(n, classes)`` weighed by their pace: for each,
    :func:`speed_says` with :func:`pace_factor`, then renormalised, the same numbers one
    track at a time gives (rows the pace says nothing of are returned as they are).

    Parameters
    ----------
    probs
        ``(n, classes)`` class probabilities.
    v, Pv
        ``(n, 2)`` velocities (m/s) and ``(n, 2, 2)`` their covariances (m^2/s^2).
    sigma_max_mps, walk_max_mps, vehicle_min_mps
        As :func:`speed_says` and :func:`pace_factor` take them (m/s).
    """
    out = np.array(probs, dtype=np.float64)
    known = np.flatnonzero(~(0.5 * (Pv[:, 0, 0] + Pv[:, 1, 1]) > sigma_max_mps**2))
    if not known.size:
        return out
    speed = np.array(list(map(math.hypot, v[known, 0].tolist(), v[known, 1].tolist())))
    slow, fast = known[speed <= walk_max_mps], known[speed >= vehicle_min_mps]
    fast = fast[~np.isin(fast, slow)]  # pace_factor: slow first
    for rows, factor in ((slow, _SLOW), (fast, _FAST)):
        w = out[rows] * factor
        out[rows] = w / w.sum(axis=1, keepdims=True)
    return out
