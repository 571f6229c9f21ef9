"""Camera detections as fusion's measurements, a batch at a time: their covariances and class
likelihoods, the same numbers one detection at a time gives.

A tower camera's detection carries its ground position's covariance; when that is degenerate
one is made from the range (``floor + range * angular error`` per axis, the default sigma
without a range). An aircraft's camera (one with a footprint span from its telemetry) adds
``(fraction * span)^2`` per axis for pointing and altitude error. A tower's class guess is read
through the camera class table, an aircraft's through the plain guess model.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np
from numpy.typing import NDArray

from vigil.ingest.schema import CameraDetection
from vigil.tracks.classes import class_likelihood, table_likelihood
from vigil.tracks.config import CLASSES, TrackerConfig


def camera_covariances(
    config: TrackerConfig, msgs: Sequence[CameraDetection], spans: Sequence[float | None]
) -> NDArray[np.float64]:
    """Camera detections' covariances ``(m, 2, 2)``, m^2 (``spans``: each detection's
    camera's footprint span when it came, m; ``None`` for a tower's camera)."""
    c = config
    flat = chain.from_iterable([m.cov for m in msgs])
    cov = np.fromiter(flat, dtype=np.float64, count=4 * len(msgs)).reshape(-1, 4)
    ee, en, nn = cov[:, 0], cov[:, 1], cov[:, 3]
    R = np.empty((len(msgs), 2, 2))
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1] = ee, en, en, nn
    bad = np.flatnonzero((ee <= 0.0) | (nn <= 0.0) | (ee * nn - en * en <= 1e-12))
    if bad.size:
        s = np.array(
            [
                c.default_sigma_m
                if msgs[i].range_m is None
                else c.camera_sigma_floor_m + msgs[i].range_m * c.camera_angular_sigma_rad
                for i in bad.tolist()
            ],
            dtype=np.float64,
        )
        # np.maximum keeps a NaN as max(s, 1e-3) does
        R[bad] = np.eye(2) * (np.maximum(s, 1e-3) ** 2)[:, None, None]
    rows = [i for i, sp in enumerate(spans) if sp is not None]
    if rows:
        e = c.uas_footprint_error_fraction * np.array([spans[i] for i in rows], dtype=np.float64)
        R[rows] = R[rows] + np.eye(2) * (e**2)[:, None, None]
    return R


def camera_likelihoods(
    config: TrackerConfig, dets: Sequence[tuple[CameraDetection, float | None]]
) -> NDArray[np.float64]:
    """Class likelihoods ``(m, classes)`` of camera detections, each with its camera's
    footprint span (``None``: a tower's camera, read through the class table), computed once
    for each distinct guess, confidence and range."""
    c = config
    memo: dict[tuple, int] = {}  # key -> its row of ``liks``
    liks: list[NDArray[np.float64]] = []
    out = []
    for m, span in dets:
        key = (span is not None, m.class_guess, m.class_confidence, m.range_m)
        row = memo.get(key)
        if row is None:
            if span is not None:  # an aircraft's camera
                lik = class_likelihood(m.class_guess, m.class_confidence)
            else:
                lik = table_likelihood(
                    c.camera_class_model,
                    m.class_guess,
                    m.class_confidence,
                    m.range_m,
                    c.camera_class_weight,
                )
            row = memo[key] = len(liks)
            liks.append(lik)
        out.append(row)
    table = np.array(liks, dtype=np.float64).reshape(-1, len(CLASSES))
    return table[np.array(out, dtype=np.int64)]
