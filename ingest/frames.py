"""Frames from a video file, an image sequence, a stream URL or a camera device, through OpenCV.

The one place Vigil opens and reads video: ``vigil detect`` (:mod:`detection.video`), the
camera edge adapter (:mod:`hardware.camera`) and the simulator's checks (:mod:`sim.video`)
all read through :class:`VideoFrames`, so each sees the same frames.

Sources
    A file path (``cameras/t03.avi``); an image sequence as a printf pattern
    (``input/in%06d.jpg``, numbered from 0 or 1); a stream URL (``rtsp://``, ``http://``, ...,
    see :data:`STREAM_SCHEMES`); a device number (``0`` for ``/dev/video0``).

Frames come as ``(index, time, frame)``: ``index`` counts from ``first_index`` (0 unless
given); ``time`` is ``start_time + index / fps`` for files and sequences, and the clock's
reading when the frame arrived for streams and devices. ``frame`` is OpenCV's image as read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

import numpy as np
from numpy.typing import NDArray

from vigil.geo.camera import MAX_FRAME_RATE_HZ

#: URL schemes read as live streams (through OpenCV's FFmpeg backend).
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")

Frame = tuple[int, float, NDArray[np.uint8]]


class FrameSourceError(OSError):
    """A video source that cannot be opened, or a file that cannot be read to its end.

    Attributes
    ----------
    source
        The source as given.
    frame
        Number (from 1) of the first frame that could not be read; 0 when the source could
        not be opened at all.
    frames_read
        Frames read before the failure.
    detail
        What went wrong, in words.
    announced
        Frames the container announces (0 when it does not say).
    """

    def __init__(
        self, source: str, frame: int, frames_read: int, detail: str, announced: int = 0
    ) -> None:
        self.source = source
        self.frame = frame
        self.frames_read = frames_read
        self.detail = detail
        self.announced = announced
        super().__init__(f"{source}: frame {frame}: {detail}")


def is_live(source: str) -> bool:
    """Whether a source is a live stream or device (not a file or an image sequence)."""
    if source.isdigit():
        return True
    return urlparse(source).scheme.lower() in STREAM_SCHEMES


def is_sequence(source: str) -> bool:
    """Whether a source is an image sequence (a printf pattern such as ``in%06d.png``)."""
    return "%" in source and not is_live(source)


def sequence_first(pattern: str) -> Path | None:
    """The first file of a printf-style image sequence (index 0 or 1), if there is one."""
    for i in (0, 1):
        try:
            p = Path(pattern % i)
        except (TypeError, ValueError):
            return None
        if p.exists():
            return p
    return None


def open_capture(source: str) -> Any:
    """An opened ``cv2.VideoCapture`` for any source (see the module docstring), or ``None``."""
    import cv2

    if source.isdigit():
        cap = cv2.VideoCapture(int(source))
    elif is_live(source):
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG)
    elif is_sequence(source):
        cap = cv2.VideoCapture(source, cv2.CAP_IMAGES)
    else:
        cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        cap.release()
        return None
    return cap


def _capture_fps(cap: Any) -> float | None:
    import cv2

    fps = float(cap.get(cv2.CAP_PROP_FPS))
    return fps if math.isfinite(fps) and 0 < fps <= MAX_FRAME_RATE_HZ else None


def announced_fps(source: str) -> float | None:
    """The frame rate a source announces, frames per second (``None`` if it does not)."""
    cap = open_capture(source)
    if cap is None:
        return None
    try:
        return _capture_fps(cap)
    finally:
        cap.release()


class VideoFrames:
    """An opened video source; iterate it for ``(index, time, frame)``, or :meth:`read` one.

    Parameters
    ----------
    source
        File path, image sequence pattern, stream URL or device number.
    fps
        For files and sequences: frames per second that time the frames; the rate the
        source announces when omitted (times are NaN if it announces none).
    start_time
        For files and sequences: time of frame 0, seconds (UTC seconds since the epoch).
    first_index
        Index of the first frame read (a reopened stream goes on counting).
    clock
        For streams and devices: the time of a frame when it arrives, seconds.

    Raises
    ------
    FrameSourceError
        When the source cannot be opened (``frame`` 0): a missing file, a pattern that
        matches no image, an unreadable container, a stream or device that does not answer.
        Iterating a file or sequence to its end raises it too when frames the source holds
        could not be decoded; the frames before have been yielded.
    """

    def __init__(
        self,
        source: str,
        *,
        fps: float | None = None,
        start_time: float = 0.0,
        first_index: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import cv2

        self.source = source
        self.live = is_live(source)
        self.sequence = is_sequence(source)
        if self.sequence and sequence_first(source) is None:
            raise FrameSourceError(source, 0, 0, "no image matches the pattern (from index 0 or 1)")
        if not self.live and not self.sequence and not Path(source).exists():
            raise FrameSourceError(source, 0, 0, "no such file")
        self._cap = open_capture(source)
        if self._cap is None:
            detail = (
                "cannot open the stream or device"
                if self.live
                else "cannot open it as video (corrupt, truncated, or an unknown format)"
            )
            raise FrameSourceError(source, 0, 0, detail)
        #: Frames the container announces (0 when it does not say, and for live sources).
        self.announced = 0 if self.live else max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self.fps = fps if fps is not None else _capture_fps(self._cap)
        self.start_time = start_time
        self.clock = clock
        self.first_index = first_index
        #: Frames read so far.
        self.frames_read = 0

    def read(self) -> Frame | None:
        """The next ``(index, time, frame)``; ``None`` at the end, or when a stream is lost."""
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        if not ok or frame is None:
            return None
        index = self.first_index + self.frames_read
        if self.live:
            t = self.clock()
        else:
            t = self.start_time + index / self.fps if self.fps else math.nan
        self.frames_read += 1
        return index, t, frame

    def check_complete(self) -> None:
        """Raise :class:`FrameSourceError` if a file or sequence ended before its last frame."""
        if self.live:
            return
        n = self.frames_read
        if self.sequence:
            first = sequence_first(self.source)
            start = 0 if first is not None and first == Path(self.source % 0) else 1
            after = Path(self.source % (start + n))
            if after.exists():
                raise FrameSourceError(
                    self.source,
                    n + 1,
                    n,
                    f"cannot decode the image {after} (corrupt or truncated)",
                    self.announced,
                )
        if self.announced > 0 and n < self.announced:
            raise FrameSourceError(
                self.source,
                n + 1,
                n,
                f"cannot decode it (corrupt or truncated); read {n} of the {self.announced} "
                "frames the input announces",
                self.announced,
            )

    def __iter__(self) -> Iterator[Frame]:
        """Every frame to the end, then :meth:`check_complete`; the source is closed after."""
        try:
            while (item := self.read()) is not None:
                yield item
            self.check_complete()
        finally:
            self.close()

    def close(self) -> None:
        """Release the source (again is harmless)."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_frames(
    source: str, *, fps: float | None = None, start_time: float = 0.0
) -> Iterator[Frame]:
    """``(index, time, frame)`` for every frame of a source, opened when iteration starts.

    Parameters as for :class:`VideoFrames`, which raises :class:`FrameSourceError`.
    """
    yield from VideoFrames(source, fps=fps, start_time=start_time)
