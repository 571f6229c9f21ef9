"""Real daylight video through the camera edge: tower settings, daylight settings, MOG2.

Two real clips, each given to a tower of a one-tower deployment whose camera roughly matches
the clip's view (mast height, tilt, field of view; ``thermal = false``):

``vtest``
    OpenCV's sample ``vtest.avi`` (pedestrians on a campus path, 768x576, 10 fps, 795
    frames), shipped by Debian's ``opencv-doc`` package at
    ``/usr/share/doc/opencv-doc/examples/data/vtest.avi`` (OpenCV's licence, Apache-2.0 and
    BSD-3-Clause per the package's copyright file; not copied into the repository). No
    ground truth: a detection counts as on motion when at least 10 % of its box changed by
    more than 20 grey levels against the frame 3 before or 3 after (0.3 s).
``highway``
    CDnet 2014 "baseline/highway" (``../shared/data/video/cdnet2014_highway``, 320x240,
    1,700 frames, per-pixel ground truth; research use): a detection is on motion when at
    least 10 % of its box is ground-truth motion, shadow or boundary (255, 50, 170); a car
    (a ground-truth motion region of at least 150 pixels) is found when a detection's box
    covers at least 30 % of it. Scored over the temporal ROI (frames 470-1700).

Each clip goes through the camera edge adapter (:func:`vigil.hardware.camera.run_camera_edge`
on an in-process bus) with the tower's camera model and each of:

``tower``
    Thermal tower settings (today's ``vigil edge camera`` default, ``DetectionSettings()`` on
    a thermal tower).
``daylight``
    ``DetectionSettings(sensor="daylight")``: the daylight defaults.
``user``
    What a user would pick for the clip: daylight plus a polygon over the wind-blown trees
    (highway) or the minimum size (vtest); see :data:`USER`.
``mog2``
    OpenCV MOG2 (defaults, shadows off) in place of the background model, with the daylight
    post-processing (majority filter, blobs, size test, persistence, warm-up).

With ``--cli`` the deployment (with the ``user`` settings in ``[detection]``) also goes through
the real ``vigil edge camera`` command, whose detection count is printed beside the in-process
one. ``--png DIR`` writes overlays (green boxes on the frame, the cleaned mask in red) of a
few frames per method.

Usage: ``python -m benchmarks.bench_daylight [--clip vtest|highway] [--png DIR] [--cli]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from vigil.detection.detector import MotionDetector
from vigil.detection.objects import CameraGeometry
from vigil.detection.settings import DetectionSettings
from vigil.edge import tower_detector
from vigil.geo.site import Site, tower_camera
from vigil.hardware.camera import run_camera_edge
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import CameraDetection

REPO = Path(__file__).resolve().parents[1]
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
HIGHWAY = REPO.parent / "shared" / "data" / "video" / "cdnet2014_highway"

#: Each clip's tower: a camera that roughly matches the clip's view.
NEAR = dict(pan_deg=180.0, range_m=400.0)
TOWERS = {
    "vtest": dict(mast_height_m=9.0, tilt_deg=32.0, hfov_deg=55.0, width=768, height=576, **NEAR),
    # the run: the clip at 480x360 given to the shipped deployment's first tower (a
    # 25 m mast looking 0.82 degrees down to 4 km)
    "vtest360": dict(
        mast_height_m=25.0,
        tilt_deg=0.82,
        hfov_deg=24.0,
        width=480,
        height=360,
        pan_deg=156.3,
        range_m=4000.0,
    ),  # fmt: skip
    "highway": dict(mast_height_m=8.0, tilt_deg=27.0, hfov_deg=45.0, width=320, height=240, **NEAR),
}
#: What a user would pick per clip (TOML for the deployment file, and the struct).
USER = {
    "vtest": DetectionSettings(sensor="daylight", min_size_m=0.4),
    # the trees along the left edge sway in the wind; a user masks them out
    "highway": DetectionSettings(
        sensor="daylight", ignore=[[(0, 0), (150, 0), (60, 90), (0, 150)]]
    ),
}
USER["vtest360"] = USER["vtest"]
SETTINGS = {
    "tower": DetectionSettings(sensor="thermal"),
    "daylight": DetectionSettings(sensor="daylight"),
}
PNG_FRAMES = {"vtest": (150, 400, 700), "vtest360": (400,), "highway": (600, 900, 1300)}


def deployment_text(clip: str, detection: DetectionSettings | None = None) -> str:
    """A one-tower deployment (the Tucson sector's first tower site) for a clip."""
    cam = TOWERS[clip]
    lines = [
        "[sector]",
        'name = "daylight"',
        'boundary = "us_mx"',
        "centre = [31.33, -110.94]",
        "start = [31.333, -111.15]",
        "end = [31.333, -110.73]",
        "",
        "[[towers]]",
        'id = "cam1"',
        "lat = 31.340767",
        "lon = -110.759418",
        "fps = 10.0",
        "thermal = false",
    ]
    lines += [f"{k} = {v}" for k, v in cam.items()]
    if detection is not None:
        lines += ["", "[detection]"]
        for name in detection.__struct_fields__:
            value = getattr(detection, name)
            if value is None:
                continue
            if isinstance(value, str):
                value = f'"{value}"'
            elif isinstance(value, list):
                value = str([[list(p) for p in poly] for poly in value])
            lines.append(f"{name} = {value}")
    return "\n".join(lines) + "\n"


def site_of(clip: str) -> Site:
    """The deployment's site (parsed and checked as ``vigil config check`` would)."""
    from vigil.config import parse

    return parse(deployment_text(clip), f"<{clip}>").site


class Mog2Model:
    """OpenCV MOG2 standing in for the sample-consensus model inside a motion detector."""

    def __init__(self, roi: NDArray[np.uint8] | None) -> None:
        self.mog = cv2.createBackgroundSubtractorMOG2(detectShadows=False)
        self.roi = roi
        self.frames_seen = 0
        self.gain = 1.0

    def apply(self, grey: NDArray[np.uint8], out: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The foreground mask (0/255) of the next grey frame, written into ``out``."""
        self.frames_seen += 1
        out[:] = self.mog.apply(grey)
        if self.roi is not None:
            out[self.roi == 0] = 0
        return out


def make_detect(
    site: Site, settings: DetectionSettings, mog2: bool = False
) -> tuple[Callable, dict]:
    """``detect`` for the edge adapter as ``vigil edge camera`` builds it, and its kept masks.

    The detector is :func:`vigil.edge.tower_detector` with ``settings`` (the command's own);
    ``mog2`` builds the same detector (tower camera model at the frame's size, the settings'
    config and region mask) with MOG2 as its background model. The second value maps frame
    index to a copy of the cleaned mask for the frames in ``detect.keep``.
    """
    tower = site.towers[0]
    masks: dict[int, NDArray[np.uint8]] = {}
    if not mog2:
        command = tower_detector(site, tower.id, settings=settings)

        def detect(img: NDArray[np.uint8], time_s: float, index: int) -> list[CameraDetection]:
            found = list(command(img, time_s, index))
            if index in detect.keep:  # type: ignore[attr-defined]
                masks[index] = command.detector.blob_finder.clean.copy()
            return found

        detect.keep = set()  # type: ignore[attr-defined]
        return detect, masks

    frame = site.frame()
    base = tower_camera(tower, frame)
    made: list[MotionDetector] = []

    def detect_mog2(img: NDArray[np.uint8], time_s: float, index: int) -> list[CameraDetection]:
        if not made:
            h, w = img.shape[:2]
            cam = base if (base.width, base.height) == (w, h) else replace(base, width=w, height=h)
            geometry = CameraGeometry(cam, frame, tower.id)
            det = settings.detector((h, w), geometry, tower.id, thermal=tower.thermal)
            det.model = Mog2Model(settings.region((h, w)))
            made.append(det)
        res = made[0].process(img, time_s, index)
        if index in detect_mog2.keep:  # type: ignore[attr-defined]
            masks[index] = res.mask.copy()
        return res.detections

    detect_mog2.keep = set()  # type: ignore[attr-defined]
    return detect_mog2, masks


def run_edge(
    source: str, site: Site, settings: DetectionSettings, mog2: bool, keep: set[int]
) -> tuple[int, dict[int, list[tuple[float, float, float, float]]], dict, float]:
    """Frames, boxes per frame, kept masks and seconds of one pass through the edge adapter."""
    detect, masks = make_detect(site, settings, mog2)
    detect.keep = keep  # type: ignore[attr-defined]
    bus = InProcessBus(site.sector.name)
    boxes: dict[int, list] = defaultdict(list)
    bus.subscribe(
        "vigil/v1/#",
        lambda topic, msg: (
            boxes[msg.frame].append(msg.box) if isinstance(msg, CameraDetection) else None
        ),
    )
    t0 = time.perf_counter()
    counts = run_camera_edge(source, bus, site.sector.name, site.towers[0].id, detect, fps=10.0,
                             start_time=1.7e9)  # fmt: skip
    return counts.frames, dict(boxes), masks, time.perf_counter() - t0


def highway_source(tmp: Path) -> str:
    """CDnet highway's JPEG frames as one lossless (FFV1) video the edge adapter can read."""
    out = tmp / "highway.avi"
    names = sorted((HIGHWAY / "input").glob("in*.jpg"))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (320, 240))
    for name in names:
        writer.write(cv2.imread(str(name)))
    writer.release()
    return str(out)


def resized_source(tmp: Path, size: tuple[int, int]) -> str:
    """vtest resized to ``(width, height)`` (area interpolation) as a lossless (FFV1) video."""
    out = tmp / "vtest_small.avi"
    cap = cv2.VideoCapture(str(VTEST))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, size)
    while True:
        ok, f = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(f, size, interpolation=cv2.INTER_AREA))
    writer.release()
    cap.release()
    return str(out)


