"""Global level steps: a flat-field correction's level jump, an AGC step when a hot object
enters the view. Both move every pixel of the frame at once by a gain and an offset. The
sample-consensus model's own compensation is a gain alone (the ratio of the frame's
brightness to the background's), which leaves an offset, or an AGC's gain about the frame's
mean, on every pixel far from the mean level: the sky and the warm ground light up as
foreground, thousands of blobs a frame, for as long as the step lasts.

:class:`LevelSteps` fits each frame's gain and offset against the background over the
pixels the model calls background (:func:`vigil.detection.kernels.affine_fit`) and, where
that map differs from the gain alone by more than a threshold, maps the frame back onto the
background's levels before the models see it; a frame no gain and offset explain (the camera
looks elsewhere) restarts the background. Frames without a step pass through untouched.

Whether the picture changed is judged against the camera's own level of residual
(:attr:`LevelSteps.noise`): a low-contrast thermal scene stretched over 255 grey levels
carries its sensor noise and its count quantisation with it (one count is several grey
levels), and that noise may hold its value for frames, so most pixels sit more than
``trim_dn`` off their background samples in a frame where nothing moved or stepped. Where
under ``reset_share`` of the pixels fit within ``trim_dn`` and the camera's level is wider,
the frame is fitted and judged again at that level; a new picture still fails it, by its
residuals (of the scene's contrast) or, where the scene's contrast is itself near the
noise, by its fitted gain (near zero: an unrelated picture does not follow the
background's levels). The level is measured on the frames themselves: each
frame's 0.9 quantile of ``|frame - (a * background + b)|`` over about :data:`NOISE_POINTS`
of the fit's background pixels, after its own fit (so a step does not lift it); a frame is
judged against the median of the previous :data:`NOISE_FRAMES` frames' values (a new picture lifts
its own value, not that median). Frames whose pixels fit within ``trim_dn`` (the
simulator's towers) are handled exactly as with the fixed threshold.

The step threshold ``step_dn`` stays fixed: it bounds the frame-wide map, which the fit
averages over thousands of pixels, so per-pixel noise does not explain a difference of a
few grey levels there; on the real stretched clip ``v2-latlon.cptv`` the map it finds is a
real offset drift of about 3 counts (the frame's mean falls 3 counts in 2 s), which the
gain-only compensation turns into a 10 % gain error (measured through ``vigil detect``'s
thermal defaults: with the step threshold raised to the residual level the clip's false
detections were 2,032, with ``step_dn`` 1,195).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigil.detection import kernels
from vigil.detection.background import SampleConsensusModel, check_ranges

#: Frames whose residual levels the noise level is the median of.
NOISE_FRAMES = 15
#: About this many pixels (at least every ``grid_px``-th row and column) measure a frame's
#: residual level (0.2 ms a frame at 640x480 and at 1080p).
NOISE_POINTS = 5000
#: Quantile of a frame's residuals against its fitted background taken as its level.
NOISE_QUANTILE = 0.9
#: Fitted gains a camera can have: a map outside them is no level step, and where the frame
#: is judged at the camera's residual level, a sign of a picture unrelated to the background.
MIN_GAIN, MAX_GAIN = 0.25, 4.0


@dataclass(frozen=True)
class StepParams:
    """Settings of the global level-step handling (:attr:`DetectorConfig.steps`).

    Parameters
    ----------
    step_dn
        Grey levels (0-255) by which the fitted gain-and-offset map must differ from the
        gain-only compensation, at the least or greatest background level in view, for the
        frame to be re-normalised. Below it the frame goes on as before (bit for bit).
    grid_px
        The fit samples every this many rows and columns.
    trim_dn
        Least residual (grey levels) beyond which a pixel leaves the fit's second pass and
        counts as not fitting (the camera's measured residual level where that is wider
        and too few pixels fit within this: :attr:`LevelSteps.noise`).
    reset_share
        When under this share of the sampled pixels lie within the residual limit of the
        fit (the picture changed beyond a gain and an offset), the background is learnt
        afresh from this frame and the warm-up starts again.
    """

    step_dn: float = 2.0
    grid_px: int = 4
    trim_dn: float = 4.0
    reset_share: float = 0.3

    def __post_init__(self) -> None:
        checks: dict[str, tuple[float, float, float]] = {
            "step_dn": (self.step_dn, 0.0, 255.0),
            "grid_px": (self.grid_px, 1, 64),
            "trim_dn": (self.trim_dn, 0.0, 255.0),
            "reset_share": (self.reset_share, 0.0, 1.0),
        }
        check_ranges("level steps", checks)


def median(values: Iterable[float]) -> float:
    """``float(np.median(values))`` of a few floats without NaN (the same float: the middle
    one, or the two middle ones' sum halved), without its per-call overhead."""
    s = sorted(values)
    m = len(s) // 2
    return float(s[m]) if len(s) % 2 else float((s[m - 1] + s[m]) / 2)


def quantile_linear(values: NDArray[np.floating], q: float) -> float:
    """``float(np.quantile(values, q))`` (its default linear method, the same float), for a
    1-D array without NaN, which it partitions in place: without ``np.quantile``'s
    per-call overhead (a tenth of a millisecond a frame here)."""
    n = values.size
    v = q * (n - 1)
    lo = math.floor(v)
    hi = min(lo + 1, n - 1)
    g = v - lo
    values.partition((lo, hi) if hi != lo else lo)
    a, b = values[lo], values[hi]
    d = b - a
    return float(b - d * (1 - g)) if g >= 0.5 else float(a + d * g)


class LevelSteps:
    """One camera's level-step handling: the fit, the mapping and its counts.

    Parameters
    ----------
    shape
        ``(height, width)`` of the frames, pixels.
    params
        Settings.
    """

    def __init__(self, shape: tuple[int, int], params: StepParams) -> None:
        self.params = params
        #: the last fit ``(a, b, gain, kept_share, ref_lo, ref_hi)`` (see ``affine_fit``)
        self.fit = np.zeros(6, np.float64)
        #: what the last frame got: ``""`` (untouched), ``"mapped"`` or ``"reset"``
        self.last = ""
        self.counts = {"mapped": 0, "reset": 0}
        #: the camera's residual level (grey levels) the last frame was judged against:
        #: 0 until a frame was fitted
        self.noise = 0.0
        self._levels: deque[float] = deque(maxlen=NOISE_FRAMES)
        self._out = np.empty(shape, np.uint8)
        self._residuals = np.empty(0, np.float32)

    def __call__(self, grey: NDArray[np.uint8], model: SampleConsensusModel) -> NDArray[np.uint8]:
        """The frame as the model should see it.

        Fits ``grey = a * background + b`` with residuals beyond ``trim_dn`` trimmed (beyond
        :attr:`noise` where under ``reset_share`` of the pixels fit within ``trim_dn`` and
        :attr:`noise` is wider); when that map and the gain-only compensation differ by more
        than ``step_dn`` at the least or greatest background level in the fit,
        returns ``(grey - b) / a`` (rounded, clipped to 0-255, in a reused buffer).
        When under ``reset_share`` of the sampled pixels fit (or, judged at :attr:`noise`,
        the fitted gain is outside ``MIN_GAIN``-``MAX_GAIN``), sets the model to learn
        afresh from this frame (its ``frames_seen`` to 0: the warm-up starts again) and
        returns ``grey``; the caller restarts what else it keeps. Else returns ``grey``.
        """
        p = self.params
        self.noise = median(self._levels) if self._levels else 0.0
        kernels.affine_fit(grey, model.samples, model.foreground, p.grid_px, p.trim_dn, self.fit)
        related = True
        if self.fit[3] < p.reset_share and self.noise > p.trim_dn:
            # too few pixels within trim_dn, but the camera's residuals are wider than that:
            # judge (and fit) the frame at the camera's own level; a picture unrelated to
            # the background is then told by its gain, near zero (no camera gain is)
            kernels.affine_fit(
                grey, model.samples, model.foreground, p.grid_px, self.noise, self.fit
            )
            related = MIN_GAIN <= self.fit[0] <= MAX_GAIN
        self._measure(grey, model)
        a, b, gain, kept, lo, hi = (float(v) for v in self.fit)
        self.last = ""
        if kept < p.reset_share or not related:
            model.frames_seen = 0
            self.last = "reset"
            self.counts["reset"] += 1
            return grey
        off = max(abs(a * lo + b - gain * lo), abs(a * hi + b - gain * hi))
        if off <= p.step_dn or not MIN_GAIN <= a <= MAX_GAIN:
            return grey
        level = (grey.astype(np.float32) - np.float32(b)) / np.float32(a)
        np.clip(level + 0.5, 0.0, 255.0, out=level)
        np.copyto(self._out, level, casting="unsafe")
        self.last = "mapped"
        self.counts["mapped"] += 1
        return self._out

    def _measure(self, grey: NDArray[np.uint8], model: SampleConsensusModel) -> None:
        """Add this frame's residual level (grey levels; see the module docstring) to the
        history, from the fit in :attr:`fit`."""
        h, w = grey.shape
        g = max(self.params.grid_px, math.isqrt(h * w // NOISE_POINTS))
        size = ((h + g - 1) // g) * ((w + g - 1) // g)
        if self._residuals.size < size:
            self._residuals = np.empty(size, np.float32)
        a, b = float(self.fit[0]), float(self.fit[1])
        n = kernels.level_residuals(grey, model.samples, model.foreground, g, a, b, self._residuals)
        if n < 16:
            return
        self._levels.append(quantile_linear(self._residuals[:n], NOISE_QUANTILE))
