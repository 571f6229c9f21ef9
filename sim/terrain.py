"""The simulator on relief: bodies stand on a DEM, the ground hides them, cameras point off.

:class:`SimTerrain` is the switch that puts the simulated world on an elevation model
(:class:`vigil.geo.dem.ElevationModel`): give it to :class:`vigil.sim.World` (``terrain=``)
and

- each body stands on the DEM (its feet at the ground's height there, less the earth
  curvature drop seen from the camera, as the ray caster has it);
- a tower camera draws a body only where the ray from the camera to it passes over the
  ground: the box keeps the body's part above the highest point hidden (a body in a wash,
  or behind a crest, is not drawn at all); the background is the ground each pixel's ray
  meets, the sky above the terrain's horizon;
- each tower camera points off what the deployment (and ``World.camera``) says by a pan,
  tilt and roll error drawn once per tower from N(0, ``pointing_sigma_deg``) (or given), that
  the frames do not carry: ``CameraFrame.camera`` stays the nominal camera, shake included;
- passive infrared ground sensors feel a body only over a clear line of sight from
  ``PIR_HEIGHT_M`` above their ground to the body's middle, and the aircraft see a body
  only over a clear line from the aircraft (its altitude above the ground under its orbit's
  centre) to the body's head.

Without it (the default) the world is flat, as before, and gives exactly today's outputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vigil.geo.dem import ElevationModel
from vigil.geo.raycast import CURVATURE_REFRACTION, cast_rays, curvature_factor

from .movers import SimError, rng_for

#: Random stream of the hidden pointing errors (the thermal module uses 10-13).
STREAM_POINTING = 14
#: Height of a passive infrared sensor's eye above its ground, metres.
PIR_HEIGHT_M = 1.0
#: Fractions of a body's height tested for a clear line of sight, bottom to top.
BODY_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: A ray that reaches within this of its target (horizontal metres) reaches it.
_REACH_TOLERANCE_M = 1.0


@dataclass(frozen=True)
class SimTerrain:
    """Relief for the simulated world, and the towers' hidden pointing errors.

    Attributes
    ----------
    dem
        The ground (the sector's local frame).
    pointing_sigma_deg
        Standard deviation of each tower camera's hidden pan, tilt and roll errors, degrees.
    pointing_error_deg
        Hidden ``(pan, tilt, roll)`` errors by tower id, degrees: these win over the draws.
    curvature_coeff
        Earth curvature and refraction coefficient, as for the ray casting.
    """

    dem: ElevationModel
    pointing_sigma_deg: float = 0.05
    pointing_error_deg: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    curvature_coeff: float = CURVATURE_REFRACTION

    def __post_init__(self) -> None:
        s = self.pointing_sigma_deg
        if not (math.isfinite(s) and 0.0 <= s <= 5.0):
            raise SimError(f"pointing_sigma_deg={s!r}; expected a value in [0, 5] degrees")
        for tower, err in self.pointing_error_deg.items():
            if len(err) != 3 or not all(math.isfinite(e) and abs(e) <= 45.0 for e in err):
                raise SimError(
                    f"pointing_error_deg[{tower!r}]={err!r}; expected (pan, tilt, roll) "
                    "degrees, each within 45"
                )

    def pointing_error(self, tower_id: str, seed: int, index: int) -> tuple[float, float, float]:
        """The tower camera's hidden ``(pan, tilt, roll)`` error, degrees."""
        if tower_id in self.pointing_error_deg:
            return tuple(float(e) for e in self.pointing_error_deg[tower_id])  # type: ignore[return-value]
        rng = rng_for(seed, STREAM_POINTING, index, 0)
        return tuple(float(e) for e in rng.normal(0.0, self.pointing_sigma_deg, 3))  # type: ignore[return-value]

    def ground_z(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        """The DEM's height at local points, metres (the ground's edge value outside it)."""
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        dem = self.dem
        ny, nx = dem.z.shape
        xc = np.clip(xa, dem.x0, dem.x0 + (nx - 1) * dem.cell_m)
        yc = np.clip(ya, dem.y0, dem.y0 + (ny - 1) * dem.cell_m)
        return dem.elevation_at(xc, yc)

    def seen_z(self, origin: ArrayLike, x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        """Height of the ground at ``(x, y)`` as seen from ``origin`` (its curvature drop
        taken off), metres."""
        o = np.asarray(origin, dtype=np.float64)
        drop = curvature_factor(self.curvature_coeff) * (
            (np.asarray(x) - o[0]) ** 2 + (np.asarray(y) - o[1]) ** 2
        )
        return self.ground_z(x, y) - drop

    def clear(
        self, origin: ArrayLike, x: ArrayLike, y: ArrayLike, z: ArrayLike
    ) -> NDArray[np.bool_]:
        """Whether the line from ``origin`` (``(3,)``, metres) to each point ``(x, y, z)`` (``z``
        as seen from the origin, :meth:`seen_z`) passes over the ground all the way."""
        xa = np.atleast_1d(np.asarray(x, dtype=np.float64))
        ya = np.atleast_1d(np.asarray(y, dtype=np.float64))
        za = np.atleast_1d(np.asarray(z, dtype=np.float64))
        o = np.asarray(origin, dtype=np.float64)
        d = np.column_stack([xa - o[0], ya - o[1], za - o[2]])
        reach = np.hypot(d[:, 0], d[:, 1])
        hits = cast_rays(
            self.dem,
            np.broadcast_to(o, d.shape),
            d,
            max_range_m=float(np.max(reach, initial=0.0)) + 10.0,
            curvature_coeff=self.curvature_coeff,
        )
        return ~hits.hit | (hits.range_m >= reach - _REACH_TOLERANCE_M)

    def lowest_seen(
        self,
        origin: ArrayLike,
        x: ArrayLike,
        y: ArrayLike,
        foot_z: ArrayLike,
        height_m: ArrayLike,
    ) -> NDArray[np.float64]:
        """For bodies standing at ``(x, y)`` with their feet at ``foot_z`` (as seen from the
        origin) and ``height_m`` tall: the lowest of :data:`BODY_FRACTIONS` of their height
        seen from ``origin`` over the ground (0 = feet seen), NaN where none is."""
        xa = np.atleast_1d(np.asarray(x, dtype=np.float64))
        ya = np.atleast_1d(np.asarray(y, dtype=np.float64))
        fz = np.broadcast_to(np.asarray(foot_z, dtype=np.float64), xa.shape)
        hm = np.broadcast_to(np.asarray(height_m, dtype=np.float64), xa.shape)
        fr = np.asarray(BODY_FRACTIONS)
        # the foot point itself sits on the ground: test it a few centimetres up
        lift = np.maximum(fr[None, :] * hm[:, None], 0.05)
        ok = self.clear(
            origin,
            np.repeat(xa, fr.size),
            np.repeat(ya, fr.size),
            (fz[:, None] + lift).ravel(),
        ).reshape(xa.size, fr.size)
        first = np.argmax(ok, axis=1)
        return np.where(ok.any(axis=1), fr[first], np.nan)


__all__ = ["BODY_FRACTIONS", "PIR_HEIGHT_M", "SimTerrain"]
