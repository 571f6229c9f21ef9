"""Class and speed tables fitted from labelled tracks (issue 22 item 4): what
``vigil calibrate classes`` computes.

An operator marks tracks person, animal, vehicle or unknown on the live map; the labels come
as a CSV (:func:`read_labels`). Each tower-camera detection of the sector's recording is joined
to the published track it belongs to (:func:`join_detections`: the track nearest to it in the
metric of both covariances, at the detection's time), so that a labelled track labels its
detections; each settled labelled track gives its speed once a message
(:func:`speed_samples`). The camera confusion table and the track-speed table are then fitted
as :mod:`vigil.tracks.calibration` fits the simulator's (:func:`fit_tables`), class by class
over a base table (the deployment's current one): a class with too few labelled detections
(or speeds) or tracks keeps its base column, a class seen little at some range leans on what
the base says of it there, and one track counts 30 detections' worth at most.
:func:`decide` says which class the tables alone would give each labelled track, for the
confusion before and after.
"""

from __future__ import annotations

import csv
import io
import math
import re
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vigil.ingest.limits import IDENT_PATTERN
from vigil.tracks.calibration import (
    SPEED_EDGES_MPS,
    ClassModel,
    calibrate_class_model,
    calibrate_speed_model,
)
from vigil.tracks.classes import speed_likelihood, table_likelihood
from vigil.tracks.config import CLASSES, ClassRow, SpeedRow, TrackerConfig

#: The labels file's header, exactly.
LABELS_HEADER = ("track_id", "label", "labelled_at", "user")
#: What an operator may mark a track; ``unknown`` rows are read and left out.
LABELS = ("person", "animal", "vehicle", "unknown")
#: A labels file larger than this is refused, bytes; and one with more rows than this.
MAX_LABELS_BYTES = 16 * 2**20
MAX_LABEL_ROWS = 200_000
_IDENT = re.compile(IDENT_PATTERN)
_USER = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$(?!\n)")
#: The decided classes of the confusion: the three and ``unknown`` (no class at 0.5).
DECIDED = (*CLASSES, "unknown")


class LabelError(ValueError):
    """A bad labels file: names the file, the line and the column (1-based) and what was
    expected."""

    def __init__(self, path: str | Path, line: int | None, column: str | None, problem: str):
        self.path, self.line, self.column = str(path), line, column
        where = self.path + (f":{line}" if line else "") + (f": column {column}" if column else "")
        super().__init__(f"{where}: {problem}")


@dataclass
class Labels:
    """Operators' labels: the latest label of each track (``unknown`` ones left out) and what
    was read."""

    by_track: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    unknown: int = 0
    relabelled: int = 0
    files: list[str] = field(default_factory=list)


