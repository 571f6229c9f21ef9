"""The motion detector of one camera, and a pool that runs many cameras' detectors in threads.

Per frame: grey levels (colour converted, 16-bit thermal scaled) -> optional registration
against shake -> background model -> majority filter -> connected components -> blobs ->
detections (:mod:`vigil.detection.objects`). The kernels release the GIL, so a thread per camera
uses every core.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from numpy.typing import NDArray

from vigil.detection import kernels
from vigil.detection.background import (
    BackgroundParams,
    DetectionError,
    SampleConsensusModel,
    SlowBackground,
    SlowParams,
)
from vigil.detection.blobs import BlobFinder, Blobs, dilate
from vigil.detection.calibration import CalibrationParams, StartupCalibration
from vigil.detection.centroid import refine_centroids
from vigil.detection.objects import (
    CameraGeometry,
    ObjectFollower,
    ObjectParams,
    PixelDetection,
)
from vigil.detection.registration import ShakeCompensator
from vigil.detection.steps import LevelSteps, StepParams
from vigil.ingest.schema import CameraDetection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of a camera's motion detector.

    Parameters
    ----------
    background
        The background model.
    filter_size
        Majority filter window on the mask, pixels (odd; 1 is off). 5 suits plain video
        where objects are tens of pixels; tower cameras, whose distant people are a few
        pixels, use 1 and rely on persistence (see :meth:`for_tower`).
    register
        Estimate and undo camera shake before the background model.
    register_method
        How the shake is estimated (:class:`~vigil.detection.registration.ShakeCompensator`):
        ``"ecc"`` (OpenCV's ECC on a half-size copy) or ``"lk"`` (a numba Gauss-Newton
        translation with gain and offset on a copy at most 480 pixels wide: half of
        640x480, a quarter of 1920x1080; on the development scenes as close to the true
        shake as ECC, at a fraction of its time); opt-in ``"lk4"``: on a copy half as wide.
    objects
        Blob -> detection settings.
    weighted_centroids
        Replace each blob's mask centroid by its centroid weighted by difference from the
        background (:mod:`vigil.detection.centroid`): sub-pixel positions for targets a pixel or
        two tall, whose ground range otherwise jumps by tens of metres per pixel row.
    slow
        A second, slow background for warm bodies that creep or stand (its foreground is
        added to the sample-consensus model's); ``None`` is off.
    neighbour_px
        Neighbourhood test (0 is off): a foreground pixel is kept only where the frame
        (gain-compensated) is warmer than every background sample of every pixel within
        ``neighbour_px`` pixels by more than ``neighbour_margin`` grey levels (the slow
        background's foreground: warmer than its mean over the neighbourhood), and a
        connected blob is kept whole when one of its pixels passes. A ground
        texture, a swaying stem or a horizon moved by a pixel or two by shimmer, sway or
        residual shake only shows values its neighbours' background already holds; a warm
        body shows values warmer than any of them. Thermal (``warm_only``) only.
    neighbour_margin
        Grey levels (0-255) by which a pixel must exceed its neighbourhood's warmest
        background value for the neighbourhood test.
    calibration
        Start-up calibration of noise and nuisance levels
        (:mod:`vigil.detection.calibration`): after its first frames the radius floor
        follows the camera's noise and the neighbourhood margin each region's; ``None``
        is off. The chosen values are logged and kept in
        :attr:`MotionDetector.calibration_report`.
    cold_bodies
        Report bodies colder than the background as well as warmer (a two-sided change
        test; thermal crossover makes people colder than a sun-heated ground by day): the
        sample-consensus model reports both signs (its ``warm_only`` is overridden), the
        slow background both signs (:class:`SlowParams` ``two_sided``), and each blob's
        weighted centroid weighs the pixels on its own side of the background.
    steps
        Global level steps (:class:`StepParams`): each frame's gain and offset against the
        background are fitted, and a frame the plain gain compensation would leave off by
        more than ``step_dn`` somewhere in its range (a flat-field correction's level jump,
        an AGC step) is mapped back onto the background's levels; a frame the fit cannot
        explain restarts the background. ``None`` is off (gain compensation only).
    warmup_frames
        Frames after the model (re)starts (the first frame, a camera turned) during which
        no detections are emitted: the model starts each pixel's samples from its
        neighbours, and where the ground changes from pixel to pixel that leaves "ghosts"
        until it has learnt (measured on the simulator's towers at night: hundreds of
        static false detections per tower in the first 25 frames, none after 35).
    """

    background: BackgroundParams = field(default_factory=BackgroundParams)
    filter_size: int = 5
    register: bool = False
    register_method: str = "ecc"
    objects: ObjectParams = field(default_factory=ObjectParams)
    weighted_centroids: bool = False
    slow: SlowParams | None = None
    warmup_frames: int = 0
    neighbour_px: int = 0
    neighbour_margin: int = 4
    calibration: CalibrationParams | None = None
    cold_bodies: bool = False
    steps: StepParams | None = None

    def __post_init__(self) -> None:
        if self.cold_bodies and self.neighbour_px:
            raise DetectionError("neighbour_px tests warm bodies only; turn cold_bodies off")
        if not 0 <= self.neighbour_px <= 7:
            raise DetectionError(f"neighbour_px={self.neighbour_px!r}; expected 0 to 7 pixels")
        if not 0 <= self.neighbour_margin <= 255:
            raise DetectionError(
                f"neighbour_margin={self.neighbour_margin!r}; expected 0 to 255 grey levels"
            )
        if self.register_method not in ("ecc", "lk", "lk4"):
            raise DetectionError(
                f"register_method={self.register_method!r}; expected 'ecc', 'lk' or 'lk4'"
            )
        if self.neighbour_px and not self.background.warm_only:
            raise DetectionError("neighbour_px needs a warm-only background (thermal settings)")

    @classmethod
    def for_tower(cls) -> DetectorConfig:
        """Settings for a thermal tower camera: small targets, shake, shimmer, brush.

        Scored on the simulator's tower video (``tests/test_detection_sim.py``,
        ``benchmarks/bench_detection_sim.py``): a person at 2-3 km is a third of a pixel
        wide and a pixel tall and lifts his pixel by 8-25 grey levels at night, so the
        radius floor is 8 (sensor noise is under 1 level; the adaptive radius and the
        flicker level widen it where brush and shimmer move). A neighbour of an updated
        pixel learns its own value (``spread_centre=False``): far rows of a tower's picture
        each see a different band of ground, tens of metres apart, and planting a
        neighbour's value in a pixel's samples leaves it foreground for seconds. Only
        warmer than the background is reported (``warm_only``): the cold trace a slow
        group leaves where the model had learnt it is not a detection. A slow background
        (:class:`~vigil.detection.background.SlowBackground`) adds warm bodies whose image
        creeps (groups walking straight at the tower 2-3 km out) or whose contrast is
        within the flicker (by day), which the sample-consensus model learns or misses.
        """
        return cls(
            background=BackgroundParams(
                radius_min=8,
                radius_scale=4.0,
                flicker_step=8,
                spread_centre=False,
                warm_only=True,
            ),
            filter_size=1,
            register=True,
            # weighted centroids scatter ~0.1 px (range IQR 2 m at 1 km, 7 m at 1.5 km)
            objects=ObjectParams(
                min_hits=6, window=8, max_missed=4, pixel_sigma=0.2, pointing_sigma_deg=0.01
            ),
            weighted_centroids=True,
            slow=SlowParams(),
            warmup_frames=35,
            steps=StepParams(),
        )


