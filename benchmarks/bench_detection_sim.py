"""Motion detection scored on the simulator's tower video: recall of people, false detections.

The world simulator (:mod:`vigil.sim`) renders each tower's thermal frames with the truth
of every body in them. :func:`score_towers` runs one :class:`~detection.detector.MotionDetector`
per tower (tower settings, the tower's camera model) over those frames and scores its wire
detections against the truth. ``tests/test_detection_sim.py`` runs a short single-tower
case; :func:`main` runs the longer multi-tower one recorded in ``BENCHMARKS.md``.

Scoring protocol
----------------
* **Warm-up.** The first ``warmup_s`` seconds of frames go through the detector (it learns
  its background and shake reference from them) but are not scored.
* **Matching.** The detector works in the shake-registered image: a truth box seen at
  ``(u, v)`` in the frame is compared at ``(u - dx, v - dy)`` where ``(dx, dy)`` is the
  detector's own shift estimate. A detection (its blob's box, whole pixels) matches a truth
  body when the body's box, grown by ``match_px`` on each side, overlaps it. One blob may
  match several bodies: members of a group a few metres apart are one or two pixels apart
  at 2 km and the sensor (and the simulator, which draws the warmer body where they
  overlap) renders them as one warm patch.
* **Detectable people.** A truth body of class ``person`` within the camera's rated range
  (``max_range_m``) that is

  - *bright enough*: his brightest pixel stands at least ``min_peak_dn`` grey levels
    above the ground, i.e. ``contrast_dn`` times the largest fraction of one pixel the
    body covers (the simulator's own drawing rule, :func:`vigil.sim.thermal.coverage`).
    A person a third of a pixel wide is drawn as a third of his contrast; the simulator
    keeps bodies down to 2 grey levels in its truth, below what a per-pixel detector can
    tell from 0.7-level noise, brush flicker and shimmer;
  - *not standing* (only when ``exclude_standing_s`` > 0): his ground position moved at
    least 0.5 m over the last ``exclude_standing_s`` seconds. Off by default: people
    standing still count too.

  How slowly people move in the image does not matter: a group walking straight at the
  tower 2-3 km away, whose image moves a few hundredths of a pixel a second, counts like
  any other. The share of in-range person-frames whose image moved less than
  ``min_motion_px`` over the last ``motion_window_s`` seconds is reported
  (``slow_share``; those standing still on the ground for that long, ``standing_share``),
  with the per-frame recall over them (``slow_frame_recall``). So are the shares left out
  (``dim_share``, and ``standing_share`` when standing people are excluded) and the
  recall over every bright person, standing or not (``recall_any_motion``).
* **Per-object recall.** A person counts when he is detectable in at least
  ``min_track_s`` seconds of scored frames (time for the persistence filter to confirm
  him); he is detected when some detection matches him in at least one scored frame
  where he is detectable. Per-frame recall (detectable person-frames matched) is reported
  as information; it is lower by the persistence warm-up of each object and by the
  frames in which a slow walker's pixel has been learnt into the background.
* **False detections.** A detection that matches no truth body of any class (a detected
  cow or truck is not a false detection of motion) is false. False detections are counted
  per detector object: all false outputs of one object number (the follower's, which
  continues a blob across frames) count once, as a tracker downstream would make one false
  track of them. The rate is per camera-minute of scored video; raw false outputs per
  camera-minute are reported too.
* **Class accuracy.** Over matched detections, the share whose ``class_guess`` equals the
  class of the nearest matched truth body.

Usage: ``python -m benchmarks.bench_detection_sim [--minutes M] [--towers t01,t03] [--fps F]``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field

import numpy as np

from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.objects import CameraGeometry
from vigil.sim import SimSettings, World
from vigil.sim.thermal import ObjectTruth, coverage

#: 23:00 local (Arizona, UTC-7) on the simulator's default start day: night, crossings busy.
NIGHT_START = SimSettings().start_time + 6 * 3600.0


@dataclass
class SimScore:
    """Scores of a detector run on simulated tower video (see the module's protocol)."""

    towers: tuple[str, ...]
    frames: int = 0
    scored_frames: int = 0
    camera_minutes: float = 0.0
    detector_seconds: float = 0.0
    people_in_range: int = 0  # persons in rated range for min_track_s (any contrast)
    people: int = 0  # ... and detectable for min_track_s
    people_detected: int = 0
    person_frames: int = 0  # detectable person-frames
    person_frames_matched: int = 0
    in_range_person_frames: int = 0  # person-frames in rated range, any contrast
    dim_person_frames: int = 0  # ... below min_peak_dn
    slow_person_frames: int = 0  # ... bright, image moved < min_motion_px in the window
    standing_person_frames: int = 0  # ... bright, standing still on the ground
    slow_frames_matched: int = 0  # slow detectable person-frames matched
    slow_frames_detectable: int = 0
    shift_sq_sum: float = 0.0  # registration error against the true shake, px^2 summed
    shift_max_px: float = 0.0
    shake_max_px: float = 0.0  # largest true shake in the scored frames
    people_bright: int = 0  # in range and bright for min_track_s, standing or not
    people_bright_detected: int = 0
    detections: int = 0  # scored detection outputs
    false_outputs: int = 0
    false_objects: int = 0
    matched_outputs: int = 0
    class_correct: int = 0
    confusion: Counter = field(default_factory=Counter)  # (truth, guess) -> outputs
    missed: list[tuple[str, float, float]] = field(default_factory=list)  # (id, range, peak)
    false_at: list[tuple] = field(default_factory=list)  # (tower, time, box, range_m)
    range_errors: list[tuple[float, float]] = field(default_factory=list)  # (truth, det - truth)

    def range_bias(self, edges_m: tuple[float, ...] = (0, 750, 1250, 1750, 2500, 4000)) -> dict:
        """Median range error (detection minus truth, metres) of matched people, by truth range.

        Keys are ``"lo-hi"`` range bins in metres; values ``(median_error_m, count)``.
        """
        if not self.range_errors:
            return {}
        arr = np.array(self.range_errors)
        out = {}
        for lo, hi in zip(edges_m[:-1], edges_m[1:], strict=True):
            sel = (arr[:, 0] >= lo) & (arr[:, 0] < hi)
            if sel.any():
                out[f"{lo}-{hi}"] = (round(float(np.median(arr[sel, 1])), 1), int(sel.sum()))
        return out

    @property
    def recall(self) -> float:
        """Per-object recall of detectable people."""
        return self.people_detected / self.people if self.people else float("nan")

    @property
    def recall_any_motion(self) -> float:
        """Per-object recall of people bright enough, whether they move in the image or not."""
        return self.people_bright_detected / self.people_bright if self.people_bright else 0.0

    @property
    def shift_rms_px(self) -> float:
        """RMS error of the detector's shake estimate against the simulator's shake, pixels."""
        return math.sqrt(self.shift_sq_sum / self.scored_frames) if self.scored_frames else 0.0

    @property
    def frame_recall(self) -> float:
        """Per-frame recall of detectable people."""
        return self.person_frames_matched / self.person_frames if self.person_frames else 0.0

    @property
    def false_per_camera_minute(self) -> float:
        """False detections (objects) per camera-minute."""
        return self.false_objects / self.camera_minutes if self.camera_minutes else 0.0

    @property
    def false_outputs_per_camera_minute(self) -> float:
        """False detection outputs (frames) per camera-minute."""
        return self.false_outputs / self.camera_minutes if self.camera_minutes else 0.0

    @property
    def class_accuracy(self) -> float:
        """Share of matched detections whose class guess is the truth's class."""
        return self.class_correct / self.matched_outputs if self.matched_outputs else 0.0

    @property
    def excluded_share(self) -> float:
        """Share of in-range person-frames left out (too dim, or standing when excluded)."""
        if not self.in_range_person_frames:
            return 0.0
        return 1.0 - self.person_frames / self.in_range_person_frames

    @property
    def dim_share(self) -> float:
        """Share of in-range person-frames below ``min_peak_dn``."""
        n = self.in_range_person_frames
        return self.dim_person_frames / n if n else 0.0

    @property
    def slow_share(self) -> float:
        """Share of in-range person-frames bright and moving under ``min_motion_px``."""
        n = self.in_range_person_frames
        return self.slow_person_frames / n if n else 0.0

    @property
    def standing_share(self) -> float:
        """Share of in-range person-frames of bright people standing still on the ground."""
        n = self.in_range_person_frames
        return self.standing_person_frames / n if n else 0.0

    @property
    def slow_frame_recall(self) -> float:
        """Per-frame recall over detectable person-frames whose image barely moves."""
        n = self.slow_frames_detectable
        return self.slow_frames_matched / n if n else float("nan")

    @property
    def frames_per_s(self) -> float:
        """Detector throughput, frames per second of its own processing time."""
        return self.frames / self.detector_seconds if self.detector_seconds else 0.0

    def summary(self) -> dict[str, float | int]:
        """The headline numbers as a flat dict."""
        return {
            "people": self.people,
            "people_in_range": self.people_in_range,
            "people_detected": self.people_detected,
            "recall": round(self.recall, 4),
            "frame_recall": round(self.frame_recall, 4),
            "recall_any_motion": round(self.recall_any_motion, 4),
            "excluded_share": round(self.excluded_share, 4),
            "dim_share": round(self.dim_share, 4),
            "slow_share": round(self.slow_share, 4),
            "standing_share": round(self.standing_share, 4),
            "slow_frame_recall": round(self.slow_frame_recall, 4),
            "camera_minutes": round(self.camera_minutes, 2),
            "false_objects": self.false_objects,
            "false_per_camera_minute": round(self.false_per_camera_minute, 3),
            "false_outputs_per_camera_minute": round(self.false_outputs_per_camera_minute, 2),
            "detections": self.detections,
            "class_accuracy": round(self.class_accuracy, 4),
            "frames_per_s": round(self.frames_per_s, 1),
            "shift_rms_px": round(self.shift_rms_px, 3),
            "shift_max_px": round(self.shift_max_px, 3),
            "shake_max_px": round(self.shake_max_px, 3),
        }


def peak_dn(obj: ObjectTruth, rows: int, cols: int) -> float:
    """Grey levels the body adds to its most covered pixel, as the simulator draws it."""
    u0, v0, u1, v1 = obj.box
    _, _, cov = coverage(u0, u1, v0, v1, rows, cols)
    return float(obj.contrast_dn * cov.max()) if cov.size else 0.0


@dataclass
class _FrameTruth:
    """The truth of one scored frame, worked out once for every detector run on it."""

    objs: list[ObjectTruth]
    persons: np.ndarray  # indices of in-range people
    detectable: np.ndarray  # per object: in-range person, bright (and not standing if excluded)
    bright: np.ndarray
    moving: np.ndarray  # image moved at least min_motion_px in motion_window_s
    standing: np.ndarray
    peak: np.ndarray
    shake_px: tuple[float, float]  # the simulator's shake: image content moves by -shake


class _Scorer:
    """One detector setting run on every simulated tower, and its running score."""

    def __init__(self, config: DetectorConfig, world: World, match_px: float) -> None:
        self.detectors = {
            k: MotionDetector(
                (v.camera.height, v.camera.width), config, CameraGeometry(v.camera, world.frame, k)
            )
            for k, v in world.views.items()
        }
        self.score = SimScore(tuple(sorted(world.views)))
        self.match_px = match_px
        self.detected: set[str] = set()
        self.detected_bright: set[str] = set()
        self.false_objects: set[tuple[str, int]] = set()

    def process(self, item, truth: _FrameTruth | None) -> None:
        """Run the tower's detector on a frame; score it when ``truth`` is given."""
        sc = self.score
        t0 = time.perf_counter()
        res = self.detectors[item.tower].process(item.image, item.time, item.frame)
        sc.detector_seconds += time.perf_counter() - t0
        sc.frames += 1
        if truth is None:
            return
        sc.scored_frames += 1
        objs = truth.objs
        dx, dy = res.shift_px
        err = math.hypot(dx + truth.shake_px[0], dy + truth.shake_px[1])
        sc.shift_sq_sum += err * err
        sc.shift_max_px = max(sc.shift_max_px, err)
        sc.shake_max_px = max(sc.shake_max_px, math.hypot(*truth.shake_px))
        m = self.match_px
        boxes = np.array([o.box for o in objs], np.float64).reshape(-1, 4)
        boxes -= np.array([dx, dy, dx, dy])
        grown = boxes + np.array([-m, -m, m, m])
        centres = np.column_stack([boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]]) / 2
        matched = np.zeros(len(objs), bool)
        for d, number in zip(res.detections, res.detection_objects, strict=True):
            sc.detections += 1
            b = d.box
            hit = (
                (grown[:, 0] < b[2])
                & (grown[:, 2] > b[0])
                & (grown[:, 1] < b[3])
                & (grown[:, 3] > b[1])
            )
            if not hit.any():
                sc.false_outputs += 1
                key = (item.tower, number)
                if key not in self.false_objects:
                    self.false_objects.add(key)
                    sc.false_at.append((item.tower, item.time, d.box, d.range_m))
                continue
            matched |= hit
            sc.matched_outputs += 1
            k = np.flatnonzero(hit)
            c = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
            near = int(k[np.argmin(np.hypot(*(centres[k] - c).T))])
            truth_cls = objs[near].cls
            if truth_cls == "person" and hit.sum() == 1:
                sc.range_errors.append((objs[near].range_m, d.range_m - objs[near].range_m))
            sc.confusion[(truth_cls, d.class_guess)] += 1
            sc.class_correct += int(d.class_guess == truth_cls)
        for i in truth.persons:
            if truth.bright[i] and matched[i]:
                self.detected_bright.add(f"{item.tower}/{objs[i].mover_id}")
            if truth.detectable[i]:
                pid = f"{item.tower}/{objs[i].mover_id}"
                sc.person_frames += 1
                slow = not truth.moving[i]
                sc.slow_frames_detectable += int(slow)
                if matched[i]:
                    sc.person_frames_matched += 1
                    sc.slow_frames_matched += int(slow)
                    self.detected.add(pid)


