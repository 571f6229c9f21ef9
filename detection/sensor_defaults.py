"""The detector a sensor kind gets by default, and the sensor kind found from the input.

``vigil detect`` (and ``vigil edge camera``'s choice of sensor kind) start here, and
``benchmarks/bench_detection_scenes.py`` measures the same composition (its method
:data:`THERMAL_METHOD`), so the benchmark's figures are those of what users run.

Sensor kinds:

- **thermal**: the tower settings (:meth:`DetectorConfig.for_tower`, ECC shake
  registration) with the neighbourhood test (``neighbour_px=1``), the slow background on
  every second frame (:data:`THERMAL_SLOW_EVERY`, for speed) and the track-before-detect
  stage after the detector (:class:`~vigil.detection.tbd.SlowMoverDetector` with
  :class:`~vigil.detection.tbd_params.TbdParams`'s defaults): the configuration that meets
  the development scenes' line at 8 of 10 evaluation seeds (``vigil+n1+tbd`` in
  BENCHMARKS.md, issue 24; benchmark method ``default``). The ``lk`` registration, about a
  quarter of the pair's time cheaper, met the four lines at 18 of 25 calibration seeds
  against ECC's 20 and is not in it. The stage's times are in seconds, so it follows the frame rate;
  it needs frames of at least 8x8 pixels and 0.1 to 1000 frames a second. The start-up
  calibration (``calibrate=True``) is not in it: on the calibration seeds 901-925 the
  default with it met the four lines at 19 of 25 seeds against 20 (bodies 278/292 against
  279/292), though on the real empty clip ``v2-latlon.cptv`` it cuts false detections from
  1,195 to 45 (its constants were chosen on that clip); :func:`sensor_plan` turns it on.
  Nor is the small-box rule of a noisy camera (:func:`with_noisy_rule`: a noise meter,
  :data:`NOISE_METER`, and :class:`NoisyCameraParams`): judged on the calibration seeds
  with the scenes' held noise (``SceneSpec.held_noise``) it cut false blobs but lost more
  bodies than the rule stated beforehand allowed (BENCHMARKS.md, issue 24); opt-in.
- **daylight**: plain video settings, :class:`DetectorConfig`'s defaults (a 5x5 majority
  filter, both warmer and colder changes, no registration, no stage), as ``vigil detect``
  used before sensor kinds (CDnet highway F1 0.934).

``auto`` decides from the input (:func:`guess_sensor`): a CPTV file, or frames with one
channel or whose colour channels agree (:func:`is_grey`), are thermal; colour frames are
daylight. Resolution changes no default today (the sizes are in pixels, the times in
seconds); :meth:`SensorPlan.settings` records the image size and frame rate with the
choice for the log and the summary.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from vigil.detection.background import DetectionError
from vigil.detection.calibration import CalibrationParams
from vigil.detection.detector import DetectorConfig, FrameResult, MotionDetector
from vigil.detection.objects import CameraGeometry, PixelDetection
from vigil.detection.settings import SensorKind
from vigil.detection.tbd import Box, SlowMoverDetector
from vigil.detection.tbd_params import TbdParams

log = logging.getLogger(__name__)

#: What ``--sensor`` accepts: a kind, or ``auto`` (found from the input).
SensorChoice = Literal["thermal", "daylight", "auto"]
SENSOR_CHOICES: tuple[str, ...] = ("thermal", "daylight", "auto")

#: The benchmark's name of the thermal default (``bench_detection_scenes --methods``; built
#: by :func:`sensor_plan`). ``vigil+n1+tbd`` there is the same but for the slow background
#: on every frame (the default until issue 24's speed round).
THERMAL_METHOD = "default"

#: A colour frame is grey when its channels differ by at most this many grey levels (0-255)
#: at :data:`GREY_SHARE` of its pixels: a grey picture through a lossy codec keeps its
#: channels within a level or two; daylight colour differs by tens of levels.
GREY_TOLERANCE = 6
GREY_SHARE = 0.99

#: Frames ``auto`` looks at.
PEEK_FRAMES = 5

#: Objects the track-before-detect stage reports are numbered from here (the detector's
#: own objects count from 1).
STAGE_OBJECTS = 1_000_000


def is_grey(frame: NDArray) -> bool:
    """Whether a frame is a grey picture: one channel, or colour channels that agree within
    :data:`GREY_TOLERANCE` levels at :data:`GREY_SHARE` of its pixels (every second pixel
    of every second row is looked at)."""
    f = np.asarray(frame)
    if f.ndim == 2 or (f.ndim == 3 and f.shape[2] == 1):
        return True
    if f.ndim != 3 or f.shape[2] < 3:
        raise DetectionError(f"frame shape {f.shape}; expected (h, w) or (h, w, 3)")
    c = f[::2, ::2, :3].astype(np.int32)
    spread = np.max(c, axis=2) - np.min(c, axis=2)
    return float(np.quantile(spread, GREY_SHARE)) <= GREY_TOLERANCE


def guess_sensor(frames: Iterable[NDArray], path: str | None = None) -> tuple[SensorKind, str]:
    """The sensor kind of an input and why: ``("thermal", "CPTV file")``, ``("thermal",
    "grey frames")`` or ``("daylight", "colour frames")``. ``frames`` are the input's first
    frames (all of them are looked at; :data:`PEEK_FRAMES` is enough); ``path`` its name.

    >>> guess_sensor([np.zeros((4, 4), np.uint16)])
    ('thermal', 'grey frames')
    >>> colour = np.zeros((4, 4, 3), np.uint8); colour[..., 2] = 200
    >>> guess_sensor([colour])
    ('daylight', 'colour frames')
    """
    if path is not None and str(path).lower().endswith(".cptv"):
        return "thermal", "CPTV file"
    seen = [np.asarray(f) for f in frames]
    if seen and all(is_grey(f) for f in seen):
        return "thermal", "grey frames"
    return "daylight", "colour frames"


@dataclass(frozen=True)
class NoisyCameraParams:
    """A stricter rule for small boxes on a camera whose noise holds its value for frames.

    The start-up calibration (:class:`CalibrationParams`, here a noise meter only: frames
    ``lag`` apart, so that noise that holds its value for a second counts in full) gives
    the camera's level (grey levels). Where it is at least ``noise_grey``, a detector box
    of at most ``small_px`` pixels is kept only where the track-before-detect stage's
    statistic (standard deviations of evidence integrated over seconds) reaches
    ``small_sd`` within a pixel of it, or where the detector's object it belongs to has
    moved ``move_px`` pixels or more from where it was first boxed (0 is off): a single
    pixel of held noise lifts itself over the background model's radius and the stage's
    few-frame support for as long as it holds, but not for the several seconds the stage
    integrates, and it does not move; a small body faster than the stage's velocities
    moves. Until the stage has warmed up such boxes wait (or move). Larger boxes, and
    every box on a quieter camera, are as before.
    """

    noise_grey: float = 5.0
    small_px: int = 4
    small_sd: float = 3.5
    move_px: float = 0.0


@dataclass(frozen=True)
class SensorPlan:
    """A sensor kind's detector settings: the detector's and, when not ``None``, the
    track-before-detect stage's. ``why`` says how the kind was chosen."""

    sensor: SensorKind
    config: DetectorConfig
    tbd: TbdParams | None = None
    why: str = "given"
    noisy: NoisyCameraParams | None = None

    def settings(
        self, shape: tuple[int, int] | None = None, fps: float | None = None
    ) -> dict[str, Any]:
        """The settings in effect as plain JSON values, for a log line, a summary and
        camera health (at most 16 keys): sensor kind and why, the radius floor (grey
        levels), filter window (px), warm-up (frames), neighbourhood test (px, levels),
        shake registration, the stage (on/off, block s, threshold sd), the noise level
        from which the small-box rule holds (grey levels, :class:`NoisyCameraParams`), and
        with them the image size (px) and frame rate (frames/s)."""
        c = self.config
        out: dict[str, Any] = {
            "sensor": self.sensor,
            "sensor_from": self.why,
            "threshold_grey": c.background.radius_min,
            "filter_px": c.filter_size,
            "warmup_frames": c.warmup_frames,
            "warm_only": c.background.warm_only,
            "neighbour_px": c.neighbour_px,
            "neighbour_margin": c.neighbour_margin,
            "registration": c.register_method if c.register else "off",
            "slow_background": c.slow is not None,
            "tbd": self.tbd is not None,
        }
        if self.tbd is not None:
            out["tbd_block_s"] = self.tbd.block_s
            out["tbd_threshold_sd"] = self.tbd.threshold
        if self.noisy is not None:
            out["noisy_from_grey"] = self.noisy.noise_grey
        if shape is not None:
            out["size"] = f"{int(shape[1])}x{int(shape[0])}"
        if fps is not None:
            out["fps"] = round(float(fps), 3)
        return out

    def describe(self, shape: tuple[int, int] | None = None, fps: float | None = None) -> str:
        """One line: ``sensor thermal (grey frames): threshold_grey=8 ...``."""
        s = self.settings(shape, fps)
        rest = " ".join(f"{k}={v}" for k, v in s.items() if k not in ("sensor", "sensor_from"))
        return f"sensor {s['sensor']} ({s['sensor_from']}): {rest}"

    def build(
        self,
        shape: tuple[int, int],
        fps: float,
        geometry: CameraGeometry | None = None,
        roi: NDArray[np.uint8] | None = None,
        camera_id: str = "camera",
    ) -> SensorDetector:
        """The detector for frames of ``(height, width)`` at ``fps`` frames a second."""
        return SensorDetector(self, shape, fps, geometry, roi, camera_id)


