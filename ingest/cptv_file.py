"""Frames of thermal video in the Cacophony Project's CPTV format, read with the ``cptv`` package.

:class:`CptvFrames` has :class:`~vigil.ingest.frames.VideoFrames`'s interface (iterate it for
``(index, time, frame)``, or :meth:`~CptvFrames.read` one), so ``vigil detect`` and the camera
edge adapter read ``*.cptv`` files through :func:`~vigil.ingest.frames.open_frames` as they
read video. Frames are the camera's raw 16-bit counts (``uint16``, height × width).

Time
    A CPTV file records the UTC time of its recording in its header and, per frame, the
    camera's uptime when the frame was taken (``time_on``, milliseconds). A frame's time is
    the header's time (or ``start_time`` when given) plus the frame's ``time_on`` less the
    first frame's: the camera's real frame intervals, not a nominal rate. Version 1 files carry
    no ``time_on``: their frames are ``1 / fps`` apart.
"""

from __future__ import annotations

import logging
import math
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vigil.ingest.frames import FrameSourceError

#: Largest frame side a header may announce, pixels (thermal cores are 160 to 640 wide).
MAX_SIDE_PX = 4096
#: Frame rate of a version 1 file without a rate in its header (a Lepton core), frames/s.
DEFAULT_FPS = 9.0

log = logging.getLogger(__name__)

INSTALL_HINT = "reading CPTV thermal video needs the cptv package: pip install 'cptv>=1.5,<2'"

# what a damaged gzip stream (gzip.BadGzipFile is an OSError) or a cut frame raises inside
# the cptv reader
_DECODE_ERRORS = (EOFError, OSError, ValueError, IndexError, TypeError, struct.error, zlib.error)


class _BoundedReads:
    """The decompressed stream the cptv reader reads, refusing a read over ``limit`` bytes.

    A frame announces its packed size in the file; a hostile file could announce gigabytes
    (and a gzip stream can hold them in a few megabytes).
    """

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self._limit:
            raise ValueError(f"a frame announces {n} bytes; at most {self._limit} fit its pixels")
        return self._stream.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


def is_cptv(source: str) -> bool:
    """Whether a source names a CPTV file (by its ``.cptv`` suffix, any case)."""
    return source.lower().endswith(".cptv")


