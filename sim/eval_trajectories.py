"""Trackers scored on real pedestrian trajectories (the ETH/UCY crowd recordings).

The protocol of issue 20, the same for every tracker:

* **Truth.** ``../shared/data/trajectories/*.txt``: tab-separated ``frame person_id k x_m
  y_m`` (``k`` unused), one row per person per annotated frame; annotated frames are 10 video
  frames (0.4 s) apart. Every annotated frame from the file's first to its last is one scan
  at ``t = 0.4 s * (frame - first) / 10``, whether anyone is in it or not.
* **Detections** (:func:`make_scans`, seeded): each person in a scan is detected with
  probability ``pd`` (0.9) at his position plus Gaussian noise of ``noise_m`` (0.15 m) per
  axis; ``clutter`` (3) false detections per scan are uniform over the scene's extent (the
  bounding box of every position in the file). Every detection carries ``sigma = noise_m``.
* **Scoring** (:func:`score`): motmetrics with a 1.0 m gate (Euclidean distance), every
  track the tracker reports at a scan (confirmed and coasting alike) against that scan's
  people: MOTA, IDF1, ID switches, false positives, misses; per file and pooled over files
  (the counts summed, then MOTA and IDF1 recomputed, as motmetrics does for ``OVERALL``).

The simulator layer cannot import the tracker, so the tracker under test is a callable
``(list[Scan]) -> Output`` that the caller makes (``benchmarks/bench_trajectories.py`` and
``tests/test_eval_trajectories.py`` run ``vigil track``'s own :func:`run_track` on a
detections CSV written by :func:`write_detections`). :func:`run_stonesoup_gnn` is the anchor:
Stone Soup's GNN with a constant-velocity model, 3-point initiation and deletion after 5
scans without an update (tentative ones after 2). motmetrics and stonesoup are the
``bench`` extra's.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

#: Seconds between annotated frames, and video frames per annotated frame.
SCAN_S = 0.4
FRAME_STEP = 10
#: Where the shared data sits, relative to the repository root.
DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "trajectories"
#: Largest trajectory file read (bytes) and most scans made from one.
MAX_FILE_BYTES = 64 << 20
MAX_SCANS = 1_000_000

#: One scan's reported tracks: ids ``(k,)`` and positions ``(k, 2)`` in metres.
Output = list[tuple[NDArray[np.int64], NDArray[np.float64]]]
TrackerRun = Callable[[Sequence["Scan"]], Output]


class TrajectoryError(ValueError):
    """A bad trajectory file: names the file, the line and what is wrong."""


@dataclass(frozen=True)
class Scan:
    """One scan: its time (s), the people in it and the detections made of them."""

    t: float
    truth_id: NDArray[np.int64]
    truth_xy: NDArray[np.float64]
    z: NDArray[np.float64]
    sigma: NDArray[np.float64]


@dataclass(frozen=True)
class Trajectories:
    """A trajectory file's rows: scan index, person id, position (m)."""

    name: str
    scan: NDArray[np.int64]
    person: NDArray[np.int64]
    xy: NDArray[np.float64]


def data_files(folder: Path = DATA_DIR) -> tuple[list[Path], str | None]:
    """The trajectory files, and ``None``; or no files and why (the data is not here)."""
    if not folder.is_dir():
        return [], f"no trajectory data at {folder} (../shared/data is not mounted here)"
    files = sorted(folder.glob("*.txt"))
    if not files:
        return [], f"no *.txt trajectory files in {folder}"
    return files, None


