"""``bench_pointing_track --hidden``: the top of the body where the ground hides the feet.

In each frame where the true camera does not see a person's feet, the top of their body (a
height drawn per person, uniform 1.5-1.9 m) may still show over the crest in front. Where it
does (the ray to it is not cut by the ground and it lands in the image), the detector is
taken to give its pixel with :data:`DETECTION_PX` of error per axis, and
:func:`vigil.geo.hidden_side.top_row_sides` judges, through the calibrated camera, the side of
every place a person of plausible height could stand to show their top there. Its own random
stream (``[seed, tower, 2121]``), so the figures without ``--hidden`` stay as they were.
"""

from __future__ import annotations

import numpy as np

from vigil.geo.hidden_side import top_row_sides
from vigil.geo.image_side import image_margins
from vigil.geo.raycast import cast_rays, curvature_factor

DETECTION_PX = 1.0
#: A person's body top above their feet, metres (uniform between).
HEIGHT_M = (1.5, 1.9)


def top_sides(true, geo, cal, dem, border, x, y, vis, rng) -> tuple[np.ndarray, np.ndarray]:
    """Per person and frame (``x``, ``y``: true positions ``(people, frames)``; ``vis``:
    whether the true camera sees the feet): whether the body's top is seen while the feet are
    not, and the side :func:`top_row_sides` gives it there (0 elsewhere or undecided)."""
    h = rng.uniform(*HEIGHT_M, x.shape[0])[:, None] * np.ones(x.shape[1])
    hid = ~vis
    xs, ys, hs = x[hid], y[hid], h[hid]
    rr = np.hypot(xs - true.x, ys - true.y)
    zt = dem.elevation_at(xs, ys) - curvature_factor() * rr**2 + hs
    d = np.stack([xs, ys, zt], axis=-1) - true.centre
    hits = cast_rays(dem, np.broadcast_to(true.centre, d.shape), d)
    u, v, _ = true.project(xs, ys, zt - true.ground_z)
    seen = (~hits.hit) | (hits.range_m >= rr - 1.0)
    seen &= (u >= 0) & (u < true.width) & (v >= 0) & (v < true.height)
    top = np.zeros(x.shape, dtype=bool)
    sides = np.zeros(x.shape, dtype=np.int8)
    if not seen.any():
        return top, sides
    ou = u[seen] + rng.normal(0.0, DETECTION_PX, int(seen.sum()))
    ov = v[seen] + rng.normal(0.0, DETECTION_PX, int(seen.sum()))
    reach = geo.reach_m
    shared = image_margins(
        geo.camera, dem, border, ou, ov, DETECTION_PX, DETECTION_PX, cal.sigma_deg,
        max_range_m=reach,
    ).shared_px  # fmt: skip
    s = top_row_sides(geo.camera, dem, border, ou, ov, DETECTION_PX, shared, max_range_m=reach)
    idx = np.flatnonzero(hid.ravel())[seen]
    top.ravel()[idx] = True
    sides.ravel()[idx] = s
    return top, sides
