"""The class guess of a blob from its size at range, its speed and how many pixels tall it is
(moved here from :mod:`vigil.detection.objects`, which re-exports it), and the ground speed
over a short window with its standard error (:func:`window_speed`), which says "vehicle" only
when it stands clear of its own noise (:func:`surely_faster`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vigil.ingest.schema import ClassName

#: A ground speed above this (m/s) is a vehicle's: people and animals do not keep it up.
VEHICLE_MIN_MPS = 6.0
#: How many of its standard errors a speed must stand above :data:`VEHICLE_MIN_MPS` to say
#: "vehicle" (:func:`window_speed`'s error, from the positions' covariances): at 2 km from a
#: tower a fifth of a pixel of jitter is tens of metres of range, so a standing animal's speed
#: over a few seconds can read 10 m/s there, with an error as large. Chosen on calibration
#: seeds 0, 1, 2, 5, 7, 11 (``benchmarks calibrate_classes``' runs, PSF model; fit on four,
#: replay two, three folds): animals-as-animal per animal 53/64 with 1, 52/64 with 2, 50/64
#: with the older rule; the one vehicle's detections at 1.8-2.4 km read vehicle 13 of 16 times
#: with 1, 5 with 2. The covariances are cautious: on those runs the frame-to-frame scatter of
#: a body's position (rms) was 0.4-0.5 of theirs beyond 1 km, 0.5-0.8 nearer.
SPEED_SIGMAS = 1.0


def surely_faster(
    speed_mps: float | None,
    speed_sd_mps: float = 0.0,
    threshold_mps: float = VEHICLE_MIN_MPS,
    sigmas: float = SPEED_SIGMAS,
) -> bool:
    """Whether a speed (m/s) exceeds ``threshold_mps`` by more than ``sigmas`` of its own
    standard error ``speed_sd_mps`` (m/s); ``None`` (no speed) is not."""
    return speed_mps is not None and speed_mps - sigmas * speed_sd_mps > threshold_mps


def window_speed(
    points: Sequence[tuple[float, float, float]],
    covs: Sequence[np.ndarray],
    threshold_mps: float = VEHICLE_MIN_MPS,
) -> tuple[float, float]:
    """Ground speed over a window of positions and its standard error toward
    ``threshold_mps``, m/s.

    ``points``: ``(t, x, y)`` (seconds, local metres), two or more at distinct times;
    ``covs``: each position's ``(2, 2)`` covariance (m^2), taken as independent. The velocity
    ``v`` is the least-squares slope of position on time, its covariance
    ``C = sum(a_i^2 C_i)`` with ``a_i = (t_i - mean t) / sum((t_j - mean t)^2)``.

    Across a tower's line of sight a body is placed to a metre or two, along it at grazing
    angles to tens of metres, so the error of a speed depends on its direction. Over
    ``threshold_mps``, the standard error returned is ``(|v| - threshold) / d``, where ``d``
    is the Mahalanobis distance (under ``C``) from ``v`` to the nearest velocity no faster
    than the threshold: a speed stands ``k`` standard errors above the threshold exactly when
    no velocity that slow lies within ``k`` sigmas of the measured one. A car crossing the
    view at 2 km reads clearly fast; a standing animal there, whose range jitters by tens of
    metres, does not. At or under the threshold: the root of ``C`` along ``v``.
    """
    t = np.array([p[0] for p in points], dtype=np.float64)
    xy = np.array([(p[1], p[2]) for p in points], dtype=np.float64)
    dt = t - t.mean()
    s = float(dt @ dt)
    if len(points) < 2 or s <= 0:
        raise ValueError(f"window_speed: {len(points)} points over {np.ptp(t) if len(t) else 0} s")
    a = dt / s
    v = a @ xy
    cv = np.einsum("i,ijk->jk", a * a, np.asarray(covs, dtype=np.float64).reshape(-1, 2, 2))
    speed = math.hypot(float(v[0]), float(v[1]))
    if speed > threshold_mps:
        # the circle of speeds at the threshold, every half degree: its nearest point
        e = threshold_mps * _CIRCLE - v
        d2 = np.einsum("ni,ij,nj->n", e, np.linalg.inv(cv), e).min()
        return speed, (speed - threshold_mps) / math.sqrt(max(float(d2), 1e-12))
    u = v / speed if speed > 0 else np.array([1.0, 0.0])
    return speed, math.sqrt(max(float(u @ cv @ u), 0.0))


#: Unit vectors every half degree (:func:`window_speed`'s threshold circle).
_CIRCLE = np.stack([np.cos(np.radians(np.arange(0.0, 360.0, 0.5))),
                    np.sin(np.radians(np.arange(0.0, 360.0, 0.5)))], axis=1)  # fmt: skip


def ground_speed(ground: Sequence[tuple], sigmas: float | None) -> tuple[float, float]:
    """Speed over a followed object's ``(t, x, y, cov)`` ground points and its standard
    error (m/s): least squares (:func:`window_speed`), or with ``sigmas`` None the older
    first-to-last speed with no error."""
    if sigmas is None:
        (t0, x0, y0, *_), (t1, x1, y1, *_) = ground[0], ground[-1]
        return math.hypot(x1 - x0, y1 - y0) / (t1 - t0), 0.0
    return window_speed([g[:3] for g in ground], [g[3] for g in ground])


def guess_class(
    height_m: float,
    width_m: float,
    speed_mps: float | None,
    height_px: float,
    sized_by_spread: bool = False,
    speed_sd_mps: float = 0.0,
    speed_sigmas: float = SPEED_SIGMAS,
) -> tuple[ClassName, float]:
    """Guess what a blob is from its size (metres), its ground speed and how many pixels tall.

    Returns the class and a confidence in [0, 1]. Blobs only a few pixels tall have
    unreliable shapes, so their confidence is capped. ``sized_by_spread``: the size comes
    from the blob's weighted spread (a body a pixel or two in size); then its height alone
    separates most animals (under ~0.6 m measured: cattle, deer and coyotes seen far off)
    from people and groups of people (1.2 m and more however wide the group), measured on
    the simulator's towers at night; with four pixels or more of height, animals are the
    wide bodies under 1.55 m and people those taller. A speed (m/s) says "vehicle" only when
    it stands ``speed_sigmas`` of its standard error ``speed_sd_mps`` (m/s) above
    :data:`VEHICLE_MIN_MPS` (:func:`surely_faster`).
    """
    if surely_faster(speed_mps, speed_sd_mps, sigmas=speed_sigmas):
        return "vehicle", min(0.9, 0.5 + speed_mps / 40.0)
    aspect = height_m / max(width_m, 1e-3)
    well_resolved = height_px >= 4.0
    if sized_by_spread and height_m < 0.6:
        cls, conf = "animal", 0.55
    elif sized_by_spread and well_resolved and aspect < 1.0 and height_m < 1.55:
        # near enough that heights are good to a decimetre: cattle 1.4 m, deer 1.2 m
        cls, conf = "animal", 0.6
    elif sized_by_spread and height_m >= (1.55 if well_resolved else 1.2) and width_m <= 6.0:
        cls, conf = "person", 0.75
    elif width_m >= 2.6 or height_m * width_m >= 5.0:
        cls, conf = "vehicle", 0.7
    elif aspect >= 1.3 and 0.9 <= height_m <= 2.4:
        cls, conf = "person", 0.7
    elif aspect < 1.0 and height_m < 1.6:
        cls, conf = "animal", 0.6
    elif height_m <= 2.4:
        cls, conf = "person", 0.4
    else:
        return "unknown", 0.0
    # A blob a pixel or two tall has no shape to speak of.
    conf *= min(1.0, max(0.3, height_px / 8.0))
    return cls, round(conf, 3)


__all__ = [
    "SPEED_SIGMAS",
    "VEHICLE_MIN_MPS",
    "ground_speed",
    "guess_class",
    "surely_faster",
    "window_speed",
]
