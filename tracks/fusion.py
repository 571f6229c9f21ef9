"""Multi-sensor fusion at the message level: wire messages in, ``Track`` messages out.

Each sensor's report becomes a position measurement with its own covariance in the sector's
local frame, and all of them update the same tracks:

- camera ground detections (towers): the detection's covariance, or one made from its range
  (``floor + range * angular error``) when the detection stage sent a degenerate one;
- ground-sensor events: the sensor's position with its detection radius as uncertainty
  (a uniform disc of radius ``r`` has ``sigma = r / 2`` per axis); they start tentative
  tracks and corroborate others, moving a track's position but not its velocity (they say
  a target is near, not where);
- aircraft camera detections: the detection's covariance inflated by a fraction of the
  camera footprint's span (pointing and altitude error), taken from the latest telemetry.

Every report's class guess updates the track's person/vehicle/animal probabilities, and so
does a settled track's speed (``speed_class_model``) at each camera or aircraft update.
Batches (one per source and time) are applied in time order, late ones replayed within the
configured lag (:mod:`tracks.oosm`). Publishing is the pipeline's job: this module returns the
``Track`` messages and never touches the bus.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from vigil.geo.frames import LocalFrame
from vigil.ingest.schema import CameraDetection, SensorEvent, Telemetry, Track
from vigil.tracks.config import CLASSES, ClassRow, SpeedRow, TrackerConfig
from vigil.tracks.oosm import TimeOrderedReplay
from vigil.tracks.tracker import (
    COASTING,
    CONFIRMED,
    STATE_NAMES,
    TENTATIVE,
    Tracker,
    TrackerSnapshot,
    TrackTable,
)


@dataclass(frozen=True)
class GroundSensorSite:
    """Where a ground sensor is (local metres) and the radius it detects within (m)."""

    x: float
    y: float
    radius_m: float


@dataclass
class _Lost:
    """A confirmed track deleted after coasting, kept aside for stitching (local frame)."""

    track_id: int
    t: float  # time of its state, UTC s
    t_hit: float  # its last detection, UTC s
    x: NDArray[np.float64]  # (4,) x, y, vx, vy
    P: NDArray[np.float64]  # (4, 4)
    class_evidence: NDArray[np.float64]  # its tracker evidence row (see Tracker._cev)
    n_updates: int
    sensors: set[str]
    expired: bool = False
    #: Its mean velocity over its last minutes (m/s), from its trail; None when too short.
    v_trail: NDArray[np.float64] | None = None


#: What the out-of-sequence replay keeps and restores: tracker, sensors, merges, lost
#: tracks, stitched count, trails.
_State = tuple[TrackerSnapshot, dict, list, dict, int, dict]


@dataclass
class _Batch:
    source: str
    z: list[tuple[float, float]] = field(default_factory=list)
    R: list[NDArray[np.float64]] = field(default_factory=list)
    lik: list[NDArray[np.float64]] = field(default_factory=list)
    ugs: bool = False


#: Default confidence bands of a calibrated camera confusion table: narrow where a detector's
#: rules put their (size-capped) confidences, so that each rule gets its own row.
CONFIDENCE_EDGES: tuple[float, ...] = (
    0.0, 0.135, 0.165, 0.19, 0.205, 0.215, 0.23, 0.255, 0.27, 0.32, 0.4, 0.5, 0.6, 0.65, 1.01,
)  # fmt: skip
#: Default range bands of a calibrated camera confusion table, metres.
RANGE_EDGES_M: tuple[float, ...] = (0.0, 750.0, 1250.0, 1750.0, 2250.0, 1e6)
#: Class factors (person, vehicle, animal) for a track known to move slowly, or fast.
_SLOW = np.array([1.0, 0.1, 1.0])
_FAST = np.array([0.05, 1.0, 0.05])
#: Chi-square (2 dof) 99 % point: detections closer than this (Mahalanobis) may be one group.
_GROUP_GATE = 9.2103
#: A track's trail (for its mean velocity, when it is lost and when it may be merged): a
#: position every this many seconds at most, kept this long, and spanning at least this
#: long to be used.
_TRAIL_STEP_S, _TRAIL_S, _TRAIL_MIN_S = 30.0, 300.0, 60.0
#: Two tracks whose mean velocities over their trails differ by more than this (m/s) follow
#: different bodies: they are not merged, however uncertain their filtered velocities.
_MERGE_TRAIL_DV_MPS = 1.0
#: Speed bands of a calibrated track-speed table, m/s.
SPEED_EDGES_MPS: tuple[float, ...] = (
    0.0, 0.15, 0.3, 0.5, 0.7, 0.9, 1.1, 1.4, 1.8, 2.5, 4.0, 6.0, 1000.0,
)  # fmt: skip


def class_likelihood(class_guess: str, confidence: float) -> NDArray[np.float64]:
    """Likelihood of a sensor's class guess under each of person, vehicle, animal.

    The guess with confidence ``c`` is read as "right with probability c, else uninformative":
    ``(1 - c) / 3`` for every class plus ``c`` for the guessed one. ``"unknown"`` or ``c = 0``
    carries no information.
    """
    c = min(max(float(confidence), 0.0), 1.0)
    lik = np.full(len(CLASSES), (1.0 - c) / len(CLASSES))
    if class_guess in CLASSES:
        lik[CLASSES.index(class_guess)] += c
    else:
        lik[:] = 1.0
    return lik


def table_likelihood(
    rows: Iterable[ClassRow],
    class_guess: str,
    confidence: float,
    range_m: float | None,
    weight: float = 1.0,
) -> NDArray[np.float64]:
    """Likelihood of a class guess from a confusion table (see ``camera_class_model``).

    The row for the guess, the confidence band and the range band gives
    ``P(guess, band | class, range)``; the result is normalised to a maximum of 1 and raised
    to ``weight`` (evidence from correlated frames counts less). Without a row (or without
    a range), :func:`class_likelihood` is used.
    """
    r = -1.0 if range_m is None else float(range_m)
    for guess, lo, hi, r_lo, r_hi, *probs in rows:
        if guess == class_guess and lo <= confidence < hi and r_lo <= r < r_hi:
            lik = np.maximum(np.asarray(probs, dtype=np.float64), 1e-6)
            break
    else:
        lik = class_likelihood(class_guess, confidence)
    lik = lik / lik.max()
    return lik**weight if weight != 1.0 else lik


def speed_likelihood(
    rows: Sequence[SpeedRow], speed_mps: float, weight: float = 1.0
) -> NDArray[np.float64] | None:
    """Likelihood of a track's speed (m/s) under person, vehicle, animal from a speed table
    (see ``speed_class_model``), normalised to a maximum of 1 and raised to ``weight``;
    ``None`` when no row covers the speed."""
    for lo, hi, *probs in rows:
        if lo <= speed_mps < hi:
            lik = np.maximum(np.asarray(probs, dtype=np.float64), 1e-6)
            return (lik / lik.max()) ** weight
    return None


def calibrate_speed_model(
    speeds_mps: Iterable[float],
    truths: Iterable[str],
    edges: tuple[float, ...] = SPEED_EDGES_MPS,
) -> tuple[SpeedRow, ...]:
    """A track-speed class table from track speeds (m/s) labelled with the true class of
    the body each track followed (other labels are left out).

    Returns one row per band of ``edges``: ``(from, to, P(band | person), P(band |
    vehicle), P(band | animal))``, each class's counts with one added per band, so that no
    band rules a class out.
    """
    v = np.asarray(list(speeds_mps), dtype=np.float64)
    t = np.asarray(list(truths), dtype=object)
    if v.shape != t.shape:
        raise ValueError(
            f"speeds and truths have lengths {v.size} and {t.size}; expected one of each"
        )
    keep = np.isin(t, CLASSES) & np.isfinite(v)
    v, t = v[keep], t[keep]
    nb = len(edges) - 1
    band = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, nb - 1)
    probs = []
    for k in CLASSES:
        counts = np.bincount(band[t == k], minlength=nb) + 1.0
        probs.append(counts / counts.sum())
    return tuple(
        (float(edges[b]), float(edges[b + 1]), *(round(float(p[b]), 6) for p in probs))
        for b in range(nb)
    )


def calibrate_class_model(
    guesses: Iterable[str],
    confidences: Iterable[float],
    ranges_m: Iterable[float],
    truths: Iterable[str],
    edges: tuple[float, ...] = CONFIDENCE_EDGES,
    range_edges_m: tuple[float, ...] = RANGE_EDGES_M,
    min_count: int = 20,
    backoff: float = 50.0,
) -> tuple[ClassRow, ...]:
    """A camera confusion table from detections labelled with their true class.

    Parameters
    ----------
    guesses, confidences, ranges_m
        Each detection's class guess, confidence and range (m).
    truths
        Each detection's true class (one of :data:`tracks.config.CLASSES`; other labels,
        such as ``"none"`` for a false detection, are left out).
    edges, range_edges_m
        Confidence and range band edges.
    min_count
        Cells seen fewer times than this (over all classes) get no row.
    backoff
        Weight, in detections, of a class's all-range table in each range band: a class
        seen rarely at some range takes its probabilities mostly from the other ranges.

    Returns
    -------
    Rows ``(guess, from, to, range_from, range_to, P(guess, band | person, range band),
    ... vehicle, ... animal)``.
    """
    g = np.asarray(list(guesses), dtype=object)
    c = np.asarray(list(confidences), dtype=np.float64)
    r = np.asarray(list(ranges_m), dtype=np.float64)
    t = np.asarray(list(truths), dtype=object)
    if not (g.shape == c.shape == r.shape == t.shape):
        raise ValueError(
            f"guesses, confidences, ranges and truths have lengths {g.size}, {c.size}, "
            f"{r.size}, {t.size}; expected one of each per detection"
        )
    keep = np.isin(t, CLASSES) & np.isfinite(r)
    g, c, r, t = g[keep], c[keep], r[keep], t[keep]
    band = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, len(edges) - 2)
    rband = np.clip(np.searchsorted(range_edges_m, r, side="right") - 1, 0, len(range_edges_m) - 2)
    guess_names = (*CLASSES, "unknown")
    cells = len(guess_names) * (len(edges) - 1)
    rows = []
    for rb in range(len(range_edges_m) - 1):
        here = rband == rb
        totals = {k: int((here & (t == k)).sum()) for k in CLASSES}
        for guess in guess_names:
            for b in range(len(edges) - 1):
                sel = here & (g == guess) & (band == b)
                if sel.sum() < min_count:
                    continue
                # a class seen little at this range backs off to its all-range table
                probs = []
                for k in CLASSES:
                    anywhere = (int(((g == guess) & (band == b) & (t == k)).sum()) + 1) / (
                        int((t == k).sum()) + cells
                    )
                    probs.append(
                        (int((sel & (t == k)).sum()) + backoff * anywhere) / (totals[k] + backoff)
                    )
                rows.append(
                    (
                        guess,
                        float(edges[b]),
                        float(edges[b + 1]),
                        float(range_edges_m[rb]),
                        float(range_edges_m[rb + 1]),
                        *(round(p, 6) for p in probs),
                    )
                )
    return tuple(rows)


def group_clusters(
    z: NDArray[np.float64], R: NDArray[np.float64], radius_m: float
) -> NDArray[np.int64]:
    """Label the detections of one batch that could be parts of one group.

    Two detections are linked when their difference lies within the 99 % gate of
    ``R_i + R_j + radius_m^2 I``; clusters are the connected sets (single linkage).
    Returns one cluster label per detection, ``0 .. k-1``.
    """
    m = z.shape[0]
    if m < 2 or radius_m <= 0.0:
        return np.arange(m, dtype=np.int64)
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    i, j = np.triu_indices(m, 1)
    d = z[i] - z[j]
    S = R[i] + R[j]
    S[:, 0, 0] += radius_m**2
    S[:, 1, 1] += radius_m**2
    det = S[:, 0, 0] * S[:, 1, 1] - S[:, 0, 1] * S[:, 1, 0]
    d2 = (S[:, 1, 1] * d[:, 0] ** 2 - 2.0 * S[:, 0, 1] * d[:, 0] * d[:, 1]
          + S[:, 0, 0] * d[:, 1] ** 2) / det  # fmt: skip
    link = d2 <= _GROUP_GATE
    graph = csr_matrix((np.ones(int(link.sum())), (i[link], j[link])), shape=(m, m))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def merge_group(
    z: NDArray[np.float64],
    R: NDArray[np.float64],
    lik: NDArray[np.float64],
    labels: NDArray[np.int64],
    radius_m: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """One measurement per cluster: the centre of its detections, weighted by how well each
    is placed (``1 / trace R``).

    The members are different bodies seen from one place at one time, not repeated
    measurements of one point, so their centre is a convex combination of their positions:
    weighting them by their full information matrices would triangulate. A tower places
    each body on its line of sight to within a metre but along it only to tens of metres,
    and two such thin ellipses on nearly parallel sight lines agree best far from both
    bodies: a pair 110 m apart at 2.5 km fused 170 m nearer the tower than the nearer one,
    and the track that took such measurements ran off at 5 m/s.
    The members' errors are largely shared (pointing, range from the same pixel rows), so
    the cluster's covariance is the same weighted mean of theirs, plus the group's extent
    ``(radius_m / 2)^2 I``; its class likelihood is the geometric mean of the members'.
    """
    k = int(labels.max()) + 1 if labels.size else 0
    if k == labels.size:
        return z, R, lik
    weight = 1.0 / np.trace(R, axis1=1, axis2=2)
    zs = np.empty((k, 2))
    Rs = np.empty((k, 2, 2))
    ls = np.empty((k, lik.shape[1]))
    for c in range(k):
        sel = labels == c
        if int(sel.sum()) == 1:
            j = int(np.flatnonzero(sel)[0])
            zs[c], Rs[c], ls[c] = z[j], R[j], lik[j]
            continue
        w = weight[sel] / weight[sel].sum()
        zs[c] = w @ z[sel]
        Rs[c] = np.einsum("k,kab->ab", w, R[sel]) + np.eye(2) * (radius_m / 2.0) ** 2
        gm = np.exp(np.log(np.maximum(lik[sel], 1e-12)).mean(axis=0))
        ls[c] = gm / gm.max()
    return zs, Rs, ls


class FusionTracker:
    """Fuse camera, ground-sensor and aircraft reports into tracks, in one local frame.

    Parameters
    ----------
    frame
        The sector's local metric frame; messages are converted at this boundary.
    config
        Tracker settings.
    ground_sensors
        Sensor id to its site (local metres and detection radius); events from sensors not
        listed are counted in :attr:`unknown_sensor` and skipped.
    coverage
        Optional sensor id to a shapely polygon in local metres: tracks outside it do not
        count a miss when that sensor reports. Without one, only hits count for the sensor.
    id_prefix
        Prefix of the ``track_id`` strings.
    """

    def __init__(
        self,
        frame: LocalFrame,
        config: TrackerConfig | None = None,
        ground_sensors: Mapping[str, GroundSensorSite] | None = None,
        coverage: Mapping[str, object] | None = None,
        id_prefix: str = "T",
    ) -> None:
        self.frame = frame
        self.tracker = Tracker(config)
        self.config = self.tracker.config
        self.ground_sensors = dict(ground_sensors or {})
        self.coverage = dict(coverage or {})
        self.id_prefix = id_prefix
        self._sensors: dict[int, set[str]] = {}
        #: Track id to its recent positions ``(t, x, y)``, one per ``_TRAIL_STEP_S`` at most.
        self._trail: dict[int, tuple[tuple[float, float, float], ...]] = {}
        self._footprint_span: dict[str, float] = {}
        self._pending: dict[tuple[str, float], _Batch] = {}
        self._replay: TimeOrderedReplay[_Batch, _State] = TimeOrderedReplay(
            self._apply, self._snapshot, self._restore, self.config.out_of_sequence_lag_s
        )
        self._last_live: dict[int, Track] = {}
        self._ended: list[Track] = []
        self.unknown_sensor = 0
        #: Detections folded into another of their batch as parts of one group.
        self.merged_detections = 0
        self._merges: list[tuple[int, int]] = []
        self._lost: dict[int, _Lost] = {}
        #: New tracks that took back a lost track's id (see ``TrackerConfig.stitch_s``).
        self.stitched = 0

    # -- input --------------------------------------------------------------------------------

    def ingest(self, msg: CameraDetection | SensorEvent | Telemetry) -> None:
        """Take one message; batches older than the message's time are applied."""
        if isinstance(msg, Telemetry):
            self._telemetry(msg)
            return
        if isinstance(msg, SensorEvent):
            site = self.ground_sensors.get(msg.sensor)
            if site is None:
                self.unknown_sensor += 1
                return
            key = (f"ugs:{msg.sensor}", msg.time)
            batch = self._pending.setdefault(key, _Batch(msg.sensor, ugs=True))
            var = (0.5 * site.radius_m) ** 2
            batch.z.append((site.x, site.y))
            batch.R.append(np.array([[var, 0.0], [0.0, var]]))
            batch.lik.append(class_likelihood(msg.class_guess, msg.class_confidence))
        elif isinstance(msg, CameraDetection):
            key = (f"cam:{msg.camera}", msg.time)
            batch = self._pending.setdefault(key, _Batch(msg.camera))
            x, y = self.frame.to_local([msg.lat], [msg.lon])
            batch.z.append((float(x[0]), float(y[0])))
            batch.R.append(self._camera_covariance(msg))
            if msg.camera in self._footprint_span:  # an aircraft's camera
                lik = class_likelihood(msg.class_guess, msg.class_confidence)
            else:
                c = self.config
                lik = table_likelihood(
                    c.camera_class_model,
                    msg.class_guess,
                    msg.class_confidence,
                    msg.range_m,
                    c.camera_class_weight,
                )
            batch.lik.append(lik)
        else:
            raise TypeError(f"cannot track a {type(msg).__name__}; expected a detection or event")
        self._flush_before(msg.time)

    def ingest_many(self, msgs: Iterable[CameraDetection | SensorEvent | Telemetry]) -> None:
        """:meth:`ingest` each message, then :meth:`flush`."""
        for msg in msgs:
            self.ingest(msg)
        self.flush()

    def flush(self) -> None:
        """Apply every pending batch now."""
        self._flush_before(math.inf)

    def _flush_before(self, t: float) -> None:
        ready = sorted((k[1], k[0]) for k in self._pending if k[1] < t)
        for time, source in ready:
            self._replay.submit(time, self._pending.pop((source, time)), tiebreak=source)

    def _telemetry(self, msg: Telemetry) -> None:
        if len(msg.footprint) < 2:
            return
        lat, lon = zip(*msg.footprint, strict=True)
        x, y = self.frame.to_local(lat, lon)
        span = math.hypot(float(np.ptp(x)), float(np.ptp(y)))
        self._footprint_span[msg.aircraft] = span

    def _camera_covariance(self, msg: CameraDetection) -> NDArray[np.float64]:
        c = self.config
        ee, en, _, nn = msg.cov
        R = np.array([[ee, en], [en, nn]], dtype=np.float64)
        if ee <= 0.0 or nn <= 0.0 or ee * nn - en * en <= 1e-12:
            if msg.range_m is not None:
                s = c.camera_sigma_floor_m + msg.range_m * c.camera_angular_sigma_rad
            else:
                s = c.default_sigma_m
            R = np.eye(2) * max(s, 1e-3) ** 2
        span = self._footprint_span.get(msg.camera)
        if span is not None:
            R = R + np.eye(2) * (c.uas_footprint_error_fraction * span) ** 2
        return R

    # -- one batch ----------------------------------------------------------------------------

    def _in_view(self, batch: _Batch, table_x: NDArray[np.float64]) -> NDArray[np.bool_] | None:
        if batch.ugs:
            site = self.ground_sensors[batch.source]
            d = np.hypot(table_x[:, 0] - site.x, table_x[:, 1] - site.y)
            return d <= site.radius_m
        poly = self.coverage.get(batch.source)
        if poly is None:
            return np.zeros(table_x.shape[0], dtype=np.bool_)
        import shapely

        return np.asarray(shapely.contains_xy(poly, table_x[:, 0], table_x[:, 1]))

    def _apply(self, t: float, batch: _Batch) -> None:
        tr = self.tracker
        n = tr.n
        view = self._in_view(batch, tr._x[:n])
        z = np.asarray(batch.z, dtype=np.float64).reshape(-1, 2)
        R = np.asarray(batch.R, dtype=np.float64).reshape(-1, 2, 2)
        lik = np.asarray(batch.lik, dtype=np.float64).reshape(-1, len(CLASSES))
        if not batch.ugs and z.shape[0] > 1 and self.config.group_radius_m > 0.0:
            r = self.config.group_radius_m
            z, R, lik = merge_group(z, R, lik, group_clusters(z, R, r), r)
            self.merged_detections += len(batch.z) - z.shape[0]
        stitching = self.config.stitch_s > 0.0
        if stitching:
            # the settled tracks' state before the batch, for any the batch deletes
            settled = np.flatnonzero((tr._status[:n] == CONFIRMED) | (tr._status[:n] == COASTING))
            before = (
                tr._id[settled].copy(), tr._t_est[settled].copy(), tr._t_hit[settled].copy(),
                tr._x[settled].copy(), tr._P[settled].copy(), tr._cev[settled].copy(),
                tr._n_updates[settled].copy(),
            )  # fmt: skip
            tentative = tr._id[:n][tr._status[:n] == TENTATIVE].copy()
        tr.update(
            t,
            z,
            R,
            class_likelihood=lik,
            in_view=view,
            can_initiate=self.config.ugs_can_initiate or not batch.ugs,
            position_only=batch.ugs,
        )
        if stitching:
            ids, t_est, t_hit, x, P, cev, nu = before
            for j in np.flatnonzero(~np.isin(ids, tr._id[: tr.n])):
                k = int(ids[j])
                self._lost[k] = _Lost(
                    k, float(t_est[j]), float(t_hit[j]), x[j], P[j], cev[j], int(nu[j]),
                    self._sensors.get(k, set()), v_trail=self._trail_velocity(k),
                )  # fmt: skip
        for track_id in tr.last_det_track_id:
            if track_id >= 0:
                self._sensors.setdefault(int(track_id), set()).add(batch.source)
        if not batch.ugs:
            hit = tr.last_det_track_id[tr.last_det_track_id >= 0]
            updated = np.flatnonzero(np.isin(tr._id[: tr.n], hit))
            self._extend_trails(t, updated)
            if self.config.speed_class_model:
                self._speed_evidence(t, updated)
        if self.config.group_radius_m > 0.0:
            self._merge_duplicates(tr.last_det_track_id)
        if stitching:
            # after the merge: a new track that duplicates a group's current track is folded
            # into it, not given a lost track's id
            self._stitch(t, tentative)
        live = set(tr._id[: tr.n].tolist())
        for track_id in [k for k in self._sensors if k not in live]:
            del self._sensors[track_id]
        for track_id in [k for k in self._trail if k not in live]:
            del self._trail[track_id]

    def _extend_trails(self, t: float, updated: NDArray[np.int64]) -> None:
        """Note where each track in slots ``updated`` (those the batch just applied updated)
        is, once a ``_TRAIL_STEP_S`` at most, keeping ``_TRAIL_S`` of them (ground sensors'
        updates are left out: they say where the sensor is)."""
        tr = self.tracker
        for i in updated:
            k = int(tr._id[i])
            trail = self._trail.get(k, ())
            if trail and t - trail[-1][0] < _TRAIL_STEP_S:
                continue
            kept = tuple(p for p in trail if t - p[0] <= _TRAIL_S)
            self._trail[k] = (*kept, (t, float(tr._x[i, 0]), float(tr._x[i, 1])))

    def _trail_velocity(self, track_id: int) -> NDArray[np.float64] | None:
        """A track's mean velocity over its trail (m/s), or None when it spans too little."""
        trail = self._trail.get(track_id, ())
        if len(trail) < 2 or trail[-1][0] - trail[0][0] < _TRAIL_MIN_S:
            return None
        (t0, x0, y0), (t1, x1, y1) = trail[0], trail[-1]
        return np.array([(x1 - x0) / (t1 - t0), (y1 - y0) / (t1 - t0)])

    def _speed_evidence(self, t: float, updated: NDArray[np.int64]) -> None:
        """Add the speed likelihood (``speed_class_model``) of each settled track in slots
        ``updated`` (those the batch just applied updated), when its velocity is known well
        enough."""
        tr = self.tracker
        c = self.config
        for i in updated[tr._status[updated] != TENTATIVE]:
            Pv = tr._P[i, 2:, 2:]
            if 0.5 * (Pv[0, 0] + Pv[1, 1]) > c.speed_sigma_max_mps**2:
                continue
            speed = math.hypot(float(tr._x[i, 2]), float(tr._x[i, 3]))
            lik = speed_likelihood(c.speed_class_model, speed, c.speed_class_weight)
            if lik is not None:
                tr.add_class_evidence(int(i), lik, t)

    def _stitch(self, t: float, tentative: NDArray[np.int64]) -> None:
        """Give tracks confirmed by this batch the id of a lost track they continue."""
        c = self.config
        keep_s = max(c.stitch_s, c.reacquire_s)
        for k, lost in list(self._lost.items()):
            if t - lost.t_hit > keep_s:
                del self._lost[k]
            elif not lost.expired and t - lost.t_hit > c.stitch_s:
                self._lost[k] = replace(lost, expired=True)  # ``track_messages`` ends it
        if not self._lost:
            return
        tr = self.tracker
        n = tr.n
        ids = tr._id[:n]
        fresh = np.flatnonzero((tr._status[:n] == CONFIRMED) & np.isin(ids, tentative))
        for i in fresh:
            best, best_cost = None, math.inf
            sig_new = math.sqrt(0.5 * float(np.trace(tr._P[i, :2, :2])))
            for lost in self._lost.values():
                if tr._t_first[i] < lost.t_hit:
                    continue
                # somewhere along its way: from where it was lost to where its velocity
                # (a little faster) takes it in the gap, since it may have stopped a while;
                # off that path by both positions' uncertainty and a slow sideways wander
                dt = max(t - lost.t, 0.0)
                p0 = lost.x[:2]
                q = tr._x[i, :2] - p0
                sig_lost = math.sqrt(0.5 * float(np.trace(lost.P[:2, :2])))
                allowed = 3.0 * (sig_lost + sig_new) + c.group_radius_m + c.stitch_speed_mps * dt
                w = allowed / 3.0
                # its way by the filter's last velocity, and by its mean velocity over its
                # last minutes: a velocity a few noisy updates turned (a group's members
                # seen in turn, a ground sensor's reports) does not say where it went
                ways = [lost.x[2:]] if lost.v_trail is None else [lost.x[2:], lost.v_trail]
                cost = math.inf
                for v in ways:
                    step = 1.2 * v * dt
                    f = min(max(float(q @ step) / max(float(step @ step), 1e-9), 0.0), 1.0)
                    d = math.hypot(*(q - f * step))
                    if d > allowed:
                        continue
                    # of the lost tracks whose way passes near, the one under which the new
                    # track is likeliest: a density spread along the path and, as a normal
                    # of a third of the allowance, across it (a short, narrow way that fits
                    # beats a long-lost track's wide one)
                    way = math.log(math.hypot(*step) + 2.5 * w) + math.log(w) + 0.5 * (d / w) ** 2
                    cost = min(cost, way)
                if cost < best_cost:
                    best, best_cost = lost, cost
            if best is None:
                continue
            new_id = int(ids[i])
            tr._id[i] = best.track_id
            if not best.expired:
                tr.absorb_class(i, best.class_evidence)
            tr._n_updates[i] += best.n_updates
            self._sensors[best.track_id] = best.sensors | self._sensors.pop(new_id, set())
            self._trail[best.track_id] = self._trail.pop(new_id, ())
            del self._lost[best.track_id]
            self.stitched += 1

    def _merge_duplicates(self, touched: NDArray[np.int64]) -> None:
        """Fold a track into an older one that follows the same group.

        Two confirmed tracks whose positions lie within the 99 % gate of ``P_i + P_j +
        group_radius^2 I`` and whose velocities agree within the gate of their velocity
        covariances plus (0.5 m/s)^2, and whose mean velocities over their trails (when both
        span ``_TRAIL_MIN_S``) differ by at most ``_MERGE_TRAIL_DV_MPS``, are one group seen
        as two: the one whose current run began later is deleted (ties: the higher id), its
        class evidence and sensors go to the other, and :meth:`take_merges` reports it.
        Only pairs with a track updated by the batch just applied are checked.
        """
        tr = self.tracker
        n = tr.n
        ids = tr._id[:n]
        settled = tr._status[:n] != 0
        hit = np.isin(ids, touched[touched >= 0]) & settled
        if not hit.any() or settled.sum() < 2:
            return
        r2 = self.config.group_radius_m**2
        x, P, first = tr._x[:n], tr._P[:n], tr._t_first[:n]
        gone: set[int] = set()
        for i in np.flatnonzero(hit):
            if int(ids[i]) in gone:
                continue
            others = np.flatnonzero(settled & (np.arange(n) != i))
            others = np.array([j for j in others if int(ids[j]) not in gone], dtype=np.int64)
            if others.size == 0:
                continue
            dp = x[others, :2] - x[i, :2]
            S = P[others, :2, :2] + P[i, :2, :2] + np.eye(2) * r2
            dv = x[others, 2:] - x[i, 2:]
            V = P[others, 2:, 2:] + P[i, 2:, 2:] + np.eye(2) * 0.25
            d2p = np.einsum("ka,kab,kb->k", dp, np.linalg.inv(S), dp)
            d2v = np.einsum("ka,kab,kb->k", dv, np.linalg.inv(V), dv)
            ok = (d2p <= _GROUP_GATE) & (d2v <= _GROUP_GATE)
            # a filtered velocity's spread stays near 1 m/s on a track at 2 km, so the
            # gate above lets a cow grazing south by a group walking north; their mean
            # velocities over the last minutes tell them apart
            vi = self._trail_velocity(int(ids[i]))
            if vi is not None:
                for k in np.flatnonzero(ok):
                    vj = self._trail_velocity(int(ids[others[k]]))
                    if vj is not None and math.hypot(*(vi - vj)) > _MERGE_TRAIL_DV_MPS:
                        ok[k] = False
            if not ok.any():
                continue
            j = int(others[ok][np.argmin(d2p[ok])])
            # the one that has followed the group longer without a break stays: a track
            # reborn under an old id (stitched) gives way to the group's current track
            keep, drop = (i, j) if (first[i], ids[i]) < (first[j], ids[j]) else (j, i)
            tr.absorb_class(keep, tr._cev[drop])
            tr._n_updates[keep] += tr._n_updates[drop]
            kid, did = int(ids[keep]), int(ids[drop])
            self._sensors.setdefault(kid, set()).update(self._sensors.pop(did, set()))
            self._merges.append((did, kid))
            gone.add(did)
        if gone:
            tr.delete(sorted(gone))

    def take_merges(self) -> list[tuple[str, str]]:
        """``(merged_track_id, into_track_id)`` pairs since the last call (published ids)."""
        out = [(f"{self.id_prefix}{a}", f"{self.id_prefix}{b}") for a, b in self._merges]
        self._merges = []
        return out

    def _snapshot(self) -> _State:
        return (
            self.tracker.snapshot(),
            {k: set(v) for k, v in self._sensors.items()},
            list(self._merges),
            dict(self._lost),
            self.stitched,
            dict(self._trail),
        )

    def _restore(self, state: _State) -> None:
        snap, sensors, merges, lost, stitched, trail = state
        self.tracker.restore(snap)
        self._sensors = {k: set(v) for k, v in sensors.items()}
        self._merges = list(merges)
        self._lost = dict(lost)
        self.stitched = stitched
        self._trail = dict(trail)

    # -- output -------------------------------------------------------------------------------

    @property
    def dropped_late(self) -> int:
        """Batches that arrived later than the out-of-sequence lag and were not applied."""
        return self._replay.dropped_late

    def table(self) -> TrackTable:
        """Every live track as arrays (local frame)."""
        return self.tracker.tracks()

    def track_messages(self, include_tentative: bool = False) -> list[Track]:
        """``Track`` messages for the live tracks, then ``ended`` ones for tracks gone since
        the previous call (each ended track once)."""
        table = self.tracker.tracks()
        out: list[Track] = []
        shown = (
            np.ones(len(table), dtype=np.bool_)
            if include_tentative
            else (table.status == CONFIRMED) | (table.status == COASTING)
        )
        sel = table.select(shown)
        if len(sel):
            lat, lon = self.frame.to_wgs84(sel.x[:, 0], sel.x[:, 1])
        live: dict[int, Track] = {}
        for i in range(len(sel)):
            track_id = int(sel.track_id[i])
            msg = self._message(sel, i, float(lat[i]), float(lon[i]), STATE_NAMES[sel.status[i]])
            live[track_id] = msg
            out.append(msg)
        alive = set(table.track_id.tolist())
        for track_id, last in self._last_live.items():
            lost = self._lost.get(track_id)
            if lost is not None and track_id not in alive and not lost.expired:
                live[track_id] = last  # may yet be stitched: not ended yet
                continue
            if track_id not in alive:
                ended = Track(
                    track_id=last.track_id,
                    time=table.time,
                    lat=last.lat,
                    lon=last.lon,
                    vx=last.vx,
                    vy=last.vy,
                    cov=last.cov,
                    state="ended",
                    class_guess=last.class_guess,
                    class_probs=last.class_probs,
                    sensors=last.sensors,
                    count=last.count,
                )
                out.append(ended)
        self._last_live = live
        return out

    def _message(self, sel: TrackTable, i: int, lat: float, lon: float, state: str) -> Track:
        P = sel.P[i]
        probs = self._with_speed(sel.class_probs[i], sel.x[i, 2:], P[2:, 2:])
        best = int(np.argmax(probs))
        return Track(
            track_id=f"{self.id_prefix}{int(sel.track_id[i])}",
            time=sel.time,
            lat=lat,
            lon=lon,
            vx=float(sel.x[i, 2]),
            vy=float(sel.x[i, 3]),
            cov=(float(P[0, 0]), float(P[0, 1]), float(P[0, 1]), float(P[1, 1])),
            state=state,  # type: ignore[arg-type]
            class_guess=CLASSES[best] if probs[best] >= 0.5 else "unknown",  # type: ignore[arg-type]
            class_probs={c: round(float(p), 6) for c, p in zip(CLASSES, probs, strict=True)},
            sensors=sorted(self._sensors.get(int(sel.track_id[i]), ())),
            count=max(int(sel.n_updates[i]), 1),
        )

    def _with_speed(
        self, probs: NDArray[np.float64], v: NDArray[np.float64], Pv: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Class probabilities weighed by the track's speed, when the speed is well known.

        People and animals do not keep up vehicle speeds, and a vehicle on the move does not
        creep at walking pace; a track's velocity says so more reliably than the shape of a
        blob two pixels tall.
        """
        c = self.config
        if 0.5 * (Pv[0, 0] + Pv[1, 1]) > 1.0:
            return probs
        speed = math.hypot(float(v[0]), float(v[1]))
        if speed <= c.walk_max_mps:
            factor = _SLOW
        elif speed >= c.vehicle_min_mps:
            factor = _FAST
        else:
            return probs
        out = probs * factor
        return out / out.sum()
