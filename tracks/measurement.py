"""A batch's measurement model: detected positions and their covariances, checked.

Every sensor reports a position with its own 2x2 covariance in the sector's local frame
(Stone Soup's detections carry their measurement model the same way); a batch without
covariances gets ``sigma^2 I`` from one sigma per detection or one for all.
"""

from __future__ import annotations

from collections.abc import Sized

import numpy as np
from numpy.typing import ArrayLike, NDArray


class BatchError(ValueError):
    """A batch of detections with the wrong shape, non-finite values or a bad covariance."""


def position_measurements(
    z: ArrayLike,
    R: ArrayLike | None,
    sigma: ArrayLike | float | None,
    default_sigma_m: float,
    polar: Sized | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A batch's positions and covariances as contiguous arrays, checked.

    Parameters
    ----------
    z
        ``(m, 2)`` detected positions, metres east and north in the local frame.
    R
        ``(m, 2, 2)`` measurement covariances, m^2; positive definite. When omitted,
        ``sigma`` (or ``default_sigma_m``) gives ``sigma^2 I``.
    sigma
        Position sigma, m: one per detection or one for all.
    default_sigma_m
        Sigma (m) used when neither ``R`` nor ``sigma`` is given.
    polar
        The batch's polar measurements (:class:`vigil.tracks.polar.PolarBatch`), if any:
        checked to have one row per detection.

    Raises
    ------
    BatchError
        Naming the argument, the detection index and the value.
    """
    zz = np.ascontiguousarray(z, dtype=np.float64)
    if zz.size == 0:
        zz = zz.reshape(0, 2)
    if zz.ndim != 2 or zz.shape[1] != 2:
        raise BatchError(f"z has shape {zz.shape}; expected (m, 2) east, north in metres")
    if not np.all(np.isfinite(zz)):
        j = int(np.flatnonzero(~np.isfinite(zz).all(axis=1))[0])
        raise BatchError(f"z[{j}] = {zz[j].tolist()}; expected finite metres")
    m = zz.shape[0]
    if polar is not None and len(polar) != m:
        raise BatchError(f"polar has {len(polar)} rows; expected {m}, one per detection")
    if R is not None:
        RR = np.ascontiguousarray(R, dtype=np.float64)
        if RR.shape != (m, 2, 2):
            raise BatchError(f"R has shape {RR.shape}; expected ({m}, 2, 2) in m^2")
        a, b, cc = RR[:, 0, 0], RR[:, 0, 1], RR[:, 1, 1]
        bad = ~np.isfinite(RR).all(axis=(1, 2)) | (a <= 0) | (cc <= 0) | (a * cc - b * b <= 0)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise BatchError(
                f"R[{j}] = {RR[j].tolist()}; expected a positive-definite 2x2 covariance"
            )
        return zz, RR
    s = default_sigma_m if sigma is None else sigma
    sig = np.broadcast_to(np.asarray(s, dtype=np.float64), (m,))
    if not np.all(np.isfinite(sig) & (sig > 0)):
        j = int(np.flatnonzero(~(np.isfinite(sig) & (sig > 0)))[0])
        raise BatchError(f"sigma[{j}] = {sig[j]!r}; expected a positive number of metres")
    RR = np.zeros((m, 2, 2))
    RR[:, 0, 0] = RR[:, 1, 1] = sig * sig
    return zz, RR
