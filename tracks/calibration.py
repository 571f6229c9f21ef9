"""Calibration: fit the class tables that :mod:`vigil.tracks.classes` reads, from labelled data.

A camera confusion table from detections labelled with the class of the body each one saw,
and a track-speed table from tracks labelled with the class of the body each followed
(``python -m benchmarks.bench_demo --calibrate`` fits both on simulated runs; a deployment
fits its own on its labelled data).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vigil.tracks.config import CLASSES, ClassRow, SpeedRow

#: Default confidence bands of a calibrated camera confusion table: narrow where a detector's
#: rules put their (size-capped) confidences, so that each rule gets its own row.
CONFIDENCE_EDGES: tuple[float, ...] = (
    0.0, 0.135, 0.165, 0.19, 0.205, 0.215, 0.23, 0.255, 0.27, 0.32, 0.4, 0.5, 0.6, 0.65, 1.01,
)  # fmt: skip
#: Default range bands of a calibrated camera confusion table, metres.
RANGE_EDGES_M: tuple[float, ...] = (0.0, 750.0, 1250.0, 1750.0, 2250.0, 1e6)
#: Speed bands of a calibrated track-speed table, m/s.
SPEED_EDGES_MPS: tuple[float, ...] = (
    0.0, 0.15, 0.3, 0.5, 0.7, 0.9, 1.1, 1.4, 1.8, 2.5, 4.0, 6.0, 1000.0,
)  # fmt: skip


def calibrate_speed_model(
    speeds_mps: Iterable[float],
    truths: Iterable[str],
    edges: tuple[float, ...] = SPEED_EDGES_MPS,
) -> tuple[SpeedRow, ...]:
    """A track-speed class table from track speeds (m/s) labelled with the true class of
    the body each track followed (other labels are left out).

    Returns one row per band of ``edges``: ``(from, to, P(band | person), P(band |
    vehicle), P(band | animal))``, each class's counts with one added per band, so that no
    band rules a class out.
    """
    v = np.asarray(list(speeds_mps), dtype=np.float64)
    t = np.asarray(list(truths), dtype=object)
    if v.shape != t.shape:
        raise ValueError(
            f"speeds and truths have lengths {v.size} and {t.size}; expected one of each"
        )
    keep = np.isin(t, CLASSES) & np.isfinite(v)
    v, t = v[keep], t[keep]
    nb = len(edges) - 1
    band = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, nb - 1)
    probs = []
    for k in CLASSES:
        counts = np.bincount(band[t == k], minlength=nb) + 1.0
        probs.append(counts / counts.sum())
    return tuple(
        (float(edges[b]), float(edges[b + 1]), *(round(float(p[b]), 6) for p in probs))
        for b in range(nb)
    )


def calibrate_class_model(
    guesses: Iterable[str],
    confidences: Iterable[float],
    ranges_m: Iterable[float],
    truths: Iterable[str],
    edges: tuple[float, ...] = CONFIDENCE_EDGES,
    range_edges_m: tuple[float, ...] = RANGE_EDGES_M,
    min_count: int = 20,
    backoff: float = 50.0,
) -> tuple[ClassRow, ...]:
    """A camera confusion table from detections labelled with their true class.

    Parameters
    ----------
    guesses, confidences, ranges_m
        Each detection's class guess, confidence and range (m).
    truths
        Each detection's true class (one of :data:`vigil.tracks.config.CLASSES`; other labels,
        such as ``"none"`` for a false detection, are left out).
    edges, range_edges_m
        Confidence and range band edges.
    min_count
        Cells seen fewer times than this (over all classes) get no row.
    backoff
        Weight, in detections, of a class's all-range table in each range band: a class
        seen rarely at some range takes its probabilities mostly from the other ranges.

    Returns
    -------
    Rows ``(guess, from, to, range_from, range_to, P(guess, band | person, range band),
    ... vehicle, ... animal)``.
    """
    g = np.asarray(list(guesses), dtype=object)
    c = np.asarray(list(confidences), dtype=np.float64)
    r = np.asarray(list(ranges_m), dtype=np.float64)
    t = np.asarray(list(truths), dtype=object)
    if not (g.shape == c.shape == r.shape == t.shape):
        raise ValueError(
            f"guesses, confidences, ranges and truths have lengths {g.size}, {c.size}, "
            f"{r.size}, {t.size}; expected one of each per detection"
        )
    keep = np.isin(t, CLASSES) & np.isfinite(r)
    g, c, r, t = g[keep], c[keep], r[keep], t[keep]
    band = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, len(edges) - 2)
    rband = np.clip(np.searchsorted(range_edges_m, r, side="right") - 1, 0, len(range_edges_m) - 2)
    guess_names = (*CLASSES, "unknown")
    cells = len(guess_names) * (len(edges) - 1)
    rows = []
    for rb in range(len(range_edges_m) - 1):
        here = rband == rb
        totals = {k: int((here & (t == k)).sum()) for k in CLASSES}
        for guess in guess_names:
            for b in range(len(edges) - 1):
                sel = here & (g == guess) & (band == b)
                if sel.sum() < min_count:
                    continue
                # a class seen little at this range backs off to its all-range table
                probs = []
                for k in CLASSES:
                    anywhere = (int(((g == guess) & (band == b) & (t == k)).sum()) + 1) / (
                        int((t == k).sum()) + cells
                    )
                    probs.append(
                        (int((sel & (t == k)).sum()) + backoff * anywhere) / (totals[k] + backoff)
                    )
                rows.append(
                    (
                        guess,
                        float(edges[b]),
                        float(edges[b + 1]),
                        float(range_edges_m[rb]),
                        float(range_edges_m[rb + 1]),
                        *(round(p, 6) for p in probs),
                    )
                )
    return tuple(rows)