class ThermalScaler:
    """Map 16-bit thermal counts to 8-bit grey levels with a fixed linear map.

    The map is set from the first frame's 1st and 99.9th percentiles, widened by
    ``margin`` of the span on each side; warmer or colder values clip. A fixed map keeps
    the background model's grey levels meaningful; slow drift is left to its gain
    compensation.
    """

    def __init__(self, margin: float = 0.25) -> None:
        self.margin = margin
        self.low: float | None = None
        self.scale = 1.0

    def __call__(self, frame: NDArray, out: NDArray[np.uint8] | None = None) -> NDArray[np.uint8]:
        """The frame as ``uint8`` grey levels."""
        f = np.asarray(frame, np.float32)
        if self.low is None:
            lo, hi = np.percentile(f, [1.0, 99.9])
            span = max(float(hi - lo), 8.0)
            self.low = float(lo) - self.margin * span
            self.scale = 255.0 / (span * (1.0 + 2.0 * self.margin))
        g = (f - self.low) * self.scale
        if out is None:
            out = np.empty(f.shape, np.uint8)
        np.clip(g + 0.5, 0, 255, out=g)
        out[:] = g
        return out


@dataclass
class FrameResult:
    """What the detector made of one frame.

    ``mask`` is the cleaned foreground mask (0 or 255; a buffer the detector reuses, copy it
    to keep it), ``blobs`` its connected regions, ``detections`` the ground detections
    (with a camera model) and ``pixel_detections`` the image-only ones (without).
    ``shift_px`` is the shake registration's estimate ``(dx, dy)``: detections are in the
    registered image, where a point seen at ``(u, v)`` in the frame lies at
    ``(u - dx, v - dy)``. ``detection_objects`` numbers the object behind each of
    ``detections`` across frames; ``unplaced`` (with ``ObjectParams.unplaced``) gives the
    confirmed blobs the ground cannot place (feet ray into sky), as pixels only.
    """

    frame_index: int
    time: float
    mask: NDArray[np.uint8]
    blobs: Blobs
    detections: list[CameraDetection]
    pixel_detections: list[PixelDetection]
    shift_px: tuple[float, float] = (0.0, 0.0)
    detection_objects: list[int] = field(default_factory=list)
    unplaced: list[PixelDetection] = field(default_factory=list)