def read_trajectories(path: Path) -> Trajectories:
    """Read one ``frame person_id k x y`` file; raise :class:`TrajectoryError` at a bad line."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise TrajectoryError(f"{path}: {size} bytes; at most {MAX_FILE_BYTES} are read")
    frames, people, xs, ys = [], [], [], []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            cells = line.split()
            if not cells:
                continue
            if len(cells) not in (4, 5):
                raise TrajectoryError(
                    f"{path}:{line_no}: {len(cells)} fields; expected frame person_id [k] x y"
                )
            try:
                f, p, x, y = (float(cells[0]), float(cells[1]), float(cells[-2]), float(cells[-1]))
            except ValueError:
                raise TrajectoryError(f"{path}:{line_no}: {line.strip()!r}: not numbers") from None
            if not all(math.isfinite(v) for v in (f, p, x, y)) or f < 0:
                raise TrajectoryError(
                    f"{path}:{line_no}: {line.strip()!r}: expected finite numbers, frame >= 0"
                )
            frames.append(f)
            people.append(p)
            xs.append(x)
            ys.append(y)
    if not frames:
        raise TrajectoryError(f"{path}: no rows")
    fr = np.asarray(frames)
    scan = np.rint((fr - fr.min()) / FRAME_STEP).astype(np.int64)
    if scan.max() >= MAX_SCANS:
        raise TrajectoryError(f"{path}: {scan.max() + 1} scans; at most {MAX_SCANS}")
    return Trajectories(path.stem, scan, np.asarray(people).astype(np.int64), np.c_[xs, ys])


def make_scans(
    traj: Trajectories,
    seed: int = 0,
    *,
    pd: float = 0.9,
    noise_m: float = 0.15,
    clutter: int = 3,
    scan_s: float = SCAN_S,
) -> list[Scan]:
    """The protocol's detections of every scan of ``traj`` (seeded: the same seed, the same
    detections), in scan order."""
    rng = np.random.default_rng(seed)
    lo, hi = traj.xy.min(axis=0), traj.xy.max(axis=0)
    order = np.argsort(traj.scan, kind="stable")
    scan_of = traj.scan[order]
    bounds = np.searchsorted(scan_of, np.arange(int(traj.scan.max()) + 2))
    scans = []
    for k in range(len(bounds) - 1):
        rows = order[bounds[k] : bounds[k + 1]]
        ids, xy = traj.person[rows], traj.xy[rows]
        seen = rng.random(len(rows)) < pd
        real = xy[seen] + rng.normal(0.0, noise_m, size=(int(seen.sum()), 2))
        false = lo + rng.random((clutter, 2)) * (hi - lo)
        z = np.vstack([real, false])
        scans.append(Scan(k * scan_s, ids, xy, z, np.full(len(z), noise_m)))
    return scans


def grouped_scans(
    seed: int,
    *,
    groups: int = 5,
    loners: int = 8,
    scans: int = 300,
    scan_s: float = 1.0,
    side_m: float = 1500.0,
    pd: float = 0.85,
    noise_m: float = 6.0,
    clutter: int = 30,
) -> list[Scan]:
    """Issue 20's grouped scenario (seeded): ``groups`` groups of 3-6 people walking together
    (members 10-25 m from the one ahead of them, in file, at 0.8-1.6 m/s on a common heading,
    each wandering 1 m/s^2-wise about his place), and ``loners`` lone walkers at 0.8-1.8 m/s
    aimed to cross a group's path midway; a scan every ``scan_s`` seconds over a
    ``side_m`` square, each person detected with Pd ``pd`` and N(0, ``noise_m``) per axis,
    ``clutter`` uniform false detections per scan, ``sigma = noise_m`` on every row. The
    people's positions are the truth (ids: group members first)."""
    rng = np.random.default_rng(seed)
    t_end = scans * scan_s
    starts, vels = [], []
    for _ in range(groups):
        speed, heading = rng.uniform(0.8, 1.6), rng.uniform(0.0, 2.0 * math.pi)
        v = speed * np.array([math.cos(heading), math.sin(heading)])
        centre = rng.uniform(0.3, 0.7, 2) * side_m - v * t_end / 2.0
        back = -v / speed
        gaps = np.cumsum(rng.uniform(10.0, 25.0, int(rng.integers(3, 7))))
        for gap in np.r_[0.0, gaps[:-1]]:
            starts.append(centre + back * gap)
            vels.append(v)
    members = len(starts)
    for _ in range(loners):
        g = int(rng.integers(0, members))
        meet = starts[g] + vels[g] * t_end * rng.uniform(0.3, 0.7)
        heading = rng.uniform(0.0, 2.0 * math.pi)
        v = rng.uniform(0.8, 1.8) * np.array([math.cos(heading), math.sin(heading)])
        t_meet = float(np.dot(meet - starts[g], vels[g]) / np.dot(vels[g], vels[g]))
        starts.append(meet - v * t_meet)
        vels.append(v)
    x0, v0 = np.array(starts), np.array(vels)
    wander = np.zeros_like(x0)
    wv = np.zeros_like(x0)
    out = []
    for k in range(scans):
        t = k * scan_s
        wv += rng.normal(0.0, 0.3 * math.sqrt(scan_s), wv.shape) - 0.2 * wv * scan_s
        wander += wv * scan_s
        xy = x0 + v0 * t + wander
        inside = ((xy >= 0.0) & (xy <= side_m)).all(axis=1)
        ids = np.flatnonzero(inside).astype(np.int64)
        seen = rng.random(len(ids)) < pd
        real = xy[ids[seen]] + rng.normal(0.0, noise_m, (int(seen.sum()), 2))
        z = np.vstack([real, rng.random((clutter, 2)) * side_m])
        out.append(Scan(t, ids, xy[ids], z, np.full(len(z), noise_m)))
    return out


