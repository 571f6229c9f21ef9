"""benchmarks/bench_tracking.py's options: Vigil's side with ``vigil track``'s settings (the
interacting multiple model) against the same detections, Stone Soup left out (its runs are
minutes long: ``python -m benchmarks tracking``)."""

from __future__ import annotations

from benchmarks import bench_tracking
from vigil.tracks.imm import ImmTracker


def test_vigil_side_runs_vigil_tracks_defaults_when_asked(capsys, monkeypatch) -> None:
    made = []
    original = bench_tracking.make_tracker

    def make(config):
        made.append(tracker := original(config))
        return tracker

    monkeypatch.setattr(bench_tracking, "make_tracker", make)
    args = ["--cases", "20x10", "--scans", "30", "--no-stonesoup"]
    one = bench_tracking.main(args)["20x10"]
    assert made and not any(isinstance(t, ImmTracker) for t in made)
    made.clear()
    imm = bench_tracking.main([*args, "--vigil", "track-defaults"])["20x10"]
    assert made and all(isinstance(t, ImmTracker) for t in made)
    assert "Vigil's settings: track-defaults" in capsys.readouterr().out
    # both track the walkers (20 of them, 30 scans, Pd 0.9): most found, few false
    for row in (one, imm):
        assert row["vigil"]["mota"] > 0.7 and row["vigil_median_ms"] > 0.0
    assert "ss_fastest" not in imm and imm["ss"] == {}
