"""Crossings per segment and period, and time-of-day and day-of-week profiles.

All of these read the small counts tables of
:class:`~vigil.geo.patterns.aggregate.CrossingAggregates`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vigil.geo.patterns.aggregate import COUNT, DATE, HOUR, WEEKDAY, CrossingAggregates
from vigil.geo.patterns.io import SEGMENT_ID

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def observed_days(agg: CrossingAggregates) -> pd.DatetimeIndex:
    """Every local day from the first crossing's to the last's, inclusive."""
    days = agg.by_segment_day[DATE]
    if days.empty:
        return pd.DatetimeIndex([])
    return pd.date_range(days.min(), days.max(), freq="D")


def segment_day_matrix(
    agg: CrossingAggregates, segment_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Crossings per local day (rows) and segment (columns), zeros where none were seen."""
    wide = agg.by_segment_day.pivot_table(
        index=DATE, columns=SEGMENT_ID, values=COUNT, aggfunc="sum", fill_value=0
    )
    cols = list(segment_ids) if segment_ids is not None else sorted(wide.columns)
    wide = wide.reindex(index=observed_days(agg), columns=cols, fill_value=0)
    wide.index.name, wide.columns.name = DATE, SEGMENT_ID
    return wide.astype(np.int64)


def segment_rates(
    agg: CrossingAggregates, segment_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Crossings per segment: total, per day over the observed days, and share of all.

    ``segment_ids`` (in chainage order) adds the segments that saw no crossing, with zeros.
    """
    totals = agg.by_segment_day.groupby(SEGMENT_ID)[COUNT].sum()
    ids = list(segment_ids) if segment_ids is not None else sorted(totals.index)
    unknown = sorted(set(totals.index) - set(ids))
    if unknown:
        raise ValueError(
            f"crossings name segment(s) {unknown[:5]} that the border does not have; expected "
            f"ids like {ids[:2]}"
        )
    totals = totals.reindex(ids, fill_value=0).astype(np.int64)
    n_days = max(len(observed_days(agg)), 1)
    total = max(int(totals.sum()), 1)
    return pd.DataFrame(
        {
            SEGMENT_ID: ids,
            "crossings": totals.to_numpy(),
            "per_day": totals.to_numpy() / n_days,
            "share": totals.to_numpy() / total,
        }
    )


def hour_profile(agg: CrossingAggregates, segment_id: str | None = None) -> pd.DataFrame:
    """Crossings per local hour of day (0-23) and the share of the day's total in each."""
    t = agg.by_segment_hour
    if segment_id is not None:
        t = t[t[SEGMENT_ID] == segment_id]
    counts = t.groupby(HOUR)[COUNT].sum().reindex(range(24), fill_value=0).astype(np.int64)
    share = counts / max(int(counts.sum()), 1)
    return pd.DataFrame({HOUR: range(24), "crossings": counts.to_numpy(), "share": share})


def weekday_profile(agg: CrossingAggregates, segment_id: str | None = None) -> pd.DataFrame:
    """Crossings per local day of week (0 = Monday) per day of that kind observed.

    Dividing by how many Mondays (Tuesdays, ...) the period held keeps a period that does not
    span whole weeks from favouring the days it has more of.
    """
    t = agg.by_segment_weekday
    if segment_id is not None:
        t = t[t[SEGMENT_ID] == segment_id]
    counts = t.groupby(WEEKDAY)[COUNT].sum().reindex(range(7), fill_value=0).astype(np.int64)
    days = observed_days(agg)
    n_of_kind = np.bincount(days.day_of_week, minlength=7) if len(days) else np.ones(7)
    per_day = counts.to_numpy() / np.maximum(n_of_kind, 1)
    return pd.DataFrame(
        {
            WEEKDAY: range(7),
            "day": WEEKDAY_NAMES,
            "crossings": counts.to_numpy(),
            "per_day": per_day,
            "ratio": per_day / max(per_day.mean(), 1e-12),
        }
    )


def daily_totals(agg: CrossingAggregates) -> pd.Series:
    """All crossings per local day, zeros included."""
    s = agg.by_segment_day.groupby(DATE)[COUNT].sum()
    return s.reindex(observed_days(agg), fill_value=0).astype(np.int64).rename("crossings")


def peak_hour(agg: CrossingAggregates) -> int:
    """The local hour of day with the most crossings."""
    return int(hour_profile(agg)["crossings"].to_numpy().argmax())
