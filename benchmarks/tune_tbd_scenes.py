"""Sweep the track-before-detect stage's settings on the development scenes, fast.

For each seed the scene is rendered once, the detector (thermal settings with the
neighbourhood test, ``vigil+n1``) runs once and its results and registered frames are kept,
MOG2 (the anchor, with the same post-processing) is scored once; then each variant of the
stage (:class:`vigil.detection.tbd.TbdParams` keyword settings) is replayed after the kept
detector results (:meth:`vigil.detection.tbd.SlowMoverDetector.combine`, the same code as
the pair's ``process``) and scored with the benchmark's protocol. ``--diagnose`` prints,
for each body a variant misses, what the detector and the stage saw of it.

For choosing settings on the calibration seeds (:data:`vigil.sim.scenes.CALIBRATION_SEEDS`)
only. Usage: ``python -m benchmarks.tune_tbd_scenes --seeds calibration --seconds 30
--variant base: --variant v2:veto_sd=2 [--diagnose]`` (a variant is ``NAME:KEY=VALUE,...``,
a tuple's items joined by ``/``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import SimpleNamespace

import cv2
import numpy as np
from scipy import ndimage

from benchmarks.scene_methods import FPS, _to_frame, opencv_method
from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.settings import DetectionSettings
from vigil.detection.tbd import SlowMoverDetector, TbdParams
from vigil.sim.scenes import CALIBRATION_SEEDS, EVALUATION_SEEDS, Scene, SceneSpec, render_scene
from vigil.sim.scenes_score import SceneScore, score_scene


@dataclass
class Recorded:
    """The detector's outputs on one frame, kept for replays."""

    res: SimpleNamespace  # pixel_detections (each with .box), mask, shift_px
    registered: np.ndarray


def record(scene: Scene, config: DetectorConfig) -> list[Recorded]:
    """Run the detector over the scene's frames once; its results and registered frames."""
    det = MotionDetector(scene.frames[0].shape, config)
    out = []
    for t, frame in enumerate(scene.frames, start=1):
        res = det.process(frame, t / FPS, t)
        boxes = [SimpleNamespace(box=d.box) for d in res.pixel_detections]
        keep = SimpleNamespace(pixel_detections=boxes, mask=res.mask.copy(), shift_px=res.shift_px)
        out.append(Recorded(keep, det.registration.out.copy()))
    return out


def parse_variant(text: str) -> tuple[str, dict[str, object]]:
    """``NAME:KEY=VALUE,...`` -> the name and :class:`TbdParams` keywords."""
    name, _, spec = text.partition(":")
    kw: dict[str, object] = {}
    for item in filter(None, spec.split(",")):
        key, val = item.split("=", 1)
        kind = type(getattr(TbdParams(), key))
        if kind is tuple:
            kw[key] = tuple(float(v) for v in val.split("/"))
        elif kind is bool:
            kw[key] = val.lower() in ("1", "true", "yes")
        else:
            kw[key] = kind(val)
    return name, kw


class Replay:
    """A scene method: the pair's stage after the recorded detector results; keeps what
    each frame gave for :func:`diagnose`."""

    def __init__(self, rec: list[Recorded], config: DetectorConfig, params: TbdParams):
        self.rec, self.i = rec, 0
        self.pair = SlowMoverDetector(rec[0].registered.shape, FPS, config, params)
        self.log: list[dict] = []

    def __call__(self, frame: np.ndarray):
        r = self.rec[self.i]
        self.i += 1
        out = self.pair.combine(r.res, r.registered)  # type: ignore[arg-type]
        stage = self.pair.stage
        det_boxes = [d.box for d in r.res.pixel_detections]
        info = {"det": det_boxes, "kept": out.boxes, "extra": out.tbd_boxes}
        if out.block_ended:
            info["stage"] = list(stage.boxes)
            info["stat"] = stage.statistic  # read at once by diagnose (not copied)
            info["sup_det"] = stage.supports(det_boxes).tolist() if det_boxes else []
            info["sup_stage"] = stage.supports(list(stage.boxes)).tolist() if stage.boxes else []
        self.log.append(info)
        self._diag_hook(info)
        mask, boxes = _to_frame(out.mask, out.boxes, r.res.shift_px)
        return mask, boxes

    def _diag_hook(self, info: dict) -> None:
        # the statistic is a buffer the stage reuses: reduce it to the bodies' rects now
        if "stat" in info and self.rects_now is not None:
            stat = info.pop("stat")
            info["stat_at"] = {
                k: float(stat[max(0, r[1]) : r[3], max(0, r[0]) : r[2]].max())
                for k, r in self.rects_now.items()
                if r[3] > max(0, r[1]) and r[2] > max(0, r[0])
            }
        else:
            info.pop("stat", None)

    rects_now: dict[int, tuple[int, int, int, int]] | None = None


def body_rects(scene: Scene, i: int, grow: int = 2) -> dict[int, tuple[int, int, int, int]]:
    """Each body's labelled bounding box in frame ``i`` grown by ``grow`` (frame pixels)."""
    lab = scene.labels[i]
    idents = [b.ident for b in scene.bodies]
    sl = ndimage.find_objects(lab, max_label=max(idents))
    out = {}
    for k in idents:
        s = sl[k - 1]
        if s is not None:
            out[k] = (s[1].start - grow, s[0].start - grow, s[1].stop + grow, s[0].stop + grow)
    return out


def _hits(box, r) -> bool:
    return box[0] < r[2] and box[2] > r[0] and box[1] < r[3] and box[3] > r[1]


