"""Run the detector over a video file, an image sequence or a CPTV thermal file: ``vigil detect``.

Output, one JSON object per line:

- with a camera model, each line is a wire :class:`~vigil.ingest.schema.CameraDetection`
  (``"type": "camera_detection"``), exactly as published on the bus;
- without one (plain video), each line is a :class:`~vigil.detection.objects.PixelDetection`
  (``"type": "pixel_detection"``): ``camera``, ``time`` (seconds), ``frame`` (numbered from
  1), ``box`` ``[u0, v0, u1, v1]`` and ``centroid`` ``[u, v]`` in continuous pixel
  coordinates (column ``i`` covers ``[i, i + 1)``), ``area_px``, ``score`` (0 to 1, the
  share of recent frames the object was seen in) and ``object`` (a number that follows the
  object from frame to frame).

With ``masks_dir``, every frame's cleaned foreground mask is written as
``masks_dir/%06d.png`` (0 or 255, the input's size, numbered from 1).

The camera configuration file (``--camera-config``) is a small TOML file::

    [camera]
    id = "t03"
    lat = 31.3401          # optical centre, degrees WGS84
    lon = -110.9512
    height_m = 25.0        # above the ground
    pan_deg = 180.0        # clockwise from north
    tilt_deg = 2.0         # below the horizontal
    hfov_deg = 24.0
    width = 640            # pixels; must match the video
    height = 480
    range_m = 4000.0       # rated range
    fps = 10.0             # optional: overrides the video's own
    start_time = 1714532400.0  # optional: UTC seconds of the first frame

    [frame]                # optional: the sector's local frame; the camera's position if omitted
    lat0 = 31.33
    lon0 = -110.94
"""

from __future__ import annotations

import itertools
import logging
import os
import time as _time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import cv2
import msgspec
import numpy as np
from msgspec import Meta
from numpy.typing import NDArray

from vigil.detection.background import DetectionError
from vigil.detection.detector import DetectorConfig
from vigil.detection.objects import CameraGeometry
from vigil.detection.sensor_defaults import (
    PEEK_FRAMES,
    SensorDetector,
    SensorPlan,
    guess_sensor,
    sensor_plan,
)
from vigil.detection.settings import SensorKind
from vigil.geo.camera import (
    CameraHeightM,
    FrameRate,
    HfovDeg,
    ImageHeight,
    ImageWidth,
    PinholeCamera,
    RangeM,
    TiltDeg,
)
from vigil.geo.frames import LocalFrame
from vigil.geo.site import Azimuth, Ident, Lat, Lon
from vigil.ingest.cptv_file import is_cptv
from vigil.ingest.frames import FrameSourceError, announced_fps, read_frames, sequence_first
from vigil.ingest.schema import encode
from vigil.ingest.validation import explain

log = logging.getLogger(__name__)


class VideoInputError(DetectionError):
    """A video or image sequence that cannot be read to its end.

    Attributes
    ----------
    path
        The input as given.
    frame
        Number (from 1) of the first frame that could not be read; 0 when the input
        could not be opened at all.
    frames_read
        Frames read and processed before the failure.
    """

    def __init__(self, path: str, frame: int, frames_read: int, detail: str) -> None:
        self.path = path
        self.frame = frame
        self.frames_read = frames_read
        super().__init__(f"{path}: frame {frame}: {detail}")


# -- camera configuration ---------------------------------------------------------------------


class _CameraSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # The camera's bounds are geo.camera.CAMERA_BOUNDS, as for the deployment's towers.
    id: Ident = "camera"
    lat: Lat
    lon: Lon
    height_m: CameraHeightM
    pan_deg: Azimuth
    tilt_deg: TiltDeg
    hfov_deg: HfovDeg
    width: ImageWidth
    height: ImageHeight
    range_m: RangeM = 5000.0
    fps: FrameRate | None = None
    start_time: Annotated[float, Meta(ge=0.0)] | None = None


class _FrameSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    lat0: Lat
    lon0: Lon


