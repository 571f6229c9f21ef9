"""A tower camera on hilly ground: detections placed where their rays meet the DEM.

:class:`TerrainGeometry` is a :class:`~vigil.detection.objects.CameraGeometry` whose
``ground`` casts each blob's ray onto the sector's elevation model
(:func:`vigil.geo.raycast.cast_rays`) instead of a flat plane, and whose ``covariance`` is
:func:`vigil.geo.pointing.ground_covariance`: the pixel error, the pointing error (the tower's
calibration or its specification) and the ground's relief around the hit, by its area-weighted
quadrature (the first-order covariance was far too small on rough relief: mean NEES 10-460 in
``benchmarks/bench_pointing.py``, where the quadrature gives about 2).
The follower (:class:`~vigil.detection.objects.ObjectFollower`) uses it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from vigil.detection.background import DetectionError
from vigil.detection.objects import CameraGeometry
from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel
from vigil.geo.frames import LocalFrame
from vigil.geo.pointing import ground_covariance
from vigil.geo.raycast import (
    CURVATURE_REFRACTION,
    camera_on_terrain,
    cast_rays,
    curvature_factor,
)


class TerrainGeometry(CameraGeometry):
    """A camera standing on a DEM: pixels -> ground on the relief, with its covariance.

    Parameters
    ----------
    camera
        The pinhole model, pointing calibration applied; its ``ground_z`` is replaced by the
        DEM's height under the mast.
    frame
        The sector's local frame (the DEM's).
    camera_id
        Name carried by the detections.
    dem
        The sector's ground.
    pointing_sigma_deg
        Standard deviations of pan, tilt and roll, degrees: what calibration left, or the
        tower's specification.
    reach_factor
        Rays are followed to this multiple of the camera's rated range, beyond which they
        count as sky (the follower drops blobs past 1.25 times the range by default).
    curvature_coeff
        Earth curvature and refraction coefficient, as for the ray casting.
    """

    def __init__(
        self,
        camera: PinholeCamera,
        frame: LocalFrame,
        camera_id: str,
        dem: ElevationModel,
        *,
        pointing_sigma_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
        reach_factor: float = 1.5,
        curvature_coeff: float = CURVATURE_REFRACTION,
    ) -> None:
        if not (math.isfinite(reach_factor) and reach_factor >= 1.0):
            raise DetectionError(f"reach_factor={reach_factor!r}; expected a number >= 1")
        if len(pointing_sigma_deg) != 3 or not all(
            math.isfinite(s) and s >= 0.0 for s in pointing_sigma_deg
        ):
            raise DetectionError(
                f"pointing_sigma_deg={pointing_sigma_deg!r}; expected three standard "
                "deviations >= 0 (pan, tilt, roll), degrees"
            )
        super().__init__(camera_on_terrain(camera, dem), frame, camera_id)
        self.dem = dem
        self.pointing_sigma_deg = tuple(float(s) for s in pointing_sigma_deg)
        self.curvature_coeff = curvature_coeff
        # the same camera followed further: a blob a little past the rated range still lands
        self._reach = replace(self.camera, max_range_m=reach_factor * self.camera.max_range_m)

    @property
    def reach_m(self) -> float:
        """How far along a ray this geometry follows the ground, m (the camera's rated
        range times ``reach_factor``)."""
        return float(self._reach.max_range_m)

    def ground(
        self, u: NDArray[np.float64], v: NDArray[np.float64], z: float = 0.0
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
        """Ground ``(x, y, hit, range_m)`` under points ``z`` m above the relief seen at
        pixels ``(u, v)``: the ray meets the ground raised by ``z``, which is the ground met
        by the same ray from ``z`` lower down. NaN and ``hit`` False where it sees sky."""
        cam = self._reach
        d = cam.rays(u, v)
        origin = cam.centre - np.array([0.0, 0.0, float(z)])
        hits = cast_rays(
            self.dem,
            np.broadcast_to(origin, d.shape),
            d,
            max_range_m=cam.max_range_m,
            curvature_coeff=self.curvature_coeff,
        )
        return hits.x, hits.y, hits.hit, hits.range_m

    def foot_v(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        """Image row where the relief at local ``(x, y)`` is seen (its height, less the
        curvature drop, above the mast's foot)."""
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        drop = curvature_factor(self.curvature_coeff) * (
            (xa - self.camera.x) ** 2 + (ya - self.camera.y) ** 2
        )
        rel = self.dem.elevation_at(xa, ya) - drop - self.camera.ground_z
        return self.camera.project(xa, ya, rel)[1]

    def covariance(
        self,
        u: NDArray[np.float64],
        v: NDArray[np.float64],
        sigma_u: NDArray[np.float64],
        sigma_v: NDArray[np.float64],
        floor_sigma_m: float = 0.5,
        method: Literal["linear", "sigma-points", "quadrature"] = "quadrature",
    ) -> NDArray[np.float64]:
        """East-north covariance (``(n, 2, 2)``, m^2) of the ground seen at ``(u, v)``: the
        pixel error (``sigma_u``, ``sigma_v``, pixels), the pointing error and the slope at
        the rays near the hit (:func:`vigil.geo.pointing.ground_covariance`, ``method``, by
        default its quadrature), plus the floor.
        Where a foot pixel's ray slips past the ground, the flat-plane covariance stands in."""
        uu = np.atleast_1d(np.asarray(u, np.float64))
        vv = np.atleast_1d(np.asarray(v, np.float64))
        px = np.column_stack(
            [np.broadcast_to(sigma_u, uu.shape), np.broadcast_to(sigma_v, uu.shape)]
        )
        pan, tilt, roll = self.pointing_sigma_deg
        _, cov = ground_covariance(
            self._reach,
            self.dem,
            uu,
            vv,
            pixel_sigma=px,
            pan_sigma_deg=pan,
            tilt_sigma_deg=tilt,
            roll_sigma_deg=roll,
            curvature_coeff=self.curvature_coeff,
            method=method,
        )
        bad = ~np.all(np.isfinite(cov), axis=(1, 2))
        if np.any(bad):
            cov[bad] = super().covariance(uu[bad], vv[bad], px[bad, 0], px[bad, 1], 0.0)
            # above the flat horizon too: a quarter of the rated range, every way
            worse = ~np.all(np.isfinite(cov), axis=(1, 2))
            cov[worse] = np.eye(2) * (0.25 * self.camera.max_range_m) ** 2
        cov[:, 0, 0] += floor_sigma_m**2
        cov[:, 1, 1] += floor_sigma_m**2
        return cov


__all__ = ["TerrainGeometry"]
