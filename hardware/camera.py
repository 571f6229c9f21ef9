"""Camera edge adapter: frames from a video file, an RTSP/HTTP stream or a device, run through a
detector, published as :class:`~ingest.schema.CameraDetection` messages.

Sources
    A file path (``cameras/t03.avi``), a stream URL (``rtsp://``, ``rtsps://``, ``http://``,
    ``https://``, ``udp://``, ``tcp://``) or a device number (``0`` for ``/dev/video0``), all
    through OpenCV's ``VideoCapture``.

Time
    A file carries no wall time: frame ``i`` (from 0) is at ``start_time + i / fps``, and a
    :class:`~hardware.pacing.Pacer` can play it back at a chosen speed on a shared clock.
    Frames of a live source are stamped with the wall clock when they are read.

Lost streams
    A live source that stops delivering frames is released and opened again, with
    exponential backoff between ``reconnect_s`` and ``max_reconnect_s``; the frame numbers go
    on from where they were. Every reconnect is counted. A file ends at its end.

Detection is not done here (``hardware`` does not import ``detection``): the caller passes
``detect(frame, time_s, index) -> detections``; ``vigil edge camera`` passes the tower's
motion detector with the tower's camera model from the deployment.

Camera commands (pointing orders on ``vigil/v1/{sector}/cam/{id}/commands``) are received and
counted; steering a pan-tilt head is not implemented, and a file cannot be steered.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from numpy.typing import NDArray

from vigil.hardware.pacing import Pacer
from vigil.ingest.bus import Bus
from vigil.ingest.schema import CameraCommand, CameraDetection, Wire, topic_for

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")

Detect = Callable[[NDArray[np.uint8], float, int], Sequence[CameraDetection]]


class CameraSourceError(OSError):
    """A camera source that cannot be opened (or a file that cannot be read)."""


@dataclass
class CameraCounts:
    """What the adapter read, published and survived."""

    frames: int = 0
    detections: int = 0
    reconnects: int = 0
    commands: int = 0
    first_time: float | None = None
    last_time: float | None = None
    #: Frames a file announced but that could not be decoded.
    missing_frames: int = 0
    classes: Counter[str] = field(default_factory=Counter)


def is_live(source: str) -> bool:
    """Whether a source is a live stream or device (not a file)."""
    if source.isdigit():
        return True
    return urlparse(source).scheme.lower() in STREAM_SCHEMES


def open_capture(source: str):
    """An opened ``cv2.VideoCapture`` for a file, stream URL or device number, or ``None``."""
    import cv2

    if source.isdigit():
        cap = cv2.VideoCapture(int(source))
    elif is_live(source):
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG)
    else:
        cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        cap.release()
        return None
    return cap


def source_fps(source: str) -> float | None:
    """The frame rate a file announces, frames per second (``None`` if it does not)."""
    import cv2

    cap = open_capture(source)
    if cap is None:
        return None
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()
    return fps if math.isfinite(fps) and 0 < fps <= 1000 else None


def file_frames(
    path: str, *, fps: float, start_time: float, counts: CameraCounts | None = None
) -> Iterator[tuple[int, float, NDArray[np.uint8]]]:
    """``(index, time, frame)`` for each frame of a video file; index from 0.

    Raises
    ------
    CameraSourceError
        When the file is missing or cannot be opened as video.
    """
    import cv2

    if not (fps > 0 and math.isfinite(fps)):
        raise CameraSourceError(f"fps = {fps!r}: expected a positive frame rate for {path}")
    if not Path(path).is_file():
        raise CameraSourceError(f"camera source {path!r}: no such file")
    cap = open_capture(path)
    if cap is None:
        raise CameraSourceError(f"camera source {path!r}: cannot open it as video")
    try:
        announced = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            yield i, start_time + i / fps, frame
            i += 1
        if counts is not None and announced > i:
            counts.missing_frames += announced - i
            log.warning("%s: read %d of the %d frames the file announces", path, i, announced)
    finally:
        cap.release()


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
        Give up (raise) after this many reopenings without a frame; ``None``: never.
    stop
        Set it to end the stream (checked between frames and while waiting).

    Raises
    ------
    CameraSourceError
        When the source cannot be opened the first time, or ``max_reconnects`` is spent.
    """
    counts = counts if counts is not None else CameraCounts()
    stop = stop or threading.Event()
    cap = open_capture(source)
    if cap is None:
        raise CameraSourceError(f"camera source {source!r}: cannot open the stream or device")
    index = 0
    failures = 0
    delay = reconnect_s
    try:
        while not stop.is_set():
            ok, frame = cap.read() if cap is not None else (False, None)
            if ok and frame is not None:
                failures = 0
                delay = reconnect_s
                yield index, clock(), frame
                index += 1
                continue
            if cap is not None:
                cap.release()
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
            cap = open_capture(source)
            if cap is not None:
                counts.reconnects += 1
                log.info("camera source %s reopened (reconnect %d)", source, counts.reconnects)
    finally:
        if cap is not None:
            cap.release()


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
        For files: hold each frame until its time comes (see :mod:`hardware.pacing`).
    reconnect_s, max_reconnect_s, max_reconnects, stop
        For live sources, see :func:`live_frames`.
    """
    counts = CameraCounts()

    def on_command(topic: str, msg: Wire) -> None:
        if isinstance(msg, CameraCommand):
            counts.commands += 1
            log.info(
                "camera %s: command to pan %.1f, tilt %.1f (%s) not carried out: no PTZ control",
                camera_id,
                msg.pan_deg,
                msg.tilt_deg,
                msg.reason,
            )

    sub = bus.subscribe(f"vigil/v1/{sector}/cam/{camera_id}/commands", on_command)
    try:
        if is_live(source):
            frames = live_frames(
                source,
                counts=counts,
                reconnect_s=reconnect_s,
                max_reconnect_s=max_reconnect_s,
                max_reconnects=max_reconnects,
                stop=stop,
            )
        else:
            rate = fps or source_fps(source)
            if rate is None:
                raise CameraSourceError(
                    f"camera source {source!r} does not say its frame rate; give fps"
                )
            if start_time is None:
                start_time = Path(source).stat().st_mtime if Path(source).exists() else 0.0
            frames = file_frames(source, fps=rate, start_time=start_time, counts=counts)
        for index, t, frame in frames:
            if pacer is not None and not is_live(source):
                pacer.wait(t)
            if counts.first_time is None:
                counts.first_time = t
            counts.last_time = t
            counts.frames += 1
            for det in detect(frame, t, index):
                bus.publish(topic_for(sector, det), det)
                counts.detections += 1
                counts.classes[det.class_guess] += 1
            if stop is not None and stop.is_set():
                break
    finally:
        bus.unsubscribe(sub)
    return counts


__all__ = [
    "CameraCounts",
    "CameraSourceError",
    "Detect",
    "file_frames",
    "is_live",
    "live_frames",
    "open_capture",
    "run_camera_edge",
    "source_fps",
]