class _CameraFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    camera: _CameraSection
    frame: _FrameSection | None = None


@dataclass(frozen=True)
class CameraSetup:
    """A camera configuration file, read: the placed camera, and optional fps and start time."""

    geometry: CameraGeometry
    fps: float | None = None
    start_time: float | None = None


def parse_camera_config(text: str, path: str = "<string>") -> CameraSetup:
    """Read a camera configuration (TOML text, format in this module's docstring)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DetectionError(f"{path}: not valid TOML: {exc}") from exc
    try:
        spec = msgspec.convert(raw, _CameraFile)
    except msgspec.ValidationError as exc:
        problem = explain(exc, raw, text)
        key, value = problem.key or "$", problem.value
        at = f" (line {problem.line})" if problem.line else ""
        raise DetectionError(
            f"{path}: camera config key {key!r} = {value!r}{at}: {problem.message}"
        ) from exc
    cam = spec.camera
    frame = (
        LocalFrame(spec.frame.lat0, spec.frame.lon0)
        if spec.frame is not None
        else LocalFrame(cam.lat, cam.lon)
    )
    x, y = frame.to_local([cam.lat], [cam.lon])
    pinhole = PinholeCamera(
        x=float(np.asarray(x).ravel()[0]),
        y=float(np.asarray(y).ravel()[0]),
        height_m=cam.height_m,
        pan_deg=cam.pan_deg,
        tilt_deg=cam.tilt_deg,
        hfov_deg=cam.hfov_deg,
        width=cam.width,
        height=cam.height,
        max_range_m=cam.range_m,
    )
    return CameraSetup(CameraGeometry(pinhole, frame, cam.id), cam.fps, cam.start_time)


def load_camera_config(path: str | Path) -> CameraSetup:
    """Read a camera configuration file (format in this module's docstring)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DetectionError(f"camera config {p}: cannot read it: {exc.strerror}") from exc
    return parse_camera_config(text, str(p))


# -- the run ----------------------------------------------------------------------------------


@dataclass
class DetectSummary:
    """What a run over one input did."""

    input: str
    out: Path
    frames: int = 0
    detections: int = 0
    masks_written: int = 0
    fps: float = 10.0
    seconds: float = 0.0
    classes: dict[str, int] = field(default_factory=dict)
    #: the sensor kind the detector ran as and its settings (:meth:`SensorPlan.settings`)
    sensor: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    #: boxes the track-before-detect stage reported (thermal defaults)
    stage_boxes: int = 0


def run_detect(
    input: str,
    out: str | Path,
    camera: CameraGeometry | None = None,
    masks_dir: str | Path | None = None,
    *,
    config: DetectorConfig | None = None,
    sensor: str | None = None,
    fps: float | None = None,
    start_time: float | None = None,
    camera_id: str = "camera",
    roi: NDArray[np.uint8] | None = None,
    progress: Callable[[int], None] | None = None,
    announce: Callable[[str], None] | None = None,
) -> DetectSummary:
    """Detect motion in a video file, image sequence or thermal file; write detections (and masks).

    Parameters
    ----------
    input
        A video file, an image sequence as a printf pattern (``input/in%06d.jpg``), or a
        CPTV thermal file (``*.cptv``, raw 16-bit counts timed by the camera).
    out
        The JSON-lines file of detections (format in this module's docstring).
    camera
        The camera placed on the ground; ``None`` writes pixel detections.
    masks_dir
        Folder for every frame's foreground mask ``%06d.png``; created if missing.
    config
        Detector settings, as given (no track-before-detect stage).
    sensor
        ``"thermal"``, ``"daylight"`` or ``"auto"`` (decided from the first frames,
        :func:`~vigil.detection.sensor_defaults.guess_sensor`): the sensor kind's defaults
        (:mod:`vigil.detection.sensor_defaults`; thermal with the track-before-detect
        stage); ``vigil detect`` passes ``"auto"`` unless told. Ignored when ``config`` is
        given. With neither, :meth:`DetectorConfig.for_tower` when a camera is given, the
        plain-video defaults otherwise (no stage).
    fps
        Frame rate, frames per second; the container's, else 10. Video frames are timed
        in the container's frame periods at this rate; a CPTV file's frames by the camera's
        own clock.
    start_time
        Time of the first frame, UTC seconds since the epoch; when omitted, the recording
        time a CPTV file holds, else the input's modification time.
    camera_id
        Name of the camera when ``camera`` is ``None``.
    roi
        Region mask (the frames' size): zero where motion is never reported.
    progress
        Called with the number of frames done, every 100 frames.
    announce
        Called once, with the first frame, with one line naming the sensor kind and the
        settings in effect (:meth:`SensorPlan.describe`); they are also logged at INFO and
        kept in the summary.

    Raises
    ------
    VideoInputError
        The input cannot be opened or a frame cannot be decoded; detections and masks of
        the frames before it have been written.
    """
    out = Path(out)
    t_start = _time.perf_counter()
    rate = fps or announced_fps(input) or 10.0
    if start_time is None and not is_cptv(input):  # a CPTV file holds its recording time
        first = sequence_first(input) if "%" in input else Path(input)
        start_time = os.path.getmtime(first) if first is not None and first.exists() else 0.0
    plan: SensorPlan | None = None
    if config is not None or sensor is None:
        if config is None:
            config = DetectorConfig.for_tower() if camera is not None else DetectorConfig()
        kind: SensorKind = "thermal" if config.background.warm_only else "daylight"
        plan = SensorPlan(kind, config, None, "settings given")
    elif sensor != "auto":
        plan = sensor_plan(sensor)  # type: ignore[arg-type]
    mdir = Path(masks_dir) if masks_dir is not None else None
    if mdir is not None:
        mdir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = DetectSummary(input=input, out=out, fps=rate)
    detector: SensorDetector | None = None
    frames = read_frames(input, fps=rate, start_time=start_time)
    peeked: list[tuple[int, float, NDArray]] = []
    late_error: FrameSourceError | None = None
    if plan is None:  # auto: look at the first frames, then run them
        try:
            for item in frames:
                peeked.append(item)
                if len(peeked) >= PEEK_FRAMES:
                    break
        except FrameSourceError as exc:  # raised after the frames before it are run
            late_error = exc
        plan = sensor_plan(*guess_sensor([f for _, _, f in peeked], input))
    summary.sensor = plan.sensor
    rest = frames if late_error is None else iter(())
    with out.open("wb") as sink:
        try:
            for i, t, frame in itertools.chain(peeked, rest):
                if detector is None:
                    detector = plan.build(frame.shape[:2], rate, camera, roi, camera_id)
                    summary.settings = detector.settings()
                    line = plan.describe(detector.shape, rate)
                    log.info("%s: %s", input, line)
                    if announce is not None:
                        announce(line)
                index = i + 1
                result = detector.process(frame, t, index)
                for det in result.detections:
                    sink.write(encode(det) + b"\n")
                    summary.classes[det.class_guess] = summary.classes.get(det.class_guess, 0) + 1
                for pdet in result.pixel_detections:
                    sink.write(msgspec.json.encode(pdet) + b"\n")
                summary.detections += len(result.detections) + len(result.pixel_detections)
                if mdir is not None:
                    target = mdir / f"{index:06d}.png"
                    if not cv2.imwrite(str(target), result.mask):
                        raise DetectionError(f"cannot write the mask {target}")
                    summary.masks_written += 1
                summary.frames = index
                if progress is not None and index % 100 == 0:
                    progress(index)
            if late_error is not None:
                raise late_error
        except FrameSourceError as exc:
            raise VideoInputError(exc.source, exc.frame, exc.frames_read, exc.detail) from exc
        finally:
            sink.flush()
            summary.seconds = _time.perf_counter() - t_start
            if detector is not None:
                summary.stage_boxes = detector.stage_boxes
    return summary