def grey_frames(source: str) -> list[NDArray[np.uint8]]:
    """Every frame of a video as grey levels."""
    cap = cv2.VideoCapture(source)
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))
    cap.release()
    return out


def box_share(box: tuple[float, float, float, float], mask: NDArray[np.bool_]) -> float:
    """Share of a box's pixels that are set in ``mask``."""
    u0, v0, u1, v1 = (round(c) for c in box)
    part = mask[max(v0, 0) : max(v1, v0 + 1), max(u0, 0) : max(u1, u0 + 1)]
    return float(part.mean()) if part.size else 0.0


def motion_evidence(grey: list[NDArray[np.uint8]], i: int, lag: int = 3) -> NDArray[np.bool_]:
    """Pixels of frame ``i`` that changed by over 20 grey levels against ``i +- lag``."""
    g = cv2.GaussianBlur(grey[i], (5, 5), 0).astype(np.int16)
    moved = np.zeros(g.shape, bool)
    for j in (i - lag, i + lag):
        if 0 <= j < len(grey):
            moved |= np.abs(g - cv2.GaussianBlur(grey[j], (5, 5), 0).astype(np.int16)) > 20
    return moved


def truth(i: int) -> NDArray[np.uint8]:
    """CDnet highway's ground truth of frame ``i`` (0-based)."""
    return cv2.imread(str(HIGHWAY / "groundtruth" / f"gt{i + 1:06d}.png"), cv2.IMREAD_GRAYSCALE)


