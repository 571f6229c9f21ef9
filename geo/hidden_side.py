"""The side of the border of a person whose feet the ground hides, from the top of the body.

:mod:`vigil.geo.image_side` judges a side by the feet's pixel against the border's row in its
image column. When a crest hides the feet, the camera may still see the top of the body over
it (at 1.5-2.5 km from a 25 m mast a person is about 1-2 rows tall; issue 21,
``benchmarks/bench_pointing_track.py --hidden``). The body's top row then says where the
person can stand: at every range along the pixel's azimuth where a person of plausible height
standing on the relief would show its top at that row (within ``k`` standard deviations of
the pixel error and the calibration's shared pointing residual) and that top would not be
hidden by the ground in front. When every such place is on one side of the line, that side is
certain at that level; otherwise the frame says nothing. Whether the feet are hidden is not
used (a place whose feet would be seen stays a candidate), so the rule is conservative.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vigil.geo.border import Border
from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel
from vigil.geo.raycast import CURVATURE_REFRACTION, curvature_factor

#: The top of a standing person above the ground, metres (low, high): the candidates take
#: every height between.
BODY_TOP_M = (1.4, 2.0)
#: Candidate ranges are sampled every this many metres along the pixel's azimuth.
STEP_M = 5.0
#: How many standard deviations of the top row's error a candidate may be off by.
TOP_K = 4.0


def top_row_sides(
    camera: PinholeCamera,
    dem: ElevationModel,
    border: Border,
    u: ArrayLike,
    v_top: ArrayLike,
    sigma_px: ArrayLike = 1.0,
    shared_px: ArrayLike = 0.0,
    *,
    body_top_m: tuple[float, float] = BODY_TOP_M,
    k: float = TOP_K,
    min_range_m: float = 100.0,
    max_range_m: float | None = None,
    step_m: float = STEP_M,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> NDArray[np.int8]:
    """Per detection, the side (+1 US, -1 foreign, 0 undecided) of every place a person whose
    body's top is seen at pixel ``(u, v_top)`` can stand.

    ``camera``: the calibrated camera standing on the DEM; ``sigma_px``: the top row's pixel
    error (sd, rows); ``shared_px``: the calibration's pointing residual in rows (sd); a
    candidate's top row (between ``body_top_m`` heights) must be within ``k`` times their
    quadrature sum of ``v_top``, and not below the ground in front of it (the top must be
    visible) by more than that. Ranges ``min_range_m``-``max_range_m`` (m; the camera's rated
    range by default) every ``step_m``. 0 where no candidate is found."""
    uu = np.atleast_1d(np.asarray(u, dtype=np.float64))
    vv = np.atleast_1d(np.asarray(v_top, dtype=np.float64))
    if uu.shape != vv.shape:
        raise ValueError(f"u {uu.shape} and v_top {vv.shape}: expected the same shape")
    lo_h, hi_h = (float(h) for h in body_top_m)
    if not (0.0 < lo_h <= hi_h):
        raise ValueError(f"body_top_m={body_top_m!r}; expected 0 < low <= high, metres")
    sig = np.broadcast_to(
        np.hypot(np.asarray(sigma_px, np.float64), np.asarray(shared_px, np.float64)), uu.shape
    )
    reach = camera.max_range_m if max_range_m is None else float(max_range_m)
    r = np.arange(float(min_range_m), reach + step_m, float(step_m))
    out = np.zeros(uu.shape, dtype=np.int8)
    if not uu.size:
        return out
    d = camera.rays(uu, vv)
    az = np.arctan2(d[:, 0], d[:, 1])
    x = camera.x + np.sin(az)[:, None] * r[None, :]
    y = camera.y + np.cos(az)[:, None] * r[None, :]
    z = (
        dem.elevation_at(x.ravel(), y.ravel()).reshape(x.shape)
        - curvature_factor(curvature_coeff) * r[None, :] ** 2
        - camera.ground_z
    )
    ok = np.isfinite(z)
    z = np.where(ok, z, -1e6)
    xf, yf = x.ravel(), y.ravel()
    vf = camera.project(xf, yf, z.ravel())[1].reshape(x.shape)
    v_hi = camera.project(xf, yf, z.ravel() + hi_h)[1].reshape(x.shape)  # the taller top
    v_lo = camera.project(xf, yf, z.ravel() + lo_h)[1].reshape(x.shape)
    vf = np.where(np.isfinite(vf), vf, np.inf)
    # the ground in front: the highest row (smallest v) any nearer sample shows
    front = np.minimum.accumulate(np.concatenate([np.full((uu.size, 1), np.inf), vf], 1), 1)
    front = front[:, :-1]
    tol = k * sig[:, None]
    near_row = (vv[:, None] >= v_hi - tol) & (vv[:, None] <= v_lo + tol)
    seen = v_hi <= front + tol  # the top of the taller person clears the ground in front
    cand = near_row & seen & ok & np.isfinite(v_hi) & np.isfinite(v_lo)
    if not cand.any():
        return out
    side = border.side(xf, yf).reshape(x.shape)
    side = np.where(side == 0, 1, side)
    pos = np.any(cand & (side > 0), axis=1)
    neg = np.any(cand & (side < 0), axis=1)
    out[pos & ~neg] = 1
    out[neg & ~pos] = -1
    return out


def pooled_side(sides: ArrayLike, min_frames: int = 1) -> int:
    """A person's side from their frames' :func:`top_row_sides`: the one side at least
    ``min_frames`` frames gave when no frame gave the other; else 0."""
    s = np.asarray(sides)
    pos, neg = int(np.sum(s > 0)), int(np.sum(s < 0))
    if pos and neg:
        return 0
    if pos >= min_frames:
        return 1
    if neg >= min_frames:
        return -1
    return 0


__all__ = ["BODY_TOP_M", "STEP_M", "TOP_K", "pooled_side", "top_row_sides"]
