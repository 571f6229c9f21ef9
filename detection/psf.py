"""Class evidence that holds under optical blur: bodies' templates seen through the PSF.

A person two kilometres from a tower is a third of a pixel wide and a pixel and a bit tall;
an animal two pixels wide and one tall. Through an uncooled LWIR lens (a Gaussian PSF of
sigma about 0.8 px) both become the same round smudge a few pixels across, and a size read
off the smudge's spread as if the picture were sharp calls nearly everything a person. Nor
can the PSF simply be taken off the measured variance: the detector weighs only what stands
out of the background by more than its threshold (the blur's dim skirt is learnt into the
background), so the measured spread is far under the blurred body's.

So the evidence is computed the other way round: each class's template body (metres) is
drawn at the blob's range as the sensor draws it (area-sampled, at several sub-pixel
phases), blurred by the PSF, scaled to the blob's measured peak, cut where the detector's
threshold would cut it, and measured as the detector measures a blob (intensity-weighted
variances above the floor). The class whose template's measured spread lies nearest the
blob's is the guess (:func:`guess_blurred`). Templates are cached by their quantised inputs.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

#: (width, height) in metres of the templates, side-on: a walker, and the middle of the
#: large animals a tower sees (cattle 2.2 x 1.4, deer 1.6 x 1.2, horse 2.4 x 2.2).
TEMPLATES_M: dict[str, tuple[float, float]] = {"person": (0.5, 1.7), "animal": (1.9, 1.3)}
#: How much nearer (pixels of spread) the animal template must be than the person's.
#: Chosen with the threshold (``ObjectParams.psf_cut_dn`` 12) on the tuning seeds of
#: ``benchmarks/bench_detection_robust.py`` (61001, 61002: per-frame animals-as-animal
#: 0.31 and 0.52, persons-as-person 0.98 and 0.95; 0 gave 0.71 and 0.76 but persons 0.53
#: and 0.46).
ANIMAL_MARGIN_PX = 0.1
#: Sub-pixel phases of the body's centre averaged over, both axes, pixels.
PHASES = (0.0, 0.25, 0.5, 0.75)


def _profile(size_px: float, phase: float, sigma_px: float, n: int) -> np.ndarray:
    """A body ``size_px`` wide centred ``phase`` px right of the middle pixel's left edge:
    its area-sampled coverage of ``n`` pixels, blurred by a sampled Gaussian of ``sigma_px``."""
    half = n // 2
    left = np.arange(-half, half + 1, dtype=np.float64)
    c = phase
    cov = np.clip(np.minimum(c + size_px / 2, left + 1) - np.maximum(c - size_px / 2, left), 0, 1)
    if sigma_px <= 0:
        return cov
    r = int(math.ceil(4 * sigma_px))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_px) ** 2)
    return np.convolve(cov, k / k.sum(), mode="same")


@lru_cache(maxsize=65536)
def template_spread(
    w_px: float, h_px: float, sigma_px: float, peak_dn: float, cut_dn: float, floor_dn: float
) -> tuple[float, float]:
    """The weighted variances ``(across, down)`` (pixels^2) the detector would measure on a
    ``w_px`` x ``h_px`` body through a Gaussian PSF of ``sigma_px``, whose brightest pixel
    stands ``peak_dn`` above the background: pixels under ``cut_dn`` weigh nothing (the
    threshold; what is under it is learnt as background), the others ``value - floor_dn``;
    averaged over :data:`PHASES` in each axis. Pass rounded inputs: the results are cached."""
    n = 2 * int(math.ceil((max(w_px, h_px) + 1) / 2 + 4 * sigma_px)) + 1
    out_u, out_v = [], []
    for pu in PHASES:
        fu = _profile(w_px, pu, sigma_px, n)
        for pv in PHASES:
            fv = _profile(h_px, pv, sigma_px, n)
            img = np.outer(fv, fu)
            top = img.max()
            if top <= 0:
                continue
            img *= peak_dn / top
            wt = np.where(img >= cut_dn, img - floor_dn, 0.0)
            s = wt.sum()
            if s <= 0:
                continue
            x = np.arange(n, dtype=np.float64)
            mu, mv = wt.sum(axis=0) @ x / s, wt.sum(axis=1) @ x / s
            out_u.append(float(wt.sum(axis=0) @ (x - mu) ** 2 / s))
            out_v.append(float(wt.sum(axis=1) @ (x - mv) ** 2 / s))
    if not out_u:
        return 0.0, 0.0
    return float(np.mean(out_u)), float(np.mean(out_v))


def guess_blurred(
    var_u: float,
    var_v: float,
    peak_dn: float,
    mpp: float,
    sigma_px: float,
    cut_dn: float,
    floor_dn: float,
    animal_margin_px: float = ANIMAL_MARGIN_PX,
) -> tuple[str, float]:
    """The class whose template, seen through the PSF at this range and peak, would show the
    blob's measured spread nearest; and a confidence in [0.3, 0.75].

    ``var_u, var_v``: the blob's weighted variances (pixels^2); ``peak_dn``: its greatest
    difference from the background; ``mpp``: metres a pixel spans at its range. Distances
    are between standard deviations (pixels), so a pixel's worth of spread weighs alike at
    every size; ``animal`` needs its template nearer than the person's by
    ``animal_margin_px`` (a person missed matters more than an animal); the confidence
    grows with how much nearer the winner is.
    """
    su, sv = math.sqrt(max(var_u, 0.0)), math.sqrt(max(var_v, 0.0))
    q = 20.0  # inputs quantised to 1/20 px and whole grey levels for the cache
    peak = float(max(round(peak_dn), cut_dn))
    dist: dict[str, float] = {}
    for cls, (w_m, h_m) in TEMPLATES_M.items():
        tu, tv = template_spread(
            round(w_m / mpp * q) / q, round(h_m / mpp * q) / q, round(sigma_px * q) / q,
            peak, float(cut_dn), float(floor_dn),
        )  # fmt: skip
        dist[cls] = math.hypot(su - math.sqrt(tu), sv - math.sqrt(tv))
    best = "animal" if dist["animal"] + animal_margin_px < dist["person"] else "person"
    other = max(dist.values())
    margin = max(other - dist[best], 0.0) / max(other, 1e-6)
    return best, round(0.3 + 0.45 * margin, 3)
