"""Per-pixel background model: sample consensus with adaptive radius and gain compensation.

See :mod:`vigil.detection.kernels` for the algorithm. :class:`SampleConsensusModel` owns the
model's state for one camera and validates what it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigil.detection import kernels

#: Length of the table of random numbers each model draws its updates from.
RANDOM_TABLE_SIZE = 1 << 16


class DetectionError(ValueError):
    """A detector given impossible settings or a frame it cannot use."""


def check_ranges(what: str, checks: dict[str, tuple[float, float, float]]) -> None:
    """Refuse any setting outside its closed range: ``checks`` maps a name to ``(value, low,
    high)``; the error names ``what``, the setting, its value and the range."""
    for name, (value, lo, hi) in checks.items():
        if not (math.isfinite(value) and lo <= value <= hi):
            raise DetectionError(f"{what} {name}={value!r}; expected a value in [{lo:g}, {hi:g}]")


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
        (ViBe) or its own (PBAS); see :func:`vigil.detection.kernels.consensus_segment`.
    warm_only
        Report only pixels warmer than their coldest sample (thermal towers: what moves is
        warm); the cold trace of a warm body the model had learnt is background.
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
    warm_only: bool = False
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
        check_ranges("background", checks)


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
        self._below = np.empty(w, np.uint8)
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
            p.warm_only,
            self.fg_age,
            p.absorb_after if learn else 0,
            self.frames_seen,
            out,
            self._level,
            self._dmin,
            self._count,
            self._reff,
            self._below,
        )
        np.copyto(self.foreground, out)
        self.frames_seen += 1
        return out

    def background_image(self) -> NDArray[np.uint8]:
        """The mean of each pixel's samples: a picture of the learnt background."""
        return np.round(self.samples.mean(axis=0)).astype(np.uint8)


@dataclass(frozen=True)
class SlowParams:
    """Settings of the slow warm background (:class:`SlowBackground`).

    Parameters
    ----------
    mean_s
        Time constant of the slow background while a pixel is background, seconds.
    held_factor
        How many times longer the time constant is while a pixel is foreground: a body
        that stops is learnt in about ``mean_s * held_factor`` seconds.
    excess_s
        Time constant of the low-pass on the excess over the background, seconds; heat
        shimmer (2-5 Hz) and brush flicker (0.4-2 Hz) average out over it.
    excess_frames
        Least number of frames the low-pass averages (its rate is at most one over this),
        so that at low frame rates sensor noise still averages down.
    spread_s
        Time constant of each pixel's spread (mean absolute low-passed excess), seconds.
    min_excess_dn
        Least low-passed excess reported, grey levels.
    spread_k
        Excess needed as a multiple of the pixel's spread (mean absolute low-passed
        excess, about 0.8 of its standard deviation): 6 keeps noise-only pixels of a
        640x480 frame under one a frame.
    frame_s
        Frame interval assumed when the frame times do not give one, seconds.
    border_px
        Pixels along each image edge left out: where shake registration shifts the frame,
        its edge columns and rows are repeated, and their excess is not a body.
    hold_shift_px, hold_after_s
        While the shake registration shifts the frame by more than ``hold_shift_px``
        pixels, and for ``hold_after_s`` seconds after, the model neither learns nor
        classifies: it reports the mask it had before. Interpolation by a fraction of a
        pixel blurs sharp edges (a thin warm ridge lends warmth to the rows beside it),
        which for a second or two looks like warm excess to a model this slow.
    apart_px
        Used by :class:`~vigil.detection.detector.MotionDetector`: slow foreground within this
        many pixels of the sample-consensus model's foreground is dropped, so that a body
        both models see keeps the fast model's shape (the slow one, with its lower
        threshold, adds a walker's dim edge pixels and makes him look wider: class guesses
        and the centroid's range suffer); 0 adds all of it.
    two_sided
        Also report pixels that stay colder than the slow background by as much (bodies
        colder than a sun-heated ground); off: warmer only.
    every
        Reduced work, opt-in (changes outputs): the model learns and classifies on every
        ``every``-th frame only (its rates follow the longer interval) and repeats its last
        mask in between. 1 (the default) is every frame.
    """

    mean_s: float = 60.0
    held_factor: float = 16.0
    excess_s: float = 1.0
    excess_frames: int = 4
    spread_s: float = 20.0
    min_excess_dn: float = 4.0
    spread_k: float = 6.0
    frame_s: float = 0.1
    border_px: int = 3
    hold_shift_px: float = 0.3
    hold_after_s: float = 1.0
    apart_px: int = 2
    two_sided: bool = False
    every: int = 1

    def __post_init__(self) -> None:
        checks: dict[str, tuple[float, float, float]] = {
            "mean_s": (self.mean_s, 0.01, 1e5),
            "held_factor": (self.held_factor, 1.0, 1e4),
            "excess_s": (self.excess_s, 0.0, 1e4),
            "excess_frames": (self.excess_frames, 1, 1000),
            "spread_s": (self.spread_s, 0.01, 1e5),
            "min_excess_dn": (self.min_excess_dn, 0.0, 255.0),
            "spread_k": (self.spread_k, 0.0, 100.0),
            "frame_s": (self.frame_s, 1e-3, 60.0),
            "border_px": (self.border_px, 0, 1000),
            "hold_shift_px": (self.hold_shift_px, 0.0, 1e4),
            "hold_after_s": (self.hold_after_s, 0.0, 1e4),
            "apart_px": (self.apart_px, 0, 7),
            "every": (self.every, 1, 100),
        }
        check_ranges("slow background", checks)


