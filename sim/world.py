"""The simulated sector: movers, towers, ground sensors and aircraft on one clock.

:class:`World` is the in-process face of the simulator. It yields every feed item in time
order (camera frames, ground-sensor messages, aircraft telemetry and detections), answers
ground-truth questions (where is everything, which crossings happened) and takes the
commands a running pipeline gives (send a patrol unit, point a tower camera).

Example
-------
>>> from vigil.sim import SimSettings, World
>>> world = World(site, SimSettings(cameras="off"), seed=1)   # doctest: +SKIP
>>> for item in world.run(60.0):                                # doctest: +SKIP
...     print(item.time, type(item).__name__)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import msgspec
import numpy as np
from numpy.typing import NDArray

from vigil.geo.camera import PinholeCamera
from vigil.geo.site import Site, tower_camera

from . import kernels
from .movers import CrossingTruth, MoverStates, Population, SimError
from .perturbations import Perturbations
from .settings import SimSettings
from .terrain import SimTerrain
from .thermal import ObjectTruth, Terrain, TowerView
from .uas import Orbiter, TelemetryItem, UasDetection
from .ugs import SensorField, UgsMessage

# Order of sources at equal times: frames, then sensors, then aircraft.
_CAMERA, _UGS, _TELEMETRY, _DETECT = 0, 1, 2, 3


@dataclass(frozen=True)
class CameraFrame:
    """One tower frame: the camera as it pointed (shake included), the image and its truth.

    ``image`` is 8-bit grayscale ``(height, width)``, or ``None`` when the settings ask for
    truth only.
    """

    time: float
    tower: str
    frame: int
    camera: PinholeCamera
    image: NDArray[np.uint8] | None
    objects: list[ObjectTruth]


FeedItem = CameraFrame | UgsMessage | TelemetryItem | UasDetection


class World:
    """A simulated sector on one clock, deterministic for a seed.

    Parameters
    ----------
    site
        The sector's layout (``vigil.geo.site.Site``).
    settings
        Switches and rates; ``settings.start_time`` is the UTC start.
    seed
        Same seed, same world.
    terrain
        Put the world on relief (:class:`vigil.sim.terrain.SimTerrain`): bodies stand on the
        DEM and hide behind it, the towers' cameras point off by errors nothing downstream is
        told, ground sensors and aircraft see over the same ground. None (the default): flat
        ground, exactly as before.
    perturbations
        What makes the world as hard as the field (:class:`vigil.sim.perturbations
        .Perturbations`): optical blur, fixed-pattern noise, flat-field corrections, AGC,
        thermal crossover, attenuation, brush, bodies of varying size and pose. None (the
        default): ``Perturbations.none()``, the world exactly as before.
    """

    def __init__(
        self,
        site: Site,
        settings: SimSettings | None = None,
        seed: int = 0,
        terrain: SimTerrain | None = None,
        perturbations: Perturbations | None = None,
    ) -> None:
        self.site = site
        self.terrain = terrain
        self.perturbations = pert = perturbations or Perturbations.none()
        st = settings or SimSettings()
        if st.climate is None:  # the place's climate (vigil.sim.climate) unless the run names one
            st = msgspec.structs.replace(st, climate=site.sector.climate)
        self.settings = st
        self.seed = int(seed)
        self.frame = site.frame()
        self.border = site.border(self.frame)
        self.population = Population(site, st, self.seed, self.border, pert)
        self.now = st.start_time
        self.tz = self.population.tz
        tower_ids = [t.id for t in site.towers]
        unknown = [t for t in st.towers if t not in tower_ids]
        if unknown:
            raise SimError(f"settings.towers names {unknown}; the site has towers {tower_ids}")
        self.views: dict[str, TowerView] = {}
        self.fps: dict[str, float] = {}
        if st.cameras != "off":
            texture = Terrain(self.seed)
            for i, tower in enumerate(site.towers):
                if st.towers and tower.id not in st.towers:
                    continue
                cam = tower_camera(tower, self.frame)
                if st.frame_width or st.frame_height:
                    cam = replace(cam, width=st.frame_width or cam.width,
                                  height=st.frame_height or cam.height)  # fmt: skip
                self.views[tower.id] = TowerView(
                    tower.id, cam, st, self.seed, i, texture, self.terrain, pert
                )
                self.fps[tower.id] = st.frame_rate_hz or tower.fps
            if st.cameras == "render" and self.views:
                kernels.warm_up()
        self.sensors = SensorField(
            site.sensors if st.ugs else [], self.frame, st, self.seed, terrain, pert.ugs_nuisance
        )
        self.orbiters = (
            [
                Orbiter(a, i, self.frame, st, self.seed, terrain, pert.uas_classifier)
                for i, a in enumerate(site.aircraft)
            ]
            if st.uas
            else []
        )
        self._pool = (
            ThreadPoolExecutor(max_workers=st.render_threads)
            if st.render_threads > 1 and st.cameras == "render" and len(self.views) > 1
            else None
        )
        self._states_cache: tuple[float, MoverStates] | None = None
        self._pruned = st.start_time
        # The clocks: (time, source order, source index, tick)
        self._heap: list[tuple[float, int, int, int]] = []
        t0 = st.start_time
        if self.views:
            rates = sorted(set(self.fps.values()))
            for r_i, _ in enumerate(rates):
                heapq.heappush(self._heap, (t0, _CAMERA, r_i, 0))
            self._camera_rates = rates
        if self.sensors.sensors:
            heapq.heappush(self._heap, (t0, _UGS, 0, 0))
        for i, _ in enumerate(self.orbiters):
            heapq.heappush(self._heap, (t0, _TELEMETRY, i, 0))
            heapq.heappush(self._heap, (t0, _DETECT, i, 0))
        self.population.advance(t0)

    # -- ground truth -----------------------------------------------------------------------
    def local_hour(self, t: float) -> float:
        """Local clock time at ``t`` in hours (0-24) in the sector's time zone."""
        d = datetime.fromtimestamp(t, tz=UTC).astimezone(self.tz)
        return d.hour + d.minute / 60.0 + (d.second + d.microsecond * 1e-6) / 3600.0

    def states(self, t: float | None = None) -> MoverStates:
        """Every mover present at ``t`` (default: now): ids, classes, positions, velocities."""
        t = self.now if t is None else float(t)
        if self._states_cache is not None and self._states_cache[0] == t:
            return self._states_cache[1]
        self.population.advance(max(t, self.now))
        s = self.population.states(t)
        self._states_cache = (t, s)
        return s

    def crossings(self, until: float | None = None) -> list[CrossingTruth]:
        """Crossings of the border so far (or up to ``until``), in time order."""
        return self.population.crossings_until(self.now if until is None else until)

    def crossings_before_start(self) -> list[CrossingTruth]:
        """Crossings made before the run's start by movers already planned (up to four hours
        back): their groups may still be in view at the start. Not part of :meth:`crossings`."""
        return sorted(self.population.earlier_crossings, key=lambda c: (c.time, c.crossing_id))

    # -- commands ---------------------------------------------------------------------------
    def send_unit(self, unit_id: str, x: float, y: float) -> float:
        """Send a patrol unit to ``(x, y)`` (local metres) from now; returns its ETA, UTC s."""
        self._states_cache = None
        return self.population.send_unit(unit_id, float(x), float(y), self.now)

    def point_camera(self, tower_id: str, pan_deg: float, tilt_deg: float) -> None:
        """Turn a tower's camera (pan clockwise from north, tilt below horizontal, degrees)."""
        if tower_id not in self.views:
            raise SimError(
                f"tower {tower_id!r} is not simulated; expected one of {sorted(self.views)}"
            )
        self.views[tower_id].point(pan_deg, tilt_deg)

    def camera(self, tower_id: str) -> PinholeCamera:
        """A tower camera's present pointing (without shake), as the deployment knows it: on
        relief, without the hidden pointing error (see :class:`vigil.sim.terrain.SimTerrain`)."""
        return self.views[tower_id].camera

    # -- the clock --------------------------------------------------------------------------
    def run(self, duration_s: float) -> Iterator[FeedItem]:
        """Yield every feed item in ``[now, now + duration_s)``, in time order."""
        yield from self.items_until(self.now + float(duration_s))

    def step(self, dt_s: float) -> list[FeedItem]:
        """Advance the clock by ``dt_s`` seconds; return the items that fell in that time."""
        return list(self.run(dt_s))

    def items_until(self, t_end: float) -> Iterator[FeedItem]:
        """Yield feed items with time before ``t_end`` and move the clock to ``t_end``.

        Successive calls partition time: ``[t0, t1)``, ``[t1, t2)``, ...
        """
        st = self.settings
        while self._heap and self._heap[0][0] < t_end:
            t, source, idx, tick = heapq.heappop(self._heap)
            self.now = t
            if source == _CAMERA:
                rate = self._camera_rates[idx]
                yield from self._frames(t, tick, rate)
                nxt = st.start_time + (tick + 1) / rate
            elif source == _UGS:
                yield from self.sensors.step(t, self.states(t), self.local_hour(t))
                nxt = st.start_time + (tick + 1) * st.ugs_tick_s
            elif source == _TELEMETRY:
                yield self.orbiters[idx].telemetry(t)
                nxt = st.start_time + (tick + 1) / st.uas_telemetry_hz
            else:
                yield from self.orbiters[idx].detect(t, self.states(t))
                nxt = st.start_time + (tick + 1) / st.uas_detection_hz
            heapq.heappush(self._heap, (nxt, source, idx, tick + 1))
            if t - self._pruned >= 60.0:
                self.population.prune(t - 60.0)
                self._pruned = t
        self.now = max(self.now, t_end)
        if not math.isfinite(self.now):
            raise SimError(f"clock ran to {self.now!r}; expected a finite end time")
        self.population.advance(self.now)

    def _frames(self, t: float, tick: int, rate: float) -> list[CameraFrame]:
        st = self.settings
        towers = [k for k, r in self.fps.items() if r == rate]
        states = self.states(t)
        hour = self.local_hour(t)
        render = st.cameras == "render"

        def one(tower_id: str) -> CameraFrame:
            cam, img, objs = self.views[tower_id].frame(t, tick, hour, states, render)
            return CameraFrame(t, tower_id, tick, cam, img, objs)

        if self._pool is not None and len(towers) > 1:
            return list(self._pool.map(one, towers))
        return [one(k) for k in towers]

    def close(self) -> None:
        """Stop the render threads."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