def score(clip: str, grey: list, boxes: dict, frames: range) -> dict:
    """Detections per frame, share on motion, and (highway) cars found."""
    n = on = 0
    cars = found = 0
    for i in frames:
        bx = boxes.get(i, [])
        if clip == "highway":
            gt = truth(i)
            moving = (gt == 255) | (gt == 50) | (gt == 170)
            count, labels, stats, _ = cv2.connectedComponentsWithStats((gt == 255).view(np.uint8))
            for k in range(1, count):
                if stats[k, cv2.CC_STAT_AREA] < 150:
                    continue
                cars += 1
                obj = labels == k
                if any(box_share_of(obj, b) >= 0.3 for b in bx):
                    found += 1
        else:
            moving = motion_evidence(grey, i)
        n += len(bx)
        on += sum(box_share(b, moving) >= 0.1 for b in bx)
    out = {
        "per_frame": n / max(len(frames), 1),
        "on_motion": on / max(n, 1),
        "detections": n,
    }
    if clip == "highway":
        out["car_recall"] = found / max(cars, 1)
    return out


def box_share_of(obj: NDArray[np.bool_], box: tuple[float, float, float, float]) -> float:
    """Share of an object's pixels inside a box."""
    u0, v0, u1, v1 = (round(c) for c in box)
    return float(obj[max(v0, 0) : v1, max(u0, 0) : u1].sum()) / max(int(obj.sum()), 1)


