"""Motion detection on the development scenes (``vigil.sim.scenes``): Vigil against MOG2 and KNN.

Every method gets the same post-processing after its foreground mask: Vigil's blob finder
(the same majority filter, 8-connected components) and its object follower (the same
persistence filter and size test), so only the background model (and Vigil's own shake
registration, which is part of it) differs. Anchors: OpenCV MOG2 and KNN with their
defaults and shadows off, each also with Vigil's shake registration in front
(``+reg``). Scored at the evaluation seeds (:data:`vigil.sim.scenes.EVALUATION_SEEDS`;
constants were looked at only on :data:`~vigil.sim.scenes.CALIBRATION_SEEDS`) with
:func:`vigil.sim.scenes_score.score_scene`; every figure is ``median [min, max]`` across seeds.
Method ``default`` is ``vigil detect``'s defaults for ``--sensor`` built by
:mod:`vigil.detection.sensor_defaults`, as the command builds them (thermal: the same
settings as ``vigil+n1+tbd`` with ECC registration but for the slow background on every
second frame; its speed is ``--speed``'s ``default`` row); ``default@KEY=VALUE;...`` the
default with changed settings (:func:`benchmarks.scene_methods.variant_plan`; every method
is built in :mod:`benchmarks.scene_methods`); ``default+cal`` / ``default-cal`` the same
with the start-up calibration on / off (``sensor_plan(..., calibrate=...)``);
``default+noisy`` (or ``default+noisy:KEY=VALUE;KEY=VALUE``) the default with the opt-in
small-box rule of a noisy camera (``with_noisy_rule``, ``NoisyCameraParams`` so set).
``--held-noise``, ``--held-rho`` and ``--held-step`` give the scenes held sensor noise
(``SceneSpec.held_noise``).

Usage: ``python -m benchmarks.bench_detection_scenes [--seeds calibration|evaluation|1,2]
[--seconds S] [--methods vigil,mog2,...]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import cv2
import numpy as np

from benchmarks.scene_methods import (
    FPS,
    opencv_method,
    reduced,
    sensor_method,
    tbd_method,
    variant_method,
    vigil_method,
)
from vigil.detection.calibration import CalibrationParams
from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.sensor_defaults import (
    NoisyCameraParams,
    sensor_plan,
)
from vigil.detection.settings import DetectionSettings, SensorKind
from vigil.detection.tbd import SlowMoverDetector, TbdParams
from vigil.sim.scenes import CALIBRATION_SEEDS, EVALUATION_SEEDS, SceneSpec, render_scene
from vigil.sim.scenes_score import SceneMethod, SceneScore, score_scene, spread


def methods(
    config: DetectorConfig, tbd: TbdParams | None = None, cal: CalibrationParams | None = None
) -> dict[str, Callable[[], SceneMethod]]:
    """Vigil (the settings' defaults, with the neighbourhood test, with it and the start-up
    calibration, with it and the track-before-detect stage) and the anchors, all with
    ``config``'s post-processing."""
    sensor: SensorKind = "thermal" if config.background.warm_only else "daylight"
    out = {"vigil": vigil_method(config), "default": sensor_method(sensor),
           "default+cal": sensor_method(sensor, calibrate=True, cal=cal),
           "default-cal": sensor_method(sensor, calibrate=False)}  # fmt: skip
    if config.background.warm_only:  # the neighbourhood test is for thermal settings
        n1 = replace(config, neighbour_px=1)
        out["vigil+n1"] = vigil_method(n1)
        out["vigil+n1+cal"] = vigil_method(replace(n1, calibration=CalibrationParams()))
        out["vigil+n1+tbd"] = tbd_method(n1, tbd)
    return {
        **out,
        "mog2": opencv_method("mog2", config),
        "mog2+reg": opencv_method("mog2", config, register=True),
        "knn": opencv_method("knn", config),
        "knn+reg": opencv_method("knn", config, register=True),
    }


