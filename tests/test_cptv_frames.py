"""CPTV thermal files through the one frame reader, and ``vigil detect`` on them.

Truth is the ``cptv`` package's own reader (its pixels and per-frame ``time_on``) and, for
written files, what was written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from video_files import RECORDED, TIME_ON_MS, write_cptv

from vigil.cli import main
from vigil.ingest.frames import FrameSourceError, announced_fps, open_frames, read_frames

cptv = pytest.importorskip("cptv", reason="the cptv package reads CPTV files")


def test_written_cptv_frames_carry_the_cameras_own_times(tmp_path: Path) -> None:
    path = tmp_path / "t03.cptv"
    want = write_cptv(path)
    frames = open_frames(str(path))
    got = list(frames)
    assert [i for i, _, _ in got] == list(range(len(want)))
    t0 = RECORDED.timestamp()
    assert [t for _, t, _ in got] == pytest.approx([t0 + (on - 60_000) / 1000 for on in TIME_ON_MS])
    for (_, _, frame), ref in zip(got, want, strict=True):
        assert frame.dtype == np.uint16
        np.testing.assert_array_equal(frame, ref)
    assert frames.device == "tower-t03" and frames.announced == len(want)
    # measured from the frames' times: 7 intervals over 0.89 s
    assert announced_fps(str(path)) == pytest.approx(7 / 0.89)
    # a given start time moves the recording, keeping its intervals
    assert [t for _, t, _ in read_frames(str(path), start_time=50.0)][3] == pytest.approx(50.445)


def test_a_cut_cptv_file_yields_what_it_can_then_names_the_frame(tmp_path: Path) -> None:
    path = tmp_path / "t03.cptv"
    write_cptv(path, list(range(0, 40 * 111, 111)))
    cut = tmp_path / "cut.cptv"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    seen = []
    with pytest.raises(FrameSourceError, match="cannot decode it") as info:
        for i, _, _ in open_frames(str(cut)):
            seen.append(i)
    assert 0 < len(seen) < 40 and info.value.frame == len(seen) + 1
    assert str(cut) in str(info.value)


@pytest.mark.parametrize(
    ("content", "detail"),
    [(None, "no such file"), (b"\x89PNG\r\n\x1a\n" + bytes(64), "not a readable CPTV file")],
    ids=["missing", "png"],
)
def test_what_is_not_cptv_is_named(tmp_path: Path, content: bytes | None, detail: str) -> None:
    path = tmp_path / "x.cptv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FrameSourceError, match=detail) as info:
        open_frames(str(path))
    assert info.value.frame == 0 and str(path) in str(info.value)


def test_vigil_detect_on_a_written_cptv_file(tmp_path: Path) -> None:
    """Was: 'cannot open it as video', exit 3."""
    path = tmp_path / "t03.cptv"
    write_cptv(path, list(range(0, 30 * 111, 111)))
    out = tmp_path / "det.jsonl"
    # plain settings (no warm-up): the thermal defaults learn for 35 frames, longer than this
    assert main(["detect", str(path), "--out", str(out), "--sensor", "daylight"]) == 0
    dets = [json.loads(line) for line in out.read_text().splitlines()]
    assert dets, "the walking body is detected"
    t0 = RECORDED.timestamp()
    for d in dets:  # the recording's own clock, frame k at k * 0.111 s
        assert d["time"] == pytest.approx(t0 + (d["frame"] - 1) * 0.111)


def test_real_cacophony_recording(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "thermal" / "v2.cptv"
    if not path.exists():
        pytest.skip(f"thermal recording not present at {path}")
    with path.open("rb") as fh:
        reader = cptv.CPTVReader(fh)
        start = reader.timestamp.timestamp()
        truth = [(fr.time_on.total_seconds(), fr.pix) for fr in reader]
    got = list(open_frames(str(path)))
    assert len(got) == len(truth) == 100
    on0 = truth[0][0]
    for (_, t, frame), (on, pix) in zip(got, truth, strict=True):
        assert t == pytest.approx(start + on - on0, abs=1e-6)
        np.testing.assert_array_equal(frame, pix)
    # the camera's intervals are 111 or 112 ms, not a nominal rate
    assert set(np.round(np.diff([t for _, t, _ in got]), 3)) == {0.111, 0.112}
    out = tmp_path / "det.jsonl"
    assert main(["detect", str(path), "--out", str(out)]) == 0
    times = [json.loads(line)["time"] for line in out.read_text().splitlines()]
    assert times and start <= min(times) and max(times) <= got[-1][1]


def test_a_frame_that_announces_gigabytes_is_refused(tmp_path: Path) -> None:
    """A frame's packed size is data; a gzip stream could hold gigabytes in a few megabytes."""
    import gzip

    path = tmp_path / "t03.cptv"
    write_cptv(path)
    raw = bytearray(gzip.decompress(path.read_bytes()))
    at = raw.index(b"\x04f")  # the first frame's size field: 4 bytes, code 'f'
    raw[at + 2 : at + 6] = (0xFFFF_FFF0).to_bytes(4, "little")
    bad = tmp_path / "bad.cptv"
    bad.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(FrameSourceError, match="announces 4294967280 bytes") as info:
        list(open_frames(str(bad)))
    assert info.value.frame == 1
