"""Which years a monthly counts table is compared over, which of them are whole, and how
each area's yearly level moved.

US Border Patrol figures are kept by federal fiscal year (FY2019 = October 2018 to September
2019). Comparing them by calendar year splits every fiscal year in two and makes the first and
last calendar years partial. :func:`year_basis` decides the basis: a month given by the user,
else a fiscal-year column in the table (``fy``), else a table that runs whole years from a
month other than January, else calendar years; the report says which and why.

Yearly levels are compared as means per month over whole years only. :func:`long_trend` fits a
Theil–Sen line through them (robust to a year or two far off the line), and
:func:`year_changes` lists the years whose level moved by ``CHANGE_FACTOR`` or more against
the year before, which a single long line would smooth away (FY2019's doubling in Rio Grande
Valley).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vigil.geo.patterns.evidence import CHANGE_FACTOR, MIN_COUNT_YEAR_CHANGE, MIN_YEARS_TREND

FISCAL_YEAR_COLUMNS = ("fy", "fiscal_year")
MONTH_NAMES = tuple(calendar.month_abbr[1:])


def year_of(index: pd.DatetimeIndex, year_start_month: int = 1) -> np.ndarray:
    """The (fiscal) year of each date: the year in which that (fiscal) year ends.

    ``year_start_month=10`` gives US federal fiscal years (FY2000 = Oct 1999 - Sep 2000).
    """
    if not 1 <= year_start_month <= 12:
        raise ValueError(f"year_start_month={year_start_month!r}; expected 1..12")
    shift = 1 if year_start_month > 1 else 0
    return np.asarray(index.year + shift * (index.month >= year_start_month), dtype=np.int64)


@dataclass(frozen=True)
class YearBasis:
    """The years a counts table is compared over: their first month and why it was chosen."""

    start_month: int
    source: str

    @property
    def fiscal(self) -> bool:
        """Whether years start in a month other than January."""
        return self.start_month != 1

    def label(self, year: int) -> str:
        """``"FY2019"`` for fiscal years, ``"2019"`` for calendar years."""
        return f"FY{year}" if self.fiscal else str(year)

    def describe(self) -> str:
        """One phrase for the report: which years, and where that came from."""
        if not self.fiscal:
            return f"calendar years ({self.source})"
        first = MONTH_NAMES[self.start_month - 1]
        last = MONTH_NAMES[(self.start_month - 2) % 12]
        return f"fiscal years {first}–{last}, named by the year they end in ({self.source})"


def start_month_from_column(time: pd.Series, fiscal_year: pd.Series) -> int | None:
    """The first month of the years that a fiscal-year column follows, or None if none fits.

    A year starting in month ``m`` > 1 is named by the year it ends in: ``fy == year + 1`` from
    month ``m`` on. Of several months that fit (a table without every month): January (the
    column is a plain year) if it fits, else October (US federal), else the earliest.
    """
    t = pd.DatetimeIndex(pd.to_datetime(time))
    fy = pd.to_numeric(fiscal_year, errors="coerce").to_numpy(np.float64)
    if len(t) == 0 or not np.isfinite(fy).all():
        return None
    fits = [m for m in range(1, 13) if np.array_equal(year_of(t, m), fy)]
    for preferred in (1, 10):
        if preferred in fits:
            return preferred
    return fits[0] if fits else None


def year_basis(
    months: pd.DatetimeIndex,
    *,
    given: int | None = None,
    column: tuple[str, int | None] | None = None,
) -> YearBasis:
    """Decide the years of a monthly table (see the module's description).

    Parameters
    ----------
    months
        The table's months (month starts, in order, every month from first to last).
    given
        The first month the user asked for (1-12), or None.
    column
        ``(name, start month it follows or None)`` for a fiscal-year column in the table.
    """
    if given is not None:
        if not 1 <= given <= 12:
            raise ValueError(f"year_start_month={given!r}; expected 1..12")
        return YearBasis(given, "as asked")
    if column is not None:
        name, month = column
        if month is not None:
            return YearBasis(month, f"from column {name!r}")
    if len(months) >= 24:
        first, last = months[0].month, months[-1].month
        if first != 1 and last == (first - 2) % 12 + 1:
            return YearBasis(
                first,
                f"the table runs whole years from {MONTH_NAMES[first - 1]}; "
                "pass --year-start 1 for calendar years",
            )
    return YearBasis(1, "no fiscal-year column; pass --year-start 10 for US fiscal years")


def yearly(wide: pd.DataFrame, basis: YearBasis) -> tuple[pd.DataFrame, pd.Series]:
    """Totals per (fiscal) year and area, and how many months of each year the table holds.

    ``wide`` holds every month from first to last (:func:`vigil.geo.patterns.seasonality.
    monthly_wide`), so only the first and last years can be partial.
    """
    years = year_of(pd.DatetimeIndex(wide.index), basis.start_month)
    totals = wide.groupby(years).sum()
    months = pd.Series(years).value_counts().reindex(totals.index).astype(np.int64)
    totals.index.name = months.index.name = "year"
    return totals, months.rename("months")


def partial_years(months: pd.Series) -> list[int]:
    """The years with fewer than 12 months in the table."""
    return [int(y) for y, n in months.items() if n < 12]


def long_trend(per_month: pd.Series) -> dict:
    """Theil–Sen line through yearly means per month (whole years), over every year given.

    Returns ``direction`` ("rising", "falling" or "flat": the slope's 95 % interval holds
    zero, or it is under 2 % of the median level a year), ``percent_per_year`` (of the median
    level), ``first``/``last`` year, ``last_per_month`` (the last year's actual mean) and
    ``expected_last_per_month`` (the line at the last year, never below 0). With fewer than
    ``MIN_YEARS_TREND`` years: ``direction`` "unknown" and ``reason``.
    """
    from scipy.stats import theilslopes

    s = per_month.astype(np.float64)
    if len(s) < MIN_YEARS_TREND:
        return {
            "direction": "unknown",
            "reason": f"{len(s)} whole years; a trend needs {MIN_YEARS_TREND}",
        }
    x = s.index.to_numpy(np.float64)
    slope, intercept, low, high = theilslopes(s.to_numpy(), x, alpha=0.95)
    level = float(s.median())
    pct = 100.0 * slope / level if level > 0 else float("nan")
    if not np.isfinite(pct) or abs(pct) < 2.0 or low <= 0.0 <= high:
        direction = "flat"
    else:
        direction = "rising" if slope > 0 else "falling"
    last = int(x[-1])
    return {
        "direction": direction,
        "percent_per_year": round(pct, 2) if np.isfinite(pct) else None,
        "first": int(x[0]),
        "last": last,
        "last_per_month": round(float(s.iloc[-1]), 1),
        "expected_last_per_month": round(max(0.0, float(intercept + slope * last)), 1),
    }


def year_changes(per_month: pd.Series) -> list[dict]:
    """Consecutive whole years whose mean per month moved by ``CHANGE_FACTOR`` or more.

    Both years must total at least ``MIN_COUNT_YEAR_CHANGE``. Each change is ``year``,
    ``previous_per_month``, ``per_month`` and ``ratio`` (this year over the one before).
    """
    out = []
    s = per_month.astype(np.float64)
    for (y0, a), (y1, b) in zip(s.items(), list(s.items())[1:], strict=False):
        if y1 != y0 + 1 or 12 * min(a, b) < MIN_COUNT_YEAR_CHANGE:
            continue
        ratio = b / a
        if ratio >= CHANGE_FACTOR or ratio <= 1.0 / CHANGE_FACTOR:
            out.append(
                {
                    "year": int(y1),
                    "previous_per_month": round(float(a), 1),
                    "per_month": round(float(b), 1),
                    "ratio": round(float(ratio), 3),
                }
            )
    return out
