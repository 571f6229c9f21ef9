"""Groups that string out, split and re-form, run and lay up; vehicles off the roads
(:class:`vigil.sim.perturbations.Groups`, ``Runners``, ``LayUps``, ``OffRoad``).

A group's members follow the group's plan each a time ``lag_s`` behind the leader, so they walk
in file over the route and close up where the group rests (the leader waits while the others
arrive). A split moves the rear half sideways for a while (:class:`Split`). Runners' plans are
warped in time around the crossing: faster near the line, the crossing time kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .perturbations import (
    STREAM_GROUPS,
    STREAM_OFFROAD,
    STREAM_SMALL_ANIMALS,
    Groups,
    LayUps,
    OffRoad,
    Runners,
    SmallAnimals,
)
from .plans import Plan, rng_for

#: speed above which a plan segment counts as walking, m/s
MOVING_MPS = 0.05


@dataclass(frozen=True)
class Split:
    """A sideways excursion ``(sx, sy)`` metres, from ``t0`` to ``t1`` (UTC s): ramps out over
    the first quarter, holds, ramps back over the last quarter."""

    t0: float
    t1: float
    sx: float
    sy: float

    def offset(self, t: float) -> tuple[float, float]:
        """The offset at ``t``, metres."""
        if t <= self.t0 or t >= self.t1:
            return 0.0, 0.0
        ramp = 0.25 * (self.t1 - self.t0)
        f = min(1.0, (t - self.t0) / ramp, (self.t1 - t) / ramp)
        return self.sx * f, self.sy * f


def walking_speed(plan: Plan) -> float:
    """The plan's median speed over its moving segments, m/s (1.0 when it never moves)."""
    dt = np.diff(plan.t)
    d = np.hypot(np.diff(plan.x), np.diff(plan.y))
    ok = dt > 0
    v = d[ok] / dt[ok]
    v = v[v > MOVING_MPS]
    return float(np.median(v)) if v.size else 1.0


def run_warp(plan: Plan, t_cross: float, run_s: float, factor: float) -> Plan:
    """``plan`` run ``factor`` times faster within ``run_s`` seconds (new time) of ``t_cross``.

    Time ``τ = t - t_cross`` maps to ``τ / factor`` for ``|τ| <= run_s * factor`` and shifts by
    ``run_s * (factor - 1)`` toward the crossing beyond; knots are added at the zone's ends so
    the speed changes exactly there. ``t_cross`` keeps its position.
    """
    if factor <= 1.0 or run_s <= 0:
        return plan
    edge = run_s * factor
    extra = [t_cross + s for s in (-edge, edge) if plan.t[0] < t_cross + s < plan.t[-1]]
    t = np.concatenate([plan.t, extra])
    order = np.argsort(t, kind="stable")
    t = t[order]
    x = np.interp(t, plan.t, plan.x) if extra else plan.x
    y = np.interp(t, plan.t, plan.y) if extra else plan.y
    if extra:  # stops are duplicate times: keep the original knots' positions
        n = len(plan.t)
        orig = order < n
        x = np.where(orig, np.concatenate([plan.x, np.zeros(len(extra))])[order], x)
        y = np.where(orig, np.concatenate([plan.y, np.zeros(len(extra))])[order], y)
    tau = t - t_cross
    inside = np.abs(tau) <= edge
    new = np.where(inside, tau / factor, tau - np.sign(tau) * (edge - run_s))
    return Plan(t_cross + new, np.asarray(x, float), np.asarray(y, float))


def lay_up(plan: Plan, t_at: float, duration_s: float, before: bool) -> Plan:
    """``plan`` with a stop of ``duration_s`` at a knot: before, the last knot at or before
    ``t_at``, and the knots up to it move earlier; after, the first knot at or after ``t_at``,
    and the knots after it move later. The segments around ``t_at`` keep their times."""
    if before:
        k = max(int(np.searchsorted(plan.t, t_at, side="right")) - 1, 0)
    else:
        k = min(int(np.searchsorted(plan.t, t_at)), len(plan.t) - 1)
    t = np.concatenate([plan.t[: k + 1], plan.t[k:]])
    if before:
        t[: k + 1] -= duration_s
    else:
        t[k + 1 :] += duration_s
    x = np.concatenate([plan.x[: k + 1], plan.x[k:]])
    y = np.concatenate([plan.y[: k + 1], plan.y[k:]])
    return Plan(t, x, y)


