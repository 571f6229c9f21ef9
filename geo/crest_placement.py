"""Where a body stands whose box's bottom sits on a crest: placed by its top, not its middle.

The detector places a blob where the ray through its middle meets the ground raised by half a
body (``detection/objects.py``). When a crest hides the feet, the box ends at the crest's row
(:func:`vigil.geo.hidden_side.on_crest`) and that ray meets the ground on the crest in front,
while the body stands somewhere on the ground the crest hides: the position is wrong and its
covariance, made for a blob whose bottom is its feet, too small (issue 21:
``benchmarks/bench_sim_relief.py``, such bodies 41-63 m off with NEES 3.3-6.2, and wrong people
on the tuning seeds of ``bench_pointing_track --hidden``).

:func:`place_by_top` places such a box from both of its rows. Along the box's column, every
range where a person of plausible height (:data:`~vigil.geo.hidden_side.BODY_TOP_M`) standing
on the relief would show its top at the box's top row, and the lowest row of it the camera sees
(its feet, or the ground in front that hides them) at the box's bottom row, is a candidate,
weighted by how well both rows fit (the rows' pixel error and the calibration's pointing
residual) and by the ground area a range step of that column covers (people stand anywhere);
the position is the weighted mean and the covariance the weighted second moment (along the
sight line: it spans the candidates, in front of the crest and behind it), plus the column's
error across the sight line and a floor. A body standing on the crest itself stays a
candidate, so the rule needs no flag saying whether the feet are hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vigil.geo.hidden_side import (
    BODY_TOP_M,
    STEP_M,
    TOP_K,
    TOP_SIGMA_PX,
    ground_profile,
    rows_in_front,
    top_rows,
)
from vigil.geo.image_side import SideGeometry

#: Smallest sd reported in any direction, metres (as the detector's ``floor_sigma_m``).
FLOOR_SIGMA_M = 0.5
#: Ground nearer than this (m) is not searched (as :func:`~vigil.geo.hidden_side.on_crest`).
MIN_RANGE_M = 100.0


@dataclass(frozen=True)
class CrestPlacement:
    """Boxes placed by :func:`place_by_top`: ``placed`` (``(n,)``) where some range fits both
    rows; local ``x``, ``y`` (m) and ``cov`` (``(n, 2, 2)``, m^2), NaN where not placed;
    ``candidates`` how many range samples fit (0 where not placed)."""

    placed: NDArray[np.bool_]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    cov: NDArray[np.float64]
    candidates: NDArray[np.int64]


def _row_sigma(geometry: SideGeometry, u: NDArray, sigma_px: float) -> NDArray[np.float64]:
    """A box row's error (sd, rows) in column ``u``: the detector's and the calibration's
    tilt and roll residual (as :func:`~vigil.geo.hidden_side.box_tops`)."""
    cam = geometry.camera
    _, tilt, roll = (np.radians(a) for a in geometry.pointing_sigma_deg)
    return np.hypot(sigma_px, np.hypot(cam.focal_px * tilt, (u - cam.width / 2.0) * roll))


def place_by_top(
    geometry: SideGeometry,
    boxes: ArrayLike,
    *,
    sigma_px: float = TOP_SIGMA_PX,
    body_top_m: tuple[float, float] = BODY_TOP_M,
    k: float = TOP_K,
    step_m: float = STEP_M,
    min_range_m: float = MIN_RANGE_M,
    floor_sigma_m: float = FLOOR_SIGMA_M,
) -> CrestPlacement:
    """Place boxes ``(u0, v0, u1, v1)`` (continuous pixels, ``(n, 4)``) seen by
    ``geometry``'s calibrated camera by their top row ``v0`` and bottom row ``v1`` at their
    middle column.

    Parameters
    ----------
    geometry
        The calibrated camera, the DEM, the pointing residual (degrees) and the reach (m).
    boxes
        The boxes, meant for those whose bottom sits on a crest
        (:func:`~vigil.geo.hidden_side.on_crest`); any box is placed the same way.
    sigma_px
        Error of each box row, pixels (sd); the pointing residual is added in quadrature.
    body_top_m
        The top of a standing person above the ground, metres (low, high; uniform between).
    k
        A candidate's rows must each fit within ``k`` standard deviations.
    step_m, min_range_m
        Ranges searched along the column, metres: every ``step_m`` from ``min_range_m`` to the
        geometry's reach (its camera's rated range when it has none).
    floor_sigma_m
        Added to the covariance in every direction, metres (sd).
    """
    from scipy.special import ndtr

    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = b.shape[0]
    out = CrestPlacement(
        np.zeros(n, bool), np.full(n, np.nan), np.full(n, np.nan), np.full((n, 2, 2), np.nan),
        np.zeros(n, np.int64),
    )  # fmt: skip
    lo_h, hi_h = (float(h) for h in body_top_m)
    if not (0.0 < lo_h <= hi_h):
        raise ValueError(f"body_top_m={body_top_m!r}; expected 0 < low <= high, metres")
    if not (sigma_px > 0.0 and k > 0.0 and step_m > 0.0):
        raise ValueError(f"sigma_px={sigma_px!r}, k={k!r}, step_m={step_m!r}; expected > 0")
    if not n:
        return out
    if not np.all(np.isfinite(b)):
        raise ValueError("boxes contain NaN or infinity; expected continuous pixels")
    cam, dem = geometry.camera, geometry.dem
    u, v_top, v_bot = 0.5 * (b[:, 0] + b[:, 2]), b[:, 1], b[:, 3]
    x, y, z, vf = ground_profile(
        cam, dem, u, v_bot, min_range_m, geometry.max_range_m, step_m, geometry.curvature_coeff
    )
    ok = (z > -1e5) & np.isfinite(vf)
    v_hi, v_lo = top_rows(cam, x, y, z, (lo_h, hi_h))
    front = rows_in_front(vf)  # the ground in front
    bottom = np.minimum(vf, front)  # the lowest row of a body there the camera sees
    s = _row_sigma(geometry, u, sigma_px)[:, None]
    # top row: uniform over the heights' rows, blurred by the row error
    span = np.maximum(v_lo - v_hi, 1e-6)
    top_like = (ndtr((v_lo - v_top[:, None]) / s) - ndtr((v_hi - v_top[:, None]) / s)) / span
    bot_like = np.exp(-0.5 * ((v_bot[:, None] - bottom) / s) ** 2)
    fit = ok & np.isfinite(v_hi) & np.isfinite(v_lo) & (v_hi < bottom)
    fit &= (v_top[:, None] >= v_hi - k * s) & (v_top[:, None] <= v_lo + k * s)
    fit &= np.abs(v_bot[:, None] - bottom) <= k * s
    rng = np.hypot(x - cam.x, y - cam.y)
    w = np.where(fit, top_like * bot_like * rng, 0.0)  # area of a column's range step ~ range
    total = w.sum(axis=1)
    got = total > 0.0
    if not got.any():
        return out
    w, total = w[got], total[got]
    mx = (w * x[got]).sum(1) / total
    my = (w * y[got]).sum(1) / total
    ex, ey = x[got] - mx[:, None], y[got] - my[:, None]
    cov = np.empty((int(got.sum()), 2, 2))
    cov[:, 0, 0] = (w * ex * ex).sum(1) / total
    cov[:, 1, 1] = (w * ey * ey).sum(1) / total
    cov[:, 0, 1] = cov[:, 1, 0] = (w * ex * ey).sum(1) / total
    # across the sight line: the column's error (the detector's and the pan residual) at the
    # mean range; along it: half a step's quantisation; and the floor
    r = np.hypot(mx - cam.x, my - cam.y)
    pan = np.radians(geometry.pointing_sigma_deg[0])
    across = r * np.hypot(sigma_px / cam.focal_px, pan)
    az = np.arctan2(mx - cam.x, my - cam.y)
    along_u = np.column_stack([np.sin(az), np.cos(az)])
    across_u = np.column_stack([np.cos(az), -np.sin(az)])
    cov += (across**2)[:, None, None] * np.einsum("ni,nj->nij", across_u, across_u)
    cov += (step_m**2 / 12.0) * np.einsum("ni,nj->nij", along_u, along_u)
    cov += floor_sigma_m**2 * np.eye(2)
    out.placed[got] = True
    out.x[got], out.y[got], out.cov[got] = mx, my, cov
    out.candidates[got] = fit[got].sum(1)
    return out


def spread_about(
    placement: CrestPlacement, x: ArrayLike, y: ArrayLike, cov: ArrayLike
) -> NDArray[np.float64]:
    """The covariance about other positions (local ``x``, ``y``, m: the detector's) that
    spans a placement's candidates: ``cov`` (``(n, 2, 2)``) where not placed, else the
    placement's covariance plus the offset's outer product (its second moment about them)."""
    xa = np.atleast_1d(np.asarray(x, dtype=np.float64))
    ya = np.atleast_1d(np.asarray(y, dtype=np.float64))
    out = np.array(cov, dtype=np.float64).reshape(xa.size, 2, 2)
    p = placement.placed
    d = np.column_stack([placement.x[p] - xa[p], placement.y[p] - ya[p]])
    out[p] = placement.cov[p] + np.einsum("ni,nj->nij", d, d)
    return out


#: How a box on a crest is placed: ``top`` by :func:`place_by_top`, ``spread`` where the
#: detector put it with :func:`spread_about`'s covariance, ``off`` as the detector did.
CrestMode = Literal["top", "spread", "off"]
#: The relief pipeline's (``vigil demo --relief``): picked on the tuning seeds 1, 2, 5 of
#: ``bench_pointing_track --hidden``.
CREST_MODE: CrestMode = "top"
#: Where the relief pipeline judges the feet margin of a box placed so (not ``off``):
#: ``bottom``, at the box's bottom (the crest's row when the crest hides the feet), or
#: ``place``, at the detector's place (its ray through the box's middle may meet ground far
#: behind the crest). Picked on the tuning seeds with :data:`CREST_MODE`.
CREST_MARGIN: Literal["bottom", "place", "sure", "drop"] = "sure"
#: A margin judged at a crest box's bottom is kept (``sure``) only when at least this many
#: of its standard deviations from the border's row: the box's bottom is the crest's row,
#: which the blob's lowest pixel row shows up to a row low (on the tuning seeds such margins
#: were biased toward the near side by about a row where the border runs behind the crest).
CREST_MARGIN_Z = 3.0


def crest_margin_kept(
    margin_px: ArrayLike, sigma_px: ArrayLike, z: float = CREST_MARGIN_Z
) -> NDArray[np.bool_]:
    """Whether a crest box's feet margins (rows, sd rows) are kept: ``|margin| >= z sd``."""
    m = np.asarray(margin_px, dtype=np.float64)
    return np.abs(m) >= z * np.asarray(sigma_px, dtype=np.float64)


__all__ = [
    "CREST_MARGIN",
    "CREST_MODE",
    "FLOOR_SIGMA_M",
    "MIN_RANGE_M",
    "CrestMode",
    "CREST_MARGIN_Z",
    "CrestPlacement",
    "crest_margin_kept",
    "place_by_top",
    "spread_about",
]
