"""``bench_pointing_track --hidden``: the top of the body where the ground hides the feet.

In each frame, the top of a person's body (a height drawn per person, uniform 1.5-1.9 m) may
show over the ground in front. Where it does (the ray to it is not cut by the ground and it
lands in the image), the detector is taken to give a box: its top row the body top's pixel
with :data:`DETECTION_PX` of error per axis, its bottom the feet's detected pixel where the
true camera sees the feet, else the row of the crest that hides them (the highest row the
ground nearer than the person shows in that column, in the true camera) with the same error.
Each box goes through the chain's own rule (:func:`vigil.geo.hidden_side.box_tops`, as
:meth:`~vigil.geo.hidden_side.HiddenTops.observe_boxes` runs it in ``vigil demo --relief``):
those whose bottom sits on a crest in the calibrated camera are tops, judged by
:func:`~vigil.geo.hidden_side.top_row_sides`. Its own random stream (``[seed, tower,
2121]``), so the figures without ``--hidden`` stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.geo.hidden_side import CREST_TOL_PX, box_tops
from vigil.geo.image_side import FEET_ROW_SHARE, SideGeometry
from vigil.geo.raycast import cast_rays, curvature_factor

DETECTION_PX = 1.0
#: A person's body top above their feet, metres (uniform between).
HEIGHT_M = (1.5, 1.9)
#: Ground nearer than this (m) is not looked at for the crest (as ``on_crest``).
NEAR_M = 100.0
STEP_M = 5.0


@dataclass
class Tops:
    """Per person and frame (``(people, frames)``): ``seen`` the body's top is seen over feet
    the ground hides; ``top`` the chain takes the frame's box as a top (its bottom on a crest,
    feet seen or not); ``side`` the side it gives (0: none); the box's bottom pixel ``u``,
    ``v`` (where it is matched to a track) and its height ``h`` (pixels)."""

    seen: np.ndarray
    top: np.ndarray
    side: np.ndarray
    u: np.ndarray
    v: np.ndarray
    h: np.ndarray


def _crest_rows(true, dem, u, v, rr) -> np.ndarray:
    """The highest row (smallest v) the ground nearer than ``rr`` (m) shows along each
    pixel's azimuth in the true camera."""
    r = np.arange(NEAR_M, float(np.max(rr, initial=NEAR_M)) + STEP_M, STEP_M)
    d = true.rays(u, v)
    az = np.arctan2(d[:, 0], d[:, 1])
    x = true.x + np.sin(az)[:, None] * r[None, :]
    y = true.y + np.cos(az)[:, None] * r[None, :]
    z = dem.elevation_at(x.ravel(), y.ravel()).reshape(x.shape) - curvature_factor() * r**2
    vf = true.project(x.ravel(), y.ravel(), z.ravel() - true.ground_z)[1].reshape(x.shape)
    vf = np.where(np.isfinite(vf) & (r[None, :] < rr[:, None] - STEP_M), vf, np.inf)
    return np.min(vf, axis=1)


def top_frames(true, geo, dem, border, x, y, vis, ov, rng, tol_px=CREST_TOL_PX) -> Tops:
    """The tops the chain would take (``x``, ``y``: true positions ``(people, frames)``;
    ``vis``: whether the true camera sees the feet; ``ov``: the feet's detected rows;
    ``tol_px``: :func:`~vigil.geo.hidden_side.on_crest`'s)."""
    shape = x.shape
    h = rng.uniform(*HEIGHT_M, shape[0])[:, None] * np.ones(shape[1])
    rr = np.hypot(x - true.x, y - true.y)
    zt = dem.elevation_at(x.ravel(), y.ravel()).reshape(shape) - curvature_factor() * rr**2 + h
    d = np.stack([x, y, zt], axis=-1).reshape(-1, 3) - true.centre
    hits = cast_rays(dem, np.broadcast_to(true.centre, d.shape), d)
    u, v, _ = true.project(x.ravel(), y.ravel(), zt.ravel() - true.ground_z)
    shown = (~hits.hit) | (hits.range_m >= rr.ravel() - 1.0)
    shown &= (u >= 0) & (u < true.width) & (v >= 0) & (v < true.height)
    ou = u + rng.normal(0.0, DETECTION_PX, u.size)
    ot = v + rng.normal(0.0, DETECTION_PX, u.size)
    ob = ov.ravel().copy()
    hid = shown & ~vis.ravel()
    if hid.any():
        crest = _crest_rows(true, dem, u[hid], v[hid], rr.ravel()[hid])
        ob[hid] = crest + rng.normal(0.0, DETECTION_PX, int(hid.sum()))
    box = shown & np.isfinite(ob) & (ob > ot) & (ob <= true.height) & (ot >= 0)
    box &= (ou >= 0.5) & (ou <= true.width - 0.5)
    top = np.zeros(u.size, dtype=bool)
    side = np.zeros(u.size, dtype=np.int8)
    if box.any():
        idx = np.flatnonzero(box)
        b = np.column_stack([ou[idx] - 0.5, ot[idx], ou[idx] + 0.5, ob[idx]])
        on, s = box_tops(SideGeometry.of(geo), border, b, tol_px)
        top[idx[on]] = True
        side[idx[on]] = s
    return Tops(
        hid.reshape(shape), top.reshape(shape), side.reshape(shape),
        ou.reshape(shape), ob.reshape(shape), (ob - ot).reshape(shape),
    )  # fmt: skip


