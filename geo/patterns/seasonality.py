"""Seasonality and trend of counts over time: monthly profiles, STL trend, busiest areas.

These work on aggregate counts tables (``time, group, value``), such as Border Patrol monthly
apprehensions by sector, and on the daily or monthly totals of a crossing table.

Monthly profile: each month's count divided by the mean month of its year, averaged per
calendar month over the years; 1.0 is an average month. Only whole years count (a year with
months missing would bias its mean), unless there is no whole year at all.
"""

from __future__ import annotations

import calendar

import numpy as np
import pandas as pd

MONTH_NAMES = tuple(calendar.month_abbr[1:])


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


def year_of(index: pd.DatetimeIndex, year_start_month: int = 1) -> np.ndarray:
    """The (fiscal) year of each date: the year in which that (fiscal) year ends.

    ``year_start_month=10`` gives US federal fiscal years (FY2000 = Oct 1999 - Sep 2000).
    """
    if not 1 <= year_start_month <= 12:
        raise ValueError(f"year_start_month={year_start_month!r}; expected 1..12")
    shift = 1 if year_start_month > 1 else 0
    return np.asarray(index.year + shift * (index.month >= year_start_month), dtype=np.int64)


def monthly_profile(series: pd.Series, *, year_start_month: int = 1) -> pd.Series:
    """Mean ratio of each calendar month to its year's mean month (index 1-12).

    Parameters
    ----------
    series
        Monthly totals indexed by month start.
    year_start_month
        Month the year starts for the yearly means (1: calendar years; 10: US fiscal years).
    """
    s = series.astype(np.float64)
    years = year_of(pd.DatetimeIndex(s.index), year_start_month)
    months_in_year = pd.Series(years).map(pd.Series(years).value_counts()).to_numpy()
    whole = months_in_year == 12
    if not whole.any():
        whole = np.ones_like(whole)
    frame = pd.DataFrame({"value": s.to_numpy(), "year": years, "month": s.index.month})[whole]
    yearly_mean = frame.groupby("year")["value"].transform("mean")
    ratio = frame["value"] / yearly_mean.replace(0.0, np.nan)
    profile = ratio.groupby(frame["month"]).mean().reindex(range(1, 13))
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


def group_seasonality(wide: pd.DataFrame, *, year_start_month: int = 1) -> dict[str, dict]:
    """Each group's monthly profile, peak and trough month and STL trend (for JSON)."""
    out: dict[str, dict] = {}
    for group in wide.columns:
        s = wide[group]
        profile = monthly_profile(s, year_start_month=year_start_month)
        trend = stl_trend(s, period=12)
        valid = profile.dropna()
        peak = int(valid.idxmax()) if len(valid) else None
        trough = int(valid.idxmin()) if len(valid) else None
        out[str(group)] = {
            "monthly_profile": {
                MONTH_NAMES[m - 1]: (None if np.isnan(v) else round(float(v), 4))
                for m, v in profile.items()
            },
            "peak_month": MONTH_NAMES[peak - 1] if peak else None,
            "peak_ratio": round(float(valid.max()), 4) if len(valid) else None,
            "trough_month": MONTH_NAMES[trough - 1] if trough else None,
            "trough_ratio": round(float(valid.min()), 4) if len(valid) else None,
            "total": float(s.sum()),
            "trend": {
                k: (round(v, 4) if isinstance(v, float) and np.isfinite(v) else v)
                for k, v in trend.items()
                if k in {"slope_per_year", "percent_per_year", "direction", "reason"}
                or k in {"start_level", "end_level"}
            },
        }
    return out


def busiest_by_year(wide: pd.DataFrame, *, year_start_month: int = 1) -> pd.DataFrame:
    """The group with the largest total in each (fiscal) year, with its total and share."""
    years = year_of(pd.DatetimeIndex(wide.index), year_start_month)
    yearly = wide.groupby(years).sum()
    top = yearly.idxmax(axis=1)
    total = yearly.sum(axis=1)
    best = yearly.max(axis=1)
    return pd.DataFrame(
        {
            "year": yearly.index.astype(np.int64),
            "busiest": top.astype(str).to_numpy(),
            "count": best.to_numpy(),
            "share": (best / total.replace(0, np.nan)).to_numpy(),
        }
    )
