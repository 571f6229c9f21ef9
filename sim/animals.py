"""Animals that live along the line: where each one's home is, and where it wanders next.

An animal wanders between destinations drawn around its home (its species' home range),
walking at a speed of its species and pausing at each; most destinations that would take it
across the line are swapped for its home, so a few animals cross and most stay on their side.
Every animal draws from its own random stream, so the herd is the same whatever the run length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from vigil.geo.border import Border

from .plans import Plan, rng_for

#: Random stream tag of the animals (groups 1 and traffic 3 are in :mod:`.movers`).
STREAM_ANIMALS = 2
#: Animal species: share of the population, speed range m/s, home range m, mean pause s.
#: The shares are the Sonoran default; a climate's season (:mod:`.climate`) gives its own.
#: Moose walk 0.4-1.8 m/s and wander farther than deer (their home ranges are kilometres
#: across); they pause long to browse.
SPECIES: dict[str, tuple[float, tuple[float, float], float, float]] = {
    "cattle": (0.5, (0.3, 1.0), 250.0, 600.0),
    "deer": (0.25, (0.5, 2.5), 500.0, 300.0),
    "coyote": (0.25, (0.8, 2.5), 700.0, 200.0),
    "moose": (0.0, (0.4, 1.8), 1200.0, 900.0),
}
#: The default mix: the species with a share, in :data:`SPECIES` order.
DEFAULT_MIX: dict[str, float] = {k: v[0] for k, v in SPECIES.items() if v[0] > 0}
#: Chance that an animal's next destination across the line is swapped for its home.
ANIMAL_STAYS_ON_SIDE = 0.9


class Animals:
    """The animals of a sector: their homes, random streams and legs not yet walked.

    Parameters
    ----------
    seed
        The world's seed.
    border
        The border line, which tells an animal's side.
    species
        Species name -> share of the population (a climate's season); default
        :data:`DEFAULT_MIX`. Every name must be in :data:`SPECIES`.
    """

    def __init__(
        self, seed: int, border: Border, species: Mapping[str, float] | None = None
    ) -> None:
        mix = dict(DEFAULT_MIX if species is None else species)
        unknown = sorted(set(mix) - set(SPECIES))
        if unknown or not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
            raise ValueError(f"species mix {mix!r}: expected positive shares of {sorted(SPECIES)}")
        self.mix = mix
        self.seed = int(seed)
        self.border = border
        self.ids: list[str] = []
        self._homes: list[tuple[float, float, str]] = []
        self._rngs: list[np.random.Generator] = []
        self._pending: list[list[tuple[float, float, float, float]]] = []

    def __len__(self) -> int:
        return len(self.ids)

    def place(self, count: int) -> list[tuple[str, str, float, float]]:
        """Give ``count`` animals a species and a home 100-1500 m either side of the line.

        Returns ``(animal_id, species, x, y)`` per animal, the home in local metres.
        """
        rng = rng_for(self.seed, STREAM_ANIMALS, 0, 0)
        names = list(self.mix)
        shares = np.array([self.mix[s] for s in names])
        line = self.border.line
        out = []
        for i in range(count):
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
            self.ids.append(aid)
            self._homes.append((hx, hy, species))
            self._rngs.append(rng_for(self.seed, STREAM_ANIMALS, 1, i))
            self._pending.append([])
            out.append((aid, species, hx, hy))
        return out

    def _legs(self, i: int) -> list[tuple[float, float, float, float]]:
        """The next batch of an animal's legs ``(x, y, speed, pause)``; most stay on their side."""
        hx, hy, species = self._homes[i]
        _, (v0, v1), home_range, pause = SPECIES[species]
        rng = self._rngs[i]
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

    def extend(self, i: int, plan: Plan, t_until: float) -> Plan | None:
        """Animal ``i``'s ``plan`` walked on to ``t_until`` (UTC s); ``None`` if it reaches it."""
        t, x, y = [plan.end], [plan.x[-1]], [plan.y[-1]]
        if t[0] >= t_until:
            return None
        pending = self._pending[i]
        while t[-1] < t_until:
            if not pending:
                pending.extend(self._legs(i))
            tx, ty, v, rest = pending.pop(0)
            d = math.hypot(tx - x[-1], ty - y[-1])
            t += [t[-1] + d / v, t[-1] + d / v + rest]
            x += [tx, tx]
            y += [ty, ty]
        return Plan(
            np.concatenate([plan.t, t[1:]]),
            np.concatenate([plan.x, x[1:]]),
            np.concatenate([plan.y, y[1:]]),
        )
