"""Things that move in the simulated sector: walkers in groups, road traffic, animals, patrols.

Every mover follows a *plan*: knots ``(t, x, y)`` in the sector's local frame (seconds, metres)
with straight lines between them, so its position at any time is an interpolation and its
border crossings are found exactly, once, when the plan is made. Plans come from random
streams keyed by ``(seed, kind, index, hour)``, so the world is the same whatever the step
size or run length, and a longer run extends a shorter one. Plans and their crossings are
in :mod:`.plans`, the animals' wandering in :mod:`.animals`; :class:`Population` plans the
groups and the traffic and keeps every mover.

Speeds from the field: walkers 0.8-1.8 m/s (a group walks at one pace and stays together),
vehicles 10-25 m/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import LineString

from vigil.geo.border import US_SIDE, Border
from vigil.geo.site import Site

from .animals import SPECIES, Animals
from .climate import season_for
from .perturbations import Perturbations
from .perturbations_bodies import BodyShaper
from .perturbations_groups import GroupShaper, Split, off_road_tracks, small_animal_plans
from .plans import Plan, crossings_of_plan, cumulative, polyline_local, resample, rng_for, timeline
from .settings import SimSettings

HOUR_S = 3600.0
#: Plans are made this far ahead of the world's clock, seconds (a group may walk 1-2 h).
LOOKAHEAD_S = 3 * HOUR_S
WALK_SPEED_MPS = (0.8, 1.8)
VEHICLE_SPEED_MPS = (10.0, 25.0)

# Random stream tags: one per kind of thing, so adding a kind never shifts another's draws
# (the animals' is :data:`.animals.STREAM_ANIMALS`).
STREAM_GROUPS, STREAM_TRAFFIC = 1, 3

#: (width, height) of what a camera sees side-on, metres, and thermal contrast at night, DN.
BODY: dict[str, tuple[float, float, float]] = {
    "person": (0.5, 1.7, 60.0),
    "car": (4.5, 1.5, 70.0),
    "pickup": (5.3, 1.8, 75.0),
    "truck": (8.0, 3.0, 85.0),
    "cattle": (2.2, 1.4, 45.0),
    "deer": (1.6, 1.2, 40.0),
    "coyote": (1.1, 0.6, 35.0),
    "moose": (2.8, 2.0, 50.0),
    "patrol_vehicle": (5.0, 1.9, 75.0),
    "atv": (2.0, 1.2, 60.0),
    "horse": (2.4, 2.2, 55.0),
    "agent": (0.5, 1.8, 60.0),
    "jackrabbit": (0.5, 0.3, 35.0),  # small fast animals (perturbations)
}
#: The class each kind of mover belongs to (the wire's class names).
CLASS_OF = {
    "person": "person",
    "agent": "person",
    "car": "vehicle",
    "pickup": "vehicle",
    "truck": "vehicle",
    "patrol_vehicle": "vehicle",
    "atv": "vehicle",
    "cattle": "animal",
    "deer": "animal",
    "coyote": "animal",
    "moose": "animal",
    "horse": "animal",
    "jackrabbit": "animal",
}


class SimError(ValueError):
    """A simulation asked for something the site or settings cannot give."""


@dataclass
class Mover:
    """One thing that moves: its identity, class, body and plan.

    People in a group share the group's plan and keep a fixed offset ``(dx, dy)`` from it.
    """

    mover_id: str
    kind: str
    plan: Plan
    group_id: str = ""
    dx: float = 0.0
    dy: float = 0.0
    friendly: bool = False
    origin: str = ""  # corridor, road or home the mover came from
    lag_s: float = 0.0  # follows the plan this far behind (a group strung out in file)
    split: Split | None = None  # a sideways excursion from the group's route

    @property
    def cls(self) -> str:
        return CLASS_OF[self.kind]

    @property
    def body(self) -> tuple[float, float, float]:
        return BODY[self.kind]


@dataclass(frozen=True)
class CrossingTruth:
    """A mover (a group, an animal) crossing the border line: when, where, which way."""

    crossing_id: str
    group_id: str
    cls: str
    count: int
    time: float
    x: float
    y: float
    segment_id: str
    direction: str  # "northbound" (into the US) or "southbound"
    origin: str


@dataclass
class MoverStates:
    """Everything present at one time: parallel arrays, one row per mover."""

    time: float
    ids: list[str]
    kinds: list[str]
    classes: list[str]
    groups: list[str]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    vx: NDArray[np.float64]
    vy: NDArray[np.float64]
    width_m: NDArray[np.float64]
    height_m: NDArray[np.float64]
    contrast_dn: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.ids)


class Population:
    """All movers of a sector, their plans made lazily hour by hour, and their crossings.

    Parameters
    ----------
    site
        The sector's layout: corridors, roads, units, the border stretch.
    settings
        Rates and switches.
    seed
        The world's seed.
    perturbations
        The world's perturbations; their ``bodies`` family varies sizes and poses (None: off).
    """

    def __init__(
        self,
        site: Site,
        settings: SimSettings,
        seed: int,
        border: Border,
        perturbations: Perturbations | None = None,
    ) -> None:
        self.site = site
        bodies = perturbations.bodies if perturbations is not None else None
        self.shaper = BodyShaper(bodies, seed) if bodies is not None and bodies.on else None
        self.group_shaper = None
        pt = perturbations
        if pt is not None and (pt.groups.on or pt.runners.on or pt.lay_ups.on):
            self.group_shaper = GroupShaper(pt.groups, pt.runners, seed, pt.lay_ups)
        self.off_road = pt.off_road if pt is not None and pt.off_road.on else None
        self.small_animals = pt.small_animals if pt is not None and pt.small_animals.on else None
        self.settings = settings
        self.seed = int(seed)
        self.frame = site.frame()
        self.border = border
        self.tz = ZoneInfo(site.sector.timezone)
        self.t_start = settings.start_time
        self.movers: dict[str, Mover] = {}
        self.crossings: list[CrossingTruth] = []
        #: crossings planned before the start (groups already walking when the run starts)
        self.earlier_crossings: list[CrossingTruth] = []
        self._crossing_seq = 0
        self._hour_done = math.floor(self.t_start / HOUR_S) - 4  # hour blocks planned so far
        w = np.asarray(settings.crossing_hour_weights, dtype=np.float64)
        if w.sum() <= 0:
            raise SimError("crossing_hour_weights sum to 0; expected some positive weight")
        self.hour_share = w / w.sum()
        self.corridors = [self._corridor_route(c) for c in site.corridors]
        self.roads = [polyline_local(self.frame, r.path) for r in site.roads]
        self.animals = Animals(self.seed, border, season_for(settings).species)
        if settings.animals:
            self._place_animals()
        self.units: dict[str, Mover] = {}
        for u in site.units:
            ux, uy = self.frame.to_local([u.lat], [u.lon])
            kind = {"vehicle": "patrol_vehicle", "atv": "atv", "horse": "horse", "foot": "agent"}[
                u.kind
            ]
            plan = Plan(np.array([self.t_start]), ux.copy(), uy.copy())
            m = Mover(u.id, kind, plan, group_id=u.id, friendly=True, origin="unit")
            self.units[u.id] = m
            self.movers[u.id] = m

    # -- local time ---------------------------------------------------------------------------
    def local_hour(self, t: float) -> int:
        """The local hour of day (0-23) at UTC time ``t`` in the sector's time zone."""
        return datetime.fromtimestamp(t, tz=UTC).astimezone(self.tz).hour

    # -- corridors: groups of walkers -----------------------------------------------------------
    def _corridor_route(self, corridor) -> tuple[NDArray[np.float64], float]:
        pts = polyline_local(self.frame, corridor.path)
        line = LineString(pts)
        hit = line.intersection(self.border.line)
        if hit.is_empty:
            raise SimError(
                f"corridor {corridor.id!r} does not cross the border line; expected a path from "
                "the south side to the north side"
            )
        return pts, float(corridor.width_m)

    def _plan_group(
        self, rng: np.random.Generator, ci: int, t_cross: float
    ) -> tuple[Plan, int, bool]:
        """A group's plan such that it reaches the line at ``t_cross`` (if it goes that far)."""
        st = self.settings
        pts, width = self.corridors[ci]
        # A route inside the corridor: a lateral offset that wanders smoothly.
        dense = resample(pts, 100.0)
        tangent = np.gradient(dense, axis=0)
        tangent /= np.maximum(np.hypot(*tangent.T), 1e-9)[:, None]
        normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
        half = width / 2.0
        wander = np.cumsum(rng.normal(0.0, 0.12 * half, len(dense)))
        offset = np.clip(rng.uniform(-half, half) + wander, -half, half)
        route = dense + normal * offset[:, None]
        s = cumulative(route)
        side = self.border.side(route[:, 0], route[:, 1])
        north = np.flatnonzero(side == US_SIDE)
        first_us = int(north[0]) if len(north) else len(route) - 1
        leg = LineString(route[max(first_us - 1, 0) : first_us + 1])
        hit = leg.intersection(self.border.line)
        if hit.is_empty or first_us == 0:
            s_line = float(s[first_us])
        else:
            px, py = shapely.get_coordinates(hit)[0]
            s_line = float(
                s[first_us - 1]
                + math.hypot(px - route[first_us - 1][0], py - route[first_us - 1][1])
            )
        speed = float(rng.uniform(*WALK_SPEED_MPS))
        size = int(rng.integers(1, st.group_size_max + 1))
        total = float(s[-1])
        # Turning back: before the line, after it, or not at all.
        u = rng.uniform()
        turn_at = None
        if u < st.turn_back_before:
            turn_at = float(rng.uniform(0.3, 0.95)) * s_line
        elif u < st.turn_back_before + st.turn_back_after:
            turn_at = min(s_line + float(rng.uniform(20.0, 600.0)), total - 1.0)
        if turn_at is not None:
            k = int(np.searchsorted(s, turn_at))
            f = (turn_at - s[k - 1]) / max(s[k] - s[k - 1], 1e-9)
            turn_pt = route[k - 1] + f * (route[k] - route[k - 1])
            fwd = np.vstack([route[:k], turn_pt[None, :]])
            walk = np.vstack([fwd, fwd[-2::-1]])
        else:
            walk = route
        walk_s = cumulative(walk)
        stops: list[tuple[float, float]] = []
        if rng.uniform() < st.stop_probability:
            for _ in range(int(rng.integers(1, 3))):
                stops.append((float(rng.uniform(0.0, walk_s[-1])), float(rng.uniform(60.0, 900.0))))
        before = sum(d for ds, d in stops if ds < s_line)
        t0 = t_cross - s_line / speed - before
        return timeline(walk, speed, t0, stops), size, turn_at is not None and turn_at < s_line

    def _plan_groups_hour(self, k: int) -> None:
        st = self.settings
        if not st.crossings:
            return
        hour = self.local_hour(k * HOUR_S)
        for ci, corridor in enumerate(self.site.corridors):
            rng = rng_for(self.seed, STREAM_GROUPS, ci, k)
            lam = corridor.groups_per_day * st.crossing_rate_scale * self.hour_share[hour]
            n = int(rng.poisson(lam))
            times = np.sort(rng.uniform(k * HOUR_S, (k + 1) * HOUR_S, n))
            for i, t_cross in enumerate(times):
                plan, size, _ = self._plan_group(rng, ci, float(t_cross))
                gid = f"{corridor.id}-{k}-{i}"
                spread = 1.2 * math.sqrt(size)
                offs = rng.normal(0.0, spread, (size, 2))
                offs -= offs.mean(axis=0)
                lags, splits = [0.0] * size, [None] * size
                if self.group_shaper is not None:
                    plan, lags, splits = self.group_shaper.shape(ci, k, i, plan, size, t_cross)
                for j in range(size):
                    mid = f"{gid}.{j}"
                    self.movers[mid] = Mover(
                        mid, "person", plan, gid, float(offs[j, 0]), float(offs[j, 1]),
                        origin=corridor.id, lag_s=lags[j], split=splits[j],
                    )  # fmt: skip
                self._add_crossings(gid, "person", size, plan, corridor.id)

    # -- roads: legitimate traffic --------------------------------------------------------------
    def _plan_traffic_hour(self, k: int) -> None:
        st = self.settings
        if self.off_road is not None:
            line, side = self.border.line, self.border.side
            for i, (kind, t0, v, pts) in enumerate(
                off_road_tracks(self.off_road, self.seed, k, line, side)
            ):
                vid = f"offroad-{k}-{i}"
                plan = timeline(pts, v, t0, [])
                self.movers[vid] = Mover(vid, kind, plan, vid, origin="off-road")
                self._add_crossings(vid, "vehicle", 1, plan, "off-road")
        if self.small_animals is not None:
            plans = small_animal_plans(self.small_animals, self.seed, k, self.border.line)
            for i, plan in enumerate(plans):
                aid = f"small-{k}-{i}"
                self.movers[aid] = Mover(aid, "jackrabbit", plan, aid, origin="small-animal")
        if not st.road_traffic:
            return
        for ri, road in enumerate(self.site.roads):
            rng = rng_for(self.seed, STREAM_TRAFFIC, ri, k)
            n = int(rng.poisson(road.vehicles_per_hour * st.traffic_scale))
            times = np.sort(rng.uniform(k * HOUR_S, (k + 1) * HOUR_S, n))
            pts = self.roads[ri]
            for i, t0 in enumerate(times):
                kind = ("car", "pickup", "truck")[int(rng.choice(3, p=[0.55, 0.35, 0.10]))]
                speed = float(np.clip(road.speed_mps * rng.uniform(0.85, 1.15), *VEHICLE_SPEED_MPS))
                path = pts if rng.uniform() < 0.5 else pts[::-1]
                plan = timeline(path, speed, float(t0), [])
                vid = f"{road.id}-{k}-{i}"
                self.movers[vid] = Mover(vid, kind, plan, vid, origin=road.id)

    # -- animals ----------------------------------------------------------------------------------
    def _place_animals(self) -> None:
        n = int(round(self.settings.animals_per_km * self.border.length_m / 1000.0))
        for aid, species, hx, hy in self.animals.place(n):
            plan = Plan(np.array([self.t_start - HOUR_S]), np.array([hx]), np.array([hy]))
            self.movers[aid] = Mover(aid, species, plan, aid, origin="home")

    def _extend_animals(self, t_until: float) -> None:
        for i, aid in enumerate(self.animals.ids):
            m = self.movers[aid]
            plan = self.animals.extend(i, m.plan, t_until)
            if plan is None:
                continue
            k0 = len(m.plan.t) - 1
            m.plan = plan
            self._add_crossings(aid, "animal", 1, m.plan, m.kind, k0)

    # -- crossings --------------------------------------------------------------------------------
    def _add_crossings(
        self, group_id: str, cls: str, count: int, plan: Plan, origin: str, k0: int = 0
    ) -> None:
        for when, px, py, seg, direction in crossings_of_plan(self.border, plan, k0):
            if when < self.t_start:
                # before the run: not a crossing of the run, but its group may still be
                # in view when the run starts, and an alert for it is not a false one
                n = len(self.earlier_crossings) + 1
                self.earlier_crossings.append(
                    CrossingTruth(
                        f"e{n:06d}", group_id, cls, count, when, px, py, seg, direction, origin
                    )
                )
                continue
            self._crossing_seq += 1
            self.crossings.append(
                CrossingTruth(
                    f"x{self._crossing_seq:06d}", group_id, cls, count, when, px, py, seg,
                    direction, origin,
                )
            )  # fmt: skip

    # -- the clock --------------------------------------------------------------------------------
    def advance(self, t: float) -> None:
        """Make every plan that can matter up to time ``t`` (and a lookahead beyond it)."""
        k_need = math.floor((t + LOOKAHEAD_S) / HOUR_S)
        n = len(self.crossings)
        while self._hour_done < k_need:
            self._hour_done += 1
            self._plan_groups_hour(self._hour_done)
            self._plan_traffic_hour(self._hour_done)
        if self.animals.ids:
            self._extend_animals(t + LOOKAHEAD_S)
        if len(self.crossings) != n:
            self.crossings.sort(key=lambda c: (c.time, c.crossing_id))

    def prune(self, t: float) -> None:
        """Forget movers whose plans ended before ``t``."""
        gone = [
            k
            for k, m in self.movers.items()
            if m.plan.end + m.lag_s < t and not m.friendly and m.kind not in SPECIES
        ]
        for k in gone:
            del self.movers[k]

    def send_unit(self, unit_id: str, x: float, y: float, now: float) -> float:
        """Send a patrol unit from where it is at ``now`` to ``(x, y)``; returns its ETA, s."""
        if unit_id not in self.units:
            raise SimError(
                f"unit {unit_id!r} is not in the site; expected one of {sorted(self.units)}"
            )
        m = self.units[unit_id]
        px, py, _, _ = m.plan.at(now)
        spec = next(u for u in self.site.units if u.id == unit_id)
        eta = now + math.hypot(x - px, y - py) / spec.speed_mps
        m.plan = Plan(np.array([now, eta]), np.array([px, x]), np.array([py, y]))
        return eta

    def states(self, t: float) -> MoverStates:
        """Position, velocity and body of every mover present at ``t``."""
        ids, kinds, classes, groups = [], [], [], []
        rows = []
        for m in self.movers.values():
            p = m.plan
            tm = t - m.lag_s if m.lag_s else t
            if not m.friendly and (tm < p.t[0] or tm > p.t[-1]):
                continue
            x, y, vx, vy = p.at(tm)
            w, h, c = m.body
            ids.append(m.mover_id)
            kinds.append(m.kind)
            classes.append(m.cls)
            groups.append(m.group_id)
            dx, dy = m.dx, m.dy
            if m.split is not None:
                sx, sy = m.split.offset(t)
                dx, dy = dx + sx, dy + sy
            rows.append((x + dx, y + dy, vx, vy, w, h, c))
        a = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
        if self.shaper is not None:
            self.shaper.apply(kinds, ids, a)
        return MoverStates(
            t,
            ids,
            kinds,
            classes,
            groups,
            a[:, 0],
            a[:, 1],
            a[:, 2],
            a[:, 3],
            a[:, 4],
            a[:, 5],
            a[:, 6],
        )

    def crossings_until(self, t: float) -> list[CrossingTruth]:
        """Crossings at or before ``t`` (and after the start), in time order."""
        return [c for c in self.crossings if c.time <= t]


__all__ = [
    "CLASS_OF",
    "SPECIES",
    "CrossingTruth",
    "Mover",
    "MoverStates",
    "Plan",
    "Population",
    "SimError",
    "crossings_of_plan",
    "rng_for",
]
