"""The evidence a tracker weighs its tracks by (:attr:`TrackerSettings.track_score`).

A track's score is its log-likelihood ratio of "a target" against "clutter or a new
target"; what one detection adds depends on how likely it was under the track's prediction
and on how dense the detections no established track explains are. That density is not
known in advance (it is the sensor's false-alarm rate and the arrival of new targets), so it
is estimated here from the batches themselves: the detections of tentative tracks that died
unconfirmed, per square metre of the scene and per batch, with fading memory in seconds.
Until the data say otherwise it assumes one false alarm per batch over the scene.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


class ClutterDensity:
    """Running estimate of the density of false detections, per m^2 per batch.

    Each batch adds its false detections (those of tentative tracks that died unconfirmed in
    it) to a count and the scene's area (the box around every detection seen so far, at
    least ten detection sigmas on a side) to an exposure; both fade with time constant
    ``memory_s`` seconds, and the density is their ratio. The first batch brings a prior
    of one false detection.
    """

    def __init__(self, memory_s: float) -> None:
        self.memory_s = float(memory_s)
        #: count, exposure (m^2 batches), time of the last batch (s), scene box x0, y0, x1, y1
        self.state = np.array([0.0, 0.0, -math.inf, math.inf, math.inf, -math.inf, -math.inf])

    def density(self, floor: float) -> float:
        """The estimate (per m^2), at least ``floor``; ``floor`` before any batch."""
        count, exposure = self.state[0], self.state[1]
        if exposure <= 0.0:
            return floor
        return max(floor, count / exposure)

    def add(self, t: float, z: NDArray[np.float64], sigma_m: float, false: int) -> None:
        """Add one batch at time ``t`` (s): its detections ``z`` ``(m, 2)`` (m), their median
        sigma (m) and how many false detections came to light in it."""
        s = self.state
        if len(z):
            s[3] = min(s[3], float(z[:, 0].min()))
            s[4] = min(s[4], float(z[:, 1].min()))
            s[5] = max(s[5], float(z[:, 0].max()))
            s[6] = max(s[6], float(z[:, 1].max()))
        if s[5] < s[3]:
            return
        first = not math.isfinite(s[2])
        fade = 0.0 if first else math.exp(-(t - s[2]) / self.memory_s)
        side = 10.0 * sigma_m
        area = max(s[5] - s[3], side) * max(s[6] - s[4], side)
        s[0] = fade * s[0] + false + (1.0 if first else 0.0)
        s[1] = fade * s[1] + area
        s[2] = t


def cost_offset(clutter_density: float, pd: float) -> float:
    """The association cost's constant, ``ln(2 pi lambda (1 - Pd) / Pd)``: a pair costs
    ``d^2/2 + ln|S|/2`` plus this, and is kept only when negative (the detection is likelier
    the track's than clutter's, given that the track may have been missed)."""
    return math.log(2.0 * math.pi * clutter_density * (1.0 - pd) / pd)
