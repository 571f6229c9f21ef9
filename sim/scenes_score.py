"""Motion detection scored on :mod:`.scenes`: per object, per pixel and false blobs.

A *method* is made fresh for each scene and fed its frames in order; for each frame it
returns its foreground mask and its output boxes, both in the frame's own pixels (a
detector that registers the frames against shake maps them back with its shift estimate).
Boxes are ``(u0, v0, u1, v1)`` with ``u1, v1`` exclusive, whole pixels.

Protocol
--------
* **Warm-up.** Frames before ``warmup_s`` are fed but not scored.
* **Detectable bodies.** A body is *visible* in a frame when its brightest pixel stands at
  least ``min_peak`` grey levels over the ground (contrast times the largest share of a pixel
  it covers; the scene's noise is 1.2 levels). A body counts for object recall when it is
  visible in at least ``min_visible_s`` seconds of scored frames; bodies left out are
  reported (``dim``).
* **Matching.** A box matches a body when it overlaps the body's labelled pixels' bounding
  box grown by ``match_px`` on each side.
* **Object recall.** A counted body is *found* when some box matches it in at least one
  scored frame where it is visible; ``object_recall_half`` asks for half of those frames.
  Frame recall is the share of visible body-frames matched.
* **False blobs.** Every box in a scored frame that matches no body (visible or not) is one
  false blob; the rate is per minute of scored video.
* **Pixels.** Foreground against the labels, pooled over the scored frames; the one-pixel
  ring around each body's labelled pixels is not scored (a body's edge is a fraction of a
  pixel), as CDnet leaves object boundaries unscored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from .scenes import Scene

Box = tuple[float, float, float, float]
#: One frame in, its mask (non-zero: motion) and its output boxes out, in frame pixels.
SceneMethod = Callable[[NDArray[np.uint8]], tuple[NDArray[np.uint8], Sequence[Box]]]


@dataclass
class SceneScore:
    """Counts of one method on one scene, and the figures made of them."""

    method: str
    seed: int
    minutes: float = 0.0
    frames: int = 0
    bodies: int = 0  # counted for object recall
    dim: int = 0  # left out: visible for less than min_visible_s
    found: int = 0
    found_half: int = 0
    body_frames: int = 0
    body_frames_found: int = 0
    false_blobs: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    seconds: float = 0.0  # the method's own time
    missed: list[tuple[int, str, float, float]] = field(default_factory=list)
    found_sizes: list[tuple[float, float]] = field(default_factory=list)  # (height px, px/s)

    @property
    def object_recall(self) -> float:
        """Share of counted bodies found in at least one visible frame."""
        return self.found / max(self.bodies, 1)

    @property
    def object_recall_half(self) -> float:
        """Share of counted bodies found in at least half of their visible frames."""
        return self.found_half / max(self.bodies, 1)

    @property
    def frame_recall(self) -> float:
        """Share of visible body-frames matched."""
        return self.body_frames_found / max(self.body_frames, 1)

    @property
    def false_per_minute(self) -> float:
        """False blobs per minute of scored video."""
        return self.false_blobs / max(self.minutes, 1e-9)

    @property
    def f1(self) -> float:
        """Pixel F1 over the scored frames."""
        p = self.tp / max(self.tp + self.fp, 1)
        r = self.tp / max(self.tp + self.fn, 1)
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def ms_per_frame(self) -> float:
        """The method's own time per frame fed, milliseconds."""
        return 1e3 * self.seconds / max(self.frames, 1)


def score_scene(
    scene: Scene,
    method: SceneMethod,
    name: str = "method",
    warmup_s: float = 10.0,
    min_peak: float = 8.0,
    min_visible_s: float = 2.0,
    match_px: int = 2,
) -> SceneScore:
    """Run ``method`` over ``scene``'s frames and score it (protocol: the module docstring)."""
    spec = scene.spec
    first = int(math.ceil(warmup_s * spec.fps))
    if first >= spec.frames:
        raise ValueError(f"warm-up {warmup_s} s leaves none of the {spec.frames} frames")
    score = SceneScore(name, scene.seed)
    idents = [b.ident for b in scene.bodies]
    visible = np.array([b.peak >= min_peak for b in scene.bodies])  # (bodies, frames)
    visible[:, :first] = False
    matched = np.zeros_like(visible)
    ring_kernel = np.ones((3, 3), np.uint8)
    for i, frame in enumerate(scene.frames):
        t0 = time.perf_counter()
        mask, boxes = method(frame)
        score.seconds += time.perf_counter() - t0
        if i < first:
            continue
        lab = scene.labels[i]
        truth = lab > 0
        ring = cv2.dilate(truth.view(np.uint8), ring_kernel).astype(bool) & ~truth
        fg = np.asarray(mask) > 0
        score.tp += int(np.count_nonzero(fg & truth))
        score.fp += int(np.count_nonzero(fg & ~truth & ~ring))
        score.fn += int(np.count_nonzero(~fg & truth))
        slices = ndimage.find_objects(lab, max_label=max(idents))
        rects = []
        for ident in idents:
            sl = slices[ident - 1]
            if sl is None:
                rects.append(None)
                continue
            rects.append(
                (
                    sl[1].start - match_px,
                    sl[0].start - match_px,
                    sl[1].stop + match_px,
                    sl[0].stop + match_px,
                )
            )
        for u0, v0, u1, v1 in boxes:
            hit = False
            for k, r in enumerate(rects):
                if r is not None and u0 < r[2] and u1 > r[0] and v0 < r[3] and v1 > r[1]:
                    hit = True
                    matched[k, i] = True
            if not hit:
                score.false_blobs += 1
    score.frames = spec.frames
    score.minutes = (spec.frames - first) / spec.fps / 60.0
    need = int(math.ceil(min_visible_s * spec.fps))
    for k, b in enumerate(scene.bodies):
        vis = visible[k]
        if vis.sum() < need:
            score.dim += 1
            continue
        score.bodies += 1
        hits = matched[k] & vis
        score.body_frames += int(vis.sum())
        score.body_frames_found += int(hits.sum())
        height = float(np.median(b.height_px[vis]))
        if hits.any():
            score.found += 1
            score.found_sizes.append((height, scene.speed_px_s[b.ident]))
        else:
            score.missed.append((b.ident, b.kind, height, scene.speed_px_s[b.ident]))
        if hits.sum() >= 0.5 * vis.sum():
            score.found_half += 1
    return score


def spread(values: Sequence[float]) -> str:
    """``median [min, max]`` of figures across seeds, three decimals."""
    a = np.asarray(values, float)
    return f"{np.median(a):.3f} [{a.min():.3f}, {a.max():.3f}]"
