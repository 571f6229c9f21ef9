"""Motion detection scored on the simulator's tower video: recall of people, false detections.

The world simulator renders each tower's thermal frames with the truth of every body in
them. :func:`score_towers` runs a detector per tower (made by the caller, e.g. a
``vigil.detection.MotionDetector`` with the tower's settings and camera model) over those
frames and scores its wire detections against the truth (:mod:`.eval_detection_score`).
:func:`night_settings` gives the runs' simulator settings. ``tests/test_detection_sim.py``
runs a short single-tower case; ``benchmarks/bench_detection_sim.py`` runs the longer
multi-tower one recorded in ``BENCHMARKS.md``.

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
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from collections.abc import Mapping

import numpy as np

from vigil.geo.site import Site

from .eval_detection_score import (
    DetectorFactory,
    DetectorScorer,
    FrameTruth,
    SimScore,
    peak_dn,
)
from .settings import SimSettings
from .world import CameraFrame, World

#: 23:00 local (Arizona, UTC-7) on the simulator's default start day: night, crossings busy.
NIGHT_START = SimSettings().start_time + 6 * 3600.0


def score_towers(
    site: Site,
    settings: SimSettings,
    seed: int,
    duration_s: float,
    detectors: Mapping[str, DetectorFactory],
    warmup_s: float = 30.0,
    min_peak_dn: float = 8.0,
    min_motion_px: float = 1.0,
    motion_window_s: float = 5.0,
    exclude_standing_s: float = 0.0,
    min_track_s: float = 2.0,
    match_px: float = 2.0,
) -> dict[str, SimScore]:
    """Run detectors on every simulated tower over ``duration_s`` seconds and score them.

    Each setting in ``detectors`` gets its own detector per tower; all of them see the same
    frames, rendered once.

    Parameters
    ----------
    site
        The sector (``vigil.geo.site.Site``), e.g. ``vigil.config.load_default().site``.
    settings
        Simulator settings (``cameras="render"``); their nuisances are what is scored.
    seed
        The world's seed.
    duration_s
        Seconds simulated, warm-up included.
    detectors
        Detector settings by name, each as the factory that makes its detector for a tower
        from the tower id, its camera as installed (:class:`~vigil.geo.camera.PinholeCamera`)
        and the local frame.
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
    world = World(site, settings, seed)
    scorers = {name: DetectorScorer(make, world, match_px) for name, make in detectors.items()}
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
            if not isinstance(item, CameraFrame) or item.image is None:
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
            truth = FrameTruth(objs, persons, detectable, bright, moving, standing, peak, shake)
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