#: The thermal default's slow background learns and classifies on every this-many-th frame
#: (``SlowParams.every``; its mask repeated between): judged on the calibration seeds
#: 901-925 against every frame (issue 24's speed line), the same 20 of 25 seeds meeting all
#: four lines and the same 279 of 292 bodies, seed by seed; pixel F1 higher at 17 seeds.
#: Four consensus samples instead of eight (``BackgroundParams.samples``) lost a body there
#: (seed 923), so that stays 8.
THERMAL_SLOW_EVERY = 2


def thermal_config(calibrate: bool = False) -> DetectorConfig:
    """The thermal default's detector settings: the tower's with ``neighbour_px=1`` and the
    slow background on every :data:`THERMAL_SLOW_EVERY`-th frame; with ``calibrate`` also
    the start-up calibration (:class:`CalibrationParams`'s defaults)."""
    tower = DetectorConfig.for_tower()
    slow = replace(tower.slow, every=THERMAL_SLOW_EVERY) if tower.slow is not None else None
    cfg = replace(tower, neighbour_px=1, slow=slow)
    return replace(cfg, calibration=CalibrationParams()) if calibrate else cfg


#: The noise meter of :class:`NoisyCameraParams`: the start-up calibration measuring frames
#: ``lag`` apart, changing no setting of the detector itself (``radius_k``, ``margin_k`` 0).
NOISE_METER = CalibrationParams(frames=20, lag=10, quantile=0.9, radius_k=0.0, margin_k=0.0)