#: The detector's body centre above the ground (``ObjectParams.centre_height_m``) and how far
#: past the rated range it places a blob (``max_range_factor``).
CENTRE_M = 0.85
PLACE_FACTOR = 1.25


@dataclass
class Placed:
    """Flat per person-frame: boxes over hidden feet the detector places (``placed``: ground
    point ``x``, ``y``, covariance ``cov``) or gives as sky blobs (``sky``), with the feet
    pixel their margins are judged at (``u``, ``v``: the placed point's pixel, or the box's
    bottom for a sky blob) and that row's error ``sv`` (pixels)."""

    placed: np.ndarray
    sky: np.ndarray
    x: np.ndarray
    y: np.ndarray
    cov: np.ndarray
    u: np.ndarray
    v: np.ndarray
    sv: np.ndarray


def place_tops(tp: Tops, geo) -> Placed:
    """Each frame whose feet the ground hides but whose body shows at least a pixel tall, as
    the chain's detector gives it (``detection/objects.py``): placed where the ray through the
    box's middle meets the ground raised by :data:`CENTRE_M`, within :data:`PLACE_FACTOR`
    times the rated range, its covariance at that place's pixel (:data:`DETECTION_PX` per
    axis); else a sky blob. Row error of the margins: ``sqrt(1 + (0.15 h)^2)`` as the
    chain's (:data:`vigil.geo.image_side.FEET_ROW_SHARE`)."""
    n = tp.u.size
    u, vb, h = tp.u.ravel(), tp.v.ravel(), tp.h.ravel()
    box = tp.seen.ravel() & (h >= 1.0) & np.isfinite(vb)
    out = Placed(
        np.zeros(n, bool), np.zeros(n, bool), np.full(n, np.nan), np.full(n, np.nan),
        np.full((n, 2, 2), np.nan), u.copy(), vb.copy(), np.sqrt(1.0 + (FEET_ROW_SHARE * h) ** 2),
    )  # fmt: skip
    idx = np.flatnonzero(box)
    if not idx.size:
        return out
    x, y, hit, r = geo.ground(u[idx], vb[idx] - 0.5 * h[idx], CENTRE_M)
    put = hit & (r <= PLACE_FACTOR * geo.camera.max_range_m)
    vf = geo.foot_v(x, y)
    put &= np.isfinite(vf) & (vf >= 0) & (vf <= geo.camera.height)
    i = idx[put]
    out.placed[i], out.x[i], out.y[i], out.v[i] = True, x[put], y[put], vf[put]
    if i.size:
        out.cov[i] = geo.covariance(u[i], vf[put], DETECTION_PX, DETECTION_PX)
    out.sky[idx[~put]] = True
    return out


def place_crest_boxes(tp: Tops, geo, ok, gx, gy, cov, mode: str, feet=None) -> int:
    """The chain's placement of detections whose box sits on a crest (``tp.top``; the
    relief pipeline's, :mod:`vigil.geo.crest_placement`), in place on the flat arrays ``gx``,
    ``gy`` (local m) and ``cov`` (``(n, 2, 2)``) where ``ok`` (a ground detection):
    ``top`` by the box's top and bottom rows, ``spread`` where it was with a covariance that
    spans those places, ``off`` untouched. ``feet``: ``(u, v, sv)`` flat arrays of the pixels
    their margins are judged at and the rows' error, set to the box's bottom where placed
    (``vigil.relief_frame``: the crest's row, not the detector's place's); None: untouched.
    Returns how many were placed so."""
    from vigil.geo.crest_placement import place_by_top, spread_about

    idx = np.flatnonzero(tp.top.ravel() & ok)
    if mode == "off" or not idx.size:
        return 0
    if feet is not None:
        feet[0][idx], feet[1][idx] = tp.u.ravel()[idx], tp.v.ravel()[idx]
        feet[2][idx] = np.sqrt(1.0 + (FEET_ROW_SHARE * tp.h.ravel()[idx]) ** 2)
    u, vb, h = tp.u.ravel()[idx], tp.v.ravel()[idx], tp.h.ravel()[idx]
    boxes = np.column_stack([u - 0.5, vb - h, u + 0.5, vb])
    p = place_by_top(SideGeometry.of(geo), boxes)
    i = idx[p.placed]
    if mode == "top":
        gx[i], gy[i], cov[i] = p.x[p.placed], p.y[p.placed], p.cov[p.placed]
    else:
        cov[idx] = spread_about(p, gx[idx], gy[idx], cov[idx])
    return int(i.size)


def crest_margins(cols, crest, mode: str) -> None:
    """The margins (``cols``: margin, sd, shared, each ``(people, frames)``) of detections
    whose box sits on a crest (``crest``, flat), as the relief pipeline keeps them
    (:func:`vigil.geo.crest_placement.crest_margin_kept`): ``drop`` none, ``sure`` those the
    crest's row cannot turn (NaN: not pooled), ``bottom``/``place`` all."""
    from vigil.geo.crest_placement import crest_margin_kept

    if mode in ("bottom", "place"):
        return
    m, sd = cols[0].ravel(), cols[1].ravel()
    drop = crest & np.isfinite(m)
    if mode == "sure":
        drop[drop] = ~crest_margin_kept(m[drop], sd[drop])
    for c in cols:
        c.ravel()[drop] = np.nan
