"""How the sensor perturbations of :mod:`vigil.sim.perturbations` change the aircraft's and the
ground sensors' messages: the aircraft classifier's confusion and false alarms, and ground
sensors' nuisance alarms from small animals and far vehicles.

Each draws from its own random streams, so with a family off the other draws of the world are
the ones they were before.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from .perturbations import UasClassifier, UgsNuisance

#: Which modalities feel each nuisance.
SMALL_ANIMAL_MODALITIES = ("seismic", "pir")
FAR_VEHICLE_MODALITIES = ("seismic", "acoustic", "magnetic")
#: What a sensor's classifier calls each nuisance: P(guess).
SMALL_ANIMAL_GUESS = {"animal": 0.6, "person": 0.25, "unknown": 0.15}
FAR_VEHICLE_GUESS = {"vehicle": 0.7, "unknown": 0.3}


def draw(rng: np.random.Generator, probs: dict[str, float]) -> str:
    """One name drawn with the given probabilities."""
    names = list(probs)
    p = np.array([probs[k] for k in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def uas_guess(cfg: UasClassifier, rng: np.random.Generator, cls: str) -> str:
    """The aircraft classifier's guess for a body of true class ``cls``."""
    return draw(rng, cfg.confusion[cls])


def uas_false_alarms(
    cfg: UasClassifier, rng: np.random.Generator, footprint: shapely.Polygon, period_s: float
) -> list[tuple[float, float, str]]:
    """False detections in one detection period: ``(x, y, guess)``, uniform in the footprint,
    Poisson at ``cfg.false_per_hour``."""
    n = int(rng.poisson(cfg.false_per_hour * period_s / 3600.0))
    out = []
    x0, y0, x1, y1 = footprint.bounds
    while len(out) < n:
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if shapely.contains_xy(footprint, x, y):
            out.append((float(x), float(y), draw(rng, cfg.false_guess)))
    return out


def ugs_nuisance(
    cfg: UgsNuisance, rng: np.random.Generator, modality: str, dt_s: float, local_hour: float
) -> tuple[str, str] | None:
    """A nuisance alarm in one tick of ``dt_s`` seconds, as ``(cause, class guess)``, or None.

    Small animals are twice as active at night (before 6:00 and after 19:00) and half by day.
    """
    night = local_hour < 6.0 or local_hour >= 19.0
    rates = []
    if modality in SMALL_ANIMAL_MODALITIES:
        rates.append(("small_animal", cfg.small_animal_per_hour * (2.0 if night else 0.5)))
    if modality in FAR_VEHICLE_MODALITIES:
        rates.append(("far_vehicle", cfg.far_vehicle_per_hour))
    u = rng.uniform(size=2)
    total = sum(r for _, r in rates)
    if total <= 0 or u[0] >= 1.0 - math.exp(-total * dt_s / 3600.0):
        return None
    cause = rates[0][0] if u[1] * total < rates[0][1] else rates[-1][0]
    return cause, draw(rng, SMALL_ANIMAL_GUESS if cause == "small_animal" else FAR_VEHICLE_GUESS)