class CptvFrames:
    """An opened CPTV file; iterate it for ``(index, time, frame)``, or :meth:`read` one.

    Parameters
    ----------
    source
        Path of the ``.cptv`` file.
    fps
        Frames per second for version 1 files (no per-frame time); the header's, else
        :data:`DEFAULT_FPS`, when omitted. Version 2 frames carry their own times.
    start_time
        Time of the first frame, UTC seconds since the epoch; the header's recording time
        when omitted.
    first_index
        Index of the first frame read.

    Raises
    ------
    FrameSourceError
        When the file is missing, is not CPTV, or announces an implausible frame size
        (``frame`` 0); while iterating, when a frame cannot be decoded (the frames before it
        have been yielded).
    """

    live = False
    sequence = False

    def __init__(
        self,
        source: str,
        *,
        fps: float | None = None,
        start_time: float | None = None,
        first_index: int = 0,
    ) -> None:
        self.source = source
        path = Path(source)
        if not path.is_file():
            raise FrameSourceError(source, 0, 0, "no such file")
        try:
            import cptv
        except ImportError:
            raise FrameSourceError(source, 0, 0, INSTALL_HINT) from None
        self._fh: Any = path.open("rb")
        try:
            self._reader = cptv.CPTVReader(self._fh)
        except (*_DECODE_ERRORS, KeyError) as exc:
            self.close()
            raise FrameSourceError(source, 0, 0, f"not a readable CPTV file ({exc})") from None
        r = self._reader
        if not (0 < r.x_resolution <= MAX_SIDE_PX and 0 < r.y_resolution <= MAX_SIDE_PX):
            self.close()
            raise FrameSourceError(
                source,
                0,
                0,
                f"header announces {r.x_resolution}x{r.y_resolution} pixels; "
                f"expected at most {MAX_SIDE_PX} a side",
            )
        # a frame's size is data: read no more than its pixels can take (24 bits each)
        r.s = _BoundedReads(r.s, 4 + 3 * r.x_resolution * r.y_resolution + 64)
        #: Frames the header announces (0 when it does not say).
        self.announced = int(r.num_frames or 0)
        header_fps = float(r.fps or 0)
        self.fps = fps if fps is not None else (header_fps or DEFAULT_FPS)
        #: The recording's time in the header, UTC seconds since the epoch.
        self.recorded_at = r.timestamp.timestamp()
        self.start_time = self.recorded_at if start_time is None else start_time
        self.first_index = first_index
        #: Camera metadata from the header: device name, position (degrees; 0 when unset).
        self.device = (r.device_name or b"").decode("utf-8", "replace")
        self.latitude = float(r.latitude or 0.0)
        self.longitude = float(r.longitude or 0.0)
        #: Frames read so far.
        self.frames_read = 0
        #: Frames the header announces that the file does not hold (known after the end).
        self.missing = 0
        #: Background frames the camera stored (not moments of the recording): skipped.
        self.background_skipped = 0
        self._frames: Iterator[Any] | None = iter(r)
        self._time_on0: float | None = None

    def read(self) -> tuple[int, float, NDArray[np.uint16]] | None:
        """The next ``(index, time, frame)``; ``None`` at the end.

        Raises
        ------
        FrameSourceError
            When the next frame cannot be decoded (a damaged or cut file).
        """
        while self._frames is not None:
            try:
                fr = next(self._frames, None)
            except _DECODE_ERRORS as exc:
                n = self.frames_read
                self.close()
                raise FrameSourceError(
                    self.source, n + 1, n, f"cannot decode it (corrupt or truncated): {exc}"
                ) from None
            if fr is None:
                self.close()
                return None
            if fr.background_frame:
                self.background_skipped += 1
                continue
            index = self.first_index + self.frames_read
            if fr.time_on is not None:
                on = fr.time_on.total_seconds()
                if self._time_on0 is None:
                    self._time_on0 = on
                t = self.start_time + (on - self._time_on0)
            else:
                t = self.start_time + self.frames_read / self.fps
            self.frames_read += 1
            return index, t, np.asarray(fr.pix, dtype=np.uint16)
        return None

    def check_complete(self) -> None:
        """Warn when the header announced more frames than the file held (a damaged file
        raised while it was read)."""
        if self.announced and self.frames_read + self.background_skipped < self.announced:
            self.missing = self.announced - self.frames_read - self.background_skipped
            log.warning(
                "%s: read %d frames to the end of the file; its header announces %d",
                self.source,
                self.frames_read,
                self.announced,
            )

    def __iter__(self) -> Iterator[tuple[int, float, NDArray[np.uint16]]]:
        """Every frame to the end; the file is closed after."""
        try:
            while (item := self.read()) is not None:
                yield item
            self.check_complete()
        finally:
            self.close()

    def close(self) -> None:
        """Close the file (again is harmless)."""
        self._frames = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> CptvFrames:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def cptv_fps(source: str) -> float | None:
    """The frame rate a CPTV file announces, frames per second (``None`` if it does not).

    Files that leave the rate out (most do) are measured: frames over the span of the
    first ten frames' ``time_on``.
    """
    try:
        frames = CptvFrames(source)
    except FrameSourceError:
        return None
    header = float(frames._reader.fps or 0)
    if header > 0:
        frames.close()
        return header
    times = []
    try:
        while len(times) < 10 and (got := frames.read()) is not None:
            times.append(got[1])
    except FrameSourceError:
        pass
    finally:
        frames.close()
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return (len(times) - 1) / span if span > 0 and math.isfinite(span) else None


__all__ = ["DEFAULT_FPS", "INSTALL_HINT", "MAX_SIDE_PX", "CptvFrames", "cptv_fps", "is_cptv"]