def run(
    seeds: Sequence[int],
    spec: SceneSpec,
    config: DetectorConfig,
    names: Sequence[str] | None = None,
    verbose: bool = True,
    tbd: TbdParams | None = None,
    cal: CalibrationParams | None = None,
) -> dict[str, list[SceneScore]]:
    """Score the methods on each seed's scene; returns their scores per method. A name
    ``default+noisy`` or ``default+noisy:KEY=VALUE;KEY=VALUE`` is the default with the
    small-box rule of a noisy camera, :class:`NoisyCameraParams` so set."""
    table = methods(config, tbd, cal)
    sensor: SensorKind = "thermal" if config.background.warm_only else "daylight"
    for name in names or ():
        if name.startswith("default@"):
            table[name] = variant_method(name[8:])
        if name.startswith("default+noisy"):
            kw = dict(item.split("=", 1) for item in filter(None, name[14:].split(";")))
            rule = NoisyCameraParams(**{k: type(getattr(NoisyCameraParams(), k))(v)
                                        for k, v in kw.items()})  # fmt: skip
            table[name] = sensor_method(sensor, noisy=rule)
    chosen = [n for n in (names or table) if n in table]
    out: dict[str, list[SceneScore]] = {n: [] for n in chosen}
    for seed in seeds:
        scene = render_scene(seed, spec)
        for name in chosen:
            s = score_scene(scene, table[name](), name)
            out[name].append(s)
            if verbose:
                print(
                    f"seed {seed:4d} {name:<9} recall {s.object_recall:.3f} "
                    f"({s.found}/{s.bodies}, {s.dim} dim) half {s.object_recall_half:.3f} "
                    f"frames {s.frame_recall:.3f} false/min {s.false_per_minute:7.1f} "
                    f"F1 {s.f1:.3f} {s.ms_per_frame:.2f} ms  missed {s.missed}",
                    flush=True,
                )
    return out


