"""Planners' analyses over crossing tables and aggregate counts tables.

One pass aggregates the input (:mod:`~vigil.geo.patterns.aggregate`, in memory or on Dask); the
analyses work on the small counts tables: rates and profiles (:mod:`~vigil.geo.patterns.counts`),
seasonality and trend (:mod:`~vigil.geo.patterns.seasonality`), hotspots and corridors
(:mod:`~vigil.geo.patterns.hotspots`), displacement (:mod:`~vigil.geo.patterns.displacement`) and
coverage (:mod:`~vigil.geo.patterns.coverage`). :mod:`~vigil.geo.patterns.analysis` runs them all.
"""

from vigil.geo.patterns.aggregate import (
    CrossingAggregates,
    aggregate_crossings,
    segment_period_counts,
)
from vigil.geo.patterns.analysis import (
    CountsAnalysis,
    CrossingAnalysis,
    analyze_counts_table,
    analyze_crossing_table,
)
from vigil.geo.patterns.io import PatternInputError, read_counts, read_crossings

__all__ = [
    "CountsAnalysis",
    "CrossingAggregates",
    "CrossingAnalysis",
    "PatternInputError",
    "aggregate_crossings",
    "analyze_counts_table",
    "analyze_crossing_table",
    "read_counts",
    "read_crossings",
    "segment_period_counts",
]
