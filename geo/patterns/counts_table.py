"""Planners' analysis of an aggregate counts table (months by area), such as US Border Patrol
apprehensions by sector: seasonality, yearly levels and changes, the busiest area per year,
and subtotals per border when the table says which border each area is on.

Years are fiscal or calendar as :func:`~vigil.geo.patterns.years.year_basis` decides, and the
summary says which. Partial first and last years are marked and left out of comparisons
between years. Statements the data cannot support are withheld
(:mod:`~vigil.geo.patterns.evidence`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from vigil.geo.patterns.aggregate import is_dask
from vigil.geo.patterns.io import PatternInputError
from vigil.geo.patterns.seasonality import busiest_by_year, group_seasonality, monthly_wide
from vigil.geo.patterns.years import (
    FISCAL_YEAR_COLUMNS,
    YearBasis,
    partial_years,
    start_month_from_column,
    year_basis,
    yearly,
)

SUBTOTAL_COLUMN = "border"
KEEP_COLUMNS = (*FISCAL_YEAR_COLUMNS, SUBTOTAL_COLUMN)


@dataclass
class CountsAnalysis:
    """Results over an aggregate counts table: months by group, seasonality, busiest."""

    wide: pd.DataFrame
    seasonality: dict
    busiest: pd.DataFrame
    basis: YearBasis = field(default_factory=lambda: YearBasis(1, "default"))
    subtotals: pd.DataFrame | None = None
    subtotal_seasonality: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def monthly_counts(counts) -> pd.DataFrame:
    """Months by group from a normalised counts table, pandas or Dask."""
    if is_dask(counts):
        month = counts["time"].dt.to_period("M").dt.to_timestamp()
        summed = counts.assign(time=month).groupby(["time", "group"])["value"].sum().compute()
        return monthly_wide(summed.reset_index())
    return monthly_wide(counts)


def _distinct(counts, cols: list[str]) -> pd.DataFrame:
    d = counts[cols].drop_duplicates()
    return d.compute() if is_dask(counts) else d


def _fiscal_column(counts) -> tuple[str, int | None] | None:
    for name in FISCAL_YEAR_COLUMNS:
        if name in counts.columns:
            pairs = _distinct(counts, ["time", name])
            return name, start_month_from_column(pairs["time"], pairs[name])
    return None


def subtotal_groups(counts, column: str = SUBTOTAL_COLUMN) -> dict[str, str] | None:
    """Each area's border (or other subtotal) from ``column``, or None without the column.

    An area named on more than one border is an error: its counts cannot be split.
    """
    if column not in counts.columns:
        return None
    pairs = _distinct(counts, ["group", column])
    many = pairs.groupby("group")[column].nunique()
    if (many > 1).any():
        g = str(many[many > 1].index[0])
        values = sorted(pairs.loc[pairs["group"] == g, column].astype(str))
        raise PatternInputError(
            f"area {g!r} is on several values of column {column!r} ({values}); expected one "
            "per area for the subtotals"
        )
    return {str(g): str(b) for g, b in zip(pairs["group"], pairs[column], strict=True)}


def analyze_counts_table(
    counts,
    *,
    year_start_month: int | None = None,
    busiest_year_start_month: int | None = None,
) -> CountsAnalysis:
    """Seasonality, yearly levels and the busiest group per year of an aggregate counts table.

    Parameters
    ----------
    counts
        Normalised ``time, group, value`` (:func:`vigil.geo.patterns.io.normalise_counts`),
        pandas or Dask, optionally with a fiscal-year column (``fy``) and a ``border``
        column (subtotals per border).
    year_start_month
        First month of the years (1 calendar, 10 US fiscal); None: decided from the table
        (:func:`~vigil.geo.patterns.years.year_basis`) and said in the summary.
    busiest_year_start_month
        Kept for callers that set it apart; it must equal the years' first month if given.
    """
    wide = monthly_counts(counts)
    basis = year_basis(
        pd.DatetimeIndex(wide.index), given=year_start_month, column=_fiscal_column(counts)
    )
    if busiest_year_start_month not in (None, basis.start_month):
        raise ValueError(
            f"busiest_year_start_month={busiest_year_start_month!r} differs from the years' "
            f"first month {basis.start_month}; one basis serves every comparison"
        )
    seasonality = group_seasonality(wide, basis)
    busiest = busiest_by_year(wide, basis)
    groups = subtotal_groups(counts)
    subtotals = None
    sub_season: dict = {}
    if groups is not None and set(groups.values()) != set(groups):
        subtotals = wide.T.groupby(wide.columns.map(lambda g: groups.get(str(g), "?"))).sum().T
        sub_season = group_seasonality(subtotals, basis)
    total = wide.sum(axis=1)
    overall = group_seasonality(total.to_frame("all"), basis)["all"]
    _, months = yearly(wide, basis)
    whole_busiest = busiest[~busiest["partial"]]
    summary = {
        "groups": [str(g) for g in wide.columns],
        "months": len(wide),
        "first_month": wide.index.min().date().isoformat(),
        "last_month": wide.index.max().date().isoformat(),
        "total": int(round(float(total.sum()))),
        "year_start_month": basis.start_month,
        "years": basis.describe(),
        "whole_years": [basis.label(int(y)) for y, n in months.items() if n == 12],
        "partial_years": {basis.label(y): int(months[y]) for y in partial_years(months)},
        "all": {
            k: overall[k]
            for k in ("peak_month", "peak_ratio", "trough_month", "trough_ratio", "trend")
        }
        | {"changes": overall["changes"], "per_month_by_year": overall["per_month_by_year"]},
        "peaks": {g: s["peak_month"] for g, s in seasonality.items()},
        "troughs": {g: s["trough_month"] for g, s in seasonality.items()},
        "no_peak": {g: s["reason"] for g, s in seasonality.items() if s["peak_month"] is None},
        "changes": {g: s["changes"] for g, s in seasonality.items() if s["changes"]},
        "busiest_by_year": {
            int(r.year): {
                "label": r.label,
                "group": r.busiest,
                "count": int(r.count),
                "share": float(r.share),
                "months": int(r.months),
                "partial": bool(r.partial),
            }
            for r in busiest.itertuples()
        },
        "busiest_first_whole_year": _busiest(whole_busiest, 0),
        "busiest_last_whole_year": _busiest(whole_busiest, -1),
    }
    if subtotals is not None:
        summary["subtotals"] = {
            b: {
                "areas": sorted(g for g, v in groups.items() if v == b),
                "total": s["total"],
                "peak_month": s["peak_month"],
                "peak_ratio": s["peak_ratio"],
                "trough_month": s["trough_month"],
                "trough_ratio": s["trough_ratio"],
                "reason": s.get("reason"),
                "trend": s["trend"],
                "changes": s["changes"],
            }
            for b, s in sub_season.items()
        }
    return CountsAnalysis(
        wide=wide,
        seasonality=seasonality,
        busiest=busiest,
        basis=basis,
        subtotals=subtotals,
        subtotal_seasonality=sub_season,
        summary=summary,
    )


def _busiest(table: pd.DataFrame, i: int) -> dict | None:
    if table.empty:
        return None
    r = table.iloc[i]
    return {"year": r["label"], "group": r["busiest"], "share": float(r["share"])}
