"""Things that move in the simulated sector: walkers in groups, road traffic, animals, patrols.

Every mover follows a *plan*: knots ``(t, x, y)`` in the sector's local frame (seconds, metres)
with straight lines between them, so its position at any time is an interpolation and its
border crossings are found exactly, once, when the plan is made. Plans come from random
streams keyed by ``(seed, kind, index, hour)``, so the world is the same whatever the step
size or run length, and a longer run extends a shorter one.

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

from vigil.geo.border import FOREIGN_SIDE, US_SIDE, Border
from vigil.geo.frames import LocalFrame
from vigil.geo.site import Site

from .settings import SimSettings

HOUR_S = 3600.0
#: Plans are made this far ahead of the world's clock, seconds (a group may walk 1-2 h).
LOOKAHEAD_S = 3 * HOUR_S
WALK_SPEED_MPS = (0.8, 1.8)
VEHICLE_SPEED_MPS = (10.0, 25.0)

# Random stream tags: one per kind of thing, so adding a kind never shifts another's draws.
STREAM_GROUPS, STREAM_ANIMALS, STREAM_TRAFFIC = 1, 2, 3

#: (width, height) of what a camera sees side-on, metres, and thermal contrast at night, DN.
BODY: dict[str, tuple[float, float, float]] = {
    "person": (0.5, 1.7, 60.0),
    "car": (4.5, 1.5, 70.0),
    "pickup": (5.3, 1.8, 75.0),
    "truck": (8.0, 3.0, 85.0),
    "cattle": (2.2, 1.4, 45.0),
    "deer": (1.6, 1.2, 40.0),
    "coyote": (1.1, 0.6, 35.0),
    "patrol_vehicle": (5.0, 1.9, 75.0),
    "atv": (2.0, 1.2, 60.0),
    "horse": (2.4, 2.2, 55.0),
    "agent": (0.5, 1.8, 60.0),
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
    "horse": "animal",
}
#: Animal species: share of the population, speed range m/s, home range m, mean pause s.
SPECIES: dict[str, tuple[float, tuple[float, float], float, float]] = {
    "cattle": (0.5, (0.3, 1.0), 250.0, 600.0),
    "deer": (0.25, (0.5, 2.5), 500.0, 300.0),
    "coyote": (0.25, (0.8, 2.5), 700.0, 200.0),
}
#: Chance that an animal's next destination across the line is swapped for its home.
ANIMAL_STAYS_ON_SIDE = 0.9


class SimError(ValueError):
    """A simulation asked for something the site or settings cannot give."""


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """An independent random stream for ``(seed, *key)``; keys are non-negative ints."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *key]))


@dataclass
class Plan:
    """A piecewise-linear path in time: knots ``t`` (s), ``x``, ``y`` (m), ``t`` non-decreasing."""

    t: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]

    @property
    def start(self) -> float:
        return float(self.t[0])

    @property
    def end(self) -> float:
        return float(self.t[-1])

    def at(self, t: float) -> tuple[float, float, float, float]:
        """Position ``(x, y)`` m and velocity ``(vx, vy)`` m/s at ``t``, clamped to the plan."""
        k = int(np.searchsorted(self.t, t, side="right")) - 1
        n = len(self.t)
        if k < 0:
            return float(self.x[0]), float(self.y[0]), 0.0, 0.0
        if k >= n - 1:
            return float(self.x[-1]), float(self.y[-1]), 0.0, 0.0
        dt = self.t[k + 1] - self.t[k]
        if dt <= 0:
            return float(self.x[k + 1]), float(self.y[k + 1]), 0.0, 0.0
        f = (t - self.t[k]) / dt
        vx = (self.x[k + 1] - self.x[k]) / dt
        vy = (self.y[k + 1] - self.y[k]) / dt
        return (
            float(self.x[k] + f * (self.x[k + 1] - self.x[k])),
            float(self.y[k] + f * (self.y[k + 1] - self.y[k])),
            float(vx),
            float(vy),
        )


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