def score_towers(
    site,
    settings: SimSettings,
    seed: int,
    duration_s: float,
    configs: dict[str, DetectorConfig] | None = None,
    warmup_s: float = 30.0,
    min_peak_dn: float = 8.0,
    min_motion_px: float = 1.0,
    motion_window_s: float = 5.0,
    exclude_standing_s: float = 0.0,
    min_track_s: float = 2.0,
    match_px: float = 2.0,
) -> dict[str, SimScore]:
    """Run detectors on every simulated tower over ``duration_s`` seconds and score them.

    Each setting in ``configs`` gets its own detector per tower; all of them see the same
    frames, rendered once.

    Parameters
    ----------
    site
        The sector (``geo.site.Site``), e.g. ``vigil.config.load_default().site``.
    settings
        Simulator settings (``cameras="render"``); their nuisances are what is scored.
    seed
        The world's seed.
    duration_s
        Seconds simulated, warm-up included.
    configs
        Detector settings by name; ``{"for_tower": DetectorConfig.for_tower()}`` when
        omitted.
    warmup_s
        Seconds at the start that the detectors see but that are not scored.
    min_peak_dn
        Least grey levels a person's brightest pixel must stand out by to be detectable.
    min_motion_px, motion_window_s
        A person is slow in the image in a frame when the image of his ground position
        (camera as installed, shake left out) moved less than ``min_motion_px`` pixels over
        the last ``motion_window_s`` seconds, and standing when his ground position moved
        less than 0.5 m in that time. Reported, not excluded.
    exclude_standing_s
        When positive, people whose ground position moved less than 0.5 m over the last
        this many seconds are not detectable in that frame; 0 counts them.
    min_track_s
        Least scored seconds a person must be detectable to count in the recall.
    match_px
        Pixels a truth box is grown by on each side when matching detections.

    Returns
    -------
    dict
        A :class:`SimScore` per setting name.
    """
    configs = configs or {"for_tower": DetectorConfig.for_tower()}
    world = World(site, settings, seed)
    scorers = {name: _Scorer(cfg, world, match_px) for name, cfg in configs.items()}
    t_score = settings.start_time + warmup_s
    in_range_frames: Counter = Counter()  # person id -> scored frames in rated range
    visible_any: Counter = Counter()  # person id -> detectable scored frames
    bright_frames: Counter = Counter()  # person id -> bright scored frames, standing or not
    peaks: dict[str, tuple[float, float]] = {}
    history: dict[str, deque] = defaultdict(deque)  # person id -> (t, u, v, x, y)
    counts = Counter()
    camera_minutes = 0.0
    try:
        for item in world.run(duration_s):
            if item.__class__.__name__ != "CameraFrame" or item.image is None:
                continue
            objs = item.objects
            cam = item.camera
            n = len(objs)
            persons = np.array(
                [
                    i
                    for i, o in enumerate(objs)
                    if o.cls == "person" and o.range_m <= cam.max_range_m
                ],
                np.int64,
            )
            # Image motion, with the camera as installed (shake is not the body moving).
            moving = np.zeros(n, bool)
            standing = np.zeros(n, bool)
            excluded = np.zeros(n, bool)
            keep_s = max(motion_window_s, exclude_standing_s)
            if persons.size:
                pu, pv, _ = world.camera(item.tower).project(
                    np.array([objs[i].x for i in persons]),
                    np.array([objs[i].y for i in persons]),
                    0.0,
                )
                for i, u, v in zip(persons, np.atleast_1d(pu), np.atleast_1d(pv), strict=True):
                    o = objs[i]
                    hist = history[f"{item.tower}/{o.mover_id}"]
                    hist.append((item.time, float(u), float(v), o.x, o.y))
                    while hist[0][0] < item.time - keep_s:
                        hist.popleft()
                    k = 0
                    while hist[k][0] < item.time - motion_window_s:
                        k += 1
                    first = hist[k]
                    moving[i] = math.hypot(u - first[1], v - first[2]) >= min_motion_px
                    standing[i] = math.hypot(o.x - first[3], o.y - first[4]) < 0.5
                    if exclude_standing_s > 0:
                        # Standing for the whole exclusion window: every position within 0.5 m.
                        old = hist[0]
                        excluded[i] = item.time - old[0] >= 0.99 * exclude_standing_s and all(
                            math.hypot(o.x - h[3], o.y - h[4]) < 0.5 for h in hist
                        )
            if item.time < t_score:
                for sc in scorers.values():
                    sc.process(item, None)
                continue
            camera_minutes += 1.0 / (60.0 * world.fps[item.tower])
            peak = np.zeros(n)
            for i in persons:
                peak[i] = peak_dn(objs[i], cam.height, cam.width)
            bright = peak >= min_peak_dn
            detectable = np.zeros(n, bool)
            detectable[persons] = bright[persons] & ~excluded[persons]
            shake = world.views[item.tower].shake_px(item.time)
            truth = _FrameTruth(objs, persons, detectable, bright, moving, standing, peak, shake)
            for sc in scorers.values():
                sc.process(item, truth)
            for i in persons:
                pid = f"{item.tower}/{objs[i].mover_id}"
                in_range_frames[pid] += 1
                counts["in_range"] += 1
                bright_frames[pid] += int(bright[i])
                if not bright[i]:
                    counts["dim"] += 1
                    continue
                counts["standing"] += int(standing[i])
                counts["slow"] += int(not moving[i])
                if not excluded[i]:
                    visible_any[pid] += 1
                    peaks[pid] = max(peaks.get(pid, (0.0, 0.0)), (float(peak[i]), objs[i].range_m))
    finally:
        world.close()
    need = math.ceil(min_track_s * max(world.fps.values(), default=10.0))
    out = {}
    for name, sc in scorers.items():
        s = sc.score
        s.camera_minutes = camera_minutes
        s.in_range_person_frames = counts["in_range"]
        s.dim_person_frames = counts["dim"]
        s.slow_person_frames = counts["slow"]
        s.standing_person_frames = counts["standing"]
        counted = [p for p, k in visible_any.items() if k >= need]
        s.people_in_range = sum(1 for k in in_range_frames.values() if k >= need)
        s.people = len(counted)
        s.people_detected = sum(1 for p in counted if p in sc.detected)
        s.missed = sorted((p, peaks[p][1], peaks[p][0]) for p in counted if p not in sc.detected)
        s.false_objects = len(sc.false_objects)
        bright_people = [p for p, k in bright_frames.items() if k >= need]
        s.people_bright = len(bright_people)
        s.people_bright_detected = sum(1 for p in bright_people if p in sc.detected_bright)
        out[name] = s
    return out


def night_settings(
    towers: tuple[str, ...],
    fps: float,
    crossing_rate_scale: float,
    width: int | None = None,
    height: int | None = None,
    **switches: bool | float,
) -> SimSettings:
    """Night-time settings for a detection run: every camera nuisance on, sensors off."""
    fields: dict = dict(
        start_time=NIGHT_START,
        towers=towers,
        frame_rate_hz=fps,
        frame_width=width,
        frame_height=height,
        ugs=False,
        uas=False,
        crossing_rate_scale=crossing_rate_scale,
        sensor_noise=True,
        gain_drift=True,
        shimmer=True,
        vegetation=True,
        shake=True,
    )
    fields.update(switches)
    return SimSettings(**fields)


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
    from dataclasses import replace

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
        scores = score_towers(site, settings, args.seed, args.minutes * 60.0, configs)
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