def read_labels(path: str | Path, into: Labels | None = None) -> Labels:
    """Read a labels CSV (header ``track_id,label,labelled_at,user``; UTF-8; at most
    :data:`MAX_LABELS_BYTES` and :data:`MAX_LABEL_ROWS` rows) into ``into`` (a new
    :class:`Labels` when omitted).

    A track labelled several times takes its latest label (by ``labelled_at``, ISO 8601 with
    its UTC offset; the later row on a tie); a latest label ``unknown`` removes the track.
    Raises :class:`LabelError` naming file, line and column for the first bad row.
    """
    p = Path(path)
    out = into if into is not None else Labels()
    try:
        info = p.stat()
        if not stat.S_ISREG(info.st_mode):
            raise LabelError(p, None, None, "not a regular file")
        if info.st_size > MAX_LABELS_BYTES:
            raise LabelError(
                p, None, None, f"{info.st_size} bytes; expected at most {MAX_LABELS_BYTES}"
            )
        text = p.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LabelError(p, None, None, "no such labels file") from None
    except UnicodeDecodeError as exc:
        raise LabelError(p, None, None, f"not UTF-8 text ({exc.reason})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    latest: dict[str, tuple[datetime, str]] = {}
    try:
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != LABELS_HEADER:
            raise LabelError(p, 1, None, f"header {header!r}; expected {','.join(LABELS_HEADER)}")
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(LABELS_HEADER):
                raise LabelError(p, line, None, f"{len(row)} fields; expected 4 ({row!r:.80})")
            if out.rows >= MAX_LABEL_ROWS:
                raise LabelError(p, line, None, f"more than {MAX_LABEL_ROWS} rows")
            tid, label, when, user = (v.strip() for v in row)
            if not _IDENT.match(tid):
                raise LabelError(
                    p, line, "1 (track_id)", f"{tid!r:.80}: expected 1-64 of A-Za-z0-9_.-"
                )
            if label not in LABELS:
                raise LabelError(
                    p, line, "2 (label)", f"{label!r:.80}: expected one of {', '.join(LABELS)}"
                )
            at = _time(p, line, when)
            if not _USER.match(user):
                raise LabelError(
                    p, line, "4 (user)", f"{user!r:.80}: expected 1-64 printable characters"
                )
            out.rows += 1
            out.unknown += label == "unknown"
            if tid in latest:
                out.relabelled += 1
                if at < latest[tid][0]:
                    continue
            latest[tid] = (at, label)
    except csv.Error as exc:
        raise LabelError(p, reader.line_num, None, f"not CSV ({exc})") from None
    for tid, (_, label) in latest.items():
        if label == "unknown":
            out.by_track.pop(tid, None)
        else:
            out.by_track[tid] = label
    out.files.append(str(p))
    return out


def _time(path: Path, line: int, value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None or not math.isfinite(at.timestamp()):
        raise LabelError(
            path, line, "3 (labelled_at)",
            f"{value!r:.80}: expected ISO 8601 with a UTC offset, such as 2026-06-01T09:14:03Z",
        )  # fmt: skip
    return at


@dataclass
class TrackMessages:
    """Published tracks as parallel arrays, one row per message (local metres, UTC s)."""

    track_id: list[str]
    time: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    vx: NDArray[np.float64]
    vy: NDArray[np.float64]
    cov: NDArray[np.float64]  # (n, 2, 2), m^2
    state: list[str]
    count: NDArray[np.int64]
    sensors: dict[str, set[str]]


@dataclass
class CameraDetections:
    """Tower-camera detections as parallel arrays (local metres, UTC s)."""

    camera: list[str]
    time: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    cov: NDArray[np.float64]  # (n, 2, 2), m^2
    guess: list[str]
    confidence: NDArray[np.float64]
    range_m: NDArray[np.float64]  # NaN where unknown


@dataclass
class Joined:
    """Detections joined to labelled tracks: each one's track, true class, guess,
    confidence and range; and the counts of what was left out."""

    track_id: list[str] = field(default_factory=list)
    truth: list[str] = field(default_factory=list)
    guess: list[str] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    range_m: list[float] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def join_detections(
    dets: CameraDetections,
    tracks: TrackMessages,
    labels: dict[str, str],
    *,
    window_s: float = 1.5,
    gate: float = 9.21,
) -> Joined:
    """Join each detection to the labelled track it belongs to.

    A detection's candidates are the tracks with a message within ``window_s`` seconds of it
    that name its camera among their sensors; each candidate's position is carried to the
    detection's time by its velocity, and the nearest in squared Mahalanobis distance (both
    covariances added) takes it, when within ``gate`` (9.21: 99 % in two dimensions). A
    detection goes uncounted (``counts``) when no track is near (``no_track``), its track is
    not labelled (``unlabelled``), or a second track within the gate has another label
    (``ambiguous``).
    """
    out = Joined()
    order = np.argsort(tracks.time, kind="stable")
    mt = tracks.time[order]
    for i in range(len(dets.time)):
        t = dets.time[i]
        lo, hi = np.searchsorted(mt, [t - window_s, t + window_s + 1e-9])
        best: dict[str, tuple[float, float]] = {}  # track -> (|dt|, d2)
        for j in order[lo:hi]:
            tid = tracks.track_id[j]
            if dets.camera[i] not in tracks.sensors.get(tid, ()):
                continue
            dt = t - tracks.time[j]
            if tid in best and best[tid][0] <= abs(dt):
                continue
            dx = dets.x[i] - (tracks.x[j] + tracks.vx[j] * dt)
            dy = dets.y[i] - (tracks.y[j] + tracks.vy[j] * dt)
            S = dets.cov[i] + tracks.cov[j]
            det = S[0, 0] * S[1, 1] - S[0, 1] * S[1, 0]
            if not det > 0.0:
                continue
            d2 = (S[1, 1] * dx * dx - (S[0, 1] + S[1, 0]) * dx * dy + S[0, 0] * dy * dy) / det
            best[tid] = (abs(dt), d2)
        near = sorted((d2, tid) for tid, (_, d2) in best.items() if d2 <= gate)
        if not near:
            out.counts["no_track"] += 1
            continue
        tid = near[0][1]
        label = labels.get(tid)
        if label is None:
            out.counts["unlabelled"] += 1
            continue
        if any(labels.get(other, label) != label for _, other in near[1:]):
            out.counts["ambiguous"] += 1
            continue
        out.counts["joined"] += 1
        out.track_id.append(tid)
        out.truth.append(label)
        out.guess.append(dets.guess[i])
        out.confidence.append(float(dets.confidence[i]))
        out.range_m.append(float(dets.range_m[i]))
    return out


def speed_samples(
    tracks: TrackMessages, labels: dict[str, str], *, min_updates: int = 10
) -> tuple[list[str], list[float], list[str]]:
    """Speeds (m/s) of labelled tracks once a message, while confirmed and settled (at least
    ``min_updates`` measurements fused): ``(track ids, speeds, labels)``."""
    tids: list[str] = []
    speeds: list[float] = []
    truth: list[str] = []
    for j, tid in enumerate(tracks.track_id):
        label = labels.get(tid)
        if label is None or tracks.state[j] != "confirmed" or tracks.count[j] < min_updates:
            continue
        tids.append(tid)
        speeds.append(float(math.hypot(tracks.vx[j], tracks.vy[j])))
        truth.append(label)
    return tids, speeds, truth


def prefix_tracks(tracks: TrackMessages, labels: dict[str, str], prefix: str) -> dict[str, str]:
    """Give one run's track ids ``prefix`` (in place: ``tracks``' ids and sensors) and return
    ``labels`` keyed so: simulated runs number their tracks alike, so runs fitted together
    need one name per run's track."""
    tracks.track_id = [f"{prefix}{tid}" for tid in tracks.track_id]
    tracks.sensors = {f"{prefix}{tid}": s for tid, s in tracks.sensors.items()}
    return {f"{prefix}{tid}": label for tid, label in labels.items()}


def add_run(
    joined: Joined,
    speeds: tuple[list[str], list[float], list[str]],
    dets: CameraDetections,
    tracks: TrackMessages,
    labels: dict[str, str],
) -> None:
    """One run's detections joined to its labelled tracks (:func:`join_detections`) added to
    ``joined``, counts included, and its tracks' speeds (:func:`speed_samples`) to
    ``speeds``."""
    j = join_detections(dets, tracks, labels)
    for name in ("track_id", "truth", "guess", "confidence", "range_m"):
        getattr(joined, name).extend(getattr(j, name))
    joined.counts.update(j.counts)
    for acc, new in zip(speeds, speed_samples(tracks, labels), strict=True):
        acc.extend(new)


@dataclass
class Fit:
    """Fitted tables and where each class's column came from (``fitted`` or ``base``)."""

    camera: tuple[ClassRow, ...]
    speed: tuple[SpeedRow, ...]
    camera_source: dict[str, str]
    speed_source: dict[str, str]


def fit_tables(
    joined: Joined,
    speeds: tuple[list[str], list[float], list[str]],
    base: ClassModel,
    *,
    min_detections: int = 200,
    min_speeds: int = 100,
    min_tracks: int = 5,
    per_track: float = 30.0,
    speed_prior: float = 30.0,
    backoff: float = 50.0,
    backoff_bands: int = -1,
    speed_temper: float = 1.0,
) -> Fit:
    """Fit the camera and speed tables from labelled detections and speeds over ``base``.

    Each class's column is fitted when the data hold at least ``min_detections`` detections
    (``min_speeds`` speeds) of it from at least ``min_tracks`` tracks (one track's detections
    are far from independent), else taken from ``base`` (row by row, for the cells both
    tables have; each column is a distribution given the class, so columns of two fits mix).
    Camera cells the fit has no row for keep ``base``'s rows.

    A track's detections (and its speeds) count ``per_track`` of them at most, shared out
    evenly (successive frames of one body are far from independent: the tracker's
    ``class_max_evidence`` reasons alike); each class's speed counts start from
    ``speed_prior`` speeds spread as ``base``'s column (instead of one per band), so that a
    way of moving the labelled tracks happen not to show (people resting) is not ruled out.
    ``backoff``, ``backoff_bands``: :func:`vigil.tracks.calibration.calibrate_class_model`'s
    (``backoff_bands = 1``: a cell seen little leans on this fit's neighbouring ranges, not
    on ``base``, which may describe another detector's guesses). ``speed_temper``: each speed
    row's probabilities raised to this power and scaled to a largest of 1 (the tracker reads
    a row's ratios only): the tracker weighs a speed by ``speed_class_weight`` (0.3), and 3
    reads the fitted ratios at about their full strength.
    """
    cam = calibrate_class_model(
        joined.guess,
        joined.confidence,
        joined.range_m,
        joined.truth,
        weights=_per_track(joined.track_id, per_track),
        base=base.camera,
        backoff=backoff,
        backoff_bands=int(backoff_bands),
    )
    n_det = Counter(joined.truth)
    n_trk = Counter(k for _, k in dict(zip(joined.track_id, joined.truth, strict=True)).items())
    cam_src = {
        k: "fitted" if n_det[k] >= min_detections and n_trk[k] >= min_tracks else "base"
        for k in CLASSES
    }
    base_cells = {tuple(r[:5]): r for r in base.camera}
    rows: list[ClassRow] = []
    for r in cam:
        b = base_cells.get(tuple(r[:5]))
        probs = [
            b[5 + c] if (cam_src[k] == "base" and b is not None) else r[5 + c]
            for c, k in enumerate(CLASSES)
        ]
        rows.append((*r[:5], *probs))  # type: ignore[arg-type]
    fitted_cells = {tuple(r[:5]) for r in rows}
    rows += [r for r in base.camera if tuple(r[:5]) not in fitted_cells]
    _, v, k = speeds
    same_bands = [tuple(r[:2]) for r in base.speed] == list(
        zip(SPEED_EDGES_MPS[:-1], SPEED_EDGES_MPS[1:], strict=True)
    )
    sp = calibrate_speed_model(
        v,
        k,
        weights=_per_track(speeds[0], per_track),
        prior=base.speed if same_bands else None,
        prior_weight=speed_prior,
    )
    n_sp = Counter(k)
    n_sp_trk = Counter(c for _, c in dict(zip(speeds[0], k, strict=True)).items())
    sp_src = {
        c: "fitted"
        if (n_sp[c] >= min_speeds and n_sp_trk[c] >= min_tracks) or not same_bands
        else "base"
        for c in CLASSES
    }
    speed_rows = tuple(
        (
            *r[:2],
            *(b[2 + c] if sp_src[cls] == "base" else r[2 + c] for c, cls in enumerate(CLASSES)),
        )
        for r, b in zip(sp, base.speed if same_bands else sp, strict=True)
    )
    if speed_temper != 1.0:
        speed_rows = tuple((*r[:2], *_tempered(r[2:], speed_temper)) for r in speed_rows)
    return Fit(tuple(rows), speed_rows, cam_src, sp_src)  # type: ignore[arg-type]


def _tempered(probs: Sequence[float], power: float) -> list[float]:
    """A row's probabilities raised to ``power``, scaled to a largest of 1 (the tracker reads
    only their ratios)."""
    q = np.maximum(np.asarray(probs, dtype=np.float64), 1e-6) ** power
    return [round(float(v), 6) for v in np.maximum(q / q.max(), 1e-6)]


def _per_track(track_ids: Sequence[str], per_track: float) -> NDArray[np.float64]:
    """Each sample's weight: 1, or ``per_track / n`` for a track with ``n > per_track``."""
    n = Counter(track_ids)
    return np.array([min(1.0, per_track / n[t]) for t in track_ids], dtype=np.float64)


def decide(
    camera: Sequence[ClassRow],
    speed: Sequence[SpeedRow],
    joined: Joined,
    speeds: tuple[list[str], list[float], list[str]],
    config: TrackerConfig,
) -> dict[str, str]:
    """The class the tables alone give each labelled track: its joined detections' table
    likelihoods (raised to ``camera_class_weight``) and its speeds' (``speed_class_weight``)
    summed as the tracker sums class evidence (at most ``class_max_evidence`` of them
    counted, over ``class_prior``, mixed with ``class_floor``), ``unknown`` when no class
    reaches 0.5. Fading (``class_memory_s``), the aircraft and the ground sensors are left out.
    """
    camera, speed = tuple(camera), tuple(speed)
    ev: dict[str, NDArray[np.float64]] = {}
    n: Counter[str] = Counter()

    def add(tid: str, lik: NDArray[np.float64] | None) -> None:
        if lik is None or lik.min() >= lik.max() * (1.0 - 1e-9):
            return
        ev.setdefault(tid, np.zeros(len(CLASSES)))
        ev[tid] += np.log(np.maximum(lik / lik.max(), 1e-12))
        n[tid] += 1

    for tid, g, c, r in zip(
        joined.track_id, joined.guess, joined.confidence, joined.range_m, strict=True
    ):
        rng = None if not math.isfinite(r) else r
        add(tid, table_likelihood(camera, g, c, rng, config.camera_class_weight))
    for tid, v in zip(speeds[0], speeds[1], strict=True):
        add(tid, speed_likelihood(speed, v, config.speed_class_weight))
    prior = np.log(np.asarray(config.class_prior, dtype=np.float64))
    out: dict[str, str] = {}
    for tid in dict.fromkeys([*joined.track_id, *speeds[0]]):
        e = ev.get(tid, np.zeros(len(CLASSES)))
        m = config.class_max_evidence
        scale = m / n[tid] if m > 0 and n[tid] > m else 1.0
        z = prior + e * scale
        p = np.exp(z - z.max())
        p = (1.0 - config.class_floor) * p / p.sum() + config.class_floor / len(CLASSES)
        best = int(np.argmax(p))
        out[tid] = CLASSES[best] if p[best] >= 0.5 else "unknown"
    return out


def confusion(truth: dict[str, str], decided: dict[str, str]) -> NDArray[np.int64]:
    """Counts of labelled tracks, true class (rows, :data:`CLASSES`) by decided class
    (columns, :data:`DECIDED`); tracks without a decision count as ``unknown``."""
    m = np.zeros((len(CLASSES), len(DECIDED)), dtype=np.int64)
    for tid, k in truth.items():
        if k in CLASSES:
            m[CLASSES.index(k), DECIDED.index(decided.get(tid, "unknown"))] += 1
    return m