def diagnose(scene: Scene, rec: list[Recorded], rp: Replay, missed: Sequence[int]) -> None:
    """What the detector and the stage saw of each missed body (registered pixels, so
    rects are moved by the frame's shift)."""
    for ident in missed:
        det_hit, det_sup, st_hit, st_sup, stat = 0, [], 0, [], []
        for i, info in enumerate(rp.log):
            if i < 100:
                continue
            r = body_rects(scene, i).get(ident)
            if r is None:
                continue
            dx, dy = rec[i].res.shift_px
            rr = (r[0] - dx, r[1] - dy, r[2] - dx, r[3] - dy)
            hit = [b for b in info["det"] if _hits(b, rr)]
            det_hit += bool(hit)
            if "sup_det" in info:
                det_sup += [
                    s for b, s in zip(info["det"], info["sup_det"], strict=True) if _hits(b, rr)
                ]
                sh = [
                    s for b, s in zip(info["stage"], info["sup_stage"], strict=True) if _hits(b, rr)
                ]
                st_hit += bool(sh)
                st_sup += sh
                if ident in info.get("stat_at", {}):
                    stat.append(info["stat_at"][ident])
        body = next(b for b in scene.bodies if b.ident == ident)
        print(
            f"    body {ident} {body.kind} contrast {body.contrast:.1f} speed "
            f"{scene.speed_px_s[ident]:.2f} px/s row {np.median(body.v):.0f}: detector boxes "
            f"in {det_hit} frames, supports at block ends {_fmt(det_sup)}; stage boxes in "
            f"{st_hit} blocks, supports {_fmt(st_sup)}; statistic at it per block "
            f"{_fmt(stat)}",
            flush=True,
        )


def _fmt(v: Sequence[float]) -> str:
    if not v:
        return "-"
    return "[" + " ".join(f"{x:.1f}" for x in v) + "]"


def main(argv: list[str] | None = None) -> None:
    """Run the sweep and print per-seed lines and a summary per variant."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="calibration")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--diagnose", action="store_true")
    ap.add_argument("--json", default=None, help="write every score to this file")
    args = ap.parse_args(argv)
    seeds = {"calibration": CALIBRATION_SEEDS, "evaluation": EVALUATION_SEEDS}.get(args.seeds)
    if seeds is None:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    variants = [parse_variant(v) for v in args.variant] or [("base", {})]
    cv2.setNumThreads(1)
    spec = SceneSpec(width=640, height=480, fps=FPS, seconds=args.seconds)
    config = replace(
        DetectionSettings(sensor="thermal").detector_config(), register_method="ecc",
        neighbour_px=1,
    )  # fmt: skip
    table: dict[str, list[tuple[SceneScore, SceneScore]]] = {n: [] for n, _ in variants}
    rows = []
    for seed in seeds:
        scene = render_scene(seed, spec)
        rec = record(scene, config)
        mog = score_scene(scene, opencv_method("mog2", config)(), "mog2")
        print(f"seed {seed}: mog2 recall {mog.object_recall:.3f} F1 {mog.f1:.3f}", flush=True)
        for name, kw in variants:
            rp = Replay(rec, config, TbdParams(**kw))
            if args.diagnose:
                rp.rects_now = None
                orig = rp.__call__

                def method(frame, rp=rp, orig=orig, scene=scene, rec=rec):
                    i = rp.i
                    rects = body_rects(scene, i)
                    dx, dy = rec[i].res.shift_px
                    rp.rects_now = {
                        k: (int(math.floor(r[0] - dx)), int(math.floor(r[1] - dy)),
                            int(math.ceil(r[2] - dx)), int(math.ceil(r[3] - dy)))
                        for k, r in rects.items()
                    }  # fmt: skip
                    return orig(frame)
            else:
                method = rp
            s = score_scene(scene, method, name)
            table[name].append((s, mog))
            ok = _four(s, mog)
            print(
                f"  {name:<12} recall {s.object_recall:.3f} ({s.found}/{s.bodies}) false/min "
                f"{s.false_per_minute:6.1f} F1 {s.f1:.3f} four "
                f"{''.join('Y' if c else 'n' for c in ok)}"
                f" missed {[(m[0], m[1], round(m[2], 1), round(m[3], 2)) for m in s.missed]}",
                flush=True,
            )
            rows.append({"seed": seed, "variant": name, "recall": s.object_recall,
                         "found": s.found, "bodies": s.bodies, "false": s.false_per_minute,
                         "f1": s.f1, "mog_recall": mog.object_recall, "mog_f1": mog.f1,
                         "missed": s.missed})  # fmt: skip
            if args.diagnose and s.missed:
                diagnose(scene, rec, rp, [m[0] for m in s.missed])
    print()
    for name, pairs in table.items():
        four = [all(_four(s, m)) for s, m in pairs]
        found = sum(s.found for s, _ in pairs)
        bodies = sum(s.bodies for s, _ in pairs)
        print(
            f"{name}: all four {sum(four)}/{len(four)}; found {found}/{bodies}; false/min "
            f"median {np.median([s.false_per_minute for s, _ in pairs]):.1f} max "
            f"{max(s.false_per_minute for s, _ in pairs):.1f}; F1 median "
            f"{np.median([s.f1 for s, _ in pairs]):.3f}; failing seeds "
            f"{[s.seed for (s, _), f in zip(pairs, four, strict=True) if not f]}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh)


def _four(s: SceneScore, m: SceneScore) -> tuple[bool, bool, bool, bool]:
    return (
        s.object_recall >= 0.9,
        s.object_recall >= m.object_recall,
        s.false_per_minute <= 60,
        s.f1 > m.f1,
    )


if __name__ == "__main__":
    main()
