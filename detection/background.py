"""Per-pixel background model: sample consensus with adaptive radius and gain compensation.

See :mod:`detection.kernels` for the algorithm. :class:`SampleConsensusModel` owns the
model's state for one camera and validates what it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detection import kernels

#: Length of the table of random numbers each model draws its updates from.
RANDOM_TABLE_SIZE = 1 << 16


class DetectionError(ValueError):
    """A detector given impossible settings or a frame it cannot use."""


@dataclass(frozen=True)
class BackgroundParams:
    """Settings of the sample-consensus background model.

    Parameters
    ----------
    samples
        Background samples kept per pixel (ViBe's N).
    min_matches
        Samples within the radius needed to call a pixel background (ViBe's #min).
    update_period
        Mean frames between two updates of a background pixel (ViBe's phi); larger
        adapts more slowly.
    radius_min, radius_max
        Bounds of the per-pixel match radius, grey levels (0-255).
    radius_scale
        Radius as a multiple of the pixel's mean distance to its closest sample; 0 keeps
        every radius at ``radius_min``.
    flicker_step
        How fast pixels that keep flipping between foreground and background get a wider
        radius (0 turns it off): a quarter of a blinking level that rises by this on each
        flip and falls by one otherwise is added to the radius.
    spread_centre
        What a random neighbour of an updated pixel learns: the updated pixel's value
        (ViBe) or its own (PBAS); see :func:`detection.kernels.consensus_segment`.
    absorb_after
        Frames after which a pixel that stays foreground is learnt (0 never).
    gain_compensation
        Scale each frame onto the model's grey levels before comparison (automatic gain).
    seed
        Seed of the random table; the same seed and frames give the same masks.
    """

    samples: int = 8
    min_matches: int = 2
    update_period: int = 16
    radius_min: int = 18
    radius_max: int = 60
    radius_scale: float = 5.0
    flicker_step: int = 0
    spread_centre: bool = False
    absorb_after: int = 30
    gain_compensation: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        checks: dict[str, tuple[float, float, float]] = {
            "samples": (self.samples, 2, 64),
            "min_matches": (self.min_matches, 1, self.samples),
            "update_period": (self.update_period, 1, 1 << 16),
            "radius_min": (self.radius_min, 1, 255),
            "radius_max": (self.radius_max, self.radius_min, 255),
            "radius_scale": (self.radius_scale, 0.0, 15.0),
            "flicker_step": (self.flicker_step, 0, 255),
            "absorb_after": (self.absorb_after, 0, 255),
        }
        for name, (value, lo, hi) in checks.items():
            if not (math.isfinite(value) and lo <= value <= hi):
                raise DetectionError(
                    f"background {name}={value!r}; expected a value in [{lo:g}, {hi:g}]"
                )


class SampleConsensusModel:
    """The background of one camera's frames, learnt as it goes.

    Parameters
    ----------
    shape
        ``(height, width)`` of the frames, pixels.
    params
        Model settings.
    roi
        Optional region mask ``(height, width)``: zero where motion is never reported.

    Examples
    --------
    >>> import numpy as np
    >>> model = SampleConsensusModel((48, 64))
    >>> still = np.full((48, 64), 100, np.uint8)
    >>> int(model.apply(still).max())
    0
    >>> moved = still.copy(); moved[10:14, 20:23] = 200
    >>> int(model.apply(moved)[10:14, 20:23].min())
    255
    """

    def __init__(
        self,
        shape: tuple[int, int],
        params: BackgroundParams | None = None,
        roi: NDArray[np.uint8] | None = None,
    ) -> None:
        self.params = params or BackgroundParams()
        h, w = (int(s) for s in shape)
        if h < 1 or w < 1:
            raise DetectionError(f"frame shape {shape!r}; expected (height, width) of at least 1")
        self.shape = (h, w)
        self.roi = self._check_roi(roi)
        p = self.params
        rng = np.random.default_rng(p.seed)
        self._rand = rng.integers(0, 2**32, RANDOM_TABLE_SIZE, dtype=np.uint32)
        self._pos = 0
        self.samples = np.zeros((p.samples, h, w), np.uint8)
        self.radius = np.full((h, w), p.radius_min, np.uint8)
        start = p.radius_min * 16 / p.radius_scale if p.radius_scale > 0 else 0
        self.dist_avg = np.full((h, w), min(int(start), 255 * 16), np.uint16)
        self.foreground = np.zeros((h, w), np.uint8)
        self.flicker = np.zeros((h, w), np.uint8)
        self.fg_age = np.zeros((h, w), np.uint8)
        self._reff = np.empty(w, np.uint8)
        self._level = np.empty(w, np.uint8)
        self._dmin = np.empty(w, np.uint8)
        self._count = np.empty(w, np.uint8)
        self.gain = 1.0
        self.frames_seen = 0

    def _check_roi(self, roi: NDArray[np.uint8] | None) -> NDArray[np.uint8]:
        if roi is None:
            return np.full(self.shape, 255, np.uint8)
        roi = np.asarray(roi)
        if roi.shape != self.shape:
            raise DetectionError(
                f"region mask shape {roi.shape}; expected the frame shape {self.shape}"
            )
        return np.ascontiguousarray(roi != 0, dtype=np.uint8)

    def _check_frame(self, frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.shape != self.shape:
            raise DetectionError(
                f"frame {frame.dtype} {frame.shape}; expected uint8 grey levels of shape "
                f"{self.shape}"
            )
        return np.ascontiguousarray(frame)

    def reset(self, frame: NDArray[np.uint8]) -> None:
        """Forget the background and start again from ``frame``."""
        frame = self._check_frame(frame)
        self._pos = kernels.init_samples(frame, self._rand, self._pos, self.samples)
        self.foreground[:] = 0
        self.flicker[:] = 0
        self.fg_age[:] = 0
        self.gain = 1.0
        self.frames_seen = 1

    def apply(
        self, frame: NDArray[np.uint8], out: NDArray[np.uint8] | None = None, learn: bool = True
    ) -> NDArray[np.uint8]:
        """Classify a frame: 255 where it moved, 0 where it is background; learn from it.

        The first frame initialises the model and is all background.

        Parameters
        ----------
        frame
            ``uint8 (height, width)`` grey levels.
        out
            Where to write the mask; a new array when omitted.
        learn
            Update the model with this frame (``False`` freezes it).
        """
        frame = self._check_frame(frame)
        if out is None or out is self.foreground:
            out = np.empty(self.shape, np.uint8)
        if self.frames_seen == 0:
            self.reset(frame)
            out[:] = 0
            return out
        p = self.params
        if p.gain_compensation:
            ratio = kernels.gain_ratio(frame, self.samples[0], self.foreground, 4, 8)
            self.gain = min(max(ratio, 0.25), 4.0)
        gain_q8 = round(256.0 / self.gain)
        self._pos = kernels.consensus_segment(
            frame,
            self.roi,
            self.samples,
            self.radius,
            self.dist_avg,
            gain_q8,
            p.min_matches,
            p.update_period if learn else 0,
            p.radius_min,
            p.radius_max,
            round(p.radius_scale * 16),
            self._rand,
            self._pos,
            self.foreground,
            self.flicker,
            p.flicker_step,
            p.spread_centre,
            self.fg_age,
            p.absorb_after if learn else 0,
            self.frames_seen,
            out,
            self._level,
            self._dmin,
            self._count,
            self._reff,
        )
        np.copyto(self.foreground, out)
        self.frames_seen += 1
        return out

    def background_image(self) -> NDArray[np.uint8]:
        """The mean of each pixel's samples: a picture of the learnt background."""
        return np.round(self.samples.mean(axis=0)).astype(np.uint8)
