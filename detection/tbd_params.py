"""Settings of the track-before-detect stage (:mod:`vigil.detection.tbd`).

Times in seconds, levels in grey levels, sizes in pixels; every default was chosen on the
development scenes' calibration seeds only (``benchmarks/bench_detection_scenes.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigil.detection.background import DetectionError, check_ranges


@dataclass(frozen=True)
class TbdParams:
    """Settings of the track-before-detect stage; times in seconds, levels in grey levels.

    Parameters
    ----------
    block_s
        Frames are averaged over blocks this long; the stage decides once a block.
    speeds_px_s
        Speeds of the velocity bank besides standing still, pixels per second, each in
        eight directions. One speed (9 velocities), 0.6: on the calibration seeds 901-905
        the same figures to the third digit as 0.4, 0.8 and 1.2 (25 velocities), at about
        a third of the velocity filter's time (its cost is per velocity); the bilinear
        shift and the decay spread each velocity's evidence over its neighbours'.
    decay
        Share of the evidence kept from one block to the next (0-1): about
        ``1 / (1 - decay)`` blocks are integrated.
    background_s, variance_s
        Time constants of the background's and its spread's running means.
    warmup_s
        No reports before this much video has been seen.
    threshold, grow
        A blob is reported when its statistic (standard deviations of white evidence)
        passes ``threshold`` somewhere; its pixels are those above ``grow`` connected to it.
    max_area_px
        Larger blobs are left to the per-frame detector (area, pixels).
    confirm, confirm_of
        A blob is reported when a blob was at the same place (boxes within ``near_px``)
        in ``confirm`` of the last ``confirm_of`` blocks.
    near_px
        See ``confirm``, pixels.
    floor_sd
        Least standard deviation of a block mean's difference from the background.
    cap_sd
        A block's squared difference enters the variance capped at this many standard
        deviations.
    z_min, z_max
        Evidence is clipped to this range before it is integrated.
    surround_px
        The mean difference over the ``2 * surround_px + 1`` square around each pixel is
        taken from its own (0 is off): what changes over a whole patch is not a body.
    recent_rate
        Weight of each frame in the running mean of the last frames that
        :meth:`TrackBeforeDetect.support` reads (0.4: about the last four frames).
    veto_sd
        :class:`SlowMoverDetector` drops the detector's boxes whose support
        (:meth:`TrackBeforeDetect.support`) is under this many standard deviations: a
        blob the detector's background makes (samples learnt during a jolt, a stem) but
        that is not warmer than the long background by more than its usual spread. 0 is off.
    mask_sd
        :class:`SlowMoverDetector`'s mask takes in the pixels within a pixel of a kept
        box whose support passes this (standard deviations; 0 is off).
    frame_stride
        Opt-in reduced work: the pair feeds the stage every ``frame_stride``-th frame only.
    slow, slow_speeds_px_s, slow_decay, slow_blocks, slow_z_max
        With ``slow``, a second, slower velocity bank over a longer horizon: standing still
        and these speeds (pixels per second, eight directions each), a step every
        ``slow_blocks`` blocks on their summed evidence (over the square root of their
        count: still one standard deviation for white evidence), ``slow_decay`` of its
        energy kept a step, evidence clipped to ``+-slow_z_max`` (symmetric, so a long sum
        of heavy-tailed clutter stays centred). A body crossing a pixel in ten seconds
        stays in one pixel for about ten 1-s blocks: more than ``decay`` integrates. The
        statistic is the larger of the two banks'. Off: on the calibration seeds 901-903
        it found no body more and raised seed 901's false blobs from 24 to 156-168 a
        minute (the bank, ``slow_blocks=2``, one speed of 0.15 px/s alike).
    align_px
        Each block mean is aligned to the background first (a Gauss-Newton translation
        with a gain and an offset, :func:`vigil.detection.kernels.track_translation`, on a
        copy at most 400 px wide): when they are more than this many pixels apart the
        background is moved onto the block (bicubic; shifts over 2 px are left to the
        ``bad_share`` test, and a block that test leaves out puts the background back).
        The registration's reference follows the camera after a jolt, so the registered
        frames drift a fraction of a pixel for seconds. 0 is off; 0.1-0.2 gave the same
        figures on the calibration seeds, 0.3 more false blobs at seed 901 (18 against 9
        a minute); bilinear moves at 0.1 blurred the background into thousands.
    shimmer_px, shimmer_lam
        With ``shimmer_px > 0``, each block's residual against the background is first fitted,
        over the ``2 * shimmer_px + 1`` square around each pixel, as an offset plus the
        background moved by one local shift (least squares on the background's gradient,
        ridge ``shimmer_lam`` in (grey levels / px)^2, at most 1.5 px), and the moved part is
        taken off: heat shimmer moves the ground's texture by a fraction of a pixel over
        patches a few pixels wide, for seconds, which a 1-s block does not average away and
        which a body a pixel wide does not mimic. The spread is then learnt on what is left,
        and :meth:`~vigil.detection.tbd.TrackBeforeDetect.supports` fits the same over each
        box's ring. 0 is off. 2 (a 5x5 window) chosen on the calibration seeds 901-925: all
        four scene lines at 20 of 25 against 15 without it; 1 (3x3) 17, 3 (7x7) 18, 3 with
        ``shimmer_lam`` 4 18, 2 leaving the central 3x3 out of the fit 17. It costs a body
        on a still ground a little (its shift estimate's noise; a 1-px body 5 levels warm at
        0.3 px/s on a still texture boxed in 11 blocks of 24 against 12).
    bad_share
        A block where more than this share of the pixels is over 3 standard deviations
        colder than the background (bodies are warm: a jolt the registration left) is
        neither learnt nor integrated.
    """

    block_s: float = 1.0
    speeds_px_s: tuple[float, ...] = (0.6,)
    decay: float = 0.8
    background_s: float = 20.0
    variance_s: float = 30.0
    warmup_s: float = 6.0
    threshold: float = 5.0
    grow: float = 3.5
    max_area_px: int = 60
    confirm: int = 2
    confirm_of: int = 3
    near_px: float = 2.0
    floor_sd: float = 0.5
    cap_sd: float = 3.0
    z_min: float = -2.0
    z_max: float = 6.0
    bad_share: float = 0.002
    surround_px: int = 4
    recent_rate: float = 0.4
    veto_sd: float = 3.0
    mask_sd: float = 2.5
    frame_stride: int = 1
    align_px: float = 0.2
    shimmer_px: int = 2
    shimmer_lam: float = 1.0
    slow: bool = False
    slow_speeds_px_s: tuple[float, ...] = (0.1, 0.2)
    slow_decay: float = 0.95
    slow_blocks: int = 1
    slow_z_max: float = 3.0

    def __post_init__(self) -> None:
        check_ranges("track-before-detect", {
            "block_s": (self.block_s, 0.05, 10.0), "decay": (self.decay, 0.0, 0.99),
            "background_s": (self.background_s, self.block_s, 3600.0),
            "variance_s": (self.variance_s, self.block_s, 3600.0),
            "warmup_s": (self.warmup_s, 0.0, 3600.0), "threshold": (self.threshold, 0.0, 1e3),
            "grow": (self.grow, 0.0, self.threshold),
            "max_area_px": (self.max_area_px, 1, 1 << 20),
            "confirm": (self.confirm, 1, self.confirm_of),
            "confirm_of": (self.confirm_of, 1, 32), "near_px": (self.near_px, 0.0, 100.0),
            "floor_sd": (self.floor_sd, 0.01, 255.0), "cap_sd": (self.cap_sd, 1.0, 100.0),
            "z_min": (self.z_min, -100.0, 0.0), "z_max": (self.z_max, 0.0, 100.0),
            "bad_share": (self.bad_share, 0.0, 1.0), "surround_px": (self.surround_px, 0, 32),
            "recent_rate": (self.recent_rate, 0.01, 1.0), "veto_sd": (self.veto_sd, 0.0, 100.0),
            "mask_sd": (self.mask_sd, 0.0, 100.0), "frame_stride": (self.frame_stride, 1, 100),
            "slow_decay": (self.slow_decay, 0.0, 0.999), "slow_blocks": (self.slow_blocks, 1, 60),
            "slow_z_max": (self.slow_z_max, 0.1, 100.0), "align_px": (self.align_px, 0.0, 10.0),
            "shimmer_px": (self.shimmer_px, 0, 16), "shimmer_lam": (self.shimmer_lam, 1e-3, 1e4),
        })  # fmt: skip
        slow = self.slow_speeds_px_s
        if not all(0.0 < s <= 20.0 for s in slow):
            raise DetectionError(
                f"slow_speeds_px_s={slow!r}; expected speeds in (0, 20] pixels per second"
            )
        if not self.speeds_px_s or not all(0.0 < s <= 20.0 for s in self.speeds_px_s):
            raise DetectionError(
                f"speeds_px_s={self.speeds_px_s!r}; expected speeds in (0, 20] pixels per second"
            )

    def velocities(
        self, fps: float, slow: bool = False
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The bank ``(vx, vy)`` in pixels per step at ``fps`` frames a second (a step is a
        block; with ``slow``, the slow bank's: ``slow_blocks`` blocks)."""
        per_block = self.block_frames(fps) / fps * (self.slow_blocks if slow else 1)
        vx, vy = [0.0], [0.0]
        for s in self.slow_speeds_px_s if slow else self.speeds_px_s:
            for k in range(8):
                ang = k * math.pi / 4
                vx.append(s * per_block * math.cos(ang))
                vy.append(s * per_block * math.sin(ang))
        return np.array(vx), np.array(vy)

    def block_frames(self, fps: float) -> int:
        """Frames in a block at ``fps`` frames a second (at least one)."""
        return max(1, int(round(self.block_s * fps)))
