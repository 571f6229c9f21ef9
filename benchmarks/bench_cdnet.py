"""Foreground masks on CDnet 2014 "baseline/highway": Vigil's detector against OpenCV MOG2.

Protocol (changedetection.net): grayscale input, every frame fed in order from frame 1,
frames 470-1700 scored, the ROI applied; in the ground truth 255 is motion, 0 and 50
(shadow) are background, 85 (outside the ROI) and 170 (unknown) are not scored. F1 is
computed over the pooled pixel counts of the scored frames.

Usage: ``python -m benchmarks.bench_cdnet [--data DIR] [--first N] [--last N]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from vigil.detection.detector import MotionDetector

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "video" / "cdnet2014_highway"


@dataclass
class Counts:
    """Pooled pixel counts of a method over the scored frames."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, mask: NDArray[np.uint8], truth: NDArray[np.uint8], roi: NDArray[np.bool_]):
        motion = truth == 255
        scored = roi & (truth != 85) & (truth != 170)
        fg = mask > 0
        self.tp += int(np.count_nonzero(fg & motion & scored))
        self.fp += int(np.count_nonzero(fg & ~motion & scored))
        self.fn += int(np.count_nonzero(~fg & motion & scored))
        self.tn += int(np.count_nonzero(~fg & ~motion & scored))

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)

    @property
    def f1(self) -> float:
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


def vigil_masks() -> Callable[[NDArray[np.uint8]], NDArray[np.uint8]]:
    """Vigil's plain-video detector, returning each frame's cleaned mask."""
    detector: MotionDetector | None = None
    t = 0

    def step(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
        nonlocal detector, t
        if detector is None:
            detector = MotionDetector(frame.shape)
        t += 1
        return detector.process(frame, float(t)).mask

    return step


def mog2_masks() -> Callable[[NDArray[np.uint8]], NDArray[np.uint8]]:
    """OpenCV MOG2 with its defaults and shadow detection off."""
    mog = cv2.createBackgroundSubtractorMOG2(detectShadows=False)
    return mog.apply


def evaluate(
    data: Path = DEFAULT_DATA, first: int | None = None, last: int | None = None
) -> dict[str, dict[str, float]]:
    """F1, precision, recall and seconds per frame of each method on the sequence."""
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
    for name, make in (("vigil", vigil_masks), ("mog2", mog2_masks)):
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


def main(argv: list[str] | None = None) -> dict:
    """Print the table; returns the results (an empty dict when the data is absent)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--first", type=int, default=None)
    ap.add_argument("--last", type=int, default=None)
    args = ap.parse_args(argv)
    if not (args.data / "input").is_dir():
        print(f"CDnet highway not present at {args.data}; skipped")
        return {}
    cv2.setNumThreads(1)
    res = evaluate(args.data, args.first, args.last)
    print(f"CDnet 2014 highway, grayscale, frames {args.first or 'ROI'}-{args.last or 'ROI'}")
    print(f"{'method':<8} {'F1':>6} {'prec':>6} {'recall':>6} {'ms/frame':>9}")
    for name, r in res.items():
        print(
            f"{name:<8} {r['f1']:6.3f} {r['precision']:6.3f} {r['recall']:6.3f} "
            f"{r['ms_per_frame']:9.3f}"
        )
    return res


if __name__ == "__main__":
    main()
