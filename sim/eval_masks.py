"""Foreground masks scored against a CDnet 2014 sequence's ground truth, and the MOG2 anchor.

Protocol (changedetection.net): grayscale input, every frame fed in order from frame 1,
the frames of the sequence's temporal ROI scored (470-1700 on "baseline/highway"), the ROI
applied; in the ground truth 255 is motion, 0 and 50 (shadow) are background, 85 (outside
the ROI) and 170 (unknown) are not scored. F1 is computed over the pooled pixel counts of
the scored frames. The data lives in ``../shared/data/video/cdnet2014_highway``; a method is
a function from a frame to its mask, made fresh for each run: OpenCV's MOG2
(:func:`mog2_masks`, the published anchor) or a motion detector (:func:`detector_masks`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

#: A mask method: one grey frame in (fed in order), its foreground mask out (non-zero: motion).
MaskMethod = Callable[[NDArray[np.uint8]], NDArray[np.uint8]]


class MaskDetector(Protocol):
    """A motion detector whose result carries the frame's cleaned ``mask``."""

    def process(self, frame: NDArray[np.uint8], time_s: float):
        """The detector's result for one frame at ``time_s`` seconds; has ``.mask``."""


@dataclass
class Counts:
    """Pooled pixel counts of a method over the scored frames."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(
        self, mask: NDArray[np.uint8], truth: NDArray[np.uint8], roi: NDArray[np.bool_]
    ) -> None:
        """Count one frame's ``mask`` against its ground ``truth`` inside ``roi``."""
        motion = truth == 255
        scored = roi & (truth != 85) & (truth != 170)
        fg = mask > 0
        self.tp += int(np.count_nonzero(fg & motion & scored))
        self.fp += int(np.count_nonzero(fg & ~motion & scored))
        self.fn += int(np.count_nonzero(~fg & motion & scored))
        self.tn += int(np.count_nonzero(~fg & ~motion & scored))

    @property
    def precision(self) -> float:
        """Share of foreground pixels that are motion."""
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        """Share of motion pixels found."""
        return self.tp / max(self.tp + self.fn, 1)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def temporal_roi(data: Path) -> tuple[int, int]:
    """The scored frame range from ``temporalROI.txt``."""
    first, last = (int(s) for s in (data / "temporalROI.txt").read_text().split())
    return first, last


def load_frames(data: Path, last: int) -> list[NDArray[np.uint8]]:
    """Frames 1..last as grey levels."""
    frames = []
    for i in range(1, last + 1):
        img = cv2.imread(str(data / "input" / f"in{i:06d}.jpg"), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise FileNotFoundError(data / "input" / f"in{i:06d}.jpg")
        frames.append(img)
    return frames


def detector_masks(make_detector: Callable[[tuple[int, int]], MaskDetector]) -> MaskMethod:
    """A motion detector as a mask method: made for the first frame's shape, fed times 1, 2, ...

    ``make_detector`` takes the frames' ``(height, width)`` in pixels, e.g. ``MotionDetector``
    for plain video.
    """
    detector: MaskDetector | None = None
    t = 0

    def step(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
        nonlocal detector, t
        if detector is None:
            detector = make_detector(frame.shape)
        t += 1
        return detector.process(frame, float(t)).mask

    return step


def mog2_masks() -> MaskMethod:
    """OpenCV MOG2 with its defaults and shadow detection off: the published anchor (F1 0.811)."""
    mog = cv2.createBackgroundSubtractorMOG2(detectShadows=False)
    return mog.apply


def evaluate(
    data: Path,
    methods: Mapping[str, Callable[[], MaskMethod]],
    first: int | None = None,
    last: int | None = None,
) -> dict[str, dict[str, float]]:
    """F1, precision, recall and time per frame of each method on the sequence in ``data``.

    Parameters
    ----------
    data
        The sequence's folder (``input/``, ``groundtruth/``, ``ROI.bmp``, ``temporalROI.txt``).
    methods
        Mask methods by name, each as a function making a fresh one for the run.
    first, last
        The scored frame range; the sequence's temporal ROI when omitted.

    Returns
    -------
    dict
        Per method: ``f1``, ``precision``, ``recall``, ``ms_per_frame`` (its own time per
        frame, milliseconds) and ``seconds`` (the whole run's wall time).
    """
    roi_first, roi_last = temporal_roi(data)
    first = roi_first if first is None else first
    last = roi_last if last is None else last
    frames = load_frames(data, last)
    roi_img = cv2.imread(str(data / "ROI.bmp"), cv2.IMREAD_GRAYSCALE)
    roi = roi_img > 0 if roi_img is not None else np.ones(frames[0].shape, bool)
    truths = {
        i: cv2.imread(str(data / "groundtruth" / f"gt{i:06d}.png"), cv2.IMREAD_GRAYSCALE)
        for i in range(first, last + 1)
    }
    results: dict[str, dict[str, float]] = {}
    for name, make in methods.items():
        step = make()
        counts = Counts()
        t0 = time.perf_counter()
        spent = 0.0
        for i, frame in enumerate(frames, start=1):
            t = time.perf_counter()
            mask = step(frame)
            spent += time.perf_counter() - t
            if i >= first:
                counts.add(mask, truths[i], roi)
        results[name] = {
            "f1": counts.f1,
            "precision": counts.precision,
            "recall": counts.recall,
            "ms_per_frame": 1e3 * spent / len(frames),
            "seconds": time.perf_counter() - t0,
        }
    return results
