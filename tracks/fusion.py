"""Multi-sensor fusion at the message level: wire messages in, ``Track`` messages out.

Each sensor's report becomes a position measurement with its own covariance in the sector's
local frame, and all of them update the same tracks:

- camera ground detections (towers): the detection's covariance, or one made from its range
  (``floor + range * angular error``) when the detection stage sent a degenerate one;
- ground-sensor events: the sensor's position with its detection radius as uncertainty
  (a uniform disc of radius ``r`` has ``sigma = r / 2`` per axis); they start tentative
  tracks and corroborate others;
- aircraft camera detections: the detection's covariance inflated by a fraction of the
  camera footprint's span (pointing and altitude error), taken from the latest telemetry.

Every report's class guess updates the track's person/vehicle/animal probabilities.
Batches (one per source and time) are applied in time order, late ones replayed within the
configured lag (:mod:`tracks.oosm`). Publishing is the pipeline's job: this module returns the
``Track`` messages and never touches the bus.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from geo.frames import LocalFrame
from ingest.schema import CameraDetection, SensorEvent, Telemetry, Track
from tracks.config import CLASSES, TrackerConfig
from tracks.oosm import TimeOrderedReplay
from tracks.tracker import COASTING, CONFIRMED, STATE_NAMES, Tracker, TrackerSnapshot, TrackTable


@dataclass(frozen=True)
class GroundSensorSite:
    """Where a ground sensor is (local metres) and the radius it detects within (m)."""

    x: float
    y: float
    radius_m: float


@dataclass
class _Batch:
    source: str
    z: list[tuple[float, float]] = field(default_factory=list)
    R: list[NDArray[np.float64]] = field(default_factory=list)
    lik: list[NDArray[np.float64]] = field(default_factory=list)
    ugs: bool = False


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
        self._footprint_span: dict[str, float] = {}
        self._pending: dict[tuple[str, float], _Batch] = {}
        self._replay: TimeOrderedReplay[_Batch, tuple[TrackerSnapshot, dict]] = TimeOrderedReplay(
            self._apply, self._snapshot, self._restore, self.config.out_of_sequence_lag_s
        )
        self._last_live: dict[int, Track] = {}
        self._ended: list[Track] = []
        self.unknown_sensor = 0

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
            batch.lik.append(class_likelihood(msg.class_guess, msg.class_confidence))
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
        tr.update(
            t,
            np.asarray(batch.z, dtype=np.float64).reshape(-1, 2),
            np.asarray(batch.R, dtype=np.float64).reshape(-1, 2, 2),
            class_likelihood=np.asarray(batch.lik, dtype=np.float64).reshape(-1, len(CLASSES)),
            in_view=view,
            can_initiate=self.config.ugs_can_initiate or not batch.ugs,
        )
        for track_id in tr.last_det_track_id:
            if track_id >= 0:
                self._sensors.setdefault(int(track_id), set()).add(batch.source)
        live = set(tr._id[: tr.n].tolist())
        for track_id in [k for k in self._sensors if k not in live]:
            del self._sensors[track_id]

    def _snapshot(self) -> tuple[TrackerSnapshot, dict]:
        return self.tracker.snapshot(), {k: set(v) for k, v in self._sensors.items()}

    def _restore(self, state: tuple[TrackerSnapshot, dict]) -> None:
        snap, sensors = state
        self.tracker.restore(snap)
        self._sensors = {k: set(v) for k, v in sensors.items()}

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
        probs = sel.class_probs[i]
        best = int(np.argmax(probs))
        P = sel.P[i]
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
