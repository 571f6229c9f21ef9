"""Seasonality and trend of counts over time: monthly profiles, STL trend, busiest areas.

These work on aggregate counts tables (``time, group, value``), such as Border Patrol monthly
apprehensions by sector, and on the daily or monthly totals of a crossing table.

Monthly profile: each month's count divided by the mean month of its year, averaged per
calendar month over the years; 1.0 is an average month. Only whole years count (a year with
months missing would bias its mean), unless there is no whole year at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vigil.geo.patterns import evidence
from vigil.geo.patterns.years import (
    MONTH_NAMES,
    YearBasis,
    long_trend,
    year_changes,
    year_of,
    yearly,
)

__all__ = [
    "MONTH_NAMES",
    "busiest_by_year",
    "group_seasonality",
    "monthly_profile",
    "monthly_wide",
    "stl_trend",
    "year_of",
]


def monthly_wide(counts: pd.DataFrame) -> pd.DataFrame:
    """Normalised counts (``time, group, value``) as months (rows) by group (columns).

    Values within the same month and group are summed; missing months are zeros.
    """
    month = counts["time"].dt.to_period("M").dt.to_timestamp()
    wide = counts.assign(time=month).pivot_table(
        index="time", columns="group", values="value", aggfunc="sum", fill_value=0
    )
    full = pd.date_range(wide.index.min(), wide.index.max(), freq="MS")
    return wide.reindex(full, fill_value=0).astype(np.float64)


def month_ratios(
    series: pd.Series, *, year_start_month: int = 1, min_year_total: float = 0.0
) -> pd.DataFrame:
    """Each month's count over its year's mean month: (fiscal) years (rows) by month 1-12.

    Only whole years whose total is above zero and at least ``min_year_total`` are rows (a
    year with months missing would bias its mean; an empty year has no shape), unless there is
    no whole year at all, when the partial years stand in.
    """
    s = series.astype(np.float64)
    years = year_of(pd.DatetimeIndex(s.index), year_start_month)
    months_in_year = pd.Series(years).map(pd.Series(years).value_counts()).to_numpy()
    whole = months_in_year == 12
    if not whole.any():
        whole = np.ones_like(whole)
    frame = pd.DataFrame({"value": s.to_numpy(), "year": years, "month": s.index.month})[whole]
    wide = frame.pivot_table(index="year", columns="month", values="value", aggfunc="sum")
    wide = wide.reindex(columns=range(1, 13))
    total = wide.sum(axis=1)
    wide = wide[(total > 0) & (total >= min_year_total)]
    return wide.div(wide.mean(axis=1), axis=0)


def monthly_profile(
    series: pd.Series, *, year_start_month: int = 1, min_year_total: float = 0.0
) -> pd.Series:
    """Mean ratio of each calendar month to its year's mean month (index 1-12).

    Parameters
    ----------
    series
        Monthly totals indexed by month start.
    year_start_month
        Month the year starts for the yearly means (1: calendar years; 10: US fiscal years).
    min_year_total
        Years with a smaller total are left out (too few counts to have a shape).
    """
    ratios = month_ratios(series, year_start_month=year_start_month, min_year_total=min_year_total)
    profile = ratios.mean(axis=0).reindex(range(1, 13))
    profile.index.name = "month"
    return profile.rename("ratio")


def stl_trend(series: pd.Series, *, period: int) -> dict:
    """Trend of a regular series from a robust STL decomposition (statsmodels).

    Returns the trend component's slope from a least-squares line through it, per year and as
    a percentage of the series mean per year, with ``direction`` "rising", "falling" or "flat"
    (less than 2 % a year either way, or a slope within 3 standard errors of zero in the
    deseasonalised series), ``t`` (that slope's t-statistic) and the components.

    Parameters
    ----------
    series
        Regular series (daily or monthly) indexed by time.
    period
        Seasonal period in samples (7 for daily data with a weekly cycle, 12 for monthly).
    """
    from statsmodels.tsa.seasonal import STL

    s = series.astype(np.float64)
    if len(s) < 2 * period + 1:
        return {
            "slope_per_year": float("nan"),
            "percent_per_year": float("nan"),
            "direction": "unknown",
            "trend": s * np.nan,
            "reason": f"{len(s)} samples; STL needs at least {2 * period + 1}",
        }
    fit = STL(s.to_numpy(), period=period, robust=True).fit()
    trend = pd.Series(fit.trend, index=s.index, name="trend")
    years = (s.index - s.index[0]).total_seconds().to_numpy() / (365.25 * 86400.0)
    slope = float(np.polyfit(years, fit.trend, 1)[0])
    # Is the slope more than noise? A line through the deseasonalised series and its
    # standard error; STL's smooth trend alone bends at the ends of a flat noisy series.
    adjusted = s.to_numpy() - fit.seasonal
    coef, cov = np.polyfit(years, adjusted, 1, cov=True)
    t_stat = float(coef[0] / np.sqrt(cov[0, 0])) if cov[0, 0] > 0 else float("inf")
    mean = float(s.mean())
    pct = 100.0 * slope / mean if mean > 0 else float("nan")
    if abs(pct) < 2.0 or abs(t_stat) < 3.0:
        direction = "flat"
    else:
        direction = "rising" if pct > 0 else "falling"
    return {
        "slope_per_year": slope,
        "percent_per_year": pct,
        "direction": direction,
        "t": t_stat,
        "trend": trend,
        "seasonal": pd.Series(fit.seasonal, index=s.index, name="seasonal"),
        "start_level": float(fit.trend[0]),
        "end_level": float(fit.trend[-1]),
    }


def seasonal_peak(ratios: pd.DataFrame) -> dict:
    """Peak and trough month of a profile, or None for both with the ``reason`` why not.

    Named only with at least ``MIN_YEARS_PROFILE`` years of shape and when the months differ
    more than chance would make them: Friedman's test over the years (blocks) and months
    (treatments) at ``evidence.ALPHA``.
    """
    from scipy.stats import friedmanchisquare

    none = {"peak_month": None, "peak_ratio": None, "trough_month": None, "trough_ratio": None}
    r = ratios.dropna(axis=0, how="any")
    if len(r) < evidence.MIN_YEARS_PROFILE:
        return none | {
            "reason": f"{len(r)} whole years with at least {evidence.MIN_COUNT_YEAR_PROFILE:,} "
            f"counted; a seasonal peak needs {evidence.MIN_YEARS_PROFILE}"
        }
    p = float(friedmanchisquare(*[r[m].to_numpy() for m in r.columns]).pvalue)
    if not p < evidence.ALPHA:
        return none | {"reason": f"months do not differ beyond chance (Friedman p = {p:.2f})"}
    profile = r.mean(axis=0)
    peak, trough = int(profile.idxmax()), int(profile.idxmin())
    return {
        "peak_month": MONTH_NAMES[peak - 1],
        "peak_ratio": round(float(profile[peak]), 4),
        "trough_month": MONTH_NAMES[trough - 1],
        "trough_ratio": round(float(profile[trough]), 4),
        "friedman_p": p,
    }


def inactive_since(per_year: pd.Series) -> int | None:
    """The first of the trailing whole years at zero, if there are ``INACTIVE_YEARS`` or more."""
    zero = per_year.to_numpy() == 0
    n = len(zero) - (np.flatnonzero(~zero)[-1] + 1) if (~zero).any() else len(zero)
    return int(per_year.index[len(zero) - n]) if n >= evidence.INACTIVE_YEARS else None


def group_seasonality(wide: pd.DataFrame, basis: YearBasis) -> dict[str, dict]:
    """Each group's monthly profile, peak and trough month, yearly levels and changes (JSON).

    A group with nothing counted, or at zero for its last ``INACTIVE_YEARS`` whole years, gets
    no peak or trough month (the ``reason`` says why); its profile still shows the years it
    was active. Yearly levels are means per month over whole years (:mod:`~vigil.geo.patterns.
    years`).
    """
    totals, months = yearly(wide, basis)
    whole = totals[months == 12]
    out: dict[str, dict] = {}
    for group in wide.columns:
        s = wide[group]
        ratios = month_ratios(
            s,
            year_start_month=basis.start_month,
            min_year_total=evidence.MIN_COUNT_YEAR_PROFILE,
        )
        profile = ratios.mean(axis=0).reindex(range(1, 13))
        per_month = whole[group] / 12.0
        since = inactive_since(whole[group]) if len(whole) else None
        if float(s.sum()) == 0.0:
            peak = {"peak_month": None, "peak_ratio": None, "trough_month": None}
            peak |= {"trough_ratio": None, "reason": "nothing counted"}
        elif since is not None:
            peak = {"peak_month": None, "peak_ratio": None, "trough_month": None}
            peak |= {"trough_ratio": None, "reason": f"zero since {basis.label(since)}"}
        else:
            peak = seasonal_peak(ratios)
        out[str(group)] = {
            "monthly_profile": {
                MONTH_NAMES[m - 1]: (None if np.isnan(v) else round(float(v), 4))
                for m, v in profile.items()
            },
            "profile_years": [basis.label(int(y)) for y in ratios.index],
            **peak,
            "inactive_since": basis.label(since) if since is not None else None,
            "total": int(round(float(s.sum()))),
            "per_month_by_year": {
                basis.label(int(y)): round(float(v), 1) for y, v in per_month.items()
            },
            "trend": long_trend(per_month),
            "changes": [c | {"label": basis.label(c["year"])} for c in year_changes(per_month)],
        }
    return out


def busiest_by_year(wide: pd.DataFrame, basis: YearBasis) -> pd.DataFrame:
    """The group with the largest total in each (fiscal) year, with its total and share.

    ``months`` says how many months of the year the table holds; ``partial`` marks years
    with fewer than 12, which are not comparable with whole years.
    """
    totals, months = yearly(wide, basis)
    top = totals.idxmax(axis=1)
    total = totals.sum(axis=1)
    best = totals.max(axis=1)
    return pd.DataFrame(
        {
            "year": totals.index.astype(np.int64),
            "label": [basis.label(int(y)) for y in totals.index],
            "months": months.to_numpy(),
            "partial": (months < 12).to_numpy(),
            "busiest": top.astype(str).to_numpy(),
            "count": best.round().astype(np.int64).to_numpy(),
            "share": (best / total.replace(0, np.nan)).to_numpy(),
        }
    )
