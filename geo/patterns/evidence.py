"""The least evidence each statement of a planners' report needs, in one place.

A report says nothing it cannot support: below these minimums the statement is withheld and
the report says which statements were withheld and why (:func:`withheld`). The bins of a
profile follow Cochran's rule for a chi-square test (an expected count of at least 5 in every
bin), and a profile's peak is named only when the profile differs from a flat one at
``ALPHA``.

Crossing tables (counts of events):

- ``MIN_DAYS_RATE``: whole days from the first crossing to the last before a rate per day is
  stated (a 6-minute run's 4 crossings are not "4 a day").
- ``MIN_CROSSINGS_RATE``: crossings before a rate per day or a busiest segment is stated.
- ``MIN_CROSSINGS_HOUR``: crossings before a busiest hour of day (24 bins × 5).
- ``MIN_CROSSINGS_WEEKDAY`` and ``MIN_WEEKS_WEEKDAY``: crossings (7 bins × 5) and whole
  weeks (every weekday seen at least twice) before a busiest day of the week.
- ``MIN_CROSSINGS_HOTSPOT``: crossings before Gi* hot or cold segments are named; a segment
  with no crossing of its own is never called hot (Gi* counts its neighbours too).

Aggregate counts tables (counts per month and area):

- ``MIN_YEARS_PROFILE`` whole years, each with at least ``MIN_COUNT_YEAR_PROFILE``
  (12 bins × 5), before a peak or trough month is named.
- ``MIN_YEARS_TREND``: whole years before a long-run trend is stated.
- ``MIN_COUNT_YEAR_CHANGE``: the smaller of two consecutive years' totals before a change
  between them is reported (so a sector with a dozen a year does not "double").
- ``CHANGE_FACTOR``: a year-on-year change is reported when a year's total is at least this
  many times the year before's, or at most its inverse.
- ``INACTIVE_YEARS``: whole years at zero at the end of a series after which an area is called
  inactive and gets no peak or trough month.
"""

from __future__ import annotations

ALPHA = 0.05

MIN_DAYS_RATE = 7
MIN_CROSSINGS_RATE = 20
MIN_CROSSINGS_HOUR = 24 * 5
MIN_CROSSINGS_WEEKDAY = 7 * 5
MIN_WEEKS_WEEKDAY = 2
MIN_CROSSINGS_HOTSPOT = 30

MIN_YEARS_PROFILE = 2
MIN_COUNT_YEAR_PROFILE = 12 * 5
MIN_YEARS_TREND = 5
MIN_COUNT_YEAR_CHANGE = 1200
CHANGE_FACTOR = 1.5
INACTIVE_YEARS = 2


def withheld(statement: str, have: str, need: str) -> dict[str, str]:
    """A record of a statement left out: what, what the data hold, what it would need."""
    return {"statement": statement, "have": have, "need": need}


def withheld_sentence(items: list[dict[str, str]]) -> str | None:
    """One sentence naming every withheld statement and what it needs, or None if none was.

    Items that share what the data hold (``have``) are said once.
    """
    if not items:
        return None
    by_have: dict[str, list[str]] = {}
    for w in items:
        by_have.setdefault(w["have"], []).append(f"{w['statement']} (needs {w['need']})")
    return " ".join(
        f"Too little data to state ({have}): {', '.join(parts)}." for have, parts in by_have.items()
    )


def span_phrase(seconds: float) -> str:
    """A duration as a person says it: hours under two days, days beyond."""
    if seconds < 2 * 86400.0:
        return f"{seconds / 3600.0:.1f} hours"
    return f"{seconds / 86400.0:.0f} days"
