"""Class evidence that holds under optical blur: bodies' templates seen through the PSF.

A person two kilometres from a tower is a third of a pixel wide and a pixel and a bit tall;
an animal two pixels wide and one tall. Through an uncooled LWIR lens (a Gaussian PSF of
sigma about 0.8 px) both become a round smudge a few pixels across, and a size read off the
smudge's spread as if the picture were sharp calls nearly everything a person. The PSF's
variance cannot simply be taken off the measured one either: what the detector weighs
depends on where its mask cuts the smudge.

So the evidence is computed the other way round: each class's template body (metres) is
drawn at the blob's range as the sensor draws it (area-sampled, at several sub-pixel
phases), blurred by the PSF, scaled to the blob's measured peak, and measured as the
detector measures a blob (:func:`vigil.detection.centroid.refine_centroids`): the mask is
what stands out by the cut or more, its bounding box is grown by the centroid pad, and every
pixel in it weighs its difference above the noise floor (:func:`template_spread`; with
``skirt_learnt`` the older model, in which what is under the cut has been learnt into the
background and weighs nothing; :func:`measurement_model` picks, per blob, the one whose
templates fit its spread). The class whose templates' measured spread lies nearest the
blob's, height counting more than width (:func:`template_distances`), is the guess
(:func:`guess_blurred`). Templates are cached by their quantised inputs.

Which model fits: on the simulator's towers under the field's perturbations (calibration
seeds 0, 1, 2, 5, 7, 11; ``python -m benchmarks calibrate_classes``' runs, 2 fps), persons at
750-1250 m measure a spread of 0.80 x 0.90 px (across x down, medians) and animals 0.95 x
0.81; the box model's templates give 0.68 x 0.84 and 0.89 x 0.77, the skirt-learnt model's
0.25 x 0.43 and 0.55 x 0.42 (a blob's skirt is not learnt there: the objects move).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

#: (width, height) in metres of the templates, side-on: a walker, and the middle of the
#: large animals a tower sees (cattle 2.2 x 1.4, deer 1.6 x 1.2, horse 2.4 x 2.2).
TEMPLATES_M: dict[str, tuple[float, float]] = {"person": (0.5, 1.7), "animal": (1.9, 1.3)}
#: The box model's templates per class, metres: a walker and two walking abreast (a group's
#: members a metre apart are one blob at a kilometre: as wide as a cow, but as tall as a
#: person); the animal. A class is as near as its nearest template.
CLASS_TEMPLATES_M: dict[str, tuple[tuple[float, float], ...]] = {
    "person": ((0.5, 1.7), (1.5, 1.7)),
    "animal": ((1.9, 1.3),),
}
#: How much more a pixel of spread down the image weighs than one across, in the box model:
#: width does not tell two walkers abreast from an animal, height does (1.7 m against
#: 1.2-1.4 m).
HEIGHT_WEIGHT = 2.5
#: How much nearer (pixels of spread) the animal template must be than the person's, in the
#: older skirt-learnt model: chosen with the threshold (``ObjectParams.psf_cut_dn`` 12) on the
#: tuning seeds of ``benchmarks/bench_detection_robust.py`` (61001, 61002: per-frame
#: animals-as-animal 0.31 and 0.52, persons-as-person 0.98 and 0.95; 0 gave 0.71 and 0.76 but
#: persons 0.53 and 0.46).
ANIMAL_MARGIN_SKIRT_PX = 0.1
#: The box model's margin (negative: the animal wins a near tie). :data:`CLASS_TEMPLATES_M`,
#: :data:`HEIGHT_WEIGHT` and this were chosen on calibration seeds 0, 1, 2, 5, 7 and 11
#: (``python -m benchmarks calibrate_classes``' runs: tower t05, field perturbations, blur
#: 0.8 px, 2 fps; the detector's own measurements of 291 bodies followed 10+ frames): bodies
#: whose detections' majority is right, animals 47/53 and people 220/238 (one walker's
#: template, equal weights, margin 0: 36/53 and 185/238; the skirt-learnt model: 20/53 and
#: 205/238); per detection 0.82 and 0.87 (skirt-learnt: 0.52 and 0.82).
ANIMAL_MARGIN_PX = -0.03
#: Sub-pixel phases of the body's centre averaged over, both axes, pixels.
PHASES = (0.0, 0.25, 0.5, 0.75)


def centroid_pad(sigma_px: float) -> int:
    """Pixels the detector grows a blob's box by to weigh its centroid under a PSF of
    ``sigma_px`` (the blur's skirt falls outside the mask): ``max(1, ceil(2 sigma))``."""
    return max(1, math.ceil(2.0 * sigma_px))


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


def _weights(img: np.ndarray, cut_dn: float, floor_dn: float, pad: int | None) -> np.ndarray:
    """The detector's weights of a template image (grey levels over the ground): with
    ``pad`` None, ``value - floor`` where the value reaches the cut (the skirt learnt as
    background); else ``max(value - floor, 0)`` inside the box of what reaches the cut (the
    brightest pixel if nothing does) grown by ``pad`` pixels."""
    if pad is None:
        return np.where(img >= cut_dn, img - floor_dn, 0.0)
    mask = img >= cut_dn
    if not mask.any():
        mask = img >= img.max()
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    keep = np.zeros(img.shape, dtype=bool)
    keep[max(rows[0] - pad, 0) : rows[-1] + pad + 1, max(cols[0] - pad, 0) : cols[-1] + pad + 1] = (
        True
    )
    return np.where(keep, np.maximum(img - floor_dn, 0.0), 0.0)


@lru_cache(maxsize=65536)
def template_spread(
    w_px: float,
    h_px: float,
    sigma_px: float,
    peak_dn: float,
    cut_dn: float,
    floor_dn: float,
    skirt_learnt: bool = False,
) -> tuple[float, float]:
    """The weighted variances ``(across, down)`` (pixels^2) the detector would measure on a
    ``w_px`` x ``h_px`` body through a Gaussian PSF of ``sigma_px``, whose brightest pixel
    stands ``peak_dn`` above the background, averaged over :data:`PHASES` in each axis.

    The blob is what reaches ``cut_dn`` (the mask's threshold, grey levels); its box grown
    by :func:`centroid_pad` weighs every pixel ``max(value - floor_dn, 0)``. With
    ``skirt_learnt``, only pixels reaching the cut weigh (``value - floor_dn``): what is
    under it has been learnt as background. Pass rounded inputs: the results are cached."""
    pad = None if skirt_learnt else centroid_pad(sigma_px)
    n = 2 * int(math.ceil((max(w_px, h_px) + 1) / 2 + 4 * sigma_px)) + 1 + 2 * (pad or 0)
    x = np.arange(n, dtype=np.float64)
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
            wt = _weights(img, cut_dn, floor_dn, pad)
            s = wt.sum()
            if s <= 0:
                continue
            mu, mv = wt.sum(axis=0) @ x / s, wt.sum(axis=1) @ x / s
            out_u.append(float(wt.sum(axis=0) @ (x - mu) ** 2 / s))
            out_v.append(float(wt.sum(axis=1) @ (x - mv) ** 2 / s))
    if not out_u:
        return 0.0, 0.0
    return float(np.mean(out_u)), float(np.mean(out_v))


def _spread_at(
    w_m: float,
    h_m: float,
    mpp: float,
    sigma_px: float,
    peak: float,
    cut_dn: float,
    floor_dn: float,
    skirt_learnt: bool,
) -> tuple[float, float]:
    """:func:`template_spread` of a ``w_m`` x ``h_m`` metre body at ``mpp`` metres a pixel,
    its inputs quantised (1/20 px; ``peak`` already whole grey levels) so the cache serves."""
    q = 20.0
    return template_spread(
        round(w_m / mpp * q) / q, round(h_m / mpp * q) / q, round(sigma_px * q) / q,
        peak, float(cut_dn), float(floor_dn), skirt_learnt,
    )  # fmt: skip


def template_distances(
    var_u: float,
    var_v: float,
    peak_dn: float,
    mpp: float,
    sigma_px: float,
    cut_dn: float,
    floor_dn: float,
    skirt_learnt: bool = False,
) -> dict[str, float]:
    """Each class's distance (pixels of standard deviation) from a blob's measured spread
    ``var_u, var_v`` (pixels^2) at ``mpp`` metres a pixel and peak ``peak_dn`` (grey levels),
    the templates measured as :func:`template_spread` measures them.

    The box model: a class's nearest template of :data:`CLASS_TEMPLATES_M`, the down-axis
    difference weighted by :data:`HEIGHT_WEIGHT`. The skirt-learnt model: the one template of
    :data:`TEMPLATES_M`, both axes alike."""
    su, sv = math.sqrt(max(var_u, 0.0)), math.sqrt(max(var_v, 0.0))
    peak = float(max(round(peak_dn), cut_dn))
    if skirt_learnt:
        templates = {cls: (size,) for cls, size in TEMPLATES_M.items()}
        kv = 1.0
    else:
        templates, kv = CLASS_TEMPLATES_M, HEIGHT_WEIGHT
    dist: dict[str, float] = {}
    for cls, sizes in templates.items():
        best = math.inf
        for w_m, h_m in sizes:
            tu, tv = _spread_at(w_m, h_m, mpp, sigma_px, peak, cut_dn, floor_dn, skirt_learnt)
            best = min(best, math.hypot(su - math.sqrt(tu), kv * (sv - math.sqrt(tv))))
        dist[cls] = best
    return dist


def measurement_model(
    var_u: float,
    var_v: float,
    peak_dn: float,
    mpp: float,
    sigma_px: float,
    cut_dn: float,
    floor_dn: float,
) -> bool:
    """Which measurement model a blob's spread fits: ``True`` for the skirt-learnt one (its
    templates, both axes alike, nearer than the box model's), ``False`` for the box model.

    A background model that learns what stands under its threshold (a body that lingers, a
    high frame rate) leaves only the smudge's core to weigh; one that does not (moving bodies
    at 2 fps on the simulated towers) leaves the box's skirt too, and the spread is wider."""
    su, sv = math.sqrt(max(var_u, 0.0)), math.sqrt(max(var_v, 0.0))
    peak = float(max(round(peak_dn), cut_dn))
    near = {}
    for learnt in (False, True):
        near[learnt] = min(
            math.hypot(su - math.sqrt(tu), sv - math.sqrt(tv))
            for tu, tv in (
                _spread_at(w_m, h_m, mpp, sigma_px, peak, cut_dn, floor_dn, learnt)
                for w_m, h_m in TEMPLATES_M.values()
            )
        )
    return near[True] < near[False]


def guess_blurred(
    var_u: float,
    var_v: float,
    peak_dn: float,
    mpp: float,
    sigma_px: float,
    cut_dn: float,
    floor_dn: float,
    animal_margin_px: float | None = None,
    skirt_learnt: bool | None = None,
) -> tuple[str, float]:
    """The class whose template, seen through the PSF at this range and peak, would show the
    blob's measured spread nearest; and a confidence in [0.3, 0.75].

    ``var_u, var_v``: the blob's weighted variances (pixels^2); ``peak_dn``: its greatest
    difference from the background; ``mpp``: metres a pixel spans at its range; ``cut_dn``
    the mask's threshold and ``floor_dn`` the weights' floor (grey levels); ``skirt_learnt``
    picks the measurement model (:func:`template_spread`; ``None``: the one the spread fits,
    :func:`measurement_model`). Distances are between standard deviations (pixels,
    :func:`template_distances`), so a pixel's worth of spread weighs alike at every size;
    ``animal`` needs its template nearer than the person's by ``animal_margin_px`` (default
    the model's: :data:`ANIMAL_MARGIN_PX`, :data:`ANIMAL_MARGIN_SKIRT_PX`); the confidence
    grows with how much nearer the winner is.
    """
    if skirt_learnt is None:
        skirt_learnt = measurement_model(var_u, var_v, peak_dn, mpp, sigma_px, cut_dn, floor_dn)
    if animal_margin_px is None:
        animal_margin_px = ANIMAL_MARGIN_SKIRT_PX if skirt_learnt else ANIMAL_MARGIN_PX
    dist = template_distances(var_u, var_v, peak_dn, mpp, sigma_px, cut_dn, floor_dn, skirt_learnt)
    best = "animal" if dist["animal"] + animal_margin_px < dist["person"] else "person"
    other = max(dist.values())
    margin = max(other - dist[best], 0.0) / max(other, 1e-6)
    return best, round(0.3 + 0.45 * margin, 3)
