"""Frames from a video file, an image sequence, a stream URL or a camera device, through OpenCV.

The one place Vigil opens and reads video: ``vigil detect`` (:mod:`detection.video`), the
camera edge adapter (:mod:`hardware.camera`) and the simulator's checks (:mod:`sim.video`)
all read through :class:`VideoFrames`, so each sees the same frames.

Sources
    A file path (``cameras/t03.avi``); an image sequence as a printf pattern
    (``input/in%06d.jpg``, numbered from 0 or 1); a stream URL (``rtsp://``, ``http://``, ...,
    see :data:`STREAM_SCHEMES`); a device number (``0`` for ``/dev/video0``).

Thermal video in the Cacophony Project's CPTV format (``*.cptv``) is read through the
``cptv`` package by :class:`~vigil.ingest.cptv_file.CptvFrames`, behind the same interface;
:func:`open_frames` picks the reader for a source.

Frames come as ``(index, time, frame)``: ``index`` counts from ``first_index`` (0 unless
given). ``time`` is, for files, the container's presentation time of the frame counted in
frame periods of the container's rate and divided by ``fps`` (``start_time + index / fps``
for a file at a constant rate; a recorder's dropped frames leave their gap in time); for
sequences ``start_time + index / fps``; for streams and devices the stream's own clock
(:class:`StreamClock`). ``frame`` is OpenCV's image as read.

Stream time
    A live frame is stamped from the time the stream gives it (the container's or RTP's
    presentation time, which OpenCV's FFmpeg backend reports as ``CAP_PROP_POS_MSEC``),
    anchored to the wall clock at connect: ``time = offset + pos``, where ``offset`` is the
    least ``arrival - pos`` seen since the connection opened (the frame that came with the
    least delay fixes it; a burst of buffered frames at connect does not move frames into
    the future). So a frame's time is never after its arrival, times never go backwards,
    and their spacing is the camera's, not the network's. The anchor is set afresh (and
    counted) when the stream's time goes backwards or jumps, or falls more than
    ``max_lag_s`` behind the wall clock (a camera clock that runs slow, an encoder that
    restarted). A frame without a usable stream time (none, not finite, not increasing:
    MJPEG over HTTP, some devices) is stamped with its arrival. Each reopened connection
    anchors afresh.

A file that holds fewer frames than its header announces is read to its end. When the
container is complete (an AVI whose RIFF chunk fits in the file, or frames whose times reach
the announced length) that is the header's count overstating: a warning says so, once. When
the file is cut short, iteration ends with :class:`FrameSourceError` naming the frame.
"""

from __future__ import annotations

import logging
import math
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
from numpy.typing import NDArray

from vigil.geo.camera import MAX_FRAME_RATE_HZ

if TYPE_CHECKING:
    from vigil.ingest.cptv_file import CptvFrames

#: URL schemes read as live streams (through OpenCV's FFmpeg backend).
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")

#: How long opening a stream, or waiting for its next frame, may take, seconds.
STREAM_TIMEOUT_S = 5.0

#: ``(index, time, frame)``: OpenCV's ``uint8`` image, or a CPTV file's ``uint16`` counts.
Frame = tuple[int, float, NDArray[np.uint8] | NDArray[np.uint16]]

log = logging.getLogger(__name__)

#: Frame times within this share of a frame period of the container's frame grid are put on
#: the grid, so a constant-rate file's times are exactly ``index / fps``.
GRID_TOLERANCE = 1e-3


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
        # a stream that stops answering returns from read() after the timeout instead of
        # hanging the adapter (milliseconds)
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(STREAM_TIMEOUT_S * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(STREAM_TIMEOUT_S * 1000),
        ]
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
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


