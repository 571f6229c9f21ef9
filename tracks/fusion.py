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
configured lag (:mod:`vigil.tracks.oosm`). Publishing is the pipeline's job: this module returns the
``Track`` messages and never touches the bus.

:class:`FusionTracker` wires parts with one role each round the array-level tracker
(:mod:`vigil.tracks.tracker`): class models (:mod:`vigil.tracks.classes`), groups and duplicate
tracks (:mod:`vigil.tracks.groups`), trails (:mod:`vigil.tracks.trails`) and lost tracks taken back
(:mod:`vigil.tracks.reacquire`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from vigil.geo.frames import LocalFrame
from vigil.ingest.schema import CameraDetection, SensorEvent, Telemetry, Track
from vigil.tracks.camera_reports import camera_covariances, camera_likelihoods
from vigil.tracks.classes import (
    class_likelihood,
    pace_weighted,
    speed_likelihood,
    speed_likelihoods,
)
from vigil.tracks.config import CLASSES, TrackerConfig
from vigil.tracks.groups import group_clusters, merge_duplicates, merge_group
from vigil.tracks.imm import make_tracker
from vigil.tracks.oosm import TimeOrderedReplay
from vigil.tracks.reacquire import LostTracks
from vigil.tracks.table import (
    COASTING,
    CONFIRMED,
    STATE_NAMES,
    TENTATIVE,
    TrackerSnapshot,
    TrackTable,
)
from vigil.tracks.trails import Trails

#: Published class probabilities are weighed by a track's pace (walking or driving) when
#: its velocity is known to this sigma per axis, m/s.
_PACE_SIGMA_MAX_MPS = 1.0


@dataclass(frozen=True)
class GroundSensorSite:
    """Where a ground sensor is (local metres) and the radius it detects within (m)."""

    x: float
    y: float
    radius_m: float


#: What the out-of-sequence replay keeps and restores: tracker, sensors, merges, lost
#: tracks and the stitched count, trails.
_State = tuple[TrackerSnapshot, dict, list, tuple, dict]


@dataclass
class _Batch:
    """One source's reports at one time. While pending, ``z``, ``R`` and ``lik`` are lists
    (a ground sensor's reports) and ``dets`` holds camera detections as they came; once
    submitted they are stacked into ``(m, 2)``, ``(m, 2, 2)`` and ``(m, classes)`` arrays
    (the out-of-sequence window keeps submitted batches, and a service snapshot writes that
    window: three arrays per batch instead of two small arrays per report)."""

    source: str
    z: list[tuple[float, float]] | NDArray[np.float64] = field(default_factory=list)
    R: list[NDArray[np.float64]] | NDArray[np.float64] = field(default_factory=list)
    lik: list[NDArray[np.float64]] | NDArray[np.float64] = field(default_factory=list)
    ugs: bool = False
    #: Camera detections' ``(lat, lon)``, degrees, not yet in ``z`` (a batch from an older
    #: snapshot; batches made now keep ``dets``).
    ll: list[tuple[float, float]] = field(default_factory=list)
    #: Camera detections not yet in ``z``, ``R``, ``lik``, each with its camera's footprint
    #: span when it came (m; ``None``: a tower's camera): placed in the local frame, and
    #: their covariances and class likelihoods made, all at once when the batch is submitted.
    dets: list[tuple[CameraDetection, float | None]] = field(default_factory=list)


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
        self.tracker = make_tracker(config)  # an IMM when the settings ask for one
        self.config = self.tracker.config
        self.ground_sensors = dict(ground_sensors or {})
        self.coverage = dict(coverage or {})
        self.id_prefix = id_prefix
        #: Track id to the sources that fed it (frozensets, replaced when one is added:
        #: the out-of-sequence window's snapshots share them instead of copying each).
        self._sensors: dict[int, frozenset[str]] = {}
        self._trails = Trails()
        self._footprint_span: dict[str, float] = {}
        self._pending: dict[tuple[str, float], _Batch] = {}
        self._replay: TimeOrderedReplay[_Batch, _State] = TimeOrderedReplay(
            self._apply, self._snapshot, self._restore, self.config.out_of_sequence_lag_s
        )
        self._last_live: dict[int, Track] = {}
        self.unknown_sensor = 0
        #: Detections folded into another of their batch as parts of one group.
        self.merged_detections = 0
        self._merges: list[tuple[int, int]] = []
        self._lost = LostTracks(self.config)

    # -- input --------------------------------------------------------------------------------

    def ingest(self, msg: CameraDetection | SensorEvent | Telemetry) -> None:
        """Take one message; batches older than the message's time are applied."""
        if isinstance(msg, CameraDetection):  # the thousands a second first
            camera, time = msg.camera, msg.time
            pending = self._pending
            key = (f"cam:{camera}", time)
            batch = pending.get(key)
            if batch is None:
                batch = pending[key] = _Batch(camera)
            lat, lon = float(msg.lat), float(msg.lon)
            if not (abs(lat) <= 90.0 and abs(lon) <= 180.0):  # NaN too
                self.frame.to_local([lat], [lon])  # raises FrameError, as before batching
            batch.dets.append((msg, self._footprint_span.get(camera)))
            if len(pending) > 1:  # else only this message's batch, not before its time
                self._flush_before(time)
            return
        if isinstance(msg, Telemetry):
            self._telemetry(msg)
            return
        if not isinstance(msg, SensorEvent):
            raise TypeError(f"cannot track a {type(msg).__name__}; expected a detection or event")
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
            batch = self._pending.pop((source, time))
            ll = getattr(batch, "ll", None)  # None: a batch from an older snapshot
            if ll:
                lat, lon = zip(*ll, strict=True)
                x, y = self.frame.to_local(lat, lon)
                batch.z.extend(zip(x.tolist(), y.tolist(), strict=True))  # type: ignore[union-attr]
                ll.clear()
            z = np.asarray(batch.z, dtype=np.float64).reshape(-1, 2)
            R = np.asarray(batch.R, dtype=np.float64).reshape(-1, 2, 2)
            lik = np.asarray(batch.lik, dtype=np.float64).reshape(-1, len(CLASSES))
            dets = getattr(batch, "dets", None)  # None: a batch from an older snapshot
            if dets:
                cz, cR, clik = self._camera_arrays(dets)
                z, R, lik = np.concatenate([z, cz]), np.concatenate([R, cR]), np.vstack([lik, clik])
                dets.clear()
            batch.z, batch.R, batch.lik = z, R, lik
            self._replay.submit(time, batch, tiebreak=source)

    def _camera_arrays(
        self, dets: list[tuple[CameraDetection, float | None]]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """One batch's camera detections as measurements: positions in the local frame
        ``(m, 2)`` (m), covariances ``(m, 2, 2)`` (m^2) and class likelihoods ``(m,
        classes)`` (:mod:`vigil.tracks.camera_reports`)."""
        msgs = [m for m, _ in dets]
        x, y = self.frame.to_local([float(m.lat) for m in msgs], [float(m.lon) for m in msgs])
        z = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
        R = camera_covariances(self.config, msgs, [sp for _, sp in dets])
        return z, R, camera_likelihoods(self.config, dets)

    def _telemetry(self, msg: Telemetry) -> None:
        if len(msg.footprint) < 2:
            return
        lat, lon = zip(*msg.footprint, strict=True)
        x, y = self.frame.to_local(lat, lon)
        span = math.hypot(float(np.ptp(x)), float(np.ptp(y)))
        self._footprint_span[msg.aircraft] = span

    def _camera_covariance(self, msg: CameraDetection) -> NDArray[np.float64]:
        """One detection's covariance (m^2), as its batch would have it now."""
        return camera_covariances(self.config, [msg], [self._footprint_span.get(msg.camera)])[0]

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
        view = self._in_view(batch, tr.x)
        # copies: the batch stays in the out-of-sequence window and may be applied again
        z = np.array(batch.z, dtype=np.float64).reshape(-1, 2)
        R = np.array(batch.R, dtype=np.float64).reshape(-1, 2, 2)
        lik = np.array(batch.lik, dtype=np.float64).reshape(-1, len(CLASSES))
        if not batch.ugs and z.shape[0] > 1 and self.config.group_radius_m > 0.0:
            r = self.config.group_radius_m
            z, R, lik = merge_group(z, R, lik, group_clusters(z, R, r), r)
            self.merged_detections += len(batch.z) - z.shape[0]
        stitching = self.config.stitch_s > 0.0
        if stitching:
            before = self._lost.before_batch(tr)
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
            self._lost.note_deleted(before, tr, self._sensors, self._trails)
        sensors, source = self._sensors, batch.source
        for track_id in tr.last_det_track_id.tolist():
            if track_id >= 0 and source not in sensors.get(track_id, ()):
                sensors[track_id] = frozenset((*sensors.get(track_id, ()), source))
        if not batch.ugs:
            # ground sensors' updates are left out of the trails: they say where the sensor is
            updated = tr.slots_of(tr.last_det_track_id[tr.last_det_track_id >= 0])
            self._trails.extend(t, tr.ids[updated], tr.x[updated, :2])
            if self.config.speed_class_model:
                self._speed_evidence(t, updated)
        if self.config.group_radius_m > 0.0:
            merges = merge_duplicates(
                tr, tr.last_det_track_id, self.config.group_radius_m, self._trails.velocity
            )
            for did, kid in merges:
                self._sensors[kid] = frozenset(
                    (*self._sensors.get(kid, ()), *self._sensors.pop(did, ()))
                )
                self._merges.append((did, kid))
        if stitching:
            # after the merge: a new track that duplicates a group's current track is folded
            # into it, not given a lost track's id
            for new_id, lost in self._lost.stitch(t, tr, before.tentative):
                self._sensors[lost.track_id] = frozenset(lost.sensors).union(
                    self._sensors.pop(new_id, ())
                )
                self._trails.rename(new_id, lost.track_id)
        live = set(tr.ids.tolist())
        for track_id in [k for k in self._sensors if k not in live]:
            del self._sensors[track_id]
        self._trails.keep_only(live)

    def _speed_evidence(self, t: float, updated: NDArray[np.int64]) -> None:
        """Add the speed likelihood (``speed_class_model``) of each settled track in slots
        ``updated`` (those the batch just applied updated), when its velocity is known well
        enough."""
        tr = self.tracker
        c = self.config
        idx = updated[tr.status[updated] != TENTATIVE]
        if not idx.size:
            return
        # speed_says for all of them at once (same arithmetic): the velocity is trusted unless
        # half its covariance's trace is over the bound; adding evidence moves no state
        x, P = tr.x, tr.P
        var = 0.5 * (P[idx, 2, 2] + P[idx, 3, 3])
        idx = idx[~(var > c.speed_sigma_max_mps**2)]
        rows, weight = c.speed_class_model, c.speed_class_weight
        if not isinstance(rows, tuple):  # a list of rows: one by one, as speed_likelihood has it
            for i, vx, vy in zip(idx.tolist(), x[idx, 2].tolist(), x[idx, 3].tolist(), strict=True):
                lik = speed_likelihood(rows, math.hypot(vx, vy), weight=weight)
                if lik is not None:
                    tr.add_class_evidence(i, lik, t)
            return
        # every track's speed (math.hypot, as speed_says) and table row at once: one kernel call
        speeds = list(map(math.hypot, x[idx, 2].tolist(), x[idx, 3].tolist()))
        has, liks = speed_likelihoods(rows, speeds, weight=weight)
        if has.size:
            tr.add_class_evidence(idx[has], liks, t)

    def take_merges(self) -> list[tuple[str, str]]:
        """``(merged_track_id, into_track_id)`` pairs since the last call (published ids)."""
        out = [(f"{self.id_prefix}{a}", f"{self.id_prefix}{b}") for a, b in self._merges]
        self._merges = []
        return out

    def _snapshot(self) -> _State:
        return (
            self.tracker.snapshot(),
            dict(self._sensors),  # frozensets: shared, not copied
            list(self._merges),
            self._lost.snapshot(),
            self._trails.snapshot(),
        )

    def _restore(self, state: _State) -> None:
        snap, sensors, merges, lost, trails = state
        self.tracker.restore(snap)
        self._sensors = {k: frozenset(v) for k, v in sensors.items()}
        self._merges = list(merges)
        self._lost.restore(lost)
        self._trails.restore(trails)

    # -- output -------------------------------------------------------------------------------

    @property
    def stitched(self) -> int:
        """New tracks that took back a lost track's id (see ``TrackerConfig.stitch_s``)."""
        return self._lost.stitched

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
        if len(sel):
            out = self._messages(sel, lat, lon)
            live = dict(zip(sel.track_id.tolist(), out, strict=True))
        alive = set(table.track_id.tolist())
        for track_id, last in self._last_live.items():
            if track_id not in alive and self._lost.may_return(track_id):
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

    def _messages(
        self, sel: TrackTable, lat: NDArray[np.float64], lon: NDArray[np.float64]
    ) -> list[Track]:
        """One ``Track`` message per row of ``sel`` at ``lat``, ``lon`` (degrees), its class
        probabilities weighed by its pace (:func:`vigil.tracks.classes.pace_weighted`)."""
        c, P = self.config, sel.P
        probs = pace_weighted(sel.class_probs, sel.x[:, 2:], P[:, 2:, 2:], _PACE_SIGMA_MAX_MPS,
                              c.walk_max_mps, c.vehicle_min_mps)  # fmt: skip
        best = np.argmax(probs, axis=1)
        guess = np.where(probs[np.arange(len(sel)), best] >= 0.5, best, -1).tolist()
        names = [*CLASSES, "unknown"]  # -1: unknown
        sensors, prefix, t = self._sensors, self.id_prefix, sel.time
        return [
            Track(
                track_id=f"{prefix}{tid}",
                time=t,
                lat=la,
                lon=lo,
                vx=vx,
                vy=vy,
                cov=(p00, p01, p01, p11),
                state=STATE_NAMES[st],  # type: ignore[arg-type]
                class_guess=names[g],  # type: ignore[arg-type]
                class_probs={k: round(p, 6) for k, p in zip(CLASSES, pr, strict=True)},
                sensors=sorted(sensors.get(tid, ())),
                count=max(nu, 1),
            )
            for tid, la, lo, vx, vy, p00, p01, p11, st, g, pr, nu in zip(
                sel.track_id.tolist(),
                lat.tolist(),
                lon.tolist(),
                sel.x[:, 2].tolist(),
                sel.x[:, 3].tolist(),
                P[:, 0, 0].tolist(),
                P[:, 0, 1].tolist(),
                P[:, 1, 1].tolist(),
                sel.status.tolist(),
                guess,
                probs.tolist(),
                sel.n_updates.tolist(),
                strict=True,
            )
        ]
