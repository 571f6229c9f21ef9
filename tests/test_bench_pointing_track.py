"""benchmarks/bench_pointing_track runs the live chain's parts on a few people and says what
it decided for each (a small run on a tuning seed; the figures come from the benchmark)."""

from __future__ import annotations

import re

from benchmarks import bench_pointing_track


def test_a_small_run_decides_sides_through_tracker_and_monitor(capsys) -> None:
    bench_pointing_track.main(
        ["--seeds", "1", "--draws", "1", "--people", "6", "--towers", "t05", "--seconds", "20"]
    )
    out = capsys.readouterr().out
    assert "TUNING seeds [1]" in out
    m = re.search(
        r"t05: people decided (\d+) \(no side (\d+): seen in < 3 frames (\d+), no confirmed "
        r"track (\d+), never sure (\d+)\): right (\d+)/(\d+)",
        out,
    )
    assert m, out
    decided, none, few, unconfirmed, unsure, right, n = (int(g) for g in m.groups())
    assert n == decided and 1 <= decided <= 6 and 0 <= right <= decided
    assert none == few + unconfirmed + unsure
    d = re.search(r"their detections on the right side (\d+)/(\d+)", out)
    assert d and int(d.group(2)) >= decided, out


def test_hidden_feet_line_counts_the_body_top(capsys) -> None:
    bench_pointing_track.main(
        ["--seeds", "1", "--draws", "1", "--people", "6", "--towers", "t02", "--seconds", "20"]
        + ["--hidden"]
    )
    out = capsys.readouterr().out
    base = re.search(r"t02: people decided (\d+) \(no side (\d+).*?right (\d+)/", out)
    m = re.search(
        r"t02: body's top seen over hidden feet in (\d+) frames; boxes on a crest taken as tops "
        r"(\d+) \((\d+) over hidden feet\), (\d+) decided, (\d+) wrong, (\d+) matched to a "
        r"track; people given the tops' side (\d+) \((\d+) right in the end\); people left "
        r"without a side whose tops would give one: (\d+) right, (\d+) wrong",
        out,
    )
    assert base and m, out
    decided, none, right = (int(g) for g in base.groups())
    seen, taken, taken_hid, fdec, fbad, matched, people, pright, lr, lw = (
        int(g) for g in m.groups()
    )
    assert seen > 0 and 0 < taken_hid <= min(seen, taken)
    assert fbad <= fdec <= taken and matched <= fdec
    assert pright <= people <= decided and lr + lw <= none


def test_sky_detections_give_margins_to_tracks_matched_in_the_image(capsys) -> None:
    args = ["--seeds", "1", "--draws", "2", "--people", "8", "--towers", "t02", "--seconds", "60"]
    bench_pointing_track.main(args)
    out = capsys.readouterr().out
    m = re.search(r"t02: feet pixels that saw sky \(no ground point\) (\d+), their margins "
                  r"matched to a track in the image (\d+)", out)  # fmt: skip
    assert m, out
    sky, matched = int(m.group(1)), int(m.group(2))
    assert 0 < matched <= sky
    assert re.search(r"t02: per calibration, mean margin error [+-]\d\.\d+ px", out), out
    bench_pointing_track.main([*args, "--no-sky"])
    out = capsys.readouterr().out
    assert "sky detections' margins dropped" in out and "saw sky" not in out
