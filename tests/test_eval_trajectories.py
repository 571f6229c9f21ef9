"""The real-trajectory evaluation protocol (issue 20): :mod:`vigil.sim.eval_trajectories`."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.sim.eval_trajectories import (
    Scan,
    Score,
    TrajectoryError,
    data_files,
    make_scans,
    read_tracks,
    read_trajectories,
    score,
    write_detections,
)
from vigil.tracks.csvfile import run_track

pytest.importorskip("motmetrics", reason="motmetrics (the bench extra) scores the tracks")


def _walkers(tmp_path, scans: int = 40):
    """Two people walking 1.2 m/s on parallel lines 4 m apart, as a trajectory file."""
    lines = []
    for k in range(scans):
        for pid, y in ((1, 0.0), (2, 4.0)):
            lines.append(f"{10.0 * k}\t{pid}.0\t4\t{1.2 * 0.4 * k:.4f}\t{y}\n")
    path = tmp_path / "walkers.txt"
    path.write_text("".join(lines))
    return path


def test_read_trajectories_and_bad_lines(tmp_path):
    traj = read_trajectories(_walkers(tmp_path, 5))
    assert traj.scan.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert traj.person.tolist()[:2] == [1, 2]
    bad = tmp_path / "bad.txt"
    bad.write_text("0.0\t1.0\t4\t1.0\t2.0\n10.0\t1.0\t4\tnan\t2.0\n")
    with pytest.raises(TrajectoryError, match=r"bad.txt:2: .*finite"):
        read_trajectories(bad)
    bad.write_text("0.0\t1.0\n")
    with pytest.raises(TrajectoryError, match=r"bad.txt:1: 2 fields"):
        read_trajectories(bad)


def test_detections_follow_the_protocol(tmp_path):
    traj = read_trajectories(_walkers(tmp_path, 2000))
    scans = make_scans(traj, seed=3)
    again = make_scans(traj, seed=3)
    assert all(np.array_equal(a.z, b.z) for a, b in zip(scans, again, strict=True))
    assert len(scans) == 2000 and scans[1].t == pytest.approx(0.4)
    real = sum(len(s.z) - 3 for s in scans)  # 3 clutter points a scan
    assert real / (2 * len(scans)) == pytest.approx(0.9, abs=0.01)
    lo, hi = traj.xy.min(axis=0), traj.xy.max(axis=0)
    clutter = np.vstack([s.z[-3:] for s in scans])
    assert (clutter >= lo).all() and (clutter <= hi).all()
    assert all((s.sigma == 0.15).all() for s in scans)
    # noise 0.15 m per axis on the detected people
    exact = make_scans(traj, seed=3, pd=1.0, clutter=0, noise_m=0.0)
    assert all(np.array_equal(s.z, s.truth_xy) for s in exact)
    err = np.vstack([s.z - s.truth_xy for s in make_scans(traj, 3, pd=1.0, clutter=0)])
    assert err.std(axis=0) == pytest.approx([0.15, 0.15], rel=0.05)


def test_score_counts_misses_false_tracks_and_switches(tmp_path):
    scans = make_scans(read_trajectories(_walkers(tmp_path, 10)), 0)
    perfect = [(s.truth_id.copy(), s.truth_xy.copy()) for s in scans]
    assert score(scans, perfect) == Score(1.0, 1.0, 0, 0, 0, 20, 20, 0, 0)
    off = [(ids, xy + [1.5, 0.0]) for ids, xy in perfect]  # outside the 1 m gate
    s = score(scans, off)
    assert (s.fp, s.fn, s.mota) == (20, 20, -1.0)
    swapped = [(ids if k < 5 else ids[::-1].copy(), xy) for k, (ids, xy) in enumerate(perfect)]
    assert score(scans, swapped).switches == 2
    pooled = Score.pooled([score(scans, off), score(scans, perfect)])
    assert (pooled.mota, pooled.gt, pooled.fp) == (0.0, 40, 20)


def test_vigil_track_runs_through_its_csv(tmp_path):
    """The protocol's detections through ``vigil track``'s own code path and back."""
    scans = make_scans(read_trajectories(_walkers(tmp_path, 60)), 0)
    src, dst = tmp_path / "d.csv", tmp_path / "t.csv"
    write_detections(scans, src)
    summary = run_track(src, dst)
    assert summary.detections == sum(len(s.z) for s in scans)
    out = read_tracks(dst, scans)
    assert len(out) == len(scans)
    s = score(scans, out)  # both walkers followed (clutter makes false tracks too)
    assert s.switches == 0 and s.fn <= 0.1 * s.gt and s.idtp >= 0.9 * s.gt


def test_stone_soup_gnn_on_the_same_detections(tmp_path):
    pytest.importorskip("stonesoup")
    from vigil.sim.eval_trajectories import run_stonesoup_gnn

    scans = make_scans(read_trajectories(_walkers(tmp_path, 30)), 0)
    s = score(scans, run_stonesoup_gnn(scans))
    assert s.switches <= 1 and s.fn <= 0.15 * s.gt and s.idtp >= 0.75 * s.gt


def test_stone_soup_jpda_on_the_same_detections(tmp_path):
    """Stone Soup's JPDA anchor follows both walkers, its tracks end (the deleter sees a
    miss where no detection is likelier than one), and a wrong name is refused."""
    pytest.importorskip("stonesoup")
    from vigil.sim.eval_trajectories import clutter_density_of, run_stonesoup, run_stonesoup_jpda

    scans = make_scans(read_trajectories(_walkers(tmp_path, 30)), 0)
    out = run_stonesoup_jpda(scans)
    s = score(scans, out)
    assert s.switches <= 1 and s.fn <= 0.15 * s.gt and s.idtp >= 0.75 * s.gt
    # 3 clutter points a scan over the walkers' box (~14 m x 4 m, 0.15 m noise around it)
    assert 3.0 / 80.0 < clutter_density_of(scans, 0.9) < 3.0 / 40.0
    # clutter tracks do not pile up: at most a few live tracks besides the two walkers
    assert max(len(ids) for ids, _ in out) <= 8
    with pytest.raises(ValueError, match="association 'mht'"):
        run_stonesoup(scans, "mht")


def test_absent_data_gives_a_reason(tmp_path):
    files, why = data_files(tmp_path / "nowhere")
    assert files == [] and "no trajectory data at" in why
    (tmp_path / "empty").mkdir()
    assert data_files(tmp_path / "empty")[1].startswith("no *.txt trajectory files")


def test_real_data_or_a_reason():
    files, why = data_files()
    if why:
        assert "trajectory" in why
        pytest.skip(why)
    traj = read_trajectories(files[-1])
    scans: list[Scan] = make_scans(traj, 0)[:100]
    assert sum(len(s.truth_id) for s in scans) > 0


def test_grouped_scenario_is_seeded_and_spaced():
    """Groups walk in file 10-25 m apart (at the first scan, before wander), Pd and clutter
    as asked, and the same seed gives the same detections."""
    from vigil.sim.eval_trajectories import grouped_scans

    a = grouped_scans(7, groups=2, loners=2, scans=5, clutter=4, side_m=3000.0)
    b = grouped_scans(7, groups=2, loners=2, scans=5, clutter=4, side_m=3000.0)
    assert all(np.array_equal(x.z, y.z) for x, y in zip(a, b, strict=True))
    assert all(len(s.z) - 4 <= len(s.truth_id) for s in a)
    assert all(np.all(s.sigma == 6.0) for s in a)
    # consecutive members of one group: 10-25 m apart at t = 0 (plus < 1 m of wander)
    xy = a[0].truth_xy
    ids = a[0].truth_id.tolist()
    gaps = [
        float(np.hypot(*(xy[ids.index(i + 1)] - xy[ids.index(i)]))) for i in ids if i + 1 in ids
    ]
    assert sum(9.0 <= g <= 26.0 for g in gaps) >= 4