def with_noisy_rule(plan: SensorPlan, noisy: NoisyCameraParams | None = None) -> SensorPlan:
    """``plan`` with the small-box rule of a noisy camera (:class:`NoisyCameraParams`,
    its defaults when ``noisy`` is ``None``) and the noise meter (:data:`NOISE_METER`) as
    its start-up calibration; the plan must have the track-before-detect stage."""
    if plan.tbd is None:
        raise DetectionError("the small-box rule needs the track-before-detect stage")
    config = replace(plan.config, calibration=NOISE_METER)
    return replace(plan, config=config, noisy=noisy or NoisyCameraParams())


def sensor_plan(
    sensor: SensorKind, why: str = "given", calibrate: bool | None = None
) -> SensorPlan:
    """The defaults of a sensor kind (this module's docstring); ``calibrate`` (``None``:
    the kind's default) turns the start-up calibration on or off: ``True`` its defaults
    (:class:`CalibrationParams`), ``False`` none."""
    if sensor == "thermal":
        plan = SensorPlan("thermal", thermal_config(), TbdParams(), why)
    elif sensor == "daylight":
        plan = SensorPlan("daylight", DetectorConfig(), None, why)
    else:
        raise DetectionError(f"sensor {sensor!r}; expected 'thermal' or 'daylight'")
    if calibrate is None:
        return plan
    cal = CalibrationParams() if calibrate else None
    return replace(plan, config=replace(plan.config, calibration=cal))