def write_detections(scans: Sequence[Scan], path: Path) -> None:
    """The scans' detections as a ``vigil track`` CSV: ``t,x,y,sigma`` (s, m, m, m)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "x", "y", "sigma"])
        for s in scans:
            for (x, y), sg in zip(s.z, s.sigma, strict=True):
                w.writerow([repr(s.t), repr(float(x)), repr(float(y)), repr(float(sg))])


def read_tracks(path: Path, scans: Sequence[Scan]) -> Output:
    """A ``vigil track`` output CSV (``t,track_id,x,y,...``) as one :data:`Output` entry per
    scan, matched by time to the microsecond (scans with no row report no tracks)."""
    per: list[list[tuple[int, float, float]]] = [[] for _ in scans]
    scan_of = {round(s.t, 6): k for k, s in enumerate(scans)}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            k = scan_of[round(float(row["t"]), 6)]
            per[k].append((int(row["track_id"]), float(row["x"]), float(row["y"])))
    out: Output = []
    for rows in per:
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        out.append((ids, np.array([r[1:] for r in rows], dtype=np.float64).reshape(-1, 2)))
    return out


def run_stonesoup_gnn(scans: Sequence[Scan], **options: float) -> Output:
    """Stone Soup's GNN anchor: :func:`run_stonesoup` with ``association="gnn"``."""
    return run_stonesoup(scans, "gnn", **options)


def run_stonesoup_jpda(scans: Sequence[Scan], **options: float) -> Output:
    """Stone Soup's JPDA anchor: :func:`run_stonesoup` with ``association="jpda"``."""
    return run_stonesoup(scans, "jpda", **options)


def clutter_density_of(scans: Sequence[Scan], pd: float) -> float:
    """The scans' mean false detections per scan per m^2: detections beyond ``pd`` times the
    people present, over the box around every detection (the anchor is told the truth)."""
    z = np.vstack([s.z for s in scans if len(s.z)])
    area = float(np.prod(np.maximum(z.max(axis=0) - z.min(axis=0), 1.0)))
    false = np.mean([len(s.z) - pd * len(s.truth_id) for s in scans])
    return max(float(false), 0.1) / area


