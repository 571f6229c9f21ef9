"""A camera's detection settings as a deployment file carries them.

:class:`DetectionSettings` is what a site tunes per camera: the sensor kind (which picks the
defaults), the smallest object in pixels and in metres at its range, one sensitivity knob,
polygons to ignore (and optionally a region to watch), the warm-up and the majority filter.
Every field defaults to ``None``, meaning "the sensor kind's default", so a sector's
``[detection]`` defaults and a camera's overrides combine with
:meth:`~DetectionSettings.over` and only what a file sets changes anything.
:meth:`~DetectionSettings.detector_config` turns the result into the motion detector's
:class:`~vigil.detection.detector.DetectorConfig`, and :meth:`~DetectionSettings.region`
rasterises the polygons once into the detector's region mask.

Thermal defaults are exactly :meth:`DetectorConfig.for_tower` (small warm targets on a
tower); daylight defaults are plain video settings (see :data:`DAYLIGHT`), measured on real
daylight clips in ``benchmarks/bench_daylight.py``.

Examples
--------
>>> s = DetectionSettings(sensor="daylight", min_size_px=4, ignore=[[(0, 0), (40, 0), (0, 30)]])
>>> cfg = s.detector_config()
>>> cfg.filter_size, cfg.objects.min_size_px
(5, 4.0)
>>> int(s.region((48, 64))[5, 5]), int(s.region((48, 64))[40, 60])
(0, 255)
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Any, Literal

import cv2
import msgspec
import numpy as np
from msgspec import Meta
from numpy.typing import NDArray

from vigil.detection.background import BackgroundParams, DetectionError
from vigil.detection.calibration import CalibrationParams
from vigil.detection.detector import DetectorConfig, MotionDetector, StepParams
from vigil.detection.objects import CameraGeometry, ObjectParams

#: Sensor kinds; the kind picks every default that a setting leaves unset.
SensorKind = Literal["thermal", "daylight"]

#: A polygon vertex ``(x, y)`` in image pixels (column, row of the frames the detector sees;
#: ``(0, 0)`` is the top-left pixel's centre). Bounded so that a file cannot ask for an
#: absurd raster; points off the image are allowed (the polygon is clipped).
Coord = Annotated[float, Meta(ge=-20_000.0, le=20_000.0, description="image pixels")]
Polygon = Annotated[
    list[tuple[Coord, Coord]],
    Meta(min_length=3, max_length=1000, description="image-pixel polygon, (x, y) vertices"),
]
Polygons = Annotated[list[Polygon], Meta(max_length=64)]

#: Sensitivity 0.5 keeps the sensor's threshold; each 0.5 step halves or doubles it.
NEUTRAL_SENSITIVITY = 0.5

#: Daylight defaults: the plain-video background model (a grey-level radius floor of 18
#: over 0-255, both warmer and colder changes), a 5x5 majority filter, no registration, and a
#: blob must be seen in 3 of 5 frames; the first 30 frames (3 s at 10 Hz) only learn.
DAYLIGHT = DetectorConfig(
    background=BackgroundParams(),
    filter_size=5,
    register=False,
    objects=ObjectParams(),
    weighted_centroids=False,
    slow=None,
    warmup_frames=30,
)


def sensor_defaults(sensor: SensorKind) -> DetectorConfig:
    """The detector settings a sensor kind starts from (thermal: the tower's)."""
    return DetectorConfig.for_tower() if sensor == "thermal" else DAYLIGHT


def sensitivity_radius(base_radius: int, sensitivity: float) -> int:
    """The background model's radius floor (grey levels) at a sensitivity.

    ``radius = base_radius * 2 ** (1 - 2 * sensitivity)``, rounded and kept in [1, 255]:
    0.5 keeps the sensor's floor, 1.0 halves it (fainter changes count as motion), 0.0
    doubles it.

    >>> sensitivity_radius(18, 0.5), sensitivity_radius(18, 1.0), sensitivity_radius(18, 0.0)
    (18, 9, 36)
    """
    r = base_radius * 2.0 ** (1.0 - 2.0 * sensitivity)
    return int(min(255, max(1, round(r))))


class DetectionSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One camera's detection settings (a deployment's ``[detection]`` or a camera's override).

    ``None`` in any field means the sensor kind's default (listed per field).

    Attributes
    ----------
    sensor
        ``"thermal"`` or ``"daylight"``; ``None`` takes the camera's own kind (a tower's
        ``thermal`` flag), thermal where nothing says.
    sensitivity
        0 to 1; 0.5 is the sensor's default threshold. Maps onto the background model's
        radius floor (the grey-level change, 0-255, that counts as motion) by
        :func:`sensitivity_radius`: 1.0 halves it, 0.0 doubles it. Thermal floor 8, daylight 18.
    min_size_px
        Smallest object, pixels: a blob whose larger side (width or height) is shorter is
        dropped. Default 0 (off) for both kinds.
    min_area_px
        Smallest blob area, pixels. Default 1.
    min_size_m
        Smallest object at its range, metres: a blob whose larger side times the ground
        metres a pixel spans at the blob's range (from the camera model) is shorter is
        dropped. Default 0 (off); needs the camera's geometry (not applied without).
    ignore
        Polygons in image pixels where motion is never reported (a road, a waving tree, a
        flag, the camera's own housing). Rasterised once per image size.
    include
        Polygons in image pixels: when given, only motion inside them is reported (ignore
        polygons are still cut out of them). Default: the whole image.
    warmup_frames
        Frames after a (re)start in which the model only learns. Thermal 35, daylight 30.
    filter_px
        Majority filter window on the foreground mask, pixels, odd (1 is off). Thermal 1,
        daylight 5.
    neighbour_px
        Thermal only: keep a blob only where some pixel of it is warmer than every
        background value within this many pixels (``DetectorConfig.neighbour_px``): brush,
        shimmer and shake move the ground's own values by a pixel or two, a warm body is
        warmer than any of them. 0 is off. Default 0 (off) for both kinds; scored on the
        development scenes in ``benchmarks/bench_detection_scenes.py``.
    neighbour_margin
        Grey levels (0-255) a pixel must exceed its neighbourhood's warmest background
        value by for ``neighbour_px``. Default 4.
    calibrate
        Start-up calibration (:mod:`vigil.detection.calibration`): after its first 30
        frames the camera's noise sets the radius floor (never below the sensor's) and each
        32-pixel region's nuisance level the neighbourhood margin there; the values are
        logged and reported in camera health. Default off for both kinds.
    polarity
        Thermal: ``"warm"`` reports only bodies warmer than the background (the night's
        rule); ``"both"`` also bodies colder than it (a two-sided change test: after the
        morning's thermal crossover people are colder than sun-heated ground). Default
        ``"warm"`` (the outputs as before). ``benchmarks/bench_detection_robust.py``: by day
        with the crossover recall 0/23 -> 23/23; at night ``"both"`` adds the cold traces a
        warm body leaves where the model learnt it (0 -> 23 false objects in 3
        camera-minutes), so it is a setting for the day. Daylight settings report both
        signs whatever this says.
    global_steps
        Fit each frame's gain and offset against the background and map frames moved by a
        global step (a flat-field correction's level jump, an AGC step when a hot object
        enters the view) back onto its levels; a frame no gain and offset explain restarts
        the background (:class:`~vigil.detection.detector.StepParams`). Frames without a
        step go through untouched. Default on for thermal, off for daylight.
    psf_sigma_px
        Standard deviation of the optics' blur (Gaussian PSF), pixels: the spread-based
        size behind the class guess takes the PSF's variance off (``ObjectParams
        .psf_sigma_px``). Default 0 (a sharp picture) for both kinds; an uncooled 640x480
        LWIR core with an f/1.0-1.2 lens is about 0.8.
    registration
        How shake is estimated where the sensor's defaults register frames (thermal):
        ``"ecc"`` (OpenCV's ECC on a half-size copy, the default) or ``"lk"`` (a numba
        Gauss-Newton translation with gain and offset, ``DetectorConfig.register_method``):
        on the development scenes' calibration seeds the same bodies found, at about a
        tenth of ECC's time (``BENCHMARKS.md``, issue 24).
    """

    sensor: SensorKind | None = None
    sensitivity: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    min_size_px: Annotated[int, Meta(ge=0, le=10_000)] | None = None
    min_area_px: Annotated[int, Meta(ge=1, le=100_000_000)] | None = None
    min_size_m: Annotated[float, Meta(ge=0.0, le=1000.0)] | None = None
    ignore: Polygons | None = None
    include: Polygons | None = None
    warmup_frames: Annotated[int, Meta(ge=0, le=100_000)] | None = None
    filter_px: Annotated[int, Meta(ge=1, le=15)] | None = None
    neighbour_px: Annotated[int, Meta(ge=0, le=7)] | None = None
    neighbour_margin: Annotated[int, Meta(ge=0, le=255)] | None = None
    calibrate: bool | None = None
    polarity: Literal["warm", "both"] | None = None
    global_steps: bool | None = None
    psf_sigma_px: Annotated[float, Meta(ge=0.0, le=5.0)] | None = None
    registration: Literal["ecc", "lk"] | None = None

    def __post_init__(self) -> None:
        if self.filter_px is not None and self.filter_px % 2 == 0:
            raise ValueError(f"filter_px={self.filter_px}: expected an odd window (1 is off)")
        for name in ("ignore", "include"):
            for i, poly in enumerate(getattr(self, name) or ()):
                xy = np.asarray(poly, np.float64)
                area = 0.5 * abs(
                    float(
                        np.dot(xy[:, 0], np.roll(xy[:, 1], 1))
                        - np.dot(xy[:, 1], np.roll(xy[:, 0], 1))
                    )
                )
                if not math.isfinite(area) or area <= 0.0:
                    raise ValueError(
                        f"{name}[{i}]: polygon encloses no area; expected 3+ distinct corners"
                    )

    # -- combining ----------------------------------------------------------------------
    def over(self, base: DetectionSettings | None) -> DetectionSettings:
        """These settings laid over ``base``: each field set here wins, unset ones come from it."""
        if base is None:
            return self
        fields: dict[str, Any] = {}
        for name in self.__struct_fields__:
            mine = getattr(self, name)
            fields[name] = mine if mine is not None else getattr(base, name)
        return DetectionSettings(**fields)

    def kind(self, thermal: bool = True) -> SensorKind:
        """The sensor kind in effect; ``thermal`` is the camera's own flag where unset here."""
        if self.sensor is not None:
            return self.sensor
        return "thermal" if thermal else "daylight"

    # -- building -----------------------------------------------------------------------
    def detector_config(self, thermal: bool = True, seed: int | None = None) -> DetectorConfig:
        """The motion detector's settings: the sensor's defaults with what is set here.

        With nothing set (and a thermal camera) this is exactly :meth:`DetectorConfig.for_tower`.
        ``seed`` sets the background model's random seed (``None`` keeps the default's).
        """
        cfg = sensor_defaults(self.kind(thermal))
        bg = cfg.background
        if self.sensitivity is not None:
            r = sensitivity_radius(bg.radius_min, self.sensitivity)
            bg = replace(bg, radius_min=r, radius_max=max(bg.radius_max, r))
        if seed is not None:
            bg = replace(bg, seed=int(seed))
        obj = cfg.objects
        changes: dict[str, Any] = {}
        if self.min_size_px is not None:
            changes["min_size_px"] = float(self.min_size_px)
        if self.min_area_px is not None:
            changes["min_area_px"] = int(self.min_area_px)
        if self.min_size_m is not None:
            changes["min_size_m"] = float(self.min_size_m)
        if self.psf_sigma_px is not None:
            changes["psf_sigma_px"] = float(self.psf_sigma_px)
        if changes:
            obj = replace(obj, **changes)
        out: dict[str, Any] = {"background": bg, "objects": obj}
        if self.warmup_frames is not None:
            out["warmup_frames"] = int(self.warmup_frames)
        if self.filter_px is not None:
            out["filter_size"] = int(self.filter_px)
        if self.neighbour_px is not None:
            out["neighbour_px"] = int(self.neighbour_px)
        if self.neighbour_margin is not None:
            out["neighbour_margin"] = int(self.neighbour_margin)
        if self.calibrate is not None:
            out["calibration"] = CalibrationParams() if self.calibrate else None
        if self.polarity is not None and cfg.background.warm_only:
            out["cold_bodies"] = self.polarity == "both"
        if self.global_steps is not None:
            out["steps"] = StepParams() if self.global_steps else None
        if self.registration is not None:
            out["register_method"] = self.registration
        try:
            return replace(cfg, **out)
        except DetectionError as exc:
            raise ValueError(f"detection settings: {exc}") from exc

    def effective(
        self, thermal: bool = True, shape: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        """The settings in effect, for a log line or camera health (plain JSON values).

        ``sensor``, ``threshold_grey`` (radius floor, 0-255), ``filter_px``,
        ``warmup_frames``, ``min_size_px``, ``min_area_px``, ``min_size_m``, ``ignore`` and
        ``include`` (polygon counts), ``neighbour_px``, ``neighbour_margin``, ``calibrate``,
        ``robust`` (a table: ``polarity``, ``global_steps``, ``psf_sigma_px``), and with
        ``shape`` ``watched`` (share of the image's pixels inside the region mask, 0-1).

        >>> DetectionSettings(sensor="daylight", sensitivity=1.0).effective()["threshold_grey"]
        9
        """
        cfg = self.detector_config(thermal)
        out: dict[str, Any] = {
            "sensor": self.kind(thermal),
            "threshold_grey": cfg.background.radius_min,
            "filter_px": cfg.filter_size,
            "warmup_frames": cfg.warmup_frames,
            "min_size_px": cfg.objects.min_size_px,
            "min_area_px": cfg.objects.min_area_px,
            "min_size_m": cfg.objects.min_size_m,
            "ignore": len(self.ignore or ()),
            "include": len(self.include or ()),
            "neighbour_px": cfg.neighbour_px,
            "neighbour_margin": cfg.neighbour_margin,
            "calibrate": cfg.calibration is not None,
            "robust": {
                "polarity": "warm" if cfg.background.warm_only and not cfg.cold_bodies else "both",
                "global_steps": cfg.steps is not None,
                "psf_sigma_px": cfg.objects.psf_sigma_px,
            },
        }
        if shape is not None:
            region = self.region(shape)
            out["watched"] = (
                1.0 if region is None else float(np.count_nonzero(region)) / region.size
            )
        return out

    def region(self, shape: tuple[int, int]) -> NDArray[np.uint8] | None:
        """The region mask for frames of ``(height, width)``: 255 where motion is watched.

        ``None`` when no polygon is set (the whole image). Polygons are filled with
        ``cv2.fillPoly`` at their vertices rounded to whole pixels (edges included).
        """
        if not self.ignore and not self.include:
            return None
        h, w = (int(s) for s in shape)
        if h < 1 or w < 1:
            raise DetectionError(f"frame shape {shape!r}; expected (height, width) of at least 1")
        mask = np.full((h, w), 255 if not self.include else 0, np.uint8)
        if self.include:
            cv2.fillPoly(mask, _points(self.include), 255)
        if self.ignore:
            cv2.fillPoly(mask, _points(self.ignore), 0)
        return mask

    def detector(
        self,
        shape: tuple[int, int],
        geometry: CameraGeometry | None = None,
        camera_id: str = "camera",
        thermal: bool = True,
    ) -> MotionDetector:
        """A motion detector for frames of ``(height, width)`` with these settings and masks."""
        return MotionDetector(
            shape, self.detector_config(thermal), geometry, self.region(shape), camera_id
        )


def _points(polygons: list[list[tuple[float, float]]]) -> list[NDArray[np.int32]]:
    """Polygons as ``cv2.fillPoly`` wants them: int32 ``(n, 1, 2)`` arrays of whole pixels."""
    return [np.rint(np.asarray(p, np.float64)).astype(np.int32).reshape(-1, 1, 2) for p in polygons]
