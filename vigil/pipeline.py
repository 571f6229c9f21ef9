"""The demo's chain in one process: simulator -> detection -> the sector core (fusion,
crossings, alerts, stores) -> map and report, over the in-process bus, faster than real time.

This module only wires stages together (``vigil`` holds no algorithms): every decision is
made in ``detection``, ``tracks``, ``geo`` and ``alerts``; the truth comparison in
``vigil.sim.scoring``. The field core (:class:`vigil.core.SectorCore`) keeps no demo logs:
:class:`RunLog` records what the demo's outputs and summary need by listening to the bus.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely

from vigil.alerts.rules import AlertRules
from vigil.core import SectorCore
from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.objects import CameraGeometry, PixelDetection
from vigil.detection.settings import DetectionSettings
from vigil.geo.site import Site
from vigil.hardware.ugs import route
from vigil.ingest.bus import Bus, InProcessBus
from vigil.ingest.jsonable import dumps
from vigil.ingest.schema import (
    Alert,
    CameraCommand,
    CameraDetection,
    Crossing,
    Wire,
    topic_for,
)
from vigil.sim import CameraFrame, SimSettings, TelemetryItem, UasDetection, UgsMessage, World
from vigil.sim.perturbations import Perturbations
from vigil.sim.scoring import AlertPoint, Scorer, TrackSample, score_crossing_alerts
from vigil.sim.terrain import SimTerrain
from vigil.tracks.config import RELIEF_TRACKER_CHANGES, TrackerConfig

if TYPE_CHECKING:
    from vigil.geo.landmarks import TowerPointing


@dataclass
class RunStats:
    """Counts and timings of one run."""

    frames: int = 0
    detections: int = 0
    ugs_messages: int = 0
    telemetry: int = 0
    uas_detections: int = 0
    track_messages: int = 0
    crossings: int = 0
    cues: int = 0
    #: Frames whose sky blobs or crest boxes the image side refused (a pixel off the image).
    side_refused: int = 0
    detect_s: float = 0.0
    wall_s: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)


class RunLog:
    """What a demo run records, taken from the bus and the core's ticks (an observer).

    ``tracks`` holds ``(track id, time, x, y, class guess)`` for every live track each tick
    (local metres, UTC s); ``crossings`` every published crossing; ``crossing_latency_s``
    the wall time (s) from the start of the tick that fused the completing detection to each
    new crossing alert on the bus. A demo runs for hours at most; a field service has no
    such log.
    """

    def __init__(self, core: SectorCore, bus: Bus) -> None:
        self.core = core
        self.tracks: list[tuple[str, float, float, float, str]] = []
        self.crossings: list[Crossing] = []
        self.alert_latency_s: list[tuple[str, float]] = []
        base = f"vigil/v1/{core.sector}"
        self._subs = [
            bus.subscribe(f"{base}/crossings", self._on_crossing),
            bus.subscribe(f"{base}/alerts", self._on_alert),
        ]

    def _on_crossing(self, topic: str, msg: Wire) -> None:
        if isinstance(msg, Crossing):
            self.crossings.append(msg)

    def _on_alert(self, topic: str, msg: Wire) -> None:
        started = self.core.tick_started
        if isinstance(msg, Alert) and started is not None and msg.state == "new":
            self.alert_latency_s.append((msg.kind, time.perf_counter() - started))

    def ticked(self) -> None:
        """Record the live tracks of the tick just made."""
        for m, x, y in self.core.live:
            self.tracks.append((m.track_id, m.time, x, y, m.class_guess))


class Pipeline:
    """Wire a simulated sector through every stage.

    Parameters
    ----------
    site
        The deployment's physical layout.
    sim
        Simulator settings (rates, camera rendering, nuisances).
    seed
        Simulation seed: the same seed gives the same run.
    store_dir
        Where the SQLite stores go (``None`` keeps them in memory).
    tracker, rules, detector
        Stage settings (defaults when omitted).
    detection
        Each tower's detection settings (``Deployment.detection_for``: the deployment's
        ``[detection]`` with the camera's ``[[cameras]]`` override), which then replace
        ``detector`` tower by tower, polygons and size limits included; ``None`` gives every
        tower ``detector``.
    tick_s
        How often tracks are published and crossings checked, seconds of sim time.
    terrain
        Run the world on relief with hidden pointing errors (:class:`vigil.sim.terrain
        .SimTerrain`) and place the towers' detections on its DEM
        (:class:`vigil.detection.terrain.TerrainGeometry`); ``None``: flat ground, as before.
    pointing
        Each tower's pointing calibration (offsets and standard errors), applied to the
        camera the detector places detections with; a tower without one uses the
        deployment's pointing with ``terrain.pointing_sigma_deg`` as its uncertainty. Only
        with ``terrain``; it may be set after construction, before :meth:`run`.
    perturbations
        What makes the simulated world as hard as the field
        (:class:`vigil.sim.perturbations.Perturbations`); ``None``: none (the world as before).
    image_side
        On relief, judge sides in the image too (:class:`vigil.geo.image_side.ImageSideMonitor`;
        on by default since its detections are matched to tracks within a gate: without the
        gate, one false crossing alert in ``bench_demo_relief`` at seed 2101). Its detectors then
        also follow blobs the ground cannot place (feet ray into sky; ``ObjectParams.unplaced``)
        and their margins go to the track they match in the image (:mod:`vigil.geo.unplaced_side`).
    """

    def __init__(
        self,
        site: Site,
        sim: SimSettings,
        seed: int,
        *,
        store_dir: Path | None = None,
        tracker: TrackerConfig | None = None,
        rules: AlertRules | None = None,
        detector: DetectorConfig | None = None,
        detection: Callable[[str], DetectionSettings] | None = None,
        tick_s: float = 1.0,
        terrain: SimTerrain | None = None,
        pointing: dict[str, TowerPointing] | None = None,
        perturbations: Perturbations | None = None,
        image_side: bool = True,
    ) -> None:
        self.site = site
        self.sector = site.sector.name
        self.terrain = terrain
        self.pointing: dict[str, TowerPointing] = dict(pointing or {})
        self.world = World(site, sim, seed, terrain=terrain, perturbations=perturbations)
        self.now = float(sim.start_time)
        self.bus = InProcessBus(self.sector, clock=lambda: self.now)
        self.detector_config = detector or DetectorConfig.for_tower()
        self.detection = detection
        self._thermal = {t.id: t.thermal for t in site.towers}
        self.detectors: dict[str, MotionDetector] = {}
        self._pointing: dict[str, tuple[float, float]] = {}
        if terrain is not None and tracker is None:
            # detections on relief can be kilometres unsure along the sight line (issue 21)
            tracker = TrackerConfig.for_sector(**RELIEF_TRACKER_CHANGES)
        self.core = SectorCore(
            site, self.bus, store_dir=store_dir, tracker=tracker, rules=rules, on_command=self._cue
        )
        if terrain is not None:  # tracks fed through the relief: sides by their covariance
            from vigil.geo.crossing_monitor import RELIEF_SIDE_PROBABILITY

            self.core.monitor.side_probability = RELIEF_SIDE_PROBABILITY
            if image_side:  # and in the image: feet against the border's row (geo.image_side)
                self.core.use_image_side()
        #: detectors give blobs the ground cannot place, for their image margins (relief only)
        self.unplaced = terrain is not None and image_side
        self.log = RunLog(self.core, self.bus)
        self.frame = self.core.frame
        self.border = self.core.border
        self.scorer = Scorer()
        self.tick_s = tick_s
        self._next_tick = self.now + tick_s
        self.stats = RunStats()
        self.alert_points: list[AlertPoint] = []
        self.detection_log: list[CameraDetection] = []
        self.bus.subscribe(f"vigil/v1/{self.sector}/alerts", self._on_alert)
        #: (time, tower, footprint) at the start and after each turn of a tower
        self._footprints = [
            (self.now, tid, self.world.camera(tid).footprint()) for tid in self.world.views
        ]

    # -- bus handlers -------------------------------------------------------------------------
    def _on_alert(self, topic: str, msg: Wire) -> None:
        if isinstance(msg, Alert) and msg.kind == "crossing" and _tells_of_a_crossing(msg):
            x, y = self.frame.to_local([msg.lat], [msg.lon])
            self.alert_points.append(
                AlertPoint(msg.alert_id, msg.time, float(x[0]), float(y[0]), new=msg.state == "new")
            )

    def _cue(self, cmd: CameraCommand) -> None:
        if cmd.camera in self.world.views:
            self.world.point_camera(cmd.camera, cmd.pan_deg, cmd.tilt_deg)
            self.stats.cues += 1
            self._footprints.append(
                (self.now, cmd.camera, self.world.camera(cmd.camera).footprint())
            )

    # -- the run ------------------------------------------------------------------------------
    def run(self, duration_s: float, progress: bool = False) -> RunStats:
        """Run the chain over ``duration_s`` seconds of simulated time."""
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(
                total=round(duration_s), unit="sim s", desc=f"{self.sector} demo", leave=False
            )
        t_start = self.now
        wall0 = time.perf_counter()
        shown = 0
        for item in self.world.run(duration_s):
            while item.time >= self._next_tick:
                self._tick(self._next_tick)
                self._next_tick += self.tick_s
            self.now = item.time
            self._feed(item)
            if bar is not None and item.time - t_start - shown >= 1.0:
                step = int(item.time - t_start) - shown
                bar.update(step)
                shown += step
        end = t_start + duration_s
        while self._next_tick <= end:
            self._tick(self._next_tick)
            self._next_tick += self.tick_s
        self.now = end
        self.core.flush_stores()
        if bar is not None:
            bar.update(round(duration_s) - shown)
            bar.close()
        self.stats.wall_s += time.perf_counter() - wall0
        self.stats.track_messages = self.core.track_messages
        self.stats.crossings = self.core.crossings
        return self.stats

    def _feed(self, item) -> None:
        s = self.stats
        if isinstance(item, CameraFrame):
            s.frames += 1
            if item.image is None:
                return
            det = self._detector(item)
            t0 = time.perf_counter()
            result = det.process(item.image, item.time, item.frame)
            s.detect_s += time.perf_counter() - t0
            dets = result.detections
            if self.terrain is not None and (dets or result.unplaced):
                dets = self._relief_frame(det.geometry, result.unplaced, dets)
            for d in dets:
                s.detections += 1
                self.detection_log.append(d)
                self.bus.publish(topic_for(self.sector, d), d)
        elif isinstance(item, UgsMessage):
            s.ugs_messages += 1
            topic, _ = route(self.sector, item.payload)
            self.bus.publish(topic, item.payload)
        elif isinstance(item, TelemetryItem):
            s.telemetry += 1
            self.bus.publish(topic_for(self.sector, item.message), item.message)
        elif isinstance(item, UasDetection):
            s.uas_detections += 1
            self.detection_log.append(item.message)
            self.bus.publish(topic_for(self.sector, item.message), item.message)

    def _relief_frame(
        self, geometry: CameraGeometry | None, sky: list[PixelDetection], dets: list
    ) -> list[CameraDetection]:
        """On relief: the frame's sky blobs and crest boxes to the image side, its people
        whose box's bottom sits on a crest placed by their top, and its feet margins, judged
        at the detector's places, to the image side (:mod:`vigil.relief_frame`). Returns the
        detections to publish."""
        from vigil.detection.terrain import TerrainGeometry
        from vigil.geo.image_side import ImageSideMonitor, SideGeometry
        from vigil.relief_frame import observe_sky_and_tops, place_crest_boxes

        if not isinstance(geometry, TerrainGeometry):
            return dets
        side, on, monitor = SideGeometry.of(geometry), None, self.core.monitor
        if self.unplaced and isinstance(monitor, ImageSideMonitor):
            try:  # a pixel outside the image: the frame is refused, and counted
                on = observe_sky_and_tops(monitor, side, self.border, sky, dets)
            except ValueError:
                self.stats.side_refused += 1
        placed, crest = place_crest_boxes(side, self.frame, dets, on)
        self._observe_sides(geometry, dets, placed, crest)
        return placed

    def _observe_sides(
        self, geometry: CameraGeometry | None, dets: list[CameraDetection], placed=None, crest=None
    ) -> None:
        """One frame's detections' feet margins to an image-side monitor, matched with the
        places the tracker is given (:func:`vigil.relief_frame.observe_feet_sides`)."""
        from vigil.detection.terrain import TerrainGeometry
        from vigil.geo.image_side import SideGeometry
        from vigil.relief_frame import observe_feet_sides

        if isinstance(geometry, TerrainGeometry):
            observe_feet_sides(self.core, SideGeometry.of(geometry), dets, placed, crest)

    def _detector(self, item: CameraFrame) -> MotionDetector:
        cam = self.world.camera(item.tower)
        pointing = (round(cam.pan_deg, 3), round(cam.tilt_deg, 3))
        det = self.detectors.get(item.tower)
        h, w = item.image.shape[:2]
        if cam.width != w or cam.height != h:
            cam = replace(cam, width=w, height=h)
        geometry = self._geometry(cam, item.tower)
        if det is None:
            config, roi = self.detector_config, None
            if self.detection is not None:
                settings = self.detection(item.tower)
                config = settings.detector_config(self._thermal.get(item.tower, True))
                roi = settings.region((h, w))
            if self.unplaced:
                config = replace(config, objects=replace(config.objects, unplaced=True))
            det = MotionDetector((h, w), config, geometry, roi, item.tower)
            self.detectors[item.tower] = det
            self._pointing[item.tower] = pointing
        elif self._pointing[item.tower] != pointing:
            det.set_geometry(geometry)
            self._pointing[item.tower] = pointing
        return det

    def _geometry(self, cam, tower: str) -> CameraGeometry:
        """The detector's geometry: a flat plane, or on relief the DEM with the tower's
        calibrated pointing (:meth:`__init__`'s ``pointing``)."""
        if self.terrain is None:
            return CameraGeometry(cam, self.frame, tower)
        from vigil.detection.terrain import TerrainGeometry
        from vigil.geo.landmarks import apply_pointing

        cal = self.pointing.get(tower)
        if cal is None:  # the specification the hidden errors are drawn from
            s = self.terrain.pointing_sigma_deg
            return TerrainGeometry(
                cam, self.frame, tower, self.terrain.dem, pointing_sigma_deg=(s, s, s)
            )
        sigmas = (cal.pan_sigma_deg, cal.tilt_sigma_deg, cal.roll_sigma_deg)
        return TerrainGeometry(
            apply_pointing(cam, cal), self.frame, tower, self.terrain.dem, pointing_sigma_deg=sigmas
        )

    def _tick(self, t: float) -> None:
        self.now = t
        self.core.tick(t)
        self.log.ticked()
        samples = [TrackSample(m.track_id, x, y, m.class_guess) for m, x, y in self.core.live]
        self.scorer.observe(self.world.states(t), samples)

    # -- results ------------------------------------------------------------------------------
    def coverage(self, t: float | None = None):
        """Union of the towers' footprints (as pointed at ``t``; default: now) and the
        ground sensors' discs, local metres."""
        t = self.now if t is None else t
        pointed = {}
        for when, tid, poly in self._footprints:
            if when <= t or tid not in pointed:
                pointed[tid] = poly
        polys = list(pointed.values())
        for s in self.site.sensors:
            x, y = self.frame.to_local([s.lat], [s.lon])
            polys.append(shapely.Point(float(x[0]), float(y[0])).buffer(s.radius_m))
        return shapely.union_all(polys) if polys else None

    def _entering_us(self, crossings: list) -> int:
        """How many detected crossings went into the US (northbound on the southern border,
        southbound on the northern one: ``Border.entry_direction``)."""
        if not crossings:
            return 0
        x, y = self.frame.to_local([c.lat for c in crossings], [c.lon for c in crossings])
        entry = self.border.entry_direction(x, y)
        return int(sum(c.direction == e for c, e in zip(crossings, entry, strict=True)))

    def summary(self, duration_s: float) -> dict:
        """Scores against the truth and the run's throughput, as a JSON-ready dict."""
        start = self.world.settings.start_time
        end = start + duration_s
        # planned crossings a minute past the end: an alert may be that early (scoring)
        truth = self.world.crossings(until=end + 60.0)
        alerts = score_crossing_alerts(
            truth,
            self.alert_points,
            self.coverage,
            self.border.length_m / 1000.0,
            duration_s,
            start_time=start,
            end_time=end,
            earlier=self.world.crossings_before_start(),
        )
        truth = [c for c in truth if c.time <= end]
        north_groups = {
            c.group_id for c in truth if c.direction == "northbound" and c.cls == "person"
        }
        ratio, switches, tracked = self.scorer.id_switches_per_group(north_groups)
        lat = np.asarray(self.core.alerts.latencies_s) * 1000.0
        xlat = np.array([s for k, s in self.log.alert_latency_s if k == "crossing"]) * 1000.0
        s = self.stats
        detected_north = self._entering_us(self.log.crossings)
        msgs = self.bus.counts["published"]
        return {
            "sector": self.sector,
            "simulated_s": duration_s,
            "wall_s": round(s.wall_s, 3),
            "speed_x_real_time": round(duration_s / s.wall_s, 2) if s.wall_s else None,
            "crossings": {
                "true_all": len(truth),
                "true_northbound_person": alerts["true_northbound_person_crossings"],
                "detected": len(self.log.crossings),
                "detected_northbound": detected_north,
            },
            "alerts": {k: v for k, v in alerts.items() if k != "unalerted"},
            "unalerted_crossings": alerts["unalerted"],
            "alert_kinds": dict(
                Counter(
                    k[len("alert_") :]
                    for k in self.core.engine.counts.elements()
                    if k.startswith("alert_") and k != "alert_updates"
                )
            ),
            "engine_counts": dict(self.core.engine.counts),
            "id_switches_per_crossing_group": ratio,
            "id_switches": switches,
            "crossing_groups_tracked": tracked,
            "animal_classified_as_animal": (
                self.scorer.animal_as_animal / self.scorer.animal_seconds
                if self.scorer.animal_seconds
                else math.nan
            ),
            "animal_track_seconds": self.scorer.animal_seconds,
            "latency_ms": {
                "alerts": int(lat.size),
                "p50": float(np.percentile(lat, 50)) if lat.size else None,
                "p99": float(np.percentile(lat, 99)) if lat.size else None,
                "max": float(lat.max()) if lat.size else None,
                # from the start of the tick that fused the completing detection (fusion,
                # tracks, crossings, rules) to the new crossing alert on the bus
                "crossing_alerts": int(xlat.size),
                "crossing_p50": float(np.percentile(xlat, 50)) if xlat.size else None,
                "crossing_p99": float(np.percentile(xlat, 99)) if xlat.size else None,
                "crossing_max": float(xlat.max()) if xlat.size else None,
            },
            "throughput": {
                "frames": s.frames,
                "frames_per_s": round(s.frames / s.wall_s, 1) if s.wall_s else None,
                "detect_ms_per_frame": round(1000 * s.detect_s / s.frames, 3) if s.frames else None,
                "messages": msgs,
                "messages_per_s": round(msgs / s.wall_s, 1) if s.wall_s else None,
                "camera_detections": s.detections,
                "uas_detections": s.uas_detections,
                "ugs_messages": s.ugs_messages,
                "telemetry": s.telemetry,
                "track_messages": s.track_messages,
                "camera_cues": s.cues,
            },
            "quarantine": dict(self.bus.quarantine_counts),
            "fusion_dropped_late": self.core.fusion.dropped_late,
        }

    def close(self) -> None:
        """Release the simulator and the stores."""
        self.core.close()
        self.world.close()


def _tells_of_a_crossing(alert: Alert) -> bool:
    """A new crossing alert, or an update that adds a crossing group to one (one group, one
    alert; the segment's rate limit): both put a crossing in front of an agent."""
    if alert.state == "new":
        return True
    note = alert.history[-1].note if alert.history else ""
    return note.endswith("joins the group") or note.startswith("rate limit:")


def write_json(path: Path, data: dict) -> None:
    """Write a summary with NaN as null (strict JSON)."""
    path.write_text(dumps(data, indent=2) + "\n", encoding="utf-8")
