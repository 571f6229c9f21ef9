"""Foreground masks on CDnet 2014 "baseline/highway": Vigil's detector against OpenCV MOG2.

The protocol (frames scored, ROI, which ground-truth labels count, pooled F1) is
:mod:`vigil.sim.eval_masks`'s; this prints its table.

Usage: ``python -m benchmarks.bench_cdnet [--data DIR] [--first N] [--last N]``.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from vigil.detection.blobs import BlobFinder
from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.sim.eval_masks import MaskMethod, detector_masks, evaluate, mog2_masks

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "video" / "cdnet2014_highway"


def mog2_majority() -> MaskMethod:
    """MOG2 (defaults, shadows off) through Vigil's own 5x5 majority filter: the same
    post-processing as the Vigil row (``DetectorConfig().filter_size``)."""
    mog = mog2_masks()
    finder: BlobFinder | None = None

    def step(frame):
        nonlocal finder
        if finder is None:
            finder = BlobFinder(frame.shape, DetectorConfig().filter_size)
        finder(mog(frame))
        return finder.clean

    return step


def mog2_open_close() -> MaskMethod:
    """MOG2 with a 3x3 opening then closing (the data README's 0.845 row)."""
    mog = mog2_masks()
    k = np.ones((3, 3), np.uint8)

    def step(frame):
        m = cv2.morphologyEx(mog(frame), cv2.MORPH_OPEN, k)
        return cv2.morphologyEx(m, cv2.MORPH_CLOSE, k)

    return step


#: Vigil's plain-video detector (each frame's cleaned mask, after its 5x5 majority filter),
#: the raw anchor, and the anchor with the same majority filter and with open/close.
METHODS = {
    "vigil": partial(detector_masks, MotionDetector),
    "mog2": mog2_masks,
    "mog2+maj5": mog2_majority,
    "mog2+oc3": mog2_open_close,
}


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
    res = evaluate(args.data, METHODS, args.first, args.last)
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