def run_stonesoup(
    scans: Sequence[Scan],
    association: str = "gnn",
    *,
    q: float = 0.5,
    min_points: int = 3,
    delete_after: int = 5,
    gate: float = 3.0,
    speed_sigma_mps: float = 1.0,
    hold_steps: int = 2,
    report_coasting: bool = True,
    pd: float = 0.9,
    clutter_density: float | None = None,
    prob_gate: float = 0.99,
) -> Output:
    """Stone Soup with constant velocity (``q`` m^2/s^3 per axis), each detection's own
    ``sigma``, tracks initiated after ``min_points`` associated detections and deleted after
    ``delete_after`` scans without an update (tentative ones, the initiator's holding tracks,
    after ``hold_steps``, as in ``benchmarks/bench_tracking.py``); every live track is
    reported each scan, or only those updated in it when ``report_coasting`` is false. The
    initial velocity's standard deviation is ``speed_sigma_mps`` (m/s per axis).

    ``association``: ``"gnn"``, ``GNNWith2DAssignment`` with a Mahalanobis gate ``gate``; or
    ``"jpda"``, ``JPDAwithEHM`` (Stone Soup's exact JPDA: the marginals of its plain ``JPDA``,
    computed per cluster of tracks that share detections, where ``JPDA`` enumerates the
    product over every track) with ``PDAHypothesiser`` (``pd``, gate probability
    ``prob_gate``, clutter density ``clutter_density`` per m^2 per scan, by default
    :func:`clutter_density_of` the scans) and ``PDAUpdater`` by Gaussian-mixture reduction.
    A JPDA track counts as updated (for the deleter) at a scan where one of its detection
    hypotheses is likelier than its missed one, and a detection may start a track only when
    no track holds it likelier than that track's miss (Stone Soup's JPDA tutorial)."""
    from datetime import datetime, timedelta

    from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
    from stonesoup.dataassociator.probability import JPDAwithEHM
    from stonesoup.deleter.time import UpdateTimeStepsDeleter
    from stonesoup.hypothesiser.distance import DistanceHypothesiser
    from stonesoup.hypothesiser.probability import PDAHypothesiser
    from stonesoup.initiator.simple import MultiMeasurementInitiator
    from stonesoup.measures import Mahalanobis
    from stonesoup.models.measurement.linear import LinearGaussian
    from stonesoup.models.transition.linear import (
        CombinedLinearGaussianTransitionModel,
        ConstantVelocity,
    )
    from stonesoup.predictor.kalman import KalmanPredictor
    from stonesoup.types.detection import Detection
    from stonesoup.types.prediction import GaussianStatePrediction
    from stonesoup.types.state import GaussianState
    from stonesoup.types.update import Update
    from stonesoup.updater.kalman import KalmanUpdater
    from stonesoup.updater.probability import PDAUpdater

    if association not in ("gnn", "jpda"):
        raise ValueError(f"association {association!r}: expected 'gnn' or 'jpda'")
    transition = CombinedLinearGaussianTransitionModel([ConstantVelocity(q), ConstantVelocity(q)])
    sigma0 = float(scans[0].sigma[0]) if len(scans) and len(scans[0].sigma) else 0.15
    base = LinearGaussian(ndim_state=4, mapping=(0, 2), noise_covar=np.eye(2) * sigma0**2)
    models: dict[float, LinearGaussian] = {sigma0: base}
    predictor = KalmanPredictor(transition)
    updater = KalmanUpdater(base)
    hypothesiser = DistanceHypothesiser(
        predictor, updater, measure=Mahalanobis(), missed_distance=gate
    )
    gnn = GNNWith2DAssignment(hypothesiser)
    associator = gnn
    pda_updater = PDAUpdater(base, gm_method=True)
    if association == "jpda":
        density = clutter_density_of(scans, pd) if clutter_density is None else clutter_density
        associator = JPDAwithEHM(
            PDAHypothesiser(
                predictor,
                pda_updater,
                clutter_spatial_density=density,
                prob_detect=pd,
                prob_gate=prob_gate,
            )
        )
    v = speed_sigma_mps**2
    initiator = MultiMeasurementInitiator(
        prior_state=GaussianState(np.zeros((4, 1)), np.diag([0.0, v, 0.0, v])),
        measurement_model=base,
        deleter=UpdateTimeStepsDeleter(time_steps_since_update=hold_steps),
        data_associator=gnn,
        updater=updater,
        min_points=min_points,
    )
    deleter = UpdateTimeStepsDeleter(time_steps_since_update=delete_after)
    start = datetime(2024, 1, 1)
    tracks: set = set()
    ids: dict[str, int] = {}
    out: Output = []
    for s in scans:
        stamp = start + timedelta(seconds=s.t)
        dets = set()
        for zz, sg in zip(s.z, s.sigma, strict=True):
            model = models.get(float(sg))
            if model is None:
                model = LinearGaussian(ndim_state=4, mapping=(0, 2), noise_covar=np.eye(2) * sg**2)
                models[float(sg)] = model
            dets.add(Detection(zz.reshape(2, 1).copy(), timestamp=stamp, measurement_model=model))
        # MultiTargetTracker.__next__'s steps (JPDA: its tutorial's)
        used = set()
        for track, hyp in associator.associate(tracks, dets, stamp).items():
            if association == "gnn":
                if hyp:
                    track.append(updater.update(hyp))
                    used.add(hyp.measurement)
                else:
                    track.append(hyp.prediction)
                continue
            miss = next(h.probability for h in hyp if not h)
            likelier = [h for h in hyp if h and h.probability > miss]
            used.update(h.measurement for h in likelier)
            post = pda_updater.update(hyp)
            if not likelier:  # a miss, for the deleter: a prediction with the mixture's moments
                post = GaussianStatePrediction(post.state_vector, post.covar, timestamp=stamp)
            track.append(post)
        tracks -= deleter.delete_tracks(tracks)
        tracks |= initiator.initiate(dets - used, stamp)
        live = sorted(tracks, key=lambda tr: tr.id)
        if not report_coasting:
            live = [tr for tr in live if isinstance(tr.state, Update)]
        tid = np.array([ids.setdefault(tr.id, len(ids)) for tr in live], dtype=np.int64)
        pos = np.array([[tr.state_vector[0, 0], tr.state_vector[2, 0]] for tr in live])
        out.append((tid, pos.reshape(-1, 2)))
    return out


