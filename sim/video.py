"""Lossless video files for the simulated towers: FFV1 in AVI, written by OpenCV.

OpenCV's ``VideoWriter.write`` holds the GIL while FFV1 encodes (about 7 ms for a 640x480
frame), so long runs encode each tower in its own process, fed through a pipe; short runs
encode inline. Either way the bytes are the same.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from vigil.ingest.frames import FrameSourceError, VideoFrames

VIDEO_FOURCC = "FFV1"
VIDEO_SUFFIX = ".avi"


class VideoError(RuntimeError):
    """A video file that could not be written."""


def _open(path: str, fps: float, width: int, height: int):
    import cv2

    writer = cv2.VideoWriter(
        path, cv2.VideoWriter_fourcc(*VIDEO_FOURCC), float(fps), (width, height), False
    )
    if not writer.isOpened():
        raise VideoError(f"OpenCV cannot write {VIDEO_FOURCC} video to {path}")
    return writer


def encode_stdin(path: str, fps: float, width: int, height: int) -> int:
    """Child process: write each ``height * width`` bytes from stdin as a frame until EOF."""
    writer = _open(path, fps, width, height)
    size = width * height
    stream = sys.stdin.buffer
    n = 0
    while True:
        buf = stream.read(size)
        if not buf:
            break
        if len(buf) != size:
            raise VideoError(f"{path}: a frame of {len(buf)} bytes; expected {size}")
        writer.write(np.frombuffer(buf, np.uint8).reshape(height, width))
        n += 1
    writer.release()
    print(n)
    return n


class VideoSink:
    """One tower's video file, encoded inline or in a child process.

    Parameters
    ----------
    path
        Output file (``.avi``).
    fps, width, height
        Frame rate (Hz) and frame size (pixels) of the 8-bit grayscale frames.
    in_process
        Encode in a child process (spawned, so safe beside threads).
    """

    def __init__(
        self, path: Path, fps: float, width: int, height: int, in_process: bool = False
    ) -> None:
        self.path = Path(path)
        self.shape = (height, width)
        self.frames = 0
        self._writer = None
        self._proc = None
        if in_process:
            code = (
                "import sys; from vigil.sim.video import encode_stdin; "
                "encode_stdin(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))"
            )
            self._proc = subprocess.Popen(
                [sys.executable, "-c", code, str(path), repr(float(fps)), str(width), str(height)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=str(Path(__file__).resolve().parents[2]),
            )
        else:
            self._writer = _open(str(path), fps, width, height)

    def write(self, frame: np.ndarray) -> None:
        """Append one frame (uint8, ``(height, width)``)."""
        if frame.dtype != np.uint8 or frame.shape != self.shape:
            raise VideoError(
                f"frame of {frame.dtype} {frame.shape} for {self.path.name}; "
                f"expected uint8 {self.shape}"
            )
        if self._proc is not None:
            try:
                self._proc.stdin.write(np.ascontiguousarray(frame).data)
            except BrokenPipeError:
                self.close()
                raise
        else:
            self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        """Finish the file; raises :class:`VideoError` if the encoder failed."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            try:
                out, err = proc.communicate()
            except BrokenPipeError:
                out, err = b"", b"broken pipe"
            if proc.returncode != 0:
                tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
                raise VideoError(f"writing {self.path} failed: {tail[0]}")
            written = int(out.split()[-1]) if out.split() else -1
            if written != self.frames:
                raise VideoError(f"{self.path}: encoder wrote {written} of {self.frames} frames")
        elif self._writer is not None:
            self._writer.release()
            self._writer = None


def read_video(path: str | Path) -> list[np.ndarray]:
    """Every frame of a simulator video as 8-bit grayscale arrays (for checks and replays).

    Raises
    ------
    VideoError
        When the file cannot be opened.
    FrameSourceError
        When frames the file announces cannot be decoded.
    """
    try:
        frames = VideoFrames(str(path))
    except FrameSourceError as exc:
        raise VideoError(f"OpenCV cannot open {path}") from exc
    return [img[:, :, 0].copy() if img.ndim == 3 else img for _, _, img in frames]
