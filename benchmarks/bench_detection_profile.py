"""Where the thermal detector's time goes, stage by stage, against MOG2 on one thread.

The pair of issue 24's speed line (``vigil+n1+tbd`` with the ``lk`` shake registration:
:class:`vigil.detection.tbd.SlowMoverDetector` with the thermal settings and the
neighbourhood test) on the video of ``bench_detection_scenes --speed`` (a textured still
ground, noise of 1.2 grey levels, six warm bodies; 20 unmeasured frames, then 60), with
MOG2 (shadows off, the anchor) applied to the same frames in turn. Each kernel and stage is
wrapped to add up the calling thread's CPU time (``time.thread_time``): nested entries are
part of their callers' (``stage.add`` holds ``stage._block``, which holds the velocity
filter), so the column does not add up to the total. Figures are milliseconds a frame
(once-a-block work spread over its block); ratio = MOG2 / the pair, in the same run. The
kernels are loaded before the timing (``bench_detection_scenes.load_kernels``).

Usage: ``python -m benchmarks detection_profile [--sizes 640x480,1920x1080]``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import replace  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from benchmarks.bench_detection_scenes import load_kernels  # noqa: E402
from vigil.detection import centroid, kernels  # noqa: E402
from vigil.detection import detector as detector_module  # noqa: E402
from vigil.detection import tbd_kernels as tk  # noqa: E402
from vigil.detection import tbd_shift as ts  # noqa: E402
from vigil.detection.settings import DetectionSettings  # noqa: E402
from vigil.detection.tbd import SlowMoverDetector, TbdParams  # noqa: E402

FPS = 10.0
KERNELS = ("consensus_segment", "gain_ratio", "affine_fit", "neighbour_filter",
           "slow_warm_segment", "shift_bilinear", "track_translation", "label_components",
           "rank_filter")  # fmt: skip
STAGE_KERNELS = ("accumulate", "level_fit", "block_evidence", "surround_evidence", "learn",
                 "velocity_filter", "component_peaks")  # fmt: skip
SHIFT_KERNELS = ("boxes_warmth", "shift_terms", "shift_remove")


def speed_video(width: int, height: int, frames: int, seed: int = 0) -> NDArray[np.uint8]:
    """The frames of ``bench_detection_scenes.speed`` (the same seed gives the same video)."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 3)
    ground = 100.0 + 12.0 * tex / tex.std()
    video = np.empty((frames, height, width), np.uint8)
    for i in range(frames):
        img = ground + rng.standard_normal((height, width)).astype(np.float32) * 1.2
        for k in range(6):
            u, v = int(50 + 40 * k + 2 * i) % (width - 8), int(height * (0.2 + 0.12 * k))
            img[v : v + 6, u : u + 3] += 25.0
        video[i] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return video


def _timed(owner: object, name: str, label: str, spent: dict[str, float]) -> None:
    """Replace ``owner.name`` by a wrapper that adds its thread CPU time to ``spent[label]``."""
    fn: Callable = getattr(owner, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        t = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - t

    setattr(owner, name, wrapper)


def profile(
    width: int, height: int, frames: int = 60, warmup: int = 20, register: str = "lk"
) -> dict[str, float]:
    """Milliseconds a frame of MOG2, the pair and each wrapped stage (see the module), the
    pair's detector with shake registration ``register`` (``"ecc"``: the thermal default's)."""
    cv2.setNumThreads(1)
    video = speed_video(width, height, frames + warmup)
    spent: dict[str, float] = defaultdict(float)
    originals = [(m, n, getattr(m, n))
                 for m, names in ((kernels, KERNELS), (tk, STAGE_KERNELS), (ts, SHIFT_KERNELS))
                 for n in names]  # fmt: skip
    originals.append((detector_module, "refine_centroids", centroid.refine_centroids))
    try:
        for module, name, _ in originals:
            _timed(module, name, f"{module.__name__.rsplit('.', 1)[1]}.{name}", spent)
        config = replace(DetectionSettings(sensor="thermal").detector_config(), neighbour_px=1,
                         register_method=register)  # fmt: skip
        params = TbdParams(warmup_s=1.0, bad_share=1.0)
        load_kernels((config,), params)
        pair = SlowMoverDetector((height, width), FPS, config, params)
        det, stage = pair.detector, pair.stage
        for owner, name, label in (
            (det, "process", "detector"), (det.registration, "_small_copy", "registration copy"),
            (det.registration, "_ecc", "registration estimate"),
            (det.steps, "_measure", "residual level"),
            (det.slow, "apply", "slow background"), (det.follower, "update", "follower"),
            (stage, "add", "stage"), (stage, "_block", "stage block"),
            (stage, "_decide", "stage decision"), (stage, "supports", "supports"),
            (stage, "_align", "stage alignment"),
        ):  # fmt: skip
            _timed(owner, name, label, spent)
        mog2 = cv2.createBackgroundSubtractorMOG2(detectShadows=False)
        for i, frame in enumerate(video):
            if i == warmup:
                spent.clear()
            t = time.thread_time()
            mog2.apply(frame)
            spent["MOG2"] += time.thread_time() - t
            t = time.thread_time()
            pair.process(frame, i / FPS, i + 1)
            spent["pair"] += time.thread_time() - t
    finally:
        for module, name, fn in originals:
            setattr(module, name, fn)
    return {k: 1e3 * v / frames for k, v in spent.items()}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Print each size's stages, largest first; returns them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="640x480,1920x1080", help="comma-separated WxH")
    ap.add_argument("--frames", type=int, default=60, help="measured frames (after 20)")
    ap.add_argument("--register", default="lk", choices=("lk", "ecc", "lk4"),
                    help="the pair's registration (ecc: the thermal default's)")  # fmt: skip
    args = ap.parse_args(argv)
    out = {}
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.lower().split("x"))
        ms = profile(w, h, args.frames, register=args.register)
        out[size] = ms
        ratio = ms["MOG2"] / ms["pair"]
        print(f"{size}: MOG2 {ms['MOG2']:.2f} ms, vigil+n1+tbd with {args.register} "
              f"{ms['pair']:.2f} ms a frame, one thread: {ratio:.2f}x MOG2")  # fmt: skip
        for name, v in sorted(ms.items(), key=lambda kv: -kv[1]):
            if name not in ("MOG2", "pair"):
                print(f"  {name:<32} {v:7.3f}")
    return out


if __name__ == "__main__":
    main()