def detector_for(
    sensor: SensorKind,
    shape: tuple[int, int],
    fps: float,
    geometry: CameraGeometry | None = None,
    roi: NDArray[np.uint8] | None = None,
    camera_id: str = "camera",
) -> SensorDetector:
    """A sensor kind's default detector for frames of ``(height, width)`` at ``fps``."""
    return sensor_plan(sensor).build(shape, fps, geometry, roi, camera_id)


class SensorDetector:
    """A sensor kind's detector: ``process(frame, time_s, index)`` gives a
    :class:`~vigil.detection.detector.FrameResult`, as :class:`MotionDetector` does.

    With the track-before-detect stage the result is the pair's: the detector's detections
    whose boxes the stage supports, its mask as the pair leaves it, and on a frame that ends
    a block the stage's own boxes as pixel detections (score 1, objects numbered from
    :data:`STAGE_OBJECTS`, one number while a box overlaps the last block's; without a
    camera model only: with one they are not placed on the ground and are left out).
    Boxes are in the registered image, as the detector's are.
    """

    def __init__(
        self,
        plan: SensorPlan,
        shape: tuple[int, int],
        fps: float,
        geometry: CameraGeometry | None = None,
        roi: NDArray[np.uint8] | None = None,
        camera_id: str = "camera",
    ) -> None:
        self.plan = plan
        self.fps = float(fps)
        self.pair: SlowMoverDetector | None = None
        if plan.tbd is not None:
            self.pair = SlowMoverDetector(
                shape, fps, plan.config, plan.tbd, geometry=geometry, roi=roi, camera_id=camera_id
            )
            self.detector = self.pair.detector
        else:
            self.detector = MotionDetector(shape, plan.config, geometry, roi, camera_id)
        self.stage_boxes = 0
        #: whether the small-box rule of a noisy camera holds (``None``: not yet measured)
        self.noisy_rule: bool | None = None
        self._first_seen: dict[int, tuple[tuple[float, float], int]] = {}
        self._last: list[tuple[Box, int]] = []
        self._next = STAGE_OBJECTS

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the frames, pixels."""
        return self.detector.shape

    def settings(self) -> dict[str, Any]:
        """:meth:`SensorPlan.settings` with this detector's size and frame rate."""
        return self.plan.settings(self.shape, self.fps)

    def process(self, frame: NDArray, time_s: float, frame_index: int | None = None) -> FrameResult:
        """The next frame's result (see the class docstring)."""
        if self.pair is None:
            return self.detector.process(frame, time_s, frame_index)
        r = self.pair.process(frame, time_s, frame_index)
        res = r.detector
        kept = set(self._small_rule(r.boxes, r.mask, res.pixel_detections, res.frame_index))
        pix = [d for d in res.pixel_detections if d.box in kept]
        pairs = list(zip(res.detections, res.detection_objects or [0] * len(res.detections),
                         strict=True))  # fmt: skip
        placed = [(d, o) for d, o in pairs if d.box is None or d.box in kept]
        if r.block_ended and self.detector.geometry is None:
            pix += self._stage_detections(r.tbd_boxes, res)
        return replace(
            res,
            mask=r.mask,
            pixel_detections=pix,
            detections=[d for d, _ in placed],
            detection_objects=[o for _, o in placed] if res.detection_objects else [],
        )

    def noise_grey(self) -> float | None:
        """The camera's noise level from the start-up calibration (grey levels), or ``None``
        before it is measured or without one."""
        level = self.detector.calibration_report.get("noise_grey")
        return None if level is None else float(level)

    def _small_rule(
        self, boxes: list[Box], mask: NDArray[np.uint8], pix: list[PixelDetection], frame: int
    ) -> list[Box]:
        """The pair's boxes less the small ones a noisy camera's stage does not support
        and that have not moved (:class:`NoisyCameraParams`; ``pix`` the detector's pixel
        detections of frame ``frame``); their pixels leave ``mask``."""
        rule = self.plan.noisy
        level = self.noise_grey()
        if rule is None or self.pair is None or level is None:
            return boxes
        if self.noisy_rule is None:
            self.noisy_rule = level >= rule.noise_grey
            log.info("camera %s: noise %.0f grey levels (frames %d apart): small-box rule %s",
                     self.detector.camera_id, level, self.detector.calibration_report["lag"],
                     "on" if self.noisy_rule else "off")  # fmt: skip
        if not self.noisy_rule:
            return boxes
        moved: set[Box] = set()
        if rule.move_px > 0:
            for d in pix:
                first = self._first_seen.setdefault(d.object, (d.centroid, frame))[0]
                self._first_seen[d.object] = (first, frame)
                if math.hypot(d.centroid[0] - first[0], d.centroid[1] - first[1]) >= rule.move_px:
                    moved.add(d.box)
            if len(self._first_seen) > 4 * len(pix) + 256:  # objects not seen for a while
                self._first_seen = {k: v for k, v in self._first_seen.items()
                                    if v[1] >= frame - 50}  # fmt: skip
        stage = self.pair.stage
        warm = stage.blocks > stage.warmup_blocks
        h, w = stage.shape
        out, dropped = [], []
        for b in boxes:
            u0, v0 = max(int(b[0]) - 1, 0), max(int(b[1]) - 1, 0)
            u1, v1 = min(math.ceil(b[2]) + 1, w), min(math.ceil(b[3]) + 1, h)
            small = (b[2] - b[0]) * (b[3] - b[1]) <= rule.small_px
            ok = not small or b in moved or (
                warm and u1 > u0 and v1 > v0
                and float(stage.statistic[v0:v1, u0:u1].max()) >= rule.small_sd
            )  # fmt: skip
            (out if ok else dropped).append(b)
        for b in dropped:
            if not any(_touch(b, k, 0.0) for k in out):
                mask[int(b[1]) : math.ceil(b[3]), int(b[0]) : math.ceil(b[2])] = 0
        return out

    def _stage_detections(self, boxes: list[Box], res: FrameResult) -> list[PixelDetection]:
        """The stage's boxes of this block as pixel detections, numbered across blocks."""
        out, now = [], []
        for b in boxes:
            num = next((n for q, n in self._last if _touch(b, q)), None)
            if num is None:
                num, self._next = self._next, self._next + 1
            now.append((b, num))
            u0, v0, u1, v1 = b
            out.append(
                PixelDetection(
                    camera=self.detector.camera_id,
                    time=res.time,
                    frame=res.frame_index,
                    box=b,
                    centroid=((u0 + u1) / 2.0, (v0 + v1) / 2.0),
                    area_px=int(round((u1 - u0) * (v1 - v0))),
                    score=1.0,
                    object=num,
                )  # fmt: skip
            )
        self._last = now
        self.stage_boxes += len(out)
        return out


def _touch(a: Box, b: Box, grow: float = 1.0) -> bool:
    return a[0] < b[2] + grow and a[2] > b[0] - grow and a[1] < b[3] + grow and a[3] > b[1] - grow
