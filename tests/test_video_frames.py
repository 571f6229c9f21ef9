"""ingest.frames: the one reader of video files, image sequences, streams and devices."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from video_files import DROPPED, rewrite_avi, set_announced_frames, write_video

from vigil.ingest.frames import (
    FrameSourceError,
    VideoFrames,
    announced_fps,
    is_live,
    is_sequence,
    read_frames,
)


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


def test_dropped_frames_keep_their_gap_in_time_and_are_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "v.avi"
    want = write_video(src, n=12, fps=5.0)
    path = tmp_path / "dropped.avi"
    rewrite_avi(src, path, DROPPED)
    frames = VideoFrames(str(path), start_time=100.0)
    assert frames.announced == 15
    with caplog.at_level("WARNING", logger="vigil.ingest.frames"):
        got = list(frames)  # no FrameSourceError: the file is complete
    slots = [k for k, f in enumerate(DROPPED) if f is not None]
    assert [i for i, _, _ in got] == list(range(12))
    assert [t for _, t, _ in got] == [100.0 + k / 5.0 for k in slots]
    for (_, _, frame), ref in zip(got, want, strict=True):
        np.testing.assert_array_equal(frame, ref)
    assert frames.missing == 3
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and str(path) in warned[0] and "announces 15" in warned[0]
    # an explicit rate times the same container slots
    assert [t for _, t, _ in read_frames(str(path), fps=10.0)][:4] == [0.0, 0.1, 0.3, 0.4]


def test_a_header_that_overstates_the_count_is_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "v.avi"
    write_video(path, n=12, fps=5.0)
    set_announced_frames(path, 20)
    frames = VideoFrames(str(path))
    assert frames.announced == 20
    with caplog.at_level("WARNING", logger="vigil.ingest.frames"):
        got = list(frames)
    assert [t for _, t, _ in got] == [i / 5.0 for i in range(12)]
    assert frames.missing == 8 and len(caplog.records) == 1


def test_vigil_detect_reads_a_file_with_dropped_frames_to_the_end(tmp_path: Path) -> None:
    """Was: exit 3 ("read 12 of the 15 frames") after every frame had been processed."""
    from vigil.cli import main

    src = tmp_path / "v.avi"
    vw = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (64, 48))
    for i in range(12):  # a bright square walking right over a dark scene
        img = np.full((48, 64, 3), 20, np.uint8)
        img[20:28, 4 + 4 * i : 12 + 4 * i] = 230
        vw.write(img)
    vw.release()
    path = tmp_path / "dropped.avi"
    rewrite_avi(src, path, DROPPED)
    out = tmp_path / "det.jsonl"
    # plain settings (no warm-up): the thermal defaults (grey frames) learn for 35 frames
    rc = main(["detect", str(path), "--out", str(out), "--start", "2026-05-01T00:00:00Z",
               "--sensor", "daylight"])  # fmt: skip
    assert rc == 0
    t0 = 1_777_593_600.0
    times = {round(json.loads(line)["time"] - t0, 6) for line in out.read_text().splitlines()}
    slot_times = {round(k / 5.0, 6) for k, f in enumerate(DROPPED) if f is not None}
    # on the container's frame grid, and reaching past 12 frames at 5 per second (2.2 s)
    assert times <= slot_times and max(times) == 2.8, sorted(times)