def riff_complete(path: str) -> bool:
    """Whether ``path`` is a RIFF file (AVI) whose outer chunk fits in the file (not cut short)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            size = fh.seek(0, 2)
    except OSError:
        return False
    if len(head) < 12 or head[:4] != b"RIFF":
        return False
    return struct.unpack("<I", head[4:8])[0] + 8 <= size


def announced_fps(source: str) -> float | None:
    """The frame rate a source announces, frames per second (``None`` if it does not)."""
    from vigil.ingest.cptv_file import cptv_fps, is_cptv

    if is_cptv(source):
        return cptv_fps(source)
    cap = open_capture(source)
    if cap is None:
        return None
    try:
        return _capture_fps(cap)
    finally:
        cap.release()


class StreamClock:
    """Stamps a live stream's frames from its own clock, anchored to the wall clock.

    See "Stream time" in the module docstring.

    Parameters
    ----------
    clock
        The wall clock, UTC seconds.
    max_lag_s
        How far a frame's time may fall behind its arrival before the anchor is set afresh,
        seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.time, max_lag_s: float = 2.0) -> None:
        self.clock = clock
        self.max_lag_s = float(max_lag_s)
        self.offset: float | None = None
        self.last_pos: float | None = None
        self.last_time = -math.inf
        #: Frames stamped with their arrival for want of a stream time.
        self.unstamped = 0
        #: Times the anchor was set afresh after the first.
        self.reanchors = 0

    def stamp(self, pos_ms: float) -> float:
        """The time of a frame the stream says is at ``pos_ms`` milliseconds, seconds."""
        arrival = self.clock()
        pos = pos_ms / 1000.0 if math.isfinite(pos_ms) else math.nan
        usable = math.isfinite(pos) and (self.last_pos is None or pos > self.last_pos)
        if not usable:
            self.unstamped += 1
            t = arrival
        else:
            offset = arrival - pos
            if self.offset is None:
                self.offset = offset
            elif offset < self.offset:
                self.offset = offset  # this frame came with less delay than any before
            elif offset - self.offset > self.max_lag_s:
                log.info(
                    "stream time %.3f s is %.1f s behind the wall clock; anchored afresh",
                    pos,
                    offset - self.offset,
                )
                self.offset = offset
                self.reanchors += 1
            self.last_pos = pos
            t = self.offset + pos
        t = max(t, self.last_time)
        self.last_time = t
        return t


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
        For streams and devices: the wall clock that anchors the stream's (UTC seconds).

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
        #: The frame rate the container announces, frames per second (``None``: it does not).
        self.container_fps = _capture_fps(self._cap)
        self.fps = fps if fps is not None else self.container_fps
        self.start_time = start_time
        self.clock = clock
        self.first_index = first_index
        #: Live sources: stamps frames from the stream's clock.
        self.stream_clock = StreamClock(clock)
        #: Frames read so far.
        self.frames_read = 0
        #: Frames the header announces that a complete file does not hold (after the end).
        self.missing = 0
        self._slot = -1.0  # the last frame's place on the container's frame grid

    def read(self) -> Frame | None:
        """The next ``(index, time, frame)``; ``None`` at the end, or when a stream is lost."""
        import cv2

        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        if not ok or frame is None:
            return None
        index = self.first_index + self.frames_read
        if self.live:
            t = self.stream_clock.stamp(float(self._cap.get(cv2.CAP_PROP_POS_MSEC)))
        elif not self.fps:
            t = math.nan
        elif self.sequence:
            t = self.start_time + index / self.fps
        else:
            t = self.start_time + (self.first_index + self._container_slot()) / self.fps
        self.frames_read += 1
        return index, t, frame

    def _container_slot(self) -> float:
        """The frame just read, in frame periods of the container's rate from its first frame.

        The container's presentation time (``CAP_PROP_POS_MSEC``), so frames a recorder
        dropped leave their gap; snapped to the frame grid within :data:`GRID_TOLERANCE`.
        Where the container gives no usable time (no rate, or not increasing) the frame is
        the next one after the last.
        """
        import cv2

        slot = self._slot + 1.0
        if self.container_fps:
            pos = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0 * self.container_fps
            near = round(pos) if math.isfinite(pos) else -1
            pos = float(near) if abs(pos - near) < GRID_TOLERANCE else pos
            if math.isfinite(pos) and pos > self._slot:
                slot = pos
        self._slot = slot
        return slot

    def check_complete(self) -> None:
        """Raise :class:`FrameSourceError` if a file or sequence ended before its last frame.

        A complete file whose header announces more frames than it holds is not an error:
        :attr:`missing` counts them, and a warning says so.
        """
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
            if not self.sequence and (
                self._slot >= self.announced - 1.5 or riff_complete(self.source)
            ):
                self.missing = self.announced - n
                log.warning(
                    "%s: read %d frames to the end of the file; its header announces %d "
                    "(%d not in the file)",
                    self.source,
                    n,
                    self.announced,
                    self.missing,
                )
                return
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


def open_frames(
    source: str,
    *,
    fps: float | None = None,
    start_time: float | None = None,
    first_index: int = 0,
    clock: Callable[[], float] = time.time,
) -> VideoFrames | CptvFrames:
    """The frame reader for a source: :class:`~vigil.ingest.cptv_file.CptvFrames` for a
    ``.cptv`` thermal file, :class:`VideoFrames` for everything else.

    Parameters as for :class:`VideoFrames`; ``start_time`` ``None`` is the recording time a
    CPTV file holds, and 0 for video. Raises :class:`FrameSourceError`.
    """
    from vigil.ingest.cptv_file import CptvFrames, is_cptv

    if is_cptv(source):
        return CptvFrames(source, fps=fps, start_time=start_time, first_index=first_index)
    return VideoFrames(
        source,
        fps=fps,
        start_time=0.0 if start_time is None else start_time,
        first_index=first_index,
        clock=clock,
    )


def read_frames(
    source: str, *, fps: float | None = None, start_time: float | None = None
) -> Iterator[Frame]:
    """``(index, time, frame)`` for every frame of a source, opened when iteration starts.

    Parameters as for :func:`open_frames`, which raises :class:`FrameSourceError`.
    """
    yield from open_frames(source, fps=fps, start_time=start_time)