class MotionDetector:
    """Find moving things in one camera's frames.

    Parameters
    ----------
    shape
        ``(height, width)`` of the frames, pixels.
    config
        Detector settings.
    geometry
        The camera placed on the ground; ``None`` for plain video.
    roi
        Region mask ``(height, width)``: zero where motion is never reported.
    camera_id
        Name carried by the detections (the geometry's id when one is given).

    Examples
    --------
    >>> import numpy as np
    >>> det = MotionDetector((48, 64))
    >>> still = np.full((48, 64), 90, np.uint8)
    >>> for t in range(12):
    ...     f = still.copy()
    ...     if t > 0:
    ...         f[20:28, 10 + 2 * t : 16 + 2 * t] = 200
    ...     result = det.process(f, time_s=float(t))
    >>> [(d.box, d.object) for d in result.pixel_detections]
    [((32.0, 20.0, 38.0, 28.0), 1)]
    """

    def __init__(
        self,
        shape: tuple[int, int],
        config: DetectorConfig | None = None,
        geometry: CameraGeometry | None = None,
        roi: NDArray[np.uint8] | None = None,
        camera_id: str = "camera",
    ) -> None:
        self.config = config or DetectorConfig()
        h, w = (int(s) for s in shape)
        self.shape = (h, w)
        if geometry is not None and (geometry.camera.height, geometry.camera.width) != (h, w):
            raise DetectionError(
                f"camera model image {geometry.camera.width}x{geometry.camera.height}; "
                f"expected the frames' {w}x{h}"
            )
        self.camera_id = geometry.camera_id if geometry is not None else camera_id
        cfg = self.config
        bg_params = replace(cfg.background, warm_only=False) if cfg.cold_bodies else cfg.background
        self.model = SampleConsensusModel((h, w), bg_params, roi)
        slow_params = cfg.slow
        if slow_params is not None and cfg.cold_bodies:
            slow_params = replace(slow_params, two_sided=True)
        self.slow = SlowBackground((h, w), slow_params, roi) if slow_params is not None else None
        self.steps = LevelSteps((h, w), cfg.steps) if cfg.steps is not None else None
        self._slow_fg = np.empty((h, w), np.uint8)
        self._near = np.empty((h, w), np.uint8)
        self._queue = np.empty(h * w if self.config.neighbour_px else 0, np.int64)
        self._no_mean = np.zeros((1, 1), np.float32)
        self._no_margin = np.zeros((1, 1), np.uint8)
        self._no_words = np.zeros((0, 0), np.uint64)
        cal = self.config.calibration
        self.calibrator = StartupCalibration((h, w), cal) if cal is not None else None
        self._margin: NDArray[np.uint8] | int = self.config.neighbour_margin
        self.calibration_report: dict = {}
        self.blob_finder = BlobFinder((h, w), self.config.filter_size)
        self.follower = ObjectFollower(self.camera_id, self.config.objects, geometry)
        reg = self.config.register_method
        self.registration = ShakeCompensator.made_for((h, w), reg) if cfg.register else None
        self.thermal = ThermalScaler()
        self._grey = np.empty((h, w), np.uint8)
        self._fg = np.empty((h, w), np.uint8)
        self.frames = 0

    @property
    def geometry(self) -> CameraGeometry | None:
        """The camera model in use."""
        return self.follower.geometry

    def set_geometry(self, geometry: CameraGeometry | None) -> None:
        """Change the camera model (the camera panned or tilted): start learning afresh."""
        self.follower.geometry = geometry
        self.follower.reset()
        self.model.frames_seen = 0
        if self.slow is not None:
            self.slow.reset()
        if self.registration is not None:
            self.registration = ShakeCompensator.made_for(self.shape, self.config.register_method)

    def to_grey(self, frame: NDArray) -> NDArray[np.uint8]:
        """A frame as ``uint8`` grey levels: colour (BGR) converted, 16-bit thermal scaled."""
        frame = np.asarray(frame)
        if frame.shape[:2] != self.shape:
            raise DetectionError(
                f"frame {frame.shape[1] if frame.ndim > 1 else '?'}x{frame.shape[0]}; "
                f"expected {self.shape[1]}x{self.shape[0]}"
            )
        if frame.ndim == 3 and frame.shape[2] in (3, 4):
            code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
            if frame.dtype != np.uint8:
                raise DetectionError(f"colour frame of {frame.dtype}; expected uint8")
            cv2.cvtColor(frame, code, dst=self._grey)
            return self._grey
        if frame.ndim != 2:
            raise DetectionError(f"frame shape {frame.shape}; expected (h, w) or (h, w, 3)")
        if frame.dtype == np.uint8:
            return np.ascontiguousarray(frame)
        if frame.dtype in (np.uint16, np.int16, np.int32, np.float32, np.float64):
            return self.thermal(frame, self._grey)
        raise DetectionError(f"frame dtype {frame.dtype}; expected uint8, uint16 or float")

    def process(self, frame: NDArray, time_s: float, frame_index: int | None = None) -> FrameResult:
        """Detect motion in the next frame.

        Parameters
        ----------
        frame
            Grey ``uint8``, colour ``uint8 (h, w, 3)`` BGR, or thermal ``uint16`` counts.
        time_s
            Frame time, seconds (UTC since the epoch for wire detections).
        frame_index
            The frame's number; counts from 1 when omitted.
        """
        self.frames += 1
        index = self.frames if frame_index is None else int(frame_index)
        grey = self.to_grey(frame)
        shift = (0.0, 0.0)
        if self.registration is not None:
            grey = self.registration(grey)
            shift = self.registration.last_shift
        if self.steps is not None and self.model.frames_seen > 0:
            grey = self.steps(grey, self.model)
            if self.steps.last == "reset":
                log.info("camera %s: frame unlike its background; relearning", self.camera_id)
                if self.slow is not None:
                    self.slow.reset()
                self.follower.reset()
        cal = self.calibrator
        if cal is not None and not cal.done and cal.add(grey):
            self._calibrated()
        fg = self.model.apply(grey, self._fg)
        if self.config.neighbour_px > 0:
            self._neighbour_test(grey, fg)
        if self.slow is not None:
            slow = self.slow.apply(grey, float(time_s), self.model.gain, self._slow_fg, shift)
            if self.config.neighbour_px > 0:
                self._neighbour_test(grey, slow, self.slow.mean)
            apart = self.config.slow.apart_px
            if apart > 0:
                # Where the sample-consensus model sees a body, its shape is the one used.
                near = dilate(fg, 2 * apart + 1, self._near)
                np.bitwise_and(slow, np.bitwise_not(near), out=slow)
            np.bitwise_or(fg, slow, out=fg)
        blobs = self.blob_finder(fg)
        if self.config.weighted_centroids:
            blobs = refine_centroids(
                blobs, grey, self.model.samples, pad=self._centroid_pad,
                warm_only=self.config.background.warm_only,
                per_box_sign=self.config.cold_bodies,
            )  # fmt: skip
        objs = self.follower.update(blobs, float(time_s), index)
        if self.model.frames_seen <= self.config.warmup_frames:
            for kept in (objs.detections, objs.pixel_detections, objs.detection_objects):
                kept.clear()
            objs.unplaced.clear()
        return FrameResult(
            frame_index=index,
            time=float(time_s),
            mask=self.blob_finder.clean,
            blobs=blobs,
            detections=objs.detections,
            pixel_detections=objs.pixel_detections,
            shift_px=shift,
            detection_objects=objs.detection_objects,
            unplaced=objs.unplaced,
        )

    @property
    def _centroid_pad(self) -> int:
        """Pixels around a blob's box that its weighted moments take in: one, or two PSF
        standard deviations where the optics blur (a blurred body's warmth reaches further)."""
        return max(1, math.ceil(2.0 * self.config.objects.psf_sigma_px))

    def _calibrated(self) -> None:
        """Apply the start-up calibration's levels and log them."""
        cal = self.calibrator
        bg = self.model.params
        floor = cal.radius_floor(bg.radius_min)
        self.model.params = replace(bg, radius_min=floor, radius_max=max(bg.radius_max, floor))
        margin = cal.margin_map(self.config.neighbour_margin)
        self._margin = margin
        self.calibration_report = {
            **cal.report,
            "radius_min": floor,
            "neighbour_margin": {
                "min": int(margin.min()),
                "median": float(np.median(margin)),
                "max": int(margin.max()),
            },
        }
        log.info("camera %s start-up calibration: %s", self.camera_id, self.calibration_report)

    def _neighbour_test(
        self, grey: NDArray[np.uint8], fg: NDArray[np.uint8], mean: NDArray | None = None
    ) -> None:
        """Clear the blobs of ``fg`` with no pixel warmer than its neighbourhood's background
        (:func:`vigil.detection.kernels.neighbour_filter`): the warmest of the model's
        samples, or with ``mean`` (``float32``, grey levels) that mean rounded; the frame is
        brought onto the model's levels by its gain estimate first."""
        margin = self._margin
        use_map = isinstance(margin, np.ndarray)
        words = fg.view(np.uint64) if self.shape[1] % 8 == 0 else self._no_words
        kernels.neighbour_filter(
            fg, grey, float(self.model.gain), self.model.samples,
            self._no_mean if mean is None else mean, mean is not None, self.config.neighbour_px,
            margin if use_map else self._no_margin, 0 if use_map else int(margin), use_map,
            self._queue, words,
        )  # fmt: skip


class DetectorPool:
    """Run several cameras' detectors side by side in threads.

    The numba kernels and most OpenCV calls release the GIL, so ``max_workers`` threads
    keep that many cores busy.

    Parameters
    ----------
    detectors
        One detector per camera.
    max_workers
        Threads; defaults to the number of detectors.
    """

    def __init__(self, detectors: Sequence[MotionDetector], max_workers: int | None = None):
        if not detectors:
            raise DetectionError("a detector pool needs at least one detector")
        self.detectors = list(detectors)
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers or len(self.detectors), thread_name_prefix="vigil-detect"
        )

    def process(
        self, frames: Sequence[NDArray], time_s: float, frame_index: int | None = None
    ) -> list[FrameResult]:
        """Process one frame per camera (in the detectors' order); returns their results."""
        if len(frames) != len(self.detectors):
            raise DetectionError(
                f"{len(frames)} frames for {len(self.detectors)} cameras; expected one each"
            )
        futures = [
            self._pool.submit(d.process, f, time_s, frame_index)
            for d, f in zip(self.detectors, frames, strict=True)
        ]
        return [f.result() for f in futures]

    def close(self) -> None:
        """Stop the threads."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> DetectorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
