"""The camera edge adapter on files recorders really write: dropped frames, CPTV thermal."""

from __future__ import annotations

from pathlib import Path

import pytest
from video_files import DROPPED, RECORDED, TIME_ON_MS, rewrite_avi, write_cptv, write_video

from vigil.hardware.camera import run_camera_edge
from vigil.ingest.bus import InProcessBus


class Seen:
    """A detector that finds nothing and remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float, str, tuple[int, ...]]] = []

    def __call__(self, frame, t: float, index: int) -> list:
        self.calls.append((index, t, str(frame.dtype), frame.shape))
        return []


def test_dropped_frames_are_counted_and_keep_their_gap(tmp_path: Path) -> None:
    """Was: 12 frames at 0.2 s apart and 3 counted missing as if the file had been cut."""
    src = tmp_path / "v.avi"
    write_video(src, n=12, fps=5.0)
    path = tmp_path / "dropped.avi"
    rewrite_avi(src, path, DROPPED)
    seen = Seen()
    counts = run_camera_edge(str(path), InProcessBus("s"), "s", "t03", seen, start_time=10.0)
    assert counts.frames == 12 and counts.missing_frames == 3
    slots = [k for k, f in enumerate(DROPPED) if f is not None]
    assert [t for _, t, _, _ in seen.calls] == [10.0 + k / 5.0 for k in slots]
    assert counts.last_time == 12.8


def test_a_cptv_recording_runs_on_the_cameras_clock(tmp_path: Path) -> None:
    """Was: 'cannot open it as video'."""
    path = tmp_path / "t03.cptv"
    write_cptv(path)
    seen = Seen()
    counts = run_camera_edge(str(path), InProcessBus("s"), "s", "t03", seen)
    assert counts.frames == len(TIME_ON_MS) and counts.missing_frames == 0
    t0 = RECORDED.timestamp()
    assert [t for _, t, _, _ in seen.calls] == pytest.approx(
        [t0 + (on - TIME_ON_MS[0]) / 1000 for on in TIME_ON_MS]
    )
    assert {(d, s) for _, _, d, s in seen.calls} == {("uint16", (120, 160))}
