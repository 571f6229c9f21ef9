"""Video and thermal files as recorders write them, for the frame reader's and adapters' tests.

OpenCV writes the video; the AVI helpers then rewrite its RIFF chunks the way recorders that
drop frames, or announce a count they do not reach, leave them. The ``cptv`` package writes
the thermal recordings.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, n: int = 12, fps: float = 5.0) -> list[np.ndarray]:
    """An MJPG file of ``n`` frames of rising brightness; the frames as OpenCV reads them."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (32, 24))
    for i in range(n):
        vw.write(np.full((24, 32, 3), 6 * i, np.uint8))
    vw.release()
    cap = cv2.VideoCapture(str(path))
    out = []
    while (got := cap.read())[0]:
        out.append(got[1])
    cap.release()
    return out


def _chunks(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """RIFF chunks ``(fourcc, offset, size)`` between two offsets."""
    out = []
    p = start
    while p + 8 <= end:
        fcc, size = data[p : p + 4], struct.unpack("<I", data[p + 4 : p + 8])[0]
        out.append((fcc, p, size))
        p += 8 + size + (size & 1)
    return out


def rewrite_avi(src: Path, dst: Path, slots: list[int | None]) -> None:
    """Rewrite OpenCV's MJPG AVI as a recorder that drops frames writes it.

    ``slots`` lists, per frame period, the source frame stored there, or ``None`` for a
    dropped frame (an empty ``00dc`` chunk, indexed, as AVI recorders mark them); the headers
    announce ``len(slots)`` frames, as such recorders' headers do.
    """
    data = src.read_bytes()
    top = _chunks(data, 12, len(data))
    lists = {data[p + 8 : p + 12]: (p, n) for f, p, n in top if f == b"LIST"}
    hp, hn = lists[b"hdrl"]
    mp, mn = lists[b"movi"]
    pictures = [data[p + 8 : p + 8 + n] for f, p, n in _chunks(data, mp + 12, mp + 8 + mn)]
    movi, idx1 = bytearray(b"movi"), bytearray()
    for k in slots:
        payload = pictures[k] if k is not None else b""
        idx1 += b"00dc" + struct.pack("<III", 0x10 if payload else 0, len(movi), len(payload))
        movi += b"00dc" + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)
    head = bytearray(data[hp : hp + 8 + hn])
    i, j = head.find(b"avih") + 8, head.find(b"strh") + 8
    head[i + 16 : i + 20] = head[j + 32 : j + 36] = struct.pack("<I", len(slots))
    riff = b"AVI " + bytes(head) + b"LIST" + struct.pack("<I", len(movi)) + bytes(movi)
    riff += b"idx1" + struct.pack("<I", len(idx1)) + bytes(idx1)
    dst.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)


def set_announced_frames(path: Path, count: int) -> None:
    """Patch an AVI's headers (``avih`` total frames, ``strh`` length) to announce ``count``."""
    data = bytearray(path.read_bytes())
    i, j = data.find(b"avih") + 8, data.find(b"strh") + 8
    data[i + 16 : i + 20] = data[j + 32 : j + 36] = struct.pack("<I", count)
    path.write_bytes(bytes(data))


# frames 2, 5 and 6 of 15 dropped by the recorder
DROPPED = [0, 1, None, 2, 3, None, None, 4, 5, 6, 7, 8, 9, 10, 11]


RECORDED = datetime(2026, 5, 1, 3, 20, 0, tzinfo=UTC)
# the camera's uptime per frame, ms: about 9 frames a second, one frame lost after the third
TIME_ON_MS = [60_000, 60_111, 60_222, 60_445, 60_556, 60_667, 60_779, 60_890]


def write_cptv(path: Path, time_on_ms: list[int] = TIME_ON_MS) -> list[np.ndarray]:
    """A 160×120 recording of a warm body walking right; its frames (raw counts)."""
    from cptv.frame import Frame
    from cptv.writer import CPTVWriter

    frames = []
    writer = CPTVWriter(path.open("wb"))
    writer.timestamp = RECORDED
    writer.device_name = b"tower-t03"
    for i, on in enumerate(time_on_ms):
        pix = np.full((120, 160), 2700, np.uint16)
        pix[50:70, 10 + 12 * i : 18 + 12 * i] = 3000
        frames.append(pix)
        writer.write_frame(
            Frame(pix, timedelta(milliseconds=on), timedelta(milliseconds=1000), 20.0, 20.0)
        )
    writer.close()
    return frames
