"""Track-before-detect for faint, slow, tiny bodies: evidence integrated along velocities.

A person two kilometres from a tower is a pixel tall and crosses a pixel in seconds; his
warmth over the ground is a few grey levels, within the spread shimmer, brush and noise
give any one frame. The per-frame detector (:mod:`vigil.detection.detector`) cannot see him
without letting those through, and its background learns him while he creeps. This stage
runs after it, on the same registered frames, and adds what time makes visible:

1. **Blocks.** Frames are averaged over blocks of ``block_s`` seconds: sensor noise falls
   by the square root of the frames, and a body slower than a pixel a block stays put.
2. **Evidence.** Each block mean, aligned with the background (a translation fit; the
   background is moved when they are ``align_px`` apart: the registration's reference
   follows the camera for seconds after a jolt) and brought onto the background's levels
   by a trimmed global gain-and-offset fit (gain and offset drift), is compared with a
   slow background (a running mean over ``background_s``), less the background moved by
   a local shift fitted around each pixel (``shimmer_px``: heat shimmer moves the ground's
   texture a fraction of a pixel for seconds), and divided by the pixel's own
   spread of that difference (a running mean of its square over ``variance_s``, the
   largest in its 3x3 neighbourhood): ``z`` is in the pixel's own standard deviations, so
   shimmering horizon and swaying brush, whose values spread wide, weigh little and a
   still field much.
3. **Velocities.** A recursive velocity-matched filter (``energy = decay * energy moved by v
   + z``, :func:`vigil.detection.tbd_kernels.velocity_filter`) runs over a bank of
   velocities: still, and ``speeds_px_s`` in eight directions. Evidence that moves with a
   body adds up along its path for about ``1 / (1 - decay)`` blocks; a stem swinging back and
   forth or shimmer's to and fro does not. Opt-in (``slow``): a second bank of slower
   velocities over a longer horizon; the statistic is the larger of the two.
4. **Decision.** Blobs whose peak statistic passes ``threshold`` (grown to ``grow``),
   no larger than ``max_area_px``, seen at the same place in ``confirm`` of the last
   ``confirm_of`` blocks, are reported once a block, as boxes; pixels under a report form
   the stage's mask until the next block. Where a report stands the background and
   variance learn ten times slower, so a body that stops is not learnt at once.

The threshold is a false-alarm setting: chosen on the development scenes' calibration seeds
only (``benchmarks/bench_detection_scenes.py``, :data:`vigil.sim.scenes.CALIBRATION_SEEDS`).
:class:`SlowMoverDetector` owns a :class:`~vigil.detection.detector.MotionDetector` and this
stage and gives both outputs; boxes the detector already reports are not repeated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from vigil.detection import kernels
from vigil.detection import tbd_kernels as tk
from vigil.detection import tbd_shift as ts
from vigil.detection.background import DetectionError
from vigil.detection.detector import DetectorConfig, FrameResult, MotionDetector
from vigil.detection.objects import CameraGeometry
from vigil.detection.tbd_params import TbdParams

Box = tuple[float, float, float, float]

#: Components of the statistic held for numba's labelling; more go to OpenCV's.
_MAX_COMPONENTS = 1 << 16


@dataclass
class _Candidate:
    box: Box
    hits: list[bool] = field(default_factory=list)


class TrackBeforeDetect:
    """The stage: feed it registered grey frames; it reports once a block.

    Parameters
    ----------
    shape
        ``(height, width)`` of the frames, pixels.
    fps
        Frame rate, frames per second.
    params
        Settings.
    """

    def __init__(self, shape: tuple[int, int], fps: float, params: TbdParams | None = None):
        if not (math.isfinite(fps) and 0.1 <= fps <= 1000.0):
            raise DetectionError(f"fps={fps!r}; expected 0.1 to 1000 frames per second")
        h, w = (int(s) for s in shape)
        if h < 8 or w < 8:
            raise DetectionError(f"frames {w}x{h}; expected at least 8x8 pixels")
        self.shape = (h, w)
        self.fps = float(fps)
        self.params = p = params or TbdParams()
        self.n_block = p.block_frames(self.fps)
        block_s = self.n_block / self.fps
        self.rate_bg = min(1.0, block_s / p.background_s)
        self.rate_var = min(1.0, block_s / p.variance_s)
        self.warmup_blocks = int(math.ceil(p.warmup_s / block_s))
        vx, vy = p.velocities(self.fps)
        self.vx, self.vy = vx, vy
        f32 = np.float32
        self._acc = np.zeros((h, w), f32)
        self._mean = np.zeros((h, w), f32)
        self.background = np.zeros((h, w), f32)
        self.variance = np.full((h, w), p.floor_sd**2, f32)
        self._var_used = np.zeros((h, w), f32)
        self.z = np.zeros((h, w), f32)
        self._resid = np.zeros((h, w), f32)
        self.energy = np.zeros((len(vx), h, w), f32)
        # the slow bank (TbdParams.slow): its velocities, energy, summed evidence, best
        svx, svy = p.velocities(self.fps, slow=True) if p.slow else (vx[:0], vy[:0])
        self.slow_vx, self.slow_vy = svx, svy
        self.slow_energy = np.zeros((len(svx), h, w) if p.slow else (0, 1, 1), f32)
        self._slow_sum = np.zeros((h, w) if p.slow else (1, 1), f32)
        self._slow_n = 0
        self._slow_best = np.full((h, w) if p.slow else (1, 1), -1e30, f32)
        self._slow_j = np.zeros((h, w) if p.slow else (1, 1), np.int32)
        self._scratch = np.zeros((h, w), f32)
        #: the statistic (standard deviations) after the last block, and its velocity index
        self.statistic = np.zeros((h, w), f32)
        self.velocity_index = np.zeros((h, w), np.int32)
        self._hold = np.zeros((h, w), np.uint8)
        self._labels = np.zeros((h, w), np.int32)
        self._stats = np.empty((_MAX_COMPONENTS, 5), np.int32)
        self._cents = np.empty((_MAX_COMPONENTS, 2), np.float64)
        self._runs = [np.empty(h * ((w + 1) // 2), np.int32) for _ in range(5)]
        self._ring = np.zeros(h * w, np.float32)
        self._fit = np.zeros(2, np.float64)
        self._kernel = np.ones((3, 3), np.uint8)
        #: the stage's foreground (0 or 255) since the last block
        self.mask = np.zeros((h, w), np.uint8)
        #: the boxes reported at the last block ``(u0, v0, u1, v1)``, ``u1, v1`` exclusive
        self.boxes: list[Box] = []
        self.frames = 0
        self.blocks = 0
        #: blocks left out as misregistered, and the last block's share of cold outliers
        self.bad_blocks = 0
        #: blocks whose background was moved onto them (``align_px``), the last shift (px)
        self.aligned = 0
        self.last_align = (0.0, 0.0)
        self._bg_before = np.zeros((h, w) if p.align_px > 0 else (1, 1), f32)
        self._moved = False
        self.cold_share = 0.0
        self._candidates: list[_Candidate] = []
        #: running mean of the last few frames (``recent_rate``), grey levels
        self.recent = np.zeros((h, w), f32)
        #: the frames' noise, grey levels (standard deviation, from the last block)
        self.frame_noise = 1.0
        self._a, self._b = 1.0, 0.0
        self._lam = float(p.shimmer_lam) if p.shimmer_px > 0 else 0.0
        planes = (8, h, w) if p.shimmer_px > 0 else (8, 1, 1)
        self._terms, self._term_means = np.zeros(planes, f32), np.zeros(planes, f32)

    def support(self, box: Box) -> float:
        """How much warmer than its long background a box's warmest pixel is now.

        The running mean of the last frames (:attr:`recent`) against the background, less
        the median difference around the box (``surround_px``), over the pixel's spread
        (the block spread plus the running mean's noise): standard deviations.
        ``inf`` before the stage has warmed up (no opinion).
        """
        return float(self.supports([box])[0])

    def supports(
        self, boxes: list[Box], grow_px: int = 0, mask: NDArray | None = None, sd: float = 0.0
    ) -> NDArray[np.float32]:
        """:meth:`support` of each box (grown by ``grow_px``; 0 for an empty box) in one
        kernel call (:func:`~vigil.detection.tbd_shift.boxes_warmth`); with ``mask`` and
        ``sd > 0``, its pixels whose warmth (:meth:`warmth`) is at least ``sd`` are set to 255."""
        if self.blocks <= self.warmup_blocks:
            return np.full(len(boxes), np.inf, np.float32)
        peak = np.empty(len(boxes), np.float32)
        rate, f32 = self.params.recent_rate, np.float32
        noise = self.frame_noise**2 * rate / (2.0 - rate)
        ts.boxes_warmth(self.recent, self.background, self._var_used, f32(self._a), f32(self._b),
                        f32(noise), np.array(boxes, np.float64).reshape(-1, 4), int(grow_px),
                        self.params.surround_px, self._ring, self.mask if mask is None else mask,
                        f32(sd if mask is not None else 0.0), peak, self._lam)  # fmt: skip
        return peak

    def warmth(self, box: Box, grow_px: int = 0) -> tuple[tuple[int, int, int, int], NDArray]:
        """Each pixel's :meth:`support` over a box grown by ``grow_px`` (clipped to the
        frame): ``((u0, v0, u1, v1), z)`` with ``z`` of shape ``(v1 - v0, u1 - u0)``."""
        h, w = self.shape
        geo = ts.box_windows(h, w, np.array(box, np.float64), grow_px, self.params.surround_px)
        v0, v1, u0, u1 = (int(t) for t in geo[2])
        if u1 <= u0 or v1 <= v0:
            return (u0, v0, u0, v0), np.zeros((0, 0), np.float32)
        rate = self.params.recent_rate
        noise = self.frame_noise**2 * rate / (2.0 - rate)
        z = np.empty((v1 - v0, u1 - u0), np.float32)
        f32 = np.float32
        tk.box_warmth(self.recent, self.background, self._var_used, f32(self._a), f32(self._b),
                      f32(noise), geo[0], geo[1], geo[2], self._ring, z, self._lam)  # fmt: skip
        return (u0, v0, u1, v1), z

    def add(self, frame: NDArray[np.uint8]) -> bool:
        """Add the next registered ``uint8 (h, w)`` frame; ``True`` when a block ended
        (then :attr:`boxes`, :attr:`mask` and :attr:`statistic` are new)."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.shape != self.shape:
            raise DetectionError(f"frame {frame.dtype} {frame.shape}; expected uint8 {self.shape}")
        frame = np.ascontiguousarray(frame)
        if self.frames == 0:
            np.copyto(self.recent, frame, casting="unsafe")
        tk.accumulate(frame, self._acc, self.recent, self.params.recent_rate)
        self.frames += 1
        if self.frames % self.n_block:
            return False
        np.multiply(self._acc, np.float32(1.0 / self.n_block), out=self._mean)
        # the frames' own noise: the last frame against the block's mean, on a grid
        g = np.s_[::4, ::4]
        dev = np.abs(frame[g].astype(np.float32) - self._mean[g])
        self.frame_noise = float(np.median(dev)) * 1.4826
        self._acc.fill(0.0)
        self._block()
        return True

    def _block(self) -> None:
        p = self.params
        self.blocks += 1
        if self.blocks == 1:
            np.copyto(self.background, self._mean)
            return
        self._moved = False
        if p.align_px > 0:
            self._align()
        tk.level_fit(self._mean, self.background, 4, 4.0, self._fit)
        a, b = float(self._fit[0]), float(self._fit[1])
        self._a, self._b = a, b
        # the spread used is the largest in each pixel's 3x3 neighbourhood (edges that
        # shimmer moves have not always moved yet)
        cv2.dilate(self.variance, self._kernel, dst=self._var_used)
        tk.block_evidence(self._mean, self.background, self._var_used, a, b, self.z, self._resid,
                          p.surround_px == 0)  # fmt: skip
        if p.shimmer_px > 0:
            self._unshimmer()
        if p.surround_px > 0:
            # a body is small: take away the change of its surroundings (a brush patch's
            # mean brightening with the gust, local gain), then divide by the spread again
            k = 2 * p.surround_px + 1
            cv2.blur(self._resid, (k, k), dst=self._scratch, borderType=cv2.BORDER_REPLICATE)
            cold = tk.surround_evidence(self._resid, self._scratch, self._var_used, self.z)
        else:
            cold = int(np.count_nonzero(self.z < -3.0))
        warm = self.blocks <= self.warmup_blocks
        self.cold_share = cold / self.z.size
        if not warm and self.cold_share > p.bad_share:
            # the whole picture changed against its background in both directions (a jolt
            # the registration did not quite undo): this block is neither learnt nor used
            self.bad_blocks += 1
            if self._moved:
                np.copyto(self.background, self._bg_before)
            self.boxes = []
            self.mask.fill(0)
            return
        # in the warm-up the spread is learnt quickly (a running mean of all blocks so far)
        rate_var = 1.0 / (self.blocks - 1) if warm else self.rate_var
        cap = 1e3 if warm else p.cap_sd
        tk.learn(self._mean, self._resid, self._hold, a, b, self.background, self.variance,
                 self.rate_bg, rate_var, cap, p.floor_sd**2)  # fmt: skip
        tk.velocity_filter(self.z, self.energy, self._scratch, self.vx, self.vy, p.decay,
                           p.z_min, p.z_max, self.statistic, self.velocity_index)  # fmt: skip
        if p.slow:
            self._slow_step()
        if warm:
            self.boxes = []
            self.mask.fill(0)
            return
        self._decide()

    def _align(self) -> None:
        """Move the background onto this block's mean when they are ``align_px`` apart."""
        h, w = self.shape
        scale = max(1, math.ceil(w / 400))
        size = (w // scale, h // scale)
        bg = cv2.resize(self.background, size, interpolation=cv2.INTER_AREA)
        mean = cv2.resize(self._mean, size, interpolation=cv2.INTER_AREA)
        gx, gy, out = np.empty_like(bg), np.empty_like(bg), np.zeros(5, np.float64)
        kernels.track_translation(bg, mean, 0.0, 0.0, 6, 10, 1e-3, gx, gy, out)
        dx, dy = out[0] * scale, out[1] * scale
        self.last_align = (float(dx), float(dy)) if out[2] > 0 else (0.0, 0.0)
        if out[2] > 0 and self.params.align_px < math.hypot(dx, dy) <= 2.0:
            # the background before the move is kept: a block left out (bad_share) puts
            # it back, so that a wrong estimate is not learnt
            np.copyto(self._bg_before, self.background)
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            cv2.warpAffine(self._bg_before, m, (w, h), dst=self.background,
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
            self._moved = True
            self.aligned += 1

    def _unshimmer(self) -> None:
        """Take the locally moved background out of the block's residual (``shimmer_px``):
        per pixel terms (numba), their window means (OpenCV's box filter), the solve."""
        p, t, m = self.params, self._terms, self._term_means
        k = (2 * p.shimmer_px + 1,) * 2
        ts.shift_terms(self.background, self._resid, t)
        for i in range(t.shape[0]):
            cv2.blur(t[i], k, dst=m[i], borderType=cv2.BORDER_REPLICATE)
        ts.shift_remove(t, m, p.shimmer_lam, self._resid)

    def _slow_step(self) -> None:
        """The slow bank: sum this block's evidence; every ``slow_blocks`` blocks one step
        of its filter on the sum (over the square root of the count); the statistic (and
        its velocity index, the slow bank's after the fast bank's) is the larger of the two."""
        p = self.params
        self._slow_sum += self.z
        self._slow_n += 1
        if self._slow_n >= p.slow_blocks:
            self._slow_sum *= np.float32(1.0 / math.sqrt(self._slow_n))
            tk.velocity_filter(self._slow_sum, self.slow_energy, self._scratch, self.slow_vx,
                               self.slow_vy, p.slow_decay, -p.slow_z_max, p.slow_z_max,
                               self._slow_best, self._slow_j)  # fmt: skip
            self._slow_sum.fill(0.0)
            self._slow_n = 0
        up = self._slow_best > self.statistic
        np.copyto(self.statistic, self._slow_best, where=up)
        np.copyto(self.velocity_index, self._slow_j + np.int32(len(self.vx)), where=up)

    def _decide(self) -> None:
        """Blobs of the statistic -> confirmed boxes, the mask and the hold map."""
        p = self.params
        grown = (self.statistic > p.grow).view(np.uint8)
        # numba's components (labels 1..n by first pixel), taken in OpenCV's order (by first
        # 2x2 block, component_peaks); OpenCV's own when there are more than it holds
        labels = self._labels
        n = kernels.label_components(grown, labels, self._stats, self._cents, *self._runs)
        stats = self._stats[: max(n, 0)]
        if n < 0:
            n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
            n, stats = n - 1, stats[1:]
        self.mask.fill(0)
        self._hold.fill(0)
        if n == 0:
            self._confirm([])
            self.boxes = []
            return
        peak, first = np.zeros(n + 1, np.float32), np.empty(n + 1, np.int64)
        tk.component_peaks(labels, self.statistic, peak, first)
        keep = (peak[1:] > p.threshold) & (stats[:, cv2.CC_STAT_AREA] <= p.max_area_px)
        found: list[tuple[int, Box]] = []
        for i in np.flatnonzero(keep)[np.argsort(first[1:][keep], kind="stable")]:
            x, y, w, h = (int(v) for v in stats[i, :4])
            found.append((int(i) + 1, (float(x), float(y), float(x + w), float(y + h))))
        confirmed = self._confirm([bx for _, bx in found])
        self.boxes = [bx for (_, bx), ok in zip(found, confirmed, strict=True) if ok]
        ids = [i for (i, _), ok in zip(found, confirmed, strict=True) if ok]
        if ids:
            chosen = np.zeros(n + 1, np.uint8)
            chosen[ids] = 1
            tk.paint_labels(labels, chosen, self.mask, self._hold)

    def _confirm(self, boxes: list[Box]) -> list[bool]:
        """Match this block's blobs to the candidates; which are confirmed."""
        p = self.params
        g = p.near_px
        used = [False] * len(self._candidates)
        out = []
        new: list[_Candidate] = []
        for bx in boxes:
            best = -1
            for k, c in enumerate(self._candidates):
                if not used[k] and _overlaps(bx, c.box, g):
                    best = k
                    break
            if best >= 0:
                used[best] = True
                c = self._candidates[best]
                c.box = bx
                c.hits = (c.hits + [True])[-p.confirm_of :]
            else:
                c = _Candidate(bx, [True])
                new.append(c)
            out.append(sum(c.hits) >= p.confirm)
        for k, c in enumerate(self._candidates):
            if not used[k]:
                c.hits = (c.hits + [False])[-p.confirm_of :]
        self._candidates = [c for c in self._candidates if any(c.hits)] + new
        return out


def _overlaps(a: Box, b: Box, grow: float = 1.0) -> bool:
    return a[0] < b[2] + grow and a[2] > b[0] - grow and a[1] < b[3] + grow and a[3] > b[1] - grow


@dataclass
class SlowMoverResult:
    """One frame through :class:`SlowMoverDetector`.

    ``detector`` is the detector's own result; ``boxes`` what the pair reports (registered
    pixels ``(u0, v0, u1, v1)``): the detector's boxes that the stage supports, then, on a
    frame that ends a block, the stage's boxes that the detector does not already box and
    that it supports. ``vetoed`` counts the detector's boxes left out. ``mask`` is the
    detector's mask less the pixels of the boxes left out, plus, within a pixel of each
    box kept, the pixels whose support passes ``TbdParams.mask_sd`` (a body's dim parts
    the detector's background had learnt); a buffer reused between frames.
    """

    detector: FrameResult
    boxes: list[Box]
    tbd_boxes: list[Box]
    vetoed: int
    mask: NDArray[np.uint8]
    block_ended: bool


class SlowMoverDetector:
    """A :class:`MotionDetector` with the track-before-detect stage after it.

    The stage reads the detector's registered frame (so the detector must register:
    ``config.register``), adds the faint slow bodies the detector misses and drops the
    detector's boxes it does not support (``TbdParams.veto_sd``): its pixel detections'
    and, with ``geometry``, its ground detections' boxes. ``geometry``, ``roi`` and
    ``camera_id`` go to the :class:`MotionDetector`.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        fps: float,
        config: DetectorConfig | None = None,
        params: TbdParams | None = None,
        *,
        geometry: CameraGeometry | None = None,
        roi: NDArray[np.uint8] | None = None,
        camera_id: str = "camera",
    ) -> None:
        config = config or DetectorConfig.for_tower()
        if not config.register:
            raise DetectionError("the track-before-detect stage needs registered frames")
        self.detector = MotionDetector(shape, config, geometry, roi, camera_id)
        self.stage = TrackBeforeDetect(shape, fps / (params or TbdParams()).frame_stride, params)
        self._frames = 0
        self._mask = np.zeros(self.detector.shape, np.uint8)

    def _supported(self, boxes: list[Box]) -> list[Box]:
        """The boxes whose support passes ``veto_sd`` (all when it is 0)."""
        veto = self.stage.params.veto_sd
        if veto <= 0 or not boxes:
            return boxes
        s = self.stage.supports(boxes).tolist()
        return [b for b, ok in zip(boxes, s, strict=True) if ok >= veto]

    def process(
        self, frame: NDArray, time_s: float, frame_index: int | None = None
    ) -> SlowMoverResult:
        """The detector's result on the next frame, and the pair's boxes."""
        res = self.detector.process(frame, time_s, frame_index)
        return self.combine(res, self.detector.registration.out)

    def combine(self, res: FrameResult, registered: NDArray[np.uint8]) -> SlowMoverResult:
        """The stage's part of :meth:`process`: ``registered`` (the frame the detector gave
        ``res`` for, registered) to the stage, the detector's boxes vetoed, the masks joined."""
        stage = self.stage
        take = self._frames % stage.params.frame_stride == 0
        self._frames += 1
        ended = take and stage.add(registered)
        det_boxes = [d.box for d in res.pixel_detections]
        det_boxes += [d.box for d in res.detections if d.box is not None]
        kept = self._supported(det_boxes)
        extra: list[Box] = []
        if ended:
            extra = self._supported(
                [b for b in stage.boxes if not any(_overlaps(b, d) for d in det_boxes)]
            )
        mask = self._mask
        np.copyto(mask, res.mask)
        if len(kept) < len(det_boxes):
            for b in det_boxes:
                if b not in kept and not any(_overlaps(b, k, 0.0) for k in kept):
                    mask[int(b[1]) : math.ceil(b[3]), int(b[0]) : math.ceil(b[2])] = 0
        sd = stage.params.mask_sd
        if sd > 0 and stage.blocks > stage.warmup_blocks and kept:
            stage.supports(kept, 1, mask, sd)
        return SlowMoverResult(res, kept + extra, extra, len(det_boxes) - len(kept), mask, ended)
