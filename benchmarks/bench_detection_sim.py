"""Motion detection scored on the simulator's tower video: recall of people, false detections.

Runs :func:`vigil.sim.eval_detection.score_towers` (the protocol is in that module's
docstring) with the tower detector and two ablations (no persistence filter, no slow
background) on several simulated towers at night and one by day, and prints the table
recorded in ``BENCHMARKS.md``.

Usage: ``python -m benchmarks.bench_detection_sim [--minutes M] [--towers t01,t03] [--fps F]``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.objects import CameraGeometry
from vigil.geo.camera import PinholeCamera
from vigil.geo.frames import LocalFrame
from vigil.sim.eval_detection import NIGHT_START, night_settings, score_towers
from vigil.sim.eval_detection_score import DetectorFactory, SimScore


def tower_detector(config: DetectorConfig) -> DetectorFactory:
    """A factory of detectors with ``config``, each placed on its tower's camera model."""

    def make(tower: str, camera: PinholeCamera, frame: LocalFrame) -> MotionDetector:
        return MotionDetector(
            (camera.height, camera.width), config, CameraGeometry(camera, frame, tower)
        )

    return make


def print_score(label: str, s: SimScore) -> None:
    """One table row."""
    print(
        f"| {label} | {len(s.towers)} | {s.camera_minutes:.1f} | {s.people}/{s.people_in_range} "
        f"| **{s.recall:.3f}** | {s.frame_recall:.3f} | {s.slow_frame_recall:.3f} "
        f"| **{s.false_per_camera_minute:.2f}** | {s.false_outputs_per_camera_minute:.1f} "
        f"| {s.class_accuracy:.3f} | {s.dim_share:.2f}/{s.slow_share:.2f}/({s.standing_share:.2f}) "
        f"| {s.frames_per_s:.0f} |",
        flush=True,
    )


def main(argv: list[str] | None = None) -> dict:
    """Score the tower detector on several simulated towers at night (and one by day)."""
    from vigil.config import load_default

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="simulated minutes per run")
    ap.add_argument("--towers", default="t01,t03,t05", help="towers, comma-separated")
    ap.add_argument("--fps", type=float, default=10.0, help="frame rate, Hz")
    ap.add_argument("--scale", type=float, default=40.0, help="crossing rate scale")
    ap.add_argument("--shake-per-hour", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--no-day", action="store_true", help="skip the daytime run")
    args = ap.parse_args(argv)
    site = load_default().site
    towers = tuple(t for t in args.towers.split(",") if t)
    base = DetectorConfig.for_tower()
    configs = {
        "for_tower": base,
        "no persistence": replace(base, objects=replace(base.objects, min_hits=1, window=1)),
        "no slow background": replace(base, slow=None),
    }
    print(
        f"seed {args.seed}, {args.fps:g} fps, 640x480, crossings x{args.scale:g}, "
        f"shake {args.shake_per_hour:g}/h, 30 s warm-up, every nuisance on"
    )
    print(
        "| run | towers | camera-min | people (counted/in range) | recall | frame recall "
        "| frame recall, slow in image | false/cam-min | false outputs/cam-min | class acc "
        "| shares dim/slow/(standing) | det frames/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    runs = {
        "night 23:00": night_settings(
            towers, args.fps, args.scale, shake_per_hour=args.shake_per_hour
        ),
    }
    if not args.no_day:
        runs["day 14:00"] = night_settings(
            towers[:1],
            args.fps,
            args.scale,
            shake_per_hour=args.shake_per_hour,
            start_time=NIGHT_START - 9 * 3600.0,
        )
    results: dict = {}
    for when, settings in runs.items():
        detectors = {name: tower_detector(cfg) for name, cfg in configs.items()}
        scores = score_towers(site, settings, args.seed, args.minutes * 60.0, detectors)
        for name, s in scores.items():
            print_score(f"{when}, {name}", s)
            results[f"{when}, {name}"] = s.summary()
        main_score = scores["for_tower"]
        print(f"  {when}: confusion (truth, guess) -> outputs: {dict(main_score.confusion)}")
        print(f"  {when}: missed (id, range m, peak DN): {main_score.missed[:12]}")
        print(f"  {when}: false (tower, t, box, range m): {main_score.false_at[:12]}")
    return results


if __name__ == "__main__":
    main()