def crossings_of_plan(
    border: Border, plan: Plan, k0: int = 0
) -> list[tuple[float, float, float, str, str]]:
    """Where a plan's path crosses the border from knot ``k0`` on.

    Returns ``(time, x, y, segment_id, direction)`` per crossing, in time order. The side of
    each knot comes from :meth:`Border.side`; a change of side between two knots is placed at
    the intersection of that leg with the border line.
    """
    x, y, t = plan.x[k0:], plan.y[k0:], plan.t[k0:]
    if len(t) < 2:
        return []
    side = border.side(x, y)
    # Knots exactly on the line carry the side of the knot before them.
    for i in range(len(side)):
        if side[i] == 0:
            side[i] = side[i - 1] if i else side[min(i + 1, len(side) - 1)]
    out = []
    for i in np.flatnonzero(side[1:] != side[:-1]):
        a, b = side[i], side[i + 1]
        if a == 0 or b == 0:
            continue
        leg = LineString([(x[i], y[i]), (x[i + 1], y[i + 1])])
        hit = leg.intersection(border.line)
        if hit.is_empty:
            px, py = (x[i] + x[i + 1]) / 2, (y[i] + y[i + 1]) / 2
        else:
            pts = shapely.get_coordinates(hit)
            px, py = pts[0]
        length = leg.length
        f = 0.0 if length == 0 else math.hypot(px - x[i], py - y[i]) / length
        when = float(t[i] + f * (t[i + 1] - t[i]))
        seg = border.segments[int(border.nearest_segment([px], [py])[0])].segment_id
        direction = "northbound" if (a == FOREIGN_SIDE and b == US_SIDE) else "southbound"
        out.append((when, float(px), float(py), seg, direction))
    return out


def _polyline_local(frame: LocalFrame, path: list[tuple[float, float]]) -> NDArray[np.float64]:
    lat, lon = np.asarray(path, dtype=np.float64).T
    x, y = frame.to_local(lat, lon)
    return np.column_stack([x, y])


def _resample(line: NDArray[np.float64], step_m: float) -> NDArray[np.float64]:
    """Points every ``step_m`` along a polyline, keeping its ends."""
    ls = LineString(line)
    n = max(2, int(math.ceil(ls.length / step_m)) + 1)
    d = np.linspace(0.0, ls.length, n)
    return shapely.get_coordinates(shapely.line_interpolate_point(ls, d))


def _cumulative(pts: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])


