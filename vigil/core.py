"""The sector's field core: fusion, crossings, alerts and the stores, fed by the sector's bus.

``vigil run`` (over MQTT) and the demo (over the in-process bus) run the same
:class:`SectorCore`. It imports nothing from the simulator or the truth scorer, and keeps no
logs that grow with a service's life: what a run wants to record (every track sample, every
crossing, alert latencies) it takes by subscribing to the bus as an observer
(``vigil.pipeline.RunLog`` in the demo). Its retained state is the live tracks and what the
stages need to decide, bounded by the number of live tracks.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vigil.alerts.engine import AlertEngine
from vigil.alerts.pg_mirror import HistoryMirror
from vigil.alerts.rules import AlertRules
from vigil.alerts.service import AlertService
from vigil.alerts.store import EventStore
from vigil.geo.crossing_fragments import CrossingSettings, FragmentSettings
from vigil.geo.crossing_monitor import CrossingMonitor
from vigil.geo.frames import FrameError
from vigil.geo.site import Site
from vigil.ingest.bus import Bus, InProcessBus
from vigil.ingest.schema import (
    Alert,
    CameraDetection,
    Crossing,
    MessageError,
    SensorEvent,
    Telemetry,
    Track,
    Wire,
    topic_for,
)
from vigil.ingest.sources import Devices, check_source
from vigil.relief_frame import judge_frame_sides
from vigil.tracks.config import TrackerConfig
from vigil.tracks.fusion import FusionTracker, GroundSensorSite
from vigil.tracks.store import TrackStore

if TYPE_CHECKING:
    from vigil.geo.image_side import SideGeometry

#: New tracks first seen this close to the border (m) that walk away from it crossed unseen.
#: Off: since the towers place bodies without range bias they see groups before the line,
#: and over 4 h (seed 2) both inferred crossings left were a standing animal's track
#: drifting with range noise, 1.3-3.4 km from a tower.
ENTRY_M = 0.0
#: The confidence of a crossing inferred from an entry rather than seen.
INFERRED_CONFIDENCE = 0.5
#: The field's crossings the towers do not see whole (issue 22; :meth:`SectorCore.
#: infer_crossings`), chosen on calibration seeds 1 and 2 (x40 crossing rate, field
#: perturbations, 2 fps, 0.5 h each; ``BENCHMARKS.md``, issue 22): groups lost near the line
#: and found again 100-400 m into the US by new tracks had no track that crossed. Entries
#: within 200 m: of 54 inferred there, 46 lay on a group that had crossed within 600 m and
#: 900 s (300 m: 83 of 93, more duplicate alerts); fragments within 300 s and 300 m + 2.5 m/s
#: of the gap: 29 of 33 (hence the confidence 0.85). On evaluation seeds 50001 and 50003 they
#: raised recall from 14/21 to 19/21 but false alerts from 2 to 4 (second new alerts for groups
#: already alerted): off unless asked for.
#: The deployment turns them on with ``[crossings] infer = true``
#: (:class:`vigil.geo.crossing_fragments.CrossingSettings`, whose defaults these are).
FIELD_ENTRY_M, FIELD_FRAGMENTS = CrossingSettings(infer=True).inference()  # type: ignore[misc]

#: What one flush of the stores writes: tracks, crossings and alerts, in the order made.
StoreRows = tuple[list[Track], list[Crossing], list[Alert]]


class SectorCore:
    """The sector's own work, fed by its bus: fusion, crossings, alerts and the stores.

    It subscribes to the sector's detections, ground-sensor events and telemetry, and on
    each :meth:`tick` publishes ``Track`` and ``Crossing`` messages; the alert service
    (subscribed to tracks, crossings and sensor messages) publishes alerts and camera
    commands. The same object runs behind the in-process bus (the demo) and MQTT
    (``vigil run``).

    Parameters
    ----------
    site
        The deployment's physical layout.
    bus
        The sector's bus.
    store_dir
        Folder for ``vigil.tracks.sqlite`` and ``events.sqlite`` (``None``: in memory).
    tracker, rules
        Stage settings (defaults when omitted).
    on_command
        Called with each ``CameraCommand`` the alert service raises (a simulator turns its
        tower; in the field the command goes out on the bus only).
    entry_m
        A new track first seen within this distance of the border that walks away from it
        came across unseen: its crossing is inferred (``confidence`` 0.5; see
        :class:`vigil.geo.crossing_monitor.CrossingMonitor`), metres; 0 (the default) turns
        inference off.
    fragments
        Crossings split across two tracks (a track lost on the far side, a new one born on
        the US side within a walker's reach: :mod:`vigil.geo.crossing_fragments`), published
        with the settings' confidence; None: off.
    check_sources
        Check each detection's, event's and telemetry's source against the deployment
        (:attr:`refused`); ``False`` when whoever feeds the bus does it already (the
        :class:`~vigil.runner.SectorRunner`).
    """

    def __init__(
        self,
        site: Site,
        bus: Bus,
        *,
        store_dir: Path | None = None,
        tracker: TrackerConfig | None = None,
        rules: AlertRules | None = None,
        on_command=None,
        entry_m: float = ENTRY_M,
        fragments: FragmentSettings | None = None,
        check_sources: bool = True,
    ) -> None:
        self.site = site
        self.bus = bus
        self.sector = site.sector.name
        self.frame = site.frame()
        self.border = site.border(self.frame)
        sensors = {}
        if site.sensors:
            sx, sy = self.frame.to_local(
                [s.lat for s in site.sensors], [s.lon for s in site.sensors]
            )
            for s, x, y in zip(site.sensors, sx, sy, strict=True):
                sensors[s.id] = GroundSensorSite(float(x), float(y), s.radius_m)
        self.fusion = FusionTracker(
            self.frame, tracker or TrackerConfig.for_sector(), ground_sensors=sensors
        )
        self.monitor = CrossingMonitor(self.border, entry_m=entry_m, fragments=fragments)
        self.engine = AlertEngine(site, rules)
        self.alerts = AlertService(self.engine, bus, on_command=on_command)
        self.tracks_store = TrackStore(store_dir / "tracks.sqlite" if store_dir else ":memory:")
        self.events = EventStore(store_dir / "events.sqlite" if store_dir else ":memory:")
        #: PostgreSQL copy of the history when VIGIL_DB is set (issue 23), else None.
        self.history = HistoryMirror.from_env(self.sector) if store_dir else None
        #: Track and crossing messages published so far (counts only).
        self.track_messages = 0
        self.crossings = 0
        self._alert_buffer: list[Alert] = []
        self._track_buffer: list[Track] = []
        self._crossing_buffer: list[Crossing] = []
        #: Takes each flush's rows to write them elsewhere, in the order handed over (``vigil
        #: run``'s store thread, :class:`vigil.store_writer.StoreWriter`); None: written here.
        self.store_writer: Callable[[StoreRows], None] | None = None
        #: The live tracks of the last tick with their local positions (x, y), metres.
        self.live: list[tuple[Track, float, float]] = []
        #: ``time.perf_counter()`` at the start of the tick under way (``None`` between
        #: ticks): an observer of the alerts measures fusion-to-alert latency from it.
        self.tick_started: float | None = None
        self._counts: dict[str, int] = {}
        #: The deployment's devices; a detection, event or telemetry whose topic does not fit
        #: its device, or from a device the deployment does not have, never reaches fusion.
        self.devices = Devices.of_site(site)
        #: Messages kept from fusion, by reason (``wrong_source``, ``unknown_device``).
        self.refused: Counter[str] = Counter()
        base = f"vigil/v1/{self.sector}"
        to_fusion = self._to_fusion if check_sources else self._to_fusion_checked
        self._subs = [
            bus.subscribe(f"{base}/cam/+/detections", to_fusion),
            bus.subscribe(f"{base}/ugs/+/events", to_fusion),
            bus.subscribe(f"{base}/uas/+/telemetry", to_fusion),
            bus.subscribe(f"{base}/alerts", self._on_alert),
        ]
        #: Towers whose detections' sides are judged in their images (:meth:`use_image_side`).
        self._side_geometry: dict[str, SideGeometry] = {}
        self._side_pending: list[CameraDetection] = []

    def _to_fusion(self, topic: str, msg: Wire) -> None:
        if isinstance(msg, CameraDetection | SensorEvent | Telemetry):
            try:
                check_source(topic, msg, self.devices)
            except MessageError as err:
                self.refused[err.reason] += 1
                return
            self.fusion.ingest(msg)
            if self._side_geometry and isinstance(msg, CameraDetection):
                self._side_pending.append(msg)

    def _to_fusion_checked(self, topic: str, msg: Wire) -> None:
        if isinstance(msg, CameraDetection | SensorEvent | Telemetry):
            self.fusion.ingest(msg)
            if self._side_geometry and isinstance(msg, CameraDetection):
                self._side_pending.append(msg)

    def use_image_side(self, geometries: Mapping[str, SideGeometry] | None = None) -> None:
        """Judge crossing sides in the towers' images as well (issue 21,
        :class:`vigil.geo.image_side.ImageSideMonitor`): the monitor is replaced by one with
        the same settings (its side probability the relief's when unset) that takes the image's
        side alone where it has one. ``geometries``: each tower's :class:`~vigil.geo.
        image_side.SideGeometry`, with which the core judges its camera detections itself
        (each detection's ground point projected back to its feet pixel); None: whoever feeds
        the core calls :meth:`observe_sides` (the demo, with each frame's geometry). A camera
        whose pointing changes (PTZ) is judged with the pointing given here."""
        from vigil.geo.crossing_monitor import RELIEF_SIDE_PROBABILITY
        from vigil.geo.image_side import RELIEF_IMAGE_PROBABILITY, ImageSideMonitor

        old = self.monitor
        self.monitor = ImageSideMonitor(
            old.border,
            hysteresis_m=old.h,
            entry_m=old.entry_m,
            entry_rise_m=old.entry_rise_m,
            fragments=old.fragments,
            side_probability=old.side_probability or RELIEF_SIDE_PROBABILITY,
            image_only=True,
            image_probability=RELIEF_IMAGE_PROBABILITY,
        )
        self._side_geometry = dict(geometries or {})

    def observe_sides(self, geometry: SideGeometry, dets: Sequence[CameraDetection]) -> None:
        """One camera frame's detections (same time) to the image-side monitor, judged with
        ``geometry`` (nothing without :meth:`use_image_side`)."""
        from vigil.geo.image_side import ImageSideMonitor

        monitor = self.monitor
        if not dets or not isinstance(monitor, ImageSideMonitor):
            return
        x, y = self.frame.to_local([d.lat for d in dets], [d.lon for d in dets])
        h = [(d.box[3] - d.box[1]) if d.box else 0.0 for d in dets]
        ok, m = geometry.margins(self.border, x, y, h)
        if ok.any():
            cov = np.array([d.cov for d, k in zip(dets, ok, strict=True) if k], dtype=np.float64)
            monitor.observe(dets[0].time, np.atleast_1d(x)[ok], np.atleast_1d(y)[ok], m, cov)

    def _observe_pending_sides(self) -> None:
        """The camera detections taken since the last tick, frame by frame, to the monitor,
        as the relief demo judges its frames (:func:`vigil.relief_frame.judge_frame_sides`:
        crest boxes' tops, and their margins at the box's bottom)."""
        frames: dict[tuple[str, float], list[CameraDetection]] = {}
        for d in self._side_pending:
            if d.camera in self._side_geometry:
                frames.setdefault((d.camera, d.time), []).append(d)
        self._side_pending.clear()
        for (camera, _), dets in sorted(frames.items(), key=lambda kv: kv[0][1]):
            try:
                judge_frame_sides(self, self._side_geometry[camera], dets)
            except (ValueError, FrameError):  # a point off the map or the image: no margin
                continue

    def infer_crossings(
        self, entry_m: float = FIELD_ENTRY_M, fragments: FragmentSettings | None = FIELD_FRAGMENTS
    ) -> None:
        """Infer crossings the towers did not see whole (before the first tick): entries
        (a new track within ``entry_m`` metres of the line on the US side walking in) and
        crossings split across two tracks (``fragments``). Off unless called: the recorded
        sector outputs (``tests/test_refactor_golden.py``) are made without them."""
        self.monitor.entry_m = float(entry_m)
        self.monitor.fragments = fragments

    def use_crossings(self, settings: CrossingSettings) -> None:
        """The deployment's ``[crossings]``: :meth:`infer_crossings` with its values when its
        ``infer`` is on, else nothing (crossings only as seen)."""
        inference = settings.inference()
        if inference is not None:
            self.infer_crossings(*inference)

    def _on_alert(self, topic: str, msg: Wire) -> None:
        if isinstance(msg, Alert):
            self._alert_buffer.append(msg)

    def _publish_own(self, topic: str, msg: Track | Crossing) -> None:
        """Publish a track or crossing this core built from its own typed values: an
        in-process bus does not check it again (what comes from outside it still checks, and
        every MQTT receiver checks what goes out)."""
        if isinstance(self.bus, InProcessBus):
            self.bus.publish(topic, msg, checked=True)
        else:
            self.bus.publish(topic, msg)

    def tick(self, t: float) -> list[Track]:
        """Apply what arrived before ``t``; publish tracks and any crossings; return tracks.

        Crossings are looked for only on positions a detection has just updated: a track
        coasting on its prediction can drift over the line with nothing behind it.
        """
        self.tick_started = time.perf_counter()
        try:
            return self._tick(t)
        finally:
            self.tick_started = None

    def _tick(self, t: float) -> list[Track]:
        self.fusion.flush()
        if self._side_pending:
            self._observe_pending_sides()
        for merged, into in self.fusion.take_merges():
            self.engine.merge_tracks(merged, into)
            self.monitor.merge(merged, into)
        msgs = self.fusion.track_messages()
        ax = ay = None
        if msgs:
            # every track's local position in one projection: the alert engine takes its
            # share instead of projecting each track alone (same numbers, point by point)
            try:
                ax, ay = self.frame.to_local([m.lat for m in msgs], [m.lon for m in msgs])
                self.engine.place(msgs, ax, ay)
            except FrameError:  # a position off the map: each part handles it as before
                ax = ay = None
            if ax is not None and ay is not None:
                # the unit recommendations the alerts of this tick will want, made at once
                # (dozens of new walkers' zone entries at once cost a plan each otherwise)
                self.engine.plan_ahead(msgs, ax, ay)
        for m in msgs:
            self._publish_own(topic_for(self.sector, m), m)
        self.track_messages += len(msgs)
        self._track_buffer.extend(msgs)
        is_live = np.array([m.state != "ended" for m in msgs], dtype=bool)
        live = [m for m, k in zip(msgs, is_live, strict=True) if k]
        self.live = []
        if live:
            if ax is not None and ay is not None:
                x, y = ax[is_live], ay[is_live]
            else:
                x, y = self.frame.to_local([m.lat for m in live], [m.lon for m in live])
            for m, xi, yi in zip(live, x, y, strict=True):
                self.live.append((m, float(xi), float(yi)))
            fresh = np.array([self._counts.get(m.track_id) != m.count for m in live])
            for m in live:
                self._counts[m.track_id] = m.count
            ids = [m.track_id for m, f in zip(live, fresh, strict=True) if f]
            times = [m.time for m, f in zip(live, fresh, strict=True) if f]
            covs = [m.cov for m, f in zip(live, fresh, strict=True) if f]
            for ev in self.monitor.update(ids, times, x[fresh], y[fresh], covs):
                lat, lon = self.frame.to_wgs84([ev.x], [ev.y])
                self.crossings += 1
                c = Crossing(
                    crossing_id=f"{self.sector}-X{self.crossings:06d}",
                    track_id=ev.track_id,
                    time=ev.time,
                    segment_id=ev.segment_id,
                    direction=ev.direction,  # type: ignore[arg-type]
                    lat=float(lat[0]),
                    lon=float(lon[0]),
                    confidence=ev.confidence
                    if ev.confidence is not None
                    else (INFERRED_CONFIDENCE if ev.inferred else 1.0),
                )
                self._crossing_buffer.append(c)
                self._publish_own(topic_for(self.sector, c), c)
        for m in msgs:
            if m.state == "ended":
                self.monitor.forget(m.track_id)
                self._counts.pop(m.track_id, None)
        self.engine.plans_done()
        if int(t) % 10 == 0:
            self.alerts.tick(t)
        if len(self._track_buffer) > 5000:
            self.flush_stores()
        return msgs

    def flush_stores(self) -> None:
        """Write buffered tracks, crossings and alerts to the stores (or hand them to
        :attr:`store_writer`)."""
        rows = (self._track_buffer, self._crossing_buffer, self._alert_buffer)
        self._track_buffer, self._crossing_buffer, self._alert_buffer = [], [], []
        if self.store_writer is not None:
            if any(rows):
                self.store_writer(rows)
            return
        write_rows(rows, self.tracks_store, self.events, self.history)

    def close(self) -> None:
        """Flush and close the stores; stop listening."""
        self.flush_stores()
        for sub in self._subs:
            self.bus.unsubscribe(sub)
        self.alerts.close()
        self.tracks_store.close()
        self.events.close()
        if self.history is not None:
            self.history.close()


def write_rows(
    rows: StoreRows, tracks: TrackStore, events: EventStore, history: HistoryMirror | None
) -> None:
    """One flush's rows into the stores (and the PostgreSQL mirror, when there is one)."""
    track_rows, crossing_rows, alert_rows = rows
    if history is not None:
        history.write(track_rows, crossing_rows, alert_rows)
    tracks.write(track_rows)
    events.write_alerts(alert_rows)
    events.write_crossings(crossing_rows)