def overlay(frame_grey: NDArray[np.uint8], mask: NDArray[np.uint8] | None, bx: list) -> NDArray:
    """The frame in grey, the cleaned mask in red, detection boxes in green."""
    img = cv2.cvtColor(frame_grey, cv2.COLOR_GRAY2BGR)
    if mask is not None:
        img[mask > 0] = (0.5 * img[mask > 0] + (0, 0, 127)).astype(np.uint8)
    for u0, v0, u1, v1 in bx:
        cv2.rectangle(img, (round(u0), round(v0)), (round(u1) - 1, round(v1) - 1), (0, 255, 0), 1)
    return img


def run_cli(clip: str, source: str, tmp: Path) -> str:
    """The real ``vigil edge camera`` on the clip with the ``user`` settings in the file."""
    path = tmp / f"{clip}.toml"
    path.write_text(deployment_text(clip, USER[clip]))
    cmd = [sys.executable, "-m", "vigil.cli", "edge", "camera", source, "--deployment",
           str(path), "--id", "cam1", "--fps", "10", "--start", "2023-11-14T22:13:20Z",
           "--state-dir", str(tmp / "edge")]  # fmt: skip
    env = dict(os.environ, PYTHONPATH="")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env, timeout=1200)
    return (
        (proc.stdout + proc.stderr).strip().splitlines()[-1] if (proc.stdout + proc.stderr) else ""
    )


def bench(clip: str, png: Path | None, cli: bool) -> dict:
    """Run one clip through every method; prints and returns the table."""
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        if clip == "vtest":
            source = str(VTEST)
        elif clip == "vtest360":
            source = resized_source(tmp, (480, 360))
        else:
            source = highway_source(tmp)
        site = site_of(clip)
        grey = grey_frames(source)
        first = 470 - 1 if clip == "highway" else 40
        frames = range(first, len(grey))
        methods = {
            **SETTINGS,
            "user": USER[clip],
            "mog2": USER[clip],
        }
        keep = set(PNG_FRAMES[clip])
        results = {}
        print(f"\n{clip}: {len(grey)} frames {grey[0].shape[1]}x{grey[0].shape[0]}, "
              f"scored {frames.start}-{frames.stop - 1}")  # fmt: skip
        print(
            f"{'method':<9} {'det/frame':>9} {'on motion':>9} {'car recall':>10} "
            f"{'ms/frame':>8} {'all frames':>10}"
        )
        for name, settings in methods.items():
            n, boxes, masks, secs = run_edge(source, site, settings, name == "mog2", keep)
            r = score(clip, grey, boxes, frames)
            r["ms_per_frame"] = 1000 * secs / max(n, 1)
            r["all_frames"] = sum(len(b) for b in boxes.values())
            results[name] = r
            recall = f"{r['car_recall']:10.3f}" if "car_recall" in r else f"{'-':>10}"
            print(f"{name:<9} {r['per_frame']:9.2f} {r['on_motion']:9.3f} {recall} "
                  f"{r['ms_per_frame']:8.1f} {r['all_frames']:10d}", flush=True)  # fmt: skip
            if png is not None:
                png.mkdir(parents=True, exist_ok=True)
                for i in sorted(keep):
                    img = overlay(grey[i], masks.get(i), boxes.get(i, []))
                    cv2.imwrite(str(png / f"{clip}_{i:04d}_{name}.png"), img)
        if cli:
            results["cli"] = run_cli(clip, source, tmp)
            print(f"vigil edge camera ({clip}, user settings in [detection]): {results['cli']}")
    return results


def main(argv: list[str] | None = None) -> dict:
    """Print the tables; returns the results (clips whose data is absent are skipped)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", choices=tuple(TOWERS), action="append")
    ap.add_argument("--png", type=Path, default=None, help="write overlays here")
    ap.add_argument("--cli", action="store_true", help="also run the real vigil edge camera")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    out = {}
    for clip in args.clip or tuple(TOWERS):
        where = HIGHWAY / "input" if clip == "highway" else VTEST
        if not where.exists():
            print(f"{clip}: not present at {where} (vtest: apt-get install opencv-doc); skipped")
            continue
        out[clip] = bench(clip, args.png, args.cli)
    return out


if __name__ == "__main__":
    main()