def _timeline(
    pts: NDArray[np.float64], speed: float, t0: float, stops: list[tuple[float, float]]
) -> Plan:
    """A plan walking ``pts`` at ``speed`` from ``t0``, pausing ``(distance_m, duration_s)``."""
    s = _cumulative(pts)
    stop_s = np.asarray(sorted(d for d, _ in stops), dtype=np.float64).reshape(-1)
    stop_dur = [dur for _, dur in sorted(stops)]
    # Put each stop's point into the path, then give every point its arrival time.
    all_s = np.concatenate([s, stop_s])
    order = np.argsort(all_s, kind="stable")
    is_stop = np.concatenate([np.zeros(len(s), bool), np.ones(len(stop_s), bool)])[order]
    all_s = all_s[order]
    x = np.interp(all_s, s, pts[:, 0])
    y = np.interp(all_s, s, pts[:, 1])
    ts, xs, ys = [], [], []
    extra = 0.0
    j = 0
    for i in range(len(all_s)):
        ts.append(t0 + all_s[i] / speed + extra)
        xs.append(x[i])
        ys.append(y[i])
        if is_stop[i]:
            extra += stop_dur[j]
            j += 1
            ts.append(t0 + all_s[i] / speed + extra)
            xs.append(x[i])
            ys.append(y[i])
    return Plan(np.asarray(ts), np.asarray(xs), np.asarray(ys))


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
    """

    def __init__(self, site: Site, settings: SimSettings, seed: int, border: Border) -> None:
        self.site = site
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
        self.roads = [_polyline_local(self.frame, r.path) for r in site.roads]
        self._animal_rngs: list[np.random.Generator] = []
        self._animal_homes: list[tuple[float, float, str]] = []
        self._animal_pending: list[list[tuple[float, float, float, float]]] = []
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
        pts = _polyline_local(self.frame, corridor.path)
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
        dense = _resample(pts, 100.0)
        tangent = np.gradient(dense, axis=0)
        tangent /= np.maximum(np.hypot(*tangent.T), 1e-9)[:, None]
        normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
        half = width / 2.0
        wander = np.cumsum(rng.normal(0.0, 0.12 * half, len(dense)))
        offset = np.clip(rng.uniform(-half, half) + wander, -half, half)
        route = dense + normal * offset[:, None]
        s = _cumulative(route)
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
        walk_s = _cumulative(walk)
        stops: list[tuple[float, float]] = []
        if rng.uniform() < st.stop_probability:
            for _ in range(int(rng.integers(1, 3))):
                stops.append((float(rng.uniform(0.0, walk_s[-1])), float(rng.uniform(60.0, 900.0))))
        before = sum(d for ds, d in stops if ds < s_line)
        t0 = t_cross - s_line / speed - before
        return _timeline(walk, speed, t0, stops), size, turn_at is not None and turn_at < s_line

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
                for j in range(size):
                    mid = f"{gid}.{j}"
                    self.movers[mid] = Mover(
                        mid, "person", plan, gid, float(offs[j, 0]), float(offs[j, 1]),
                        origin=corridor.id,
                    )  # fmt: skip
                self._add_crossings(gid, "person", size, plan, corridor.id)

    # -- roads: legitimate traffic --------------------------------------------------------------
    def _plan_traffic_hour(self, k: int) -> None:
        st = self.settings
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
                plan = _timeline(path, speed, float(t0), [])
                vid = f"{road.id}-{k}-{i}"
                self.movers[vid] = Mover(vid, kind, plan, vid, origin=road.id)

    # -- animals ----------------------------------------------------------------------------------
    def _place_animals(self) -> None:
        st = self.settings
        n = int(round(st.animals_per_km * self.border.length_m / 1000.0))
        rng = rng_for(self.seed, STREAM_ANIMALS, 0, 0)
        names = list(SPECIES)
        shares = np.array([SPECIES[s][0] for s in names])
        line = self.border.line
        for i in range(n):
            species = names[int(rng.choice(len(names), p=shares / shares.sum()))]
            along = float(rng.uniform(0.0, line.length))
            p = line.interpolate(along)
            q = line.interpolate(min(along + 1.0, line.length))
            tx, ty = q.x - p.x, q.y - p.y
            norm = math.hypot(tx, ty) or 1.0
            # Right of the line's direction is the US side.
            rx, ry = ty / norm, -tx / norm
            d = float(rng.choice([-1.0, 1.0]) * rng.uniform(100.0, 1500.0))
            hx, hy = p.x + rx * d, p.y + ry * d
            aid = f"animal-{i:03d}"
            self._animal_homes.append((hx, hy, species))
            self._animal_rngs.append(rng_for(self.seed, STREAM_ANIMALS, 1, i))
            self._animal_pending.append([])
            plan = Plan(np.array([self.t_start - HOUR_S]), np.array([hx]), np.array([hy]))
            self.movers[aid] = Mover(aid, species, plan, aid, origin="home")

    def _animal_legs(self, i: int) -> list[tuple[float, float, float, float]]:
        """The next batch of an animal's legs ``(x, y, speed, pause)``; most stay on their side."""
        hx, hy, species = self._animal_homes[i]
        _, (v0, v1), home_range, pause = SPECIES[species]
        rng = self._animal_rngs[i]
        n = 32
        tx = hx + rng.normal(0.0, home_range, n)
        ty = hy + rng.normal(0.0, home_range, n)
        v = rng.uniform(v0, v1, n)
        rest = rng.exponential(pause, n)
        stay = rng.uniform(size=n) < ANIMAL_STAYS_ON_SIDE
        home_side = self.border.side([hx], [hy])[0]
        across = (self.border.side(tx, ty) != home_side) & stay
        tx[across], ty[across] = hx, hy
        return list(zip(tx.tolist(), ty.tolist(), v.tolist(), rest.tolist(), strict=True))

    def _extend_animals(self, t_until: float) -> None:
        for i in range(len(self._animal_homes)):
            aid = f"animal-{i:03d}"
            m = self.movers[aid]
            t, x, y = [m.plan.end], [m.plan.x[-1]], [m.plan.y[-1]]
            if t[0] >= t_until:
                continue
            pending = self._animal_pending[i]
            while t[-1] < t_until:
                if not pending:
                    pending.extend(self._animal_legs(i))
                tx, ty, v, rest = pending.pop(0)
                d = math.hypot(tx - x[-1], ty - y[-1])
                t += [t[-1] + d / v, t[-1] + d / v + rest]
                x += [tx, tx]
                y += [ty, ty]
            k0 = len(m.plan.t) - 1
            m.plan = Plan(
                np.concatenate([m.plan.t, t[1:]]),
                np.concatenate([m.plan.x, x[1:]]),
                np.concatenate([m.plan.y, y[1:]]),
            )
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
        if self._animal_homes:
            self._extend_animals(t + LOOKAHEAD_S)
        if len(self.crossings) != n:
            self.crossings.sort(key=lambda c: (c.time, c.crossing_id))

    def prune(self, t: float) -> None:
        """Forget movers whose plans ended before ``t``."""
        gone = [
            k
            for k, m in self.movers.items()
            if m.plan.end < t and not m.friendly and m.kind not in SPECIES
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
            if not m.friendly and (t < p.t[0] or t > p.t[-1]):
                continue
            x, y, vx, vy = p.at(t)
            w, h, c = m.body
            ids.append(m.mover_id)
            kinds.append(m.kind)
            classes.append(m.cls)
            groups.append(m.group_id)
            rows.append((x + m.dx, y + m.dy, vx, vy, w, h, c))
        a = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
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
    "CrossingTruth",
    "Mover",
    "MoverStates",
    "Plan",
    "Population",
    "SimError",
    "crossings_of_plan",
]
