"""The evidence a tracker weighs its tracks by (:attr:`TrackerSettings.track_score`).

A track's score is its log-likelihood ratio of "a target" against "clutter or a new
target"; what one detection adds depends on how likely it was under the track's prediction
and on how dense the detections no established track explains are. That density is not
known in advance (it is the sensor's false-alarm rate and the arrival of new targets), so it
is estimated here from the batches themselves: the detections of tentative tracks that died
unconfirmed, per square metre of the scene and per batch, with fading memory in seconds.
Until the data say otherwise it assumes one false alarm per batch over the scene.

The same batches say how likely a new tentative track is to be a target at all: of the
tentative tracks that end, how many were confirmed and how many died. Where clutter is
dense and people few (thirty false alarms a scan over a square kilometre and a handful of
people arriving in five minutes), that prior is small and a confirmation at ``ln 100``
lets about one clutter pair in a hundred through every scan; :meth:`ClutterDensity.
confirm_raise` raises the confirmation threshold by the prior's log-odds beyond
:data:`BIRTH_ODDS_REFERENCE` (Blackman's initial track score, ``ln(new / false)``, with the
threshold kept where it is at the reference odds and below).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

#: Tentative tracks that die per one confirmed at which the confirmation threshold is
#: ``confirm_llr`` as set; at more the threshold rises by the log of the excess. Chosen on
#: the calibration data (crowds_zara03: about 17 false detections a scan per new person;
#: grouped-scenario seeds 200-202): the threshold there stays as set.
BIRTH_ODDS_REFERENCE = 16.0


class ClutterDensity:
    """Running estimate of the density of false detections, per m^2 per batch.

    Each batch adds its false detections (those of tentative tracks that died unconfirmed in
    it) to a count and the scene's area (the box around every detection seen so far, at
    least ten detection sigmas on a side) to an exposure; both fade with time constant
    ``memory_s`` seconds, and the density is their ratio. The first batch brings a prior
    of one false detection.

    It also counts, with the same fading, the tentative tracks that died and those that
    were confirmed (a prior of one each): their ratio is the odds against a new tentative
    track being a target (:meth:`confirm_raise`).
    """

    def __init__(self, memory_s: float) -> None:
        self.memory_s = float(memory_s)
        #: count, exposure (m^2 batches), time of the last batch (s), scene box x0, y0, x1,
        #: y1, tentative tracks died, tentative tracks confirmed (faded counts)
        self.state = np.array(
            [0.0, 0.0, -math.inf, math.inf, math.inf, -math.inf, -math.inf, 1.0, 1.0]
        )

    def density(self, floor: float) -> float:
        """The estimate (per m^2), at least ``floor``; ``floor`` before any batch."""
        count, exposure = self.state[0], self.state[1]
        if exposure <= 0.0:
            return floor
        return max(floor, count / exposure)

    def confirm_raise(self) -> float:
        """How much to raise the confirmation threshold (a log-likelihood ratio): ``ln`` of
        the tentative tracks' died-to-confirmed odds over :data:`BIRTH_ODDS_REFERENCE`, at
        least 0."""
        died, born = self.state[7], self.state[8]
        return max(0.0, math.log(died / born / BIRTH_ODDS_REFERENCE))

    def add(
        self,
        t: float,
        z: NDArray[np.float64],
        sigma_m: float,
        false: int,
        died: int = 0,
        born: int = 0,
    ) -> None:
        """Add one batch at time ``t`` (s): its detections ``z`` ``(m, 2)`` (m), their median
        sigma (m), how many false detections came to light in it, and how many tentative
        tracks died (``died``) and were confirmed (``born``) in it."""
        s = self.state
        if math.isfinite(s[2]):
            keep = math.exp(-(t - s[2]) / self.memory_s)
            s[7] = keep * s[7] + died
            s[8] = keep * s[8] + born
        else:
            s[7] += died
            s[8] += born
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