def summary(scores: dict[str, list[SceneScore]]) -> None:
    """Print the table: each figure median [min, max] across seeds."""
    print(
        "| method | object recall | found in half their frames | frame recall "
        "| false blobs/min | pixel F1 | ms/frame |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, ss in scores.items():
        print(
            f"| {name} | {spread([s.object_recall for s in ss])} "
            f"| {spread([s.object_recall_half for s in ss])} "
            f"| {spread([s.frame_recall for s in ss])} "
            f"| {spread([s.false_per_minute for s in ss])} "
            f"| {spread([s.f1 for s in ss])} | {spread([s.ms_per_frame for s in ss])} |"
        )
    for name in [n for n in scores if n.startswith(("vigil", "default"))]:
        if "mog2" not in scores:
            break
        pairs = list(zip(scores[name], scores["mog2"], strict=True))
        checks = {
            "recall >= 0.9": [v.object_recall >= 0.9 for v, _ in pairs],
            ">= MOG2's": [v.object_recall >= m.object_recall for v, m in pairs],
            "<= 60 false/min": [v.false_per_minute <= 60 for v, _ in pairs],
            "F1 > MOG2's": [v.f1 > m.f1 for v, m in pairs],
        }
        every = [all(c) for c in zip(*checks.values(), strict=True)]
        parts = ", ".join(f"{k} {sum(v)}" for k, v in checks.items())
        print(f"{name}: seeds meeting every target {sum(every)}/{len(every)} ({parts})")
        found = [fs for s in scores[name] for fs in s.found_sizes]
        missed = sorted((m[2], m[3]) for s in scores[name] for m in s.missed)
        if found:
            print(
                f"  found bodies down to {min(f[0] for f in found):.1f} px tall and "
                f"{min(f[1] for f in found):.2f} px/s; missed {len(missed)} (height px, px/s): "
                + ", ".join(f"({h:.1f}, {v:.2f})" for h, v in missed)
            )


def load_kernels(configs: Sequence[DetectorConfig], params: TbdParams, frames: int = 40) -> None:
    """Run each config's pair on a small throwaway video, so that every numba kernel is
    loaded from numba's cache (or compiled) before a timing starts: the first call of a
    cached kernel in a process costs milliseconds (about 11 ms for the stage's box supports),
    a one-off that 60 timed frames would otherwise count as about 0.2 ms a frame."""
    rng = np.random.default_rng(1)
    video = rng.integers(90, 110, (frames, 48, 64)).astype(np.uint8)
    video[:, 20:23, 30:32] += 40
    for config in configs:
        pair = SlowMoverDetector((48, 64), FPS, config, params)
        for i, frame in enumerate(video):
            pair.process(frame, i / FPS, i + 1)


def speed(
    width: int, height: int, frames: int = 60, seed: int = 0, variant: str | None = None,
    slow_every: int = 1, samples: int = 0, register: str = "lk",
) -> dict[str, float]:  # fmt: skip
    """Milliseconds per frame of CPU time of the calling thread (``time.thread_time``: the
    shared machine's load does not count; total over the frames, so the stage's
    once-a-block work is spread over its block) on one thread: MOG2 (the anchor), Vigil's
    thermal detector (``vigil``), with the neighbourhood test (``vigil+n1``), the
    track-before-detect stage alone, the pair (``vigil+n1+tbd``,
    :class:`~vigil.detection.tbd.SlowMoverDetector`), the last two with the ``lk`` shake
    registration (``+lk``), and ``vigil detect``'s thermal default (``default``: the pair
    with :func:`~vigil.detection.sensor_defaults.sensor_plan`'s detector settings, the stage
    set as the others'). Frames: a textured still ground, noise of 1.2 grey levels and a
    few warm bodies moving, ``frames`` of them after 20 unmeasured ones (the stage's
    warm-up is shortened to 1 s so that it decides, and no block is left out as
    misregistered, so that its whole per-block work is timed). The methods take turns
    frame by frame, so that the machine's state weighs on each alike. The kernels are
    loaded first (:func:`load_kernels`): a camera runs for hours, and the one-off load of a
    cached kernel is no part of its cost a frame."""
    cv2.setNumThreads(1)
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 3)
    ground = 100.0 + 12.0 * tex / tex.std()
    n = frames + 20
    video = np.empty((n, height, width), np.uint8)
    for i in range(n):
        img = ground + rng.standard_normal((height, width)).astype(np.float32) * 1.2
        for k in range(6):
            u, v = int(50 + 40 * k + 2 * i) % (width - 8), int(height * (0.2 + 0.12 * k))
            img[v : v + 6, u : u + 3] += 25.0
        video[i] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    shape = (height, width)
    base = DetectionSettings(sensor="thermal").detector_config()
    n1 = replace(base, neighbour_px=1)
    lk = replace(n1, register_method="lk")
    # every block is used (bad_share 1): on this video the stage would otherwise leave
    # out every block as misregistered (0.5 % of pixels 3 sd colder: its spread has had one
    # block to learn) and skip its velocity filter, which is most of its work
    params = TbdParams(warmup_s=1.0, bad_share=1.0)
    mog2 = cv2.createBackgroundSubtractorMOG2(detectShadows=False)
    dets = {"vigil": MotionDetector(shape, base), "vigil+n1": MotionDetector(shape, n1),
            "vigil+n1+lk": MotionDetector(shape, lk)}  # fmt: skip
    default = sensor_plan("thermal").config  # vigil detect's thermal default's detector
    load_kernels((n1, lk, default), params)
    pairs = {"vigil+n1+tbd": SlowMoverDetector(shape, FPS, n1, params),
             "vigil+n1+tbd+lk": SlowMoverDetector(shape, FPS, lk, params),
             "default": SlowMoverDetector(shape, FPS, default, params)}  # fmt: skip
    stage = SlowMoverDetector(shape, FPS, n1, params).stage
    runs: dict[str, Callable[[int], object]] = {"mog2": lambda i: mog2.apply(video[i])}
    if variant is not None or slow_every != 1 or samples > 0 or register != "lk":
        # the same arrangement with the lk pair's settings reduced (timings of one pair
        # depend on what runs beside it in the process: compare this row with the same
        # row of a run without reduced settings, in alternating processes)
        tp, cfg = reduced(variant or "", slow_every, replace(lk, register_method=register),
                          samples)  # fmt: skip
        tp = replace(tp, warmup_s=1.0, bad_share=1.0)
        pairs["vigil+n1+tbd+lk"] = SlowMoverDetector(shape, FPS, cfg, tp)
    for name, det in dets.items():
        runs[name] = lambda i, d=det: d.process(video[i], i / FPS, i + 1)
    if stage is not None:
        runs["tbd stage"] = lambda i: stage.add(video[i])
    for name, pair in pairs.items():
        runs[name] = lambda i, p=pair: p.process(video[i], i / FPS, i + 1)
    used = dict.fromkeys(runs, 0.0)
    for i in range(n):
        for name, run_one in runs.items():
            t0 = time.thread_time()
            run_one(i)
            if i >= 20:
                used[name] += time.thread_time() - t0
    return {name: 1e3 * t / frames for name, t in used.items()}


