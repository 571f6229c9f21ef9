"""Displacement: when one segment's crossings fall, which neighbouring segments rise.

Enforcement (a new tower, a fence, agents) rarely stops crossings; it moves them along the
line. For a segment whose rate drops, compare each segment's mean daily rate over a window
before and after the drop: neighbours within ``radius`` segments whose rate rose took up the
``share`` of the drop given by their rise.

The drop date is either given (``at``: the day the tower went up) or found per segment as the
split, on a weekly grid, where the before/after fall is most significant (a Poisson z-score).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _window_rates(wide: pd.DataFrame, at: pd.Timestamp, days: int) -> tuple[pd.Series, ...]:
    before = wide[(wide.index >= at - pd.Timedelta(days=days)) & (wide.index < at)]
    after = wide[(wide.index >= at) & (wide.index < at + pd.Timedelta(days=days))]
    return before.mean(), after.mean(), pd.Series(len(before)), pd.Series(len(after))


def drop_z(before: float, after: float, n_before: int, n_after: int) -> float:
    """Poisson z-score of a fall in daily rate from ``before`` to ``after`` (positive = fall)."""
    var = before / max(n_before, 1) + after / max(n_after, 1)
    return float((before - after) / np.sqrt(var)) if var > 0 else 0.0


def find_drops(
    wide: pd.DataFrame, *, window_days: int = 28, min_drop: float = 0.3, min_z: float = 4.0
) -> pd.DataFrame:
    """Segments whose crossings fell, and when: the most significant weekly split of each.

    Parameters
    ----------
    wide
        Crossings per day (rows) and segment (columns), in chainage order.
    window_days
        Days before and after a split that are compared.
    min_drop
        Smallest relative fall beyond the border-wide one that counts (0.3: down by 30 %
        more than all segments together).
    min_z
        Smallest Poisson z-score that counts.

    Returns
    -------
    DataFrame
        ``segment_id, at, before_per_day, after_per_day, drop, z`` by decreasing z.
    """
    if len(wide) < 2 * window_days:
        return pd.DataFrame(
            columns=["segment_id", "at", "before_per_day", "after_per_day", "drop", "z"]
        )
    values = wide.to_numpy(np.float64)
    csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    splits = np.arange(window_days, len(wide) - window_days + 1, 7)
    before = (csum[splits] - csum[splits - window_days]) / window_days
    after = (csum[splits + window_days] - csum[splits]) / window_days
    var = (before + after) / window_days
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, (before - after) / np.sqrt(var), 0.0)
    # A fall everywhere at once (the season, the economy) is not a local change: what counts
    # is how much more a segment fell than the border as a whole.
    # The weekly grid finds the fall; the day of it is the best split within a week of that.
    days = np.arange(window_days, len(wide) - window_days + 1)
    d_before = (csum[days] - csum[days - window_days]) / window_days
    d_after = (csum[days + window_days] - csum[days]) / window_days
    d_var = (d_before + d_after) / window_days
    with np.errstate(divide="ignore", invalid="ignore"):
        d_z = np.where(d_var > 0, (d_before - d_after) / np.sqrt(d_var), 0.0)
    rows = []
    for j, seg in enumerate(wide.columns):
        week = splits[int(np.argmax(z[:, j]))]
        near = np.flatnonzero(np.abs(days - week) <= 7)
        k = int(near[np.argmax(d_z[near, j])])
        splits_k = days[k]
        b, a = d_before[k, j], d_after[k, j]
        total_rel_k = (d_before[k].sum() - d_after[k].sum()) / max(d_before[k].sum(), 1e-12)
        rel = (b - a) / b if b > 0 else 0.0
        if d_z[k, j] >= min_z and rel - max(total_rel_k, 0.0) >= min_drop:
            rows.append(
                {
                    "segment_id": seg,
                    "at": wide.index[splits_k],
                    "before_per_day": b,
                    "after_per_day": a,
                    "drop": rel,
                    "z": float(d_z[k, j]),
                }
            )
    out = pd.DataFrame(
        rows, columns=["segment_id", "at", "before_per_day", "after_per_day", "drop", "z"]
    )
    return out.sort_values("z", ascending=False).reset_index(drop=True)


def displacement(
    wide: pd.DataFrame,
    *,
    at: pd.Timestamp | str | None = None,
    segment_id: str | None = None,
    window_days: int = 28,
    radius: int = 3,
    min_drop: float = 0.3,
    min_z: float = 4.0,
) -> pd.DataFrame:
    """Which neighbours rose when a segment's crossings fell.

    Parameters
    ----------
    wide
        Crossings per day (rows) and segment (columns), in chainage order
        (:func:`vigil.geo.patterns.counts.segment_day_matrix`).
    at, segment_id
        The day and segment of a known change (a tower put up). Without them every segment's
        most significant fall is found (:func:`find_drops`).
    window_days
        Days compared either side of the change.
    radius
        Segments either side searched for a rise.

    Returns
    -------
    DataFrame
        One row per (falling segment, rising neighbour): ``segment_id, at, fall_per_day,
        neighbour_id, offset`` (segments along the line, + towards higher chainage),
        ``rise_per_day, share`` (rise / fall), ``rise_z``; the most taken-up first.
    """
    cols = list(wide.columns)
    if at is not None:
        if segment_id is None or segment_id not in cols:
            raise ValueError(
                f"segment_id={segment_id!r}; with at= give a segment of the table, e.g. {cols[0]!r}"
            )
        at = pd.Timestamp(at)
        b, a, nb, na = _window_rates(wide, at, window_days)
        drops = pd.DataFrame(
            [
                {
                    "segment_id": segment_id,
                    "at": at,
                    "before_per_day": b[segment_id],
                    "after_per_day": a[segment_id],
                }
            ]
        )
    else:
        drops = find_drops(wide, window_days=window_days, min_drop=min_drop, min_z=min_z)
    rows = []
    for drop in drops.itertuples(index=False):
        b, a, nb, na = _window_rates(wide, pd.Timestamp(drop.at), window_days)
        n_b, n_a = int(nb.iloc[0]), int(na.iloc[0])
        fall = float(drop.before_per_day - drop.after_per_day)
        i = cols.index(drop.segment_id)
        for j in range(max(0, i - radius), min(len(cols), i + radius + 1)):
            if j == i:
                continue
            rise = float(a.iloc[j] - b.iloc[j])
            z = -drop_z(float(b.iloc[j]), float(a.iloc[j]), n_b, n_a)
            if rise <= 0:
                continue
            rows.append(
                {
                    "segment_id": drop.segment_id,
                    "at": pd.Timestamp(drop.at),
                    "fall_per_day": fall,
                    "neighbour_id": cols[j],
                    "offset": j - i,
                    "rise_per_day": rise,
                    "share": rise / fall if fall > 0 else float("nan"),
                    "rise_z": z,
                }
            )
    columns = [
        "segment_id", "at", "fall_per_day", "neighbour_id", "offset", "rise_per_day", "share",
        "rise_z",
    ]  # fmt: skip
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["segment_id", "rise_per_day"], ascending=[True, False]).reset_index(
        drop=True
    )
