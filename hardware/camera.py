"""Camera edge adapter: frames from a video file, an RTSP/HTTP stream or a device, run through a
detector, published as :class:`~vigil.ingest.schema.CameraDetection` messages.

Sources
    A file path (``cameras/t03.avi``; ``*.cptv`` thermal recordings too, timed by the
    camera's own clock), a stream URL (``rtsp://``, ``rtsps://``, ``http://``,
    ``https://``, ``udp://``, ``tcp://``) or a device number (``0`` for ``/dev/video0``), video
    through OpenCV's ``VideoCapture`` (:mod:`vigil.ingest.frames`).

Time
    A video file carries no wall time: frame ``i`` (from 0) is at ``start_time + i / fps``
    (frames the recorder dropped keep their gap), and a
    :class:`~vigil.hardware.pacing.Pacer` can play it back at a chosen speed on a shared clock.
    Frames of a live source are stamped from the stream's own clock (the RTP or container
    time OpenCV's FFmpeg backend reports), anchored to the wall clock at connect (see
    "Stream time" in :mod:`vigil.ingest.frames`).

Lost streams
    A live source that stops delivering frames is released and opened again, with
    exponential backoff between ``reconnect_s`` and ``max_reconnect_s``; the frame numbers go
    on from where they were. Every reconnect is counted. A file ends at its end.

Detection is not done here (``hardware`` does not import ``detection``): the caller passes
``detect(frame, time_s, index) -> detections``; ``vigil edge camera`` passes the tower's
motion detector with the tower's camera model from the deployment.

Health
    A live source's health (dropped: no frames; frozen: the same picture) goes out as the
    camera's status on ``vigil/v1/{sector}/cam/{id}/status`` (:mod:`vigil.hardware.camera_health`).
    With ``detection``, the status carries the detector's settings in effect (and its start-up
    calibration's choices once made): a status goes out, and a log line at INFO, when they
    change, for a file too (a file's status is ``ok``, stamped with the frame's time).

Camera commands
    Pointing orders on ``vigil/v1/{sector}/cam/{id}/commands`` (the service's cues) are
    carried out through the camera's PTZ control (:class:`~vigil.hardware.ptz_control.PtzControl`,
    ONVIF) when one is given; an order that names another camera is refused and counted, and
    without PTZ control (a file, a fixed camera) orders are counted and logged only.

Pointing
    With PTZ control, the detector's geometry follows the pointing the camera *reports*
    (``GetStatus``, mapped to degrees by the camera's
    :class:`~vigil.hardware.ptz.PtzMapping`): ``repoint(pointing)`` is called before the
    first frame after each change, and frames that come before the camera has reported any
    pointing are not run through the detector (counted as ``unpointed``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vigil.hardware.camera_health import (
    HealthSettings,
    StreamHealth,
    camera_status_topic,
    settings_status,
)
from vigil.hardware.pacing import Pacer
from vigil.hardware.ptz import Pointing
from vigil.hardware.ptz_control import PtzControl
from vigil.ingest.bus import Bus
from vigil.ingest.cptv_file import is_cptv
from vigil.ingest.frames import (
    FrameSourceError,
    VideoFrames,
    announced_fps,
    is_live,
    open_frames,
)
from vigil.ingest.schema import CameraCommand, CameraDetection, Wire, topic_for

log = logging.getLogger(__name__)

Detect = Callable[[NDArray[np.uint8], float, int], Sequence[CameraDetection]]
#: Told the camera's reported pointing when it changes (the detector's geometry follows).
Repoint = Callable[[Pointing], None]
#: The detector's settings in effect (plain JSON values); returns the same object until they
#: change (asked after each detected frame).
DetectionReport = Callable[[], Mapping[str, Any]]


class CameraSourceError(OSError):
    """A camera source that cannot be opened (or a file that cannot be read)."""


@dataclass
class CameraCounts:
    """What the adapter read, published and survived."""

    frames: int = 0
    detections: int = 0
    reconnects: int = 0
    #: Camera commands received for this camera.
    commands: int = 0
    #: Commands passed to the PTZ control.
    commands_carried: int = 0
    #: Commands that named another camera.
    commands_refused: int = 0
    #: Changes of the reported pointing passed to the detector.
    pointing_changes: int = 0
    #: Frames read before the camera had reported a pointing the detector could take (not
    #: detected).
    unpointed: int = 0
    #: Health statuses published, per state.
    health: Counter[str] = field(default_factory=Counter)
    first_time: float | None = None
    last_time: float | None = None
    #: Frames a file announced but that could not be decoded.
    missing_frames: int = 0
    classes: Counter[str] = field(default_factory=Counter)


def file_frames(
    path: str,
    *,
    fps: float,
    start_time: float | None,
    counts: CameraCounts | None = None,
) -> Iterator[tuple[int, float, NDArray[np.uint8]]]:
    """``(index, time, frame)`` for each frame of a video or CPTV thermal file; index from 0.

    Frames the file announces but does not hold (dropped by the recorder, or cut off) are
    counted in ``counts.missing_frames`` and logged. ``start_time`` ``None`` is a CPTV
    file's own recording time.

    Raises
    ------
    CameraSourceError
        When the file is missing or cannot be opened as video.
    """
    if not (fps > 0 and math.isfinite(fps)):
        raise CameraSourceError(f"fps = {fps!r}: expected a positive frame rate for {path}")
    try:
        frames = open_frames(path, fps=fps, start_time=start_time)
    except FrameSourceError as exc:
        raise CameraSourceError(f"camera source {path!r}: {exc.detail}") from exc
    try:
        yield from frames
        if counts is not None:
            counts.missing_frames += frames.missing
    except FrameSourceError as exc:
        if counts is not None and exc.announced > exc.frames_read:
            counts.missing_frames += exc.announced - exc.frames_read
            log.warning(
                "%s: read %d of the %d frames the file announces",
                path,
                exc.frames_read,
                exc.announced,
            )


def _reopen(source: str, index: int, clock: Callable[[], float]) -> VideoFrames | None:
    """The live source opened again, numbering on from ``index``; ``None`` if it does not open."""
    try:
        return VideoFrames(source, first_index=index, clock=clock)
    except FrameSourceError:
        return None


def live_frames(
    source: str,
    *,
    counts: CameraCounts | None = None,
    reconnect_s: float = 0.5,
    max_reconnect_s: float = 30.0,
    max_reconnects: int | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
) -> Iterator[tuple[int, float, NDArray[np.uint8]]]:
    """``(index, time, frame)`` from a live source, reopening it whenever it is lost.

    Parameters
    ----------
    reconnect_s, max_reconnect_s
        First and longest wait between attempts to reopen, seconds (doubling in between).
    max_reconnects
        Give up (raise) after this many reopenings without a frame; ``None``: never. A
        source that does not open the first time is tried again the same way (with 0, the
        first failure raises).
    stop
        Set it to end the stream (checked between frames and while waiting).

    Raises
    ------
    CameraSourceError
        When ``max_reconnects`` is spent (0: the source does not open the first time).
    """
    counts = counts if counts is not None else CameraCounts()
    stop = stop or threading.Event()
    cap: VideoFrames | None
    try:
        cap = VideoFrames(source, clock=clock)
    except FrameSourceError as exc:
        if max_reconnects is not None and max_reconnects <= 0:
            raise CameraSourceError(f"camera source {source!r}: {exc.detail}") from exc
        # a camera that comes up after its adapter: tried again as a lost one is
        log.warning("camera source %s: %s; trying again", source, exc.detail)
        cap = None
    index = 0
    failures = 0
    delay = reconnect_s
    try:
        while not stop.is_set():
            got = cap.read() if cap is not None else None
            if got is not None:
                failures = 0
                delay = reconnect_s
                yield got
                index += 1
                continue
            if cap is not None:
                cap.close()
                cap = None
                log.warning("camera source %s lost after frame %d; reconnecting", source, index)
            if max_reconnects is not None and failures >= max_reconnects:
                raise CameraSourceError(
                    f"camera source {source!r}: lost, and {failures} attempts to reopen failed"
                )
            if stop.wait(delay):
                break
            delay = min(delay * 2.0, max_reconnect_s)
            failures += 1
            cap = _reopen(source, index, clock)
            if cap is not None:
                counts.reconnects += 1
                log.info("camera source %s reopened (reconnect %d)", source, counts.reconnects)
    finally:
        if cap is not None:
            cap.close()


def run_camera_edge(
    source: str,
    bus: Bus,
    sector: str,
    camera_id: str,
    detect: Detect,
    *,
    fps: float | None = None,
    start_time: float | None = None,
    pacer: Pacer | None = None,
    reconnect_s: float = 0.5,
    max_reconnect_s: float = 30.0,
    max_reconnects: int | None = None,
    stop: threading.Event | None = None,
    ptz: PtzControl | None = None,
    repoint: Repoint | None = None,
    health: HealthSettings | None = None,
    detection: DetectionReport | None = None,
) -> CameraCounts:
    """Read a camera, detect, and publish each detection on the camera's topic.

    Parameters
    ----------
    source
        File path, stream URL or device number (see the module docstring).
    bus
        Where detections go; the adapter also listens there for its camera's commands.
    sector, camera_id
        Where the camera belongs: detections go to ``vigil/v1/{sector}/cam/{camera_id}/...``.
    detect
        ``detect(frame, time_s, index)`` returns the frame's detections.
    fps, start_time
        For files: frame rate (frames per second; the file's own when omitted) and the time
        of frame 0 (UTC seconds; the file's modification time when omitted).
    pacer
        For files: hold each frame until its time comes (see :mod:`vigil.hardware.pacing`).
    reconnect_s, max_reconnect_s, max_reconnects, stop
        For live sources, see :func:`live_frames`.
    ptz
        The camera's PTZ control (started here, stopped at the end): commands point it,
        and its reported pointing goes to ``repoint``.
    repoint
        Told each change of the reported pointing, before the next frame is detected.
    health
        For live sources: when the stream counts as dropped or frozen (defaults of
        :class:`~vigil.hardware.camera_health.HealthSettings`).
    detection
        The detector's settings in effect, asked after each detected frame: each change
        (the first frame's, the start-up calibration's) is logged at INFO and goes out as
        the camera's status (see the module docstring).
    """
    counts = CameraCounts()
    live = is_live(source)

    def on_command(topic: str, msg: Wire) -> None:
        if not isinstance(msg, CameraCommand):
            return
        if msg.camera != camera_id:
            counts.commands_refused += 1
            log.warning(
                "camera %s: refused a command for camera %r on its topic", camera_id, msg.camera
            )
            return
        counts.commands += 1
        if ptz is None:
            log.info(
                "camera %s: command to pan %.1f, tilt %.1f (%s) not carried out: no PTZ control",
                camera_id, msg.pan_deg, msg.tilt_deg, msg.reason,
            )  # fmt: skip
            return
        try:
            ptz.point(msg.pan_deg, msg.tilt_deg)
        except ValueError as exc:
            counts.commands_refused += 1
            log.warning("camera %s: refused command: %s", camera_id, exc)
            return
        counts.commands_carried += 1
        log.info(
            "camera %s: pointing to pan %.2f, tilt %.2f (%s)",
            camera_id, msg.pan_deg, msg.tilt_deg, msg.reason,
        )  # fmt: skip

    watch = StreamHealth(bus, sector, camera_id, health) if live else None
    if ptz is not None:
        ptz.start()
    sub = bus.subscribe(f"vigil/v1/{sector}/cam/{camera_id}/commands", on_command)
    applied: Pointing | None = None
    reported_settings: Mapping[str, Any] | None = None
    pointed = False  # the detector has the camera's reported pointing
    try:
        if live:
            frames = live_frames(
                source,
                counts=counts,
                reconnect_s=reconnect_s,
                max_reconnect_s=max_reconnect_s,
                max_reconnects=max_reconnects,
                stop=stop,
            )
            assert watch is not None
            watch.start()
        else:
            rate = fps or announced_fps(source)
            if rate is None:
                raise CameraSourceError(
                    f"camera source {source!r} does not say its frame rate; give fps"
                )
            if start_time is None and not is_cptv(source):  # CPTV holds its recording time
                start_time = Path(source).stat().st_mtime if Path(source).exists() else 0.0
            frames = file_frames(source, fps=rate, start_time=start_time, counts=counts)
        for index, t, frame in frames:
            if watch is not None:
                watch.frame(frame)
            if pacer is not None and not live:
                pacer.wait(t)
            if counts.first_time is None:
                counts.first_time = t
            counts.last_time = t
            counts.frames += 1
            if ptz is not None:
                reported = ptz.reported
                if reported is None:
                    counts.unpointed += 1
                    continue
                if reported.differs(applied):
                    applied = reported
                    counts.pointing_changes += 1
                    pointed = True
                    if repoint is not None:
                        try:
                            repoint(reported)
                        except ValueError as exc:  # a pointing the camera model refuses
                            pointed = False
                            log.warning("camera %s: reported pointing refused: %s", camera_id, exc)
                if not pointed:
                    counts.unpointed += 1
                    continue
            for det in detect(frame, t, index):
                bus.publish(topic_for(sector, det), det)
                counts.detections += 1
                counts.classes[det.class_guess] += 1
            if detection is not None:
                now_settings = detection()
                if now_settings is not reported_settings:
                    reported_settings = now_settings
                    _report_settings(bus, sector, camera_id, t, now_settings, watch)
            if stop is not None and stop.is_set():
                break
    finally:
        bus.unsubscribe(sub)
        if watch is not None:
            watch.stop()
            counts.health = watch.reports
        if ptz is not None:
            ptz.stop()
    return counts


def _report_settings(
    bus: Bus,
    sector: str,
    camera_id: str,
    time_s: float,
    settings: Mapping[str, Any],
    watch: StreamHealth | None,
) -> None:
    """New detection settings: into a live camera's health (logged there, a status at once),
    or for a file logged and published as an ``ok`` status at the frame's time."""
    if watch is not None:
        watch.set_detection(settings)
        return
    log.info("camera %s: detection settings %s", camera_id, dict(settings))
    msg = settings_status(camera_id, time_s, time_s, settings)
    bus.publish(camera_status_topic(sector, camera_id), msg)


__all__ = [
    "CameraCounts",
    "DetectionReport",
    "Repoint",
    "CameraSourceError",
    "Detect",
    "file_frames",
    "is_live",
    "live_frames",
    "run_camera_edge",
]