def main(argv: list[str] | None = None) -> dict[str, list[SceneScore]]:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="evaluation", help="calibration, evaluation or 1,2,...")
    ap.add_argument("--seconds", type=float, default=40.0, help="scene length (10 s warm-up)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument(
        "--methods",
        default="vigil,vigil+n1,vigil+n1+cal,vigil+n1+tbd,mog2,mog2+reg,knn",
        help="comma-separated subset of default, default+cal, default-cal, vigil, vigil+n1, "
        "vigil+n1+cal, vigil+n1+tbd, mog2, mog2+reg, knn, knn+reg (default: vigil detect's "
        "defaults for --sensor, "
        "vigil.detection.sensor_defaults, whatever --register and the stage options say; "
        "n1: neighbourhood test of 1 px; cal: start-up calibration (default+cal / -cal: "
        "the default with it on / off); "
        "tbd: track-before-detect stage, vigil.detection.tbd)",
    )
    ap.add_argument("--sensor", default="thermal", choices=("thermal", "daylight"))
    ap.add_argument(
        "--speed",
        action="store_true",
        help="only time MOG2, vigil, vigil+n1, the stage and vigil+n1+tbd (with ECC and lk "
        "registration) at 640x480 and 1920x1080",
    )
    ap.add_argument(
        "--register",
        default=None,
        choices=("ecc", "lk", "lk4"),
        help="the Vigil methods' shake registration (DetectorConfig.register_method; "
        "default ecc; with --speed, the registration of the +lk rows, default lk)",
    )
    ap.add_argument(
        "--tbd-veto",
        type=float,
        default=None,
        help="the stage's veto_sd (default TbdParams's, chosen on the calibration seeds)",
    )
    ap.add_argument(
        "--reduced",
        default=None,
        help="opt-in reduced-state stage settings for vigil+n1+tbd, TbdParams KEY=VALUE "
        "joined by commas, tuple items by '/' (e.g. speeds_px_s=0.6,block_s=2,frame_stride=2)",
    )
    ap.add_argument("--slow-every", type=int, default=1,
                    help="SlowParams.every (opt-in; 0: no slow background)")  # fmt: skip
    ap.add_argument("--samples", type=int, default=0, help="BackgroundParams.samples (0: 8)")
    ap.add_argument("--sizes", default="640x480,1920x1080", help="--speed's sizes, WxH")
    ap.add_argument("--cal", default=None,
                    help="default+cal's CalibrationParams, KEY=VALUE joined by commas "
                    "(e.g. lag=10,quantile=0.9,radius_k=2,margin_k=0)")  # fmt: skip
    ap.add_argument(
        "--held-noise",
        type=float,
        default=0.0,
        help="the scenes' held sensor noise, grey levels (SceneSpec.held_noise)",
    )
    ap.add_argument("--held-rho", type=float, default=0.9, help="SceneSpec.held_rho")
    ap.add_argument("--held-step", type=float, default=0.0, help="SceneSpec.held_step")
    args = ap.parse_args(argv)
    tbd = TbdParams(veto_sd=args.tbd_veto) if args.tbd_veto is not None else None
    if args.speed:
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.lower().split("x"))
            ms = speed(w, h, variant=args.reduced, slow_every=args.slow_every,
                       samples=args.samples, register=args.register or "lk")  # fmt: skip
            print(
                f"{w}x{h} ms/frame, one thread: "
                + ", ".join(f"{k} {v:.2f}" for k, v in ms.items())
                + "; MOG2 / method: "
                + ", ".join(f"{k} {ms['mog2'] / v:.2f}x" for k, v in ms.items() if k != "mog2"),
                flush=True,
            )
        return {}
    seeds = {"calibration": CALIBRATION_SEEDS, "evaluation": EVALUATION_SEEDS}.get(args.seeds)
    if seeds is None:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    cv2.setNumThreads(1)
    spec = SceneSpec(width=args.width, height=args.height, fps=FPS, seconds=args.seconds,
                     held_noise=args.held_noise, held_rho=args.held_rho,
                     held_step=args.held_step)  # fmt: skip
    cal = None
    if args.cal:
        kw = {k: v for k, v in (item.split("=", 1) for item in args.cal.split(","))}
        ints = {"frames", "tile_px", "lag"}
        cal = CalibrationParams(**{k: int(v) if k in ints else float(v) for k, v in kw.items()})
    config = DetectionSettings(sensor=args.sensor).detector_config()
    config = replace(config, register_method=args.register or "ecc")
    if args.reduced is not None or args.slow_every != 1 or args.samples > 0:
        tbd, config = reduced(args.reduced or "", args.slow_every, config, args.samples)
        if args.tbd_veto is not None:
            tbd = replace(tbd, veto_sd=args.tbd_veto)
    names = args.methods.split(",") if args.methods else None
    scores = run(seeds, spec, config, names, tbd=tbd, cal=cal)
    print(
        f"\nscenes {spec.width}x{spec.height}, {spec.seconds:.0f} s at {spec.fps:g} Hz, "
        f"seeds {seeds}, settings: DetectionSettings(sensor={args.sensor!r}), held noise "
        f"{spec.held_noise:g} (rho {spec.held_rho:g}, step {spec.held_step:g}), cal {cal}"
    )
    summary(scores)
    return scores


if __name__ == "__main__":
    main()
