"""The score of a motion detector on simulated tower video, and the matching that fills it.

:class:`DetectorScorer` runs one detector setting on every tower of a world and matches each
frame's detections against that frame's truth (:class:`FrameTruth`); :class:`SimScore` holds
the counts and the figures made of them. The protocol (warm-up, matching, who is detectable,
how false detections count) is :mod:`vigil.sim.eval_detection`'s.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from vigil.geo.camera import PinholeCamera
from vigil.geo.frames import LocalFrame
from vigil.ingest.schema import CameraDetection

from .thermal import ObjectTruth, coverage
from .world import CameraFrame, World


class TowerFrameResult(Protocol):
    """What a detector made of one frame, as far as scoring needs it."""

    shift_px: tuple[float, float]  # its shake estimate: image content moved by (dx, dy)
    detections: list[CameraDetection]
    detection_objects: Sequence[int]  # the detector's object number behind each detection


class TowerDetector(Protocol):
    """A motion detector for one tower's frames (``vigil.detection.MotionDetector``)."""

    def process(
        self, frame: np.ndarray, time_s: float, frame_index: int | None = None
    ) -> TowerFrameResult:
        """What the detector makes of one frame at ``time_s`` (UTC s)."""


#: Makes a tower's detector from the tower id, its camera as installed and the local frame.
DetectorFactory = Callable[[str, PinholeCamera, LocalFrame], TowerDetector]


@dataclass
class SimScore:
    """Scores of a detector run on simulated tower video (protocol: :mod:`.eval_detection`)."""

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


def box_hits(grown: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """Which of the ``(n, 4)`` boxes ``grown`` (left, top, right, bottom; pixels) overlap
    ``box`` (the same order): a boolean per row."""
    return (
        (grown[:, 0] < box[2])
        & (grown[:, 2] > box[0])
        & (grown[:, 1] < box[3])
        & (grown[:, 3] > box[1])
    )


def peak_dn(obj: ObjectTruth, rows: int, cols: int) -> float:
    """Grey levels the body adds to its most covered pixel, as the simulator draws it."""
    u0, v0, u1, v1 = obj.box
    _, _, cov = coverage(u0, u1, v0, v1, rows, cols)
    return float(obj.contrast_dn * cov.max()) if cov.size else 0.0


@dataclass
class FrameTruth:
    """The truth of one scored frame, worked out once for every detector run on it."""

    objs: list[ObjectTruth]
    persons: np.ndarray  # indices of in-range people
    detectable: np.ndarray  # per object: in-range person, bright (and not standing if excluded)
    bright: np.ndarray
    moving: np.ndarray  # image moved at least min_motion_px in motion_window_s
    standing: np.ndarray
    peak: np.ndarray
    shake_px: tuple[float, float]  # the simulator's shake: image content moves by -shake


class DetectorScorer:
    """One detector setting run on every simulated tower, and its running score.

    Parameters
    ----------
    make_detector
        Makes the setting's detector for a tower (its id, camera as installed, local frame).
    world
        The simulated world whose towers are scored.
    match_px
        Pixels a truth box is grown by on each side when matching detections.
    """

    def __init__(self, make_detector: DetectorFactory, world: World, match_px: float) -> None:
        self.detectors = {
            k: make_detector(k, v.camera, world.frame) for k, v in world.views.items()
        }
        self.score = SimScore(tuple(sorted(world.views)))
        self.match_px = match_px
        self.detected: set[str] = set()
        self.detected_bright: set[str] = set()
        self.false_objects: set[tuple[str, int]] = set()

    def process(self, item: CameraFrame, truth: FrameTruth | None) -> None:
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
            hit = box_hits(grown, b)
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
