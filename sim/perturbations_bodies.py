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
        place. Friendly units keep their nominal bodies."""
        for k, (mid, kind) in enumerate(zip(ids, kinds, strict=True)):
            if kind in ("agent", "patrol_vehicle", "atv", "horse"):
                continue
            size, pose, other = self.draws(mid, kind)
            w, h = rows[k, 4] * size, rows[k, 5] * size
            stopped = np.hypot(rows[k, 2], rows[k, 3]) < STOPPED_MPS
            if kind == "person":
                if other:
                    w, h = w + LOAD_WIDTH_M, h + LOAD_HEIGHT_M
                if pose and stopped:
                    w, h = w * CROUCH_WIDTH, h * CROUCH_HEIGHT
            elif kind == "cattle":
                if other:
                    w, h = w * CALF_SIZE, h * CALF_SIZE
                if pose and stopped:
                    w, h = w * LYING_WIDTH, min(h, LYING_HEIGHT_M * (CALF_SIZE if other else 1.0))
            rows[k, 4], rows[k, 5] = w, h
