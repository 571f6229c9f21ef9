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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigil.detection import kernels
from vigil.detection.background import SampleConsensusModel, check_ranges


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
        Least residual (grey levels) beyond which a pixel leaves the fit's second pass.
    reset_share
        When under this share of the sampled pixels lie within ``trim_dn`` of the fit (the
        picture changed beyond a gain and an offset), the background is learnt afresh from
        this frame and the warm-up starts again.
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
        self._out = np.empty(shape, np.uint8)

    def __call__(self, grey: NDArray[np.uint8], model: SampleConsensusModel) -> NDArray[np.uint8]:
        """The frame as the model should see it.

        Fits ``grey = a * background + b``; when that map and the gain-only compensation
        differ by more than ``step_dn`` at the least or greatest background level in the
        fit, returns ``(grey - b) / a`` (rounded, clipped to 0-255, in a reused buffer).
        When under ``reset_share`` of the sampled pixels fit, sets the model to learn
        afresh from this frame (its ``frames_seen`` to 0: the warm-up starts again) and
        returns ``grey``; the caller restarts what else it keeps. Else returns ``grey``.
        """
        p = self.params
        kernels.affine_fit(grey, model.samples, model.foreground, p.grid_px, p.trim_dn, self.fit)
        a, b, gain, kept, lo, hi = (float(v) for v in self.fit)
        self.last = ""
        if kept < p.reset_share:
            model.frames_seen = 0
            self.last = "reset"
            self.counts["reset"] += 1
            return grey
        off = max(abs(a * lo + b - gain * lo), abs(a * hi + b - gain * hi))
        if off <= p.step_dn or not 0.25 <= a <= 4.0:
            return grey
        level = (grey.astype(np.float32) - np.float32(b)) / np.float32(a)
        np.clip(level + 0.5, 0.0, 255.0, out=level)
        np.copyto(self._out, level, casting="unsafe")
        self.last = "mapped"
        self.counts["mapped"] += 1
        return self._out