@dataclass(frozen=True)
class Score:
    """MOTA, IDF1 and the counts behind them (motmetrics' definitions)."""

    mota: float
    idf1: float
    switches: int
    fp: int
    fn: int
    gt: int
    idtp: int
    idfp: int
    idfn: int

    @staticmethod
    def pooled(scores: Sequence[Score]) -> Score:
        """The scores' counts summed and the ratios recomputed (motmetrics' ``OVERALL``)."""
        keys = ("switches", "fp", "fn", "gt", "idtp", "idfp", "idfn")
        sw, fp, fn, gt, tp, ifp, ifn = (sum(getattr(s, k) for s in scores) for k in keys)
        mota = 1.0 - (fn + fp + sw) / gt if gt else math.nan
        idf1 = 2 * tp / (2 * tp + ifp + ifn) if tp + ifp + ifn else math.nan
        return Score(mota, idf1, sw, fp, fn, gt, tp, ifp, ifn)


def score(scans: Sequence[Scan], out: Output, gate_m: float = 1.0) -> Score:
    """``out`` against the scans' truth with motmetrics, matches within ``gate_m`` metres."""
    import motmetrics as mm

    if len(out) != len(scans):
        raise ValueError(f"{len(out)} outputs for {len(scans)} scans; expected one per scan")
    acc = mm.MOTAccumulator(auto_id=True)
    for s, (tid, pos) in zip(scans, out, strict=True):
        d2 = mm.distances.norm2squared_matrix(s.truth_xy, pos, max_d2=gate_m**2)
        acc.update(s.truth_id.tolist(), tid.tolist(), np.sqrt(d2))
    names = ["mota", "idf1", "num_switches", "num_false_positives", "num_misses"]
    names += ["num_objects", "idtp", "idfp", "idfn"]
    r = mm.metrics.create().compute(acc, metrics=names, name="run").iloc[0]
    return Score(
        float(r.mota),
        float(r.idf1),
        *(int(r[k]) for k in names[2:]),
    )


def evaluate(
    trackers: dict[str, TrackerRun], files: Sequence[Path], seed: int = 0
) -> dict[str, dict[str, Score]]:
    """Every tracker on every file's detections (the same detections for all), scored:
    ``{tracker: {file stem: Score, ..., "pooled": Score}}``."""
    result: dict[str, dict[str, Score]] = {name: {} for name in trackers}
    for i, path in enumerate(files):
        scans = make_scans(read_trajectories(path), seed + i)
        for name, run in trackers.items():
            result[name][path.stem] = score(scans, run(scans))
    for name in trackers:
        result[name]["pooled"] = Score.pooled(list(result[name].values()))
    return result
