"""Bodies of varying size and pose (:class:`vigil.sim.perturbations.Bodies`).

Each mover draws, once and by its id, a size factor (log-normal), and whether it is a person
who crouches while stopped or carries a load, or a calf or a cow that lies down while
stopped; :meth:`BodyShaper.apply` turns the movers' nominal bodies into these.
"""

from __future__ import annotations

import zlib

import numpy as np

from .perturbations import STREAM_BODIES, Bodies
from .plans import rng_for

#: speed below which a mover counts as stopped (crouching, lying), m/s
STOPPED_MPS = 0.05
CROUCH_HEIGHT, CROUCH_WIDTH = 0.6, 1.3
LOAD_WIDTH_M, LOAD_HEIGHT_M = 0.3, 0.15
LYING_HEIGHT_M, LYING_WIDTH = 0.8, 1.1
CALF_SIZE = 0.6
#: the deployment's own units keep their nominal bodies
FRIENDLY = frozenset({"agent", "patrol_vehicle", "atv", "horse"})


class BodyShaper:
    """Per-mover size and pose draws for one world (seeded), applied to its mover states."""

    def __init__(self, cfg: Bodies, seed: int) -> None:
        self.cfg = cfg
        self.seed = int(seed)
        self._draws: dict[str, tuple[float, bool, bool]] = {}

    def draws(self, mover_id: str, kind: str) -> tuple[float, bool, bool]:
        """``(size factor, pose-when-stopped, load-or-calf)`` for a mover, fixed by its id."""
        got = self._draws.get(mover_id)
        if got is None:
            c = self.cfg
            rng = rng_for(self.seed, STREAM_BODIES, zlib.crc32(mover_id.encode()), 0)
            size = float(np.exp(rng.normal(0.0, c.size_sd))) if c.size_sd > 0 else 1.0
            u_pose, u_other = rng.uniform(size=2)
            if kind == "person":
                got = (size, u_pose < c.crouch_probability, u_other < c.load_probability)
            elif kind == "cattle":
                got = (size, u_pose < c.lying_probability, u_other < c.calf_probability)
            else:
                got = (size, False, False)
            self._draws[mover_id] = got
        return got

    def apply(self, kinds: list[str], ids: list[str], rows: np.ndarray) -> None:
        """Reshape the bodies in ``rows`` (columns x, y, vx, vy, width, height, contrast) in
        place. The kinds of the patrol units (agent, patrol vehicle, ATV, horse) keep theirs."""
        n = len(ids)
        if n == 0:
            return
        draws = [
            (1.0, False, False) if kind in FRIENDLY else self.draws(mid, kind)
            for mid, kind in zip(ids, kinds, strict=True)
        ]
        size = np.fromiter((d[0] for d in draws), np.float64, n)
        pose = np.fromiter((d[1] for d in draws), bool, n)
        other = np.fromiter((d[2] for d in draws), bool, n)
        person = np.fromiter((k == "person" for k in kinds), bool, n)
        cattle = np.fromiter((k == "cattle" for k in kinds), bool, n)
        stopped = np.hypot(rows[:, 2], rows[:, 3]) < STOPPED_MPS
        w, h = rows[:, 4] * size, rows[:, 5] * size
        load = person & other
        w, h = np.where(load, w + LOAD_WIDTH_M, w), np.where(load, h + LOAD_HEIGHT_M, h)
        crouch = person & pose & stopped
        w, h = np.where(crouch, w * CROUCH_WIDTH, w), np.where(crouch, h * CROUCH_HEIGHT, h)
        calf = cattle & other
        w, h = np.where(calf, w * CALF_SIZE, w), np.where(calf, h * CALF_SIZE, h)
        lying = cattle & pose & stopped
        cap = LYING_HEIGHT_M * np.where(calf, CALF_SIZE, 1.0)
        w, h = np.where(lying, w * LYING_WIDTH, w), np.where(lying, np.minimum(h, cap), h)
        rows[:, 4], rows[:, 5] = w, h