class GroupShaper:
    """Strings groups out, splits some and makes some run, each from its own seeded stream."""

    def __init__(
        self,
        groups: Groups | None,
        runners: Runners | None,
        seed: int,
        lay_ups: LayUps | None = None,
    ) -> None:
        self.groups = groups if groups is not None and groups.on else None
        self.runners = runners if runners is not None and runners.on else None
        self.lay_ups = lay_ups if lay_ups is not None and lay_ups.on else None
        self.seed = int(seed)

    def shape(
        self, corridor: int, hour: int, index: int, plan: Plan, size: int, t_cross: float
    ) -> tuple[Plan, list[float], list[Split | None]]:
        """The group's plan (warped if it runs), each member's lag (s) and split (or None)."""
        rng = rng_for(self.seed, STREAM_GROUPS, corridor, hour, index)
        u_run, u_split, u_lay, u_side, u_where, u_long = rng.uniform(size=6)
        r = self.runners
        if r is not None and u_run < r.probability:
            v_run = float(rng.uniform(r.speed_min_mps, max(r.speed_max_mps, r.speed_min_mps)))
            plan = run_warp(plan, t_cross, r.run_s, v_run / walking_speed(plan))
        lu = self.lay_ups
        if lu is not None and u_lay < lu.probability:
            before = u_side < 0.5
            lo, hi = (plan.start, t_cross) if before else (t_cross, plan.end)
            if hi > lo:
                dur = 3600.0 * (lu.min_h + (lu.max_h - lu.min_h) * u_long)
                plan = lay_up(plan, lo + u_where * (hi - lo), dur, before)
        lags = [0.0] * size
        splits: list[Split | None] = [None] * size
        g = self.groups
        if g is None or size < 2:
            return plan, lags, splits
        length = float(rng.uniform(g.string_min_m, g.string_max_m))
        step = length / walking_speed(plan) / (size - 1)
        lags = [j * step for j in range(size)]
        if size >= 3 and u_split < g.split_probability and g.split_m > 0:
            dur = g.split_share * (plan.end - plan.start)
            t0 = float(rng.uniform(plan.start, max(plan.end - dur, plan.start)))
            far = int(np.argmax(np.hypot(plan.x - plan.x[0], plan.y - plan.y[0])))
            hx, hy = plan.x[far] - plan.x[0], plan.y[far] - plan.y[0]  # (turn-backs return)
            norm = math.hypot(hx, hy) or 1.0
            side = 1.0 if rng.uniform() < 0.5 else -1.0
            sp = Split(t0, t0 + dur, -hy / norm * g.split_m * side, hx / norm * g.split_m * side)
            for j in range(size // 2, size):
                splits[j] = sp
        return plan, lags, splits


def off_road_tracks(
    cfg: OffRoad, seed: int, hour: int, line, side
) -> list[tuple[str, float, float, np.ndarray]]:
    """The off-road vehicles of hour ``hour``: ``(kind, start time, speed m/s, track points)``.

    ``line`` is the border's local line (shapely), ``side(x, y)`` the border's side function
    (:data:`vigil.geo.border.US_SIDE` on the US side).
    """
    from vigil.geo.border import US_SIDE

    rng = rng_for(seed, STREAM_OFFROAD, hour)
    n = int(rng.poisson(cfg.per_hour))
    out = []
    length = line.length
    for _ in range(n):
        t0 = float(rng.uniform(hour * 3600.0, (hour + 1) * 3600.0))
        kind = "pickup" if rng.uniform() < 0.6 else "atv"
        speed = float(rng.uniform(4.0, 12.0))
        s0 = float(rng.uniform(0.1, 0.9)) * length
        direction = 1.0 if rng.uniform() < 0.5 else -1.0
        off = float(rng.uniform(200.0, 2000.0))
        pts = []
        s_at = s0
        for _ in range(int(rng.integers(4, 9))):
            a = line.interpolate(min(max(s_at, 0.0), length))
            b = line.interpolate(min(max(s_at + 10.0, 10.0), length))
            tx, ty = b.x - a.x, b.y - a.y
            norm = math.hypot(tx, ty) or 1.0
            nx, ny = -ty / norm, tx / norm
            if side([a.x + nx * 100.0], [a.y + ny * 100.0])[0] != US_SIDE:
                nx, ny = -nx, -ny
            pts.append((a.x + nx * off, a.y + ny * off))
            s_at += direction * float(rng.uniform(400.0, 900.0))
            off = float(np.clip(off + rng.normal(0.0, 300.0), 150.0, 2500.0))
        out.append((kind, t0, speed, np.asarray(pts)))
    return out


def small_animal_plans(cfg: SmallAnimals, seed: int, hour: int, line) -> list[Plan]:
    """The small animals appearing in hour ``hour``: each one's plan of dashes and pauses."""
    rng = rng_for(seed, STREAM_SMALL_ANIMALS, hour)
    length = line.length
    n = int(rng.poisson(cfg.per_km_hour * length / 1000.0))
    out = []
    for _ in range(n):
        a = line.interpolate(float(rng.uniform(0.0, length)))
        x, y = a.x + rng.uniform(-1500.0, 1500.0), a.y + rng.uniform(-1500.0, 1500.0)
        t = float(rng.uniform(hour * 3600.0, (hour + 1) * 3600.0))
        ts, xs, ys = [t], [x], [y]
        for _ in range(int(rng.integers(3, 11))):
            d, v, head = rng.uniform(10.0, 60.0), rng.uniform(4.0, 10.0), rng.uniform(0, 2 * np.pi)
            t += d / v
            x, y = x + d * math.sin(head), y + d * math.cos(head)
            ts += [t, t + float(rng.uniform(5.0, 120.0))]
            xs += [x, x]
            ys += [y, y]
            t = ts[-1]
        out.append(Plan(np.asarray(ts), np.asarray(xs), np.asarray(ys)))
    return out