class SlowBackground:
    """A slow background for small warm bodies that creep or stand (see the kernel).

    A sample-consensus model learns a body whose image moves a pixel in tens of seconds
    (a group walking straight at a tower 2-3 km off) step by step as it goes. This model
    keeps an exponential mean per pixel with a time constant of a minute that stops
    learning (nearly) where the pixel is warmer than it, and reports pixels whose
    low-passed excess stays above a floor and above a multiple of their usual spread.
    Only warmer than the background counts (thermal: people and animals are warm).

    Parameters
    ----------
    shape
        ``(height, width)`` of the frames, pixels.
    params
        Settings.
    roi
        Optional region mask ``(height, width)``: zero where motion is never reported.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        params: SlowParams | None = None,
        roi: NDArray[np.uint8] | None = None,
    ) -> None:
        self.params = params or SlowParams()
        h, w = (int(s) for s in shape)
        if h < 1 or w < 1:
            raise DetectionError(f"frame shape {shape!r}; expected (height, width) of at least 1")
        self.shape = (h, w)
        if roi is None:
            self.roi = np.full((h, w), 1, np.uint8)
        else:
            roi = np.asarray(roi)
            if roi.shape != self.shape:
                raise DetectionError(
                    f"region mask shape {roi.shape}; expected the frame shape {self.shape}"
                )
            self.roi = np.ascontiguousarray(roi != 0, dtype=np.uint8)
        b = self.params.border_px
        if b > 0:
            self.roi[:b] = 0
            self.roi[-b:] = 0
            self.roi[:, :b] = 0
            self.roi[:, -b:] = 0
        self.mean = np.zeros((h, w), np.float32)
        self.excess = np.zeros((h, w), np.float32)
        self.spread = np.zeros((h, w), np.float32)
        self.mask = np.zeros((h, w), np.uint8)
        self.frames_seen = 0
        self.elapsed_s = 0.0
        self.last_time: float | None = None
        self.held_until = -math.inf
        self._calls = 0

    def reset(self) -> None:
        """Forget the background; the next frame starts it again."""
        self.frames_seen = 0
        self.elapsed_s = 0.0
        self.last_time = None
        self.held_until = -math.inf
        self.mask[:] = 0

    def apply(
        self,
        frame: NDArray[np.uint8],
        time_s: float,
        gain: float = 1.0,
        out: NDArray[np.uint8] | None = None,
        shift_px: tuple[float, float] = (0.0, 0.0),
    ) -> NDArray[np.uint8]:
        """Classify a frame (255 warm foreground, 0 background) and learn from it.

        Parameters
        ----------
        frame
            ``uint8 (height, width)`` grey levels (registered against shake, if it is).
        time_s
            Frame time, seconds; the update rates follow the interval between frames.
        gain
            The frame's brightness relative to the background (the sample-consensus
            model's gain estimate); the frame is divided by it first.
        out
            Where to write the mask; a new array when omitted.
        shift_px
            The shake registration's shift of this frame ``(dx, dy)``, pixels: while it is
            large the model holds (see :class:`SlowParams`).
        """
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.shape != self.shape:
            raise DetectionError(
                f"frame {frame.dtype} {frame.shape}; expected uint8 grey levels of shape "
                f"{self.shape}"
            )
        frame = np.ascontiguousarray(frame)
        if out is None:
            out = np.empty(self.shape, np.uint8)
        p = self.params
        self._calls += 1
        if p.every > 1 and self.frames_seen > 0 and self._calls % p.every:
            np.copyto(out, self.mask)
            return out
        gain_q8 = round(256.0 / min(max(gain, 0.25), 4.0))
        if self.frames_seen == 0:
            level = np.minimum((frame.astype(np.int32) * gain_q8 + 128) >> 8, 255)
            self.mean[:] = level
            self.excess[:] = 0.0
            self.spread[:] = 0.25 * p.min_excess_dn / max(p.spread_k, 1e-3)
            self.frames_seen = 1
            self.last_time = float(time_s)
            out[:] = 0
            return out
        dt = float(time_s) - self.last_time if self.last_time is not None else p.frame_s
        if not (math.isfinite(dt) and 1e-3 <= dt <= 10.0):
            dt = p.frame_s
        self.last_time = float(time_s)
        if math.hypot(*shift_px) > p.hold_shift_px:
            self.held_until = float(time_s) + p.hold_after_s
        if float(time_s) <= self.held_until:
            np.copyto(out, self.mask)
            return out
        self.elapsed_s += dt
        self.frames_seen += 1
        # Until a time constant has passed, the mean is the running average of what was seen.
        a_mean = max(1.0 - math.exp(-dt / p.mean_s), 1.0 / self.frames_seen)
        a_spread = max(1.0 - math.exp(-dt / p.spread_s), 1.0 / self.frames_seen)
        a_excess = 1.0 - math.exp(-dt / p.excess_s) if p.excess_s > 0 else 1.0
        a_excess = min(a_excess, 1.0 / p.excess_frames)
        kernels.slow_warm_segment(
            frame,
            gain_q8,
            self.roi,
            self.mean,
            self.excess,
            self.spread,
            a_mean,
            a_excess,
            a_spread,
            p.held_factor,
            p.min_excess_dn,
            p.spread_k,
            out,
            p.two_sided,
        )
        np.copyto(self.mask, out)
        return out
