"""ingest.frames: the one reader of video files, image sequences, streams and devices."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vigil.ingest.frames import (
    FrameSourceError,
    VideoFrames,
    announced_fps,
    is_live,
    is_sequence,
    read_frames,
)


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


@pytest.mark.parametrize(
    ("source", "live", "sequence"),
    [
        ("cams/t03.avi", False, False),
        ("in/in%06d.png", False, True),
        ("rtsp://10.0.0.5/stream", True, False),
        ("http://cam/mjpg", True, False),
        ("0", True, False),
    ],
    ids=["file", "sequence", "rtsp", "http", "device"],
)
def test_kinds_of_source(source: str, live: bool, sequence: bool) -> None:
    assert is_live(source) is live and is_sequence(source) is sequence


def test_file_frames_are_opencvs_with_index_and_time(tmp_path: Path) -> None:
    path = tmp_path / "v.avi"
    want = write_video(path)
    got = list(VideoFrames(str(path), fps=4.0, start_time=100.0))
    assert [i for i, _, _ in got] == list(range(len(want))) and len(want) == 12
    assert [t for _, t, _ in got] == [100.0 + i / 4.0 for i in range(12)]
    for (_, _, frame), ref in zip(got, want, strict=True):
        np.testing.assert_array_equal(frame, ref)
    assert announced_fps(str(path)) == pytest.approx(5.0)
    # without fps, the file's own rate times the frames
    assert [t for _, t, _ in read_frames(str(path))][:2] == [0.0, 0.2]


def test_image_sequence_from_index_one(tmp_path: Path) -> None:
    for i in range(1, 6):
        cv2.imwrite(str(tmp_path / f"in{i:06d}.png"), np.full((8, 8), 20 * i, np.uint8))
    got = list(read_frames(str(tmp_path / "in%06d.png"), fps=2.0))
    assert [(i, t) for i, t, _ in got] == [(i, i / 2.0) for i in range(5)]
    assert [int(f.flat[0]) for _, _, f in got] == [20, 40, 60, 80, 100]


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("none.avi", "no such file"),
        ("none%04d.png", "no image matches the pattern"),
        ("junk.avi", "cannot open it as video"),
    ],
    ids=["missing", "pattern", "junk"],
)
def test_a_source_that_cannot_open_is_named(tmp_path: Path, name: str, detail: str) -> None:
    (tmp_path / "junk.avi").write_bytes(b"not a video")
    source = str(tmp_path / name)
    with pytest.raises(FrameSourceError, match=detail) as info:
        VideoFrames(source)
    err = info.value
    assert err.source == source and source in str(err)
    assert (err.frame, err.frames_read) == (0, 0)


def test_a_stream_that_does_not_answer() -> None:
    with pytest.raises(FrameSourceError, match="cannot open the stream or device"):
        VideoFrames("rtsp://127.0.0.1:9/none")


def test_a_truncated_file_yields_what_it_can_then_names_the_frame(tmp_path: Path) -> None:
    path = tmp_path / "v.avi"
    write_video(path, n=40)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    frames = VideoFrames(str(cut), fps=1.0)
    seen = []
    with pytest.raises(FrameSourceError, match="cannot decode") as info:
        for i, _, _ in frames:
            seen.append(i)
    err = info.value
    assert err.announced == 40 and err.frames_read == len(seen) < 40
    assert err.frame == len(seen) + 1


def test_read_one_at_a_time_numbers_on_from_first_index(tmp_path: Path) -> None:
    path = tmp_path / "v.avi"
    write_video(path, n=3)
    with VideoFrames(str(path), fps=1.0, first_index=7) as frames:
        got = [frames.read() for _ in range(4)]
    assert [g[0] for g in got[:3]] == [7, 8, 9] and got[3] is None
    assert frames.read() is None  # closed
