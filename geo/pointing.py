"""How far a camera's ground positions can be trusted, and how to pin its pointing down.

A ground position from a tower camera is where the ray through a pixel meets the DEM
(:mod:`vigil.geo.raycast`). Its error comes from the pixel (the detector's centroid error),
from the pointing (pan, tilt and roll off from what the deployment says, by the tower's
specification or what is left after calibration) and from the ground's local slope, which
stretches or shrinks the error along the line of sight. :func:`ground_covariance` propagates
all three to a 2 x 2 covariance in the sector's frame (to first order, or through the ray
caster by sigma points or a quadrature).

:func:`calibrate_pointing` solves a camera's pan, tilt and roll offsets (and its focal length
if asked) from a few surveyed landmarks seen in its image, by least squares on the pixel
residuals (scipy), and reports the residuals in pixels and, on the ground, in metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel, TerrainError
from vigil.geo.raycast import (
    CURVATURE_REFRACTION,
    RayHits,
    cast_rays,
    curvature_factor,
    pixels_to_terrain,
)

#: Step of the finite differences of a ray's direction with respect to an angle, degrees.
_ANGLE_STEP_DEG = 1e-4
#: Seven-point Gauss-Hermite rule for a standard normal: the nodes off the centre (+-) and
#: their weights.
_GH_NODES = (1.1544053947399682, 2.366759410734541, 3.750439717725742)
_GH_WEIGHTS = (0.24013861108231469, 0.030757123967586493, 0.0005482688559722184)


def _rule(nodes: tuple[float, ...], weights: tuple[float, ...]) -> tuple[float, list]:
    """A symmetric rule for a standard normal: the centre's weight and ``(node, weight)``
    off the centre, each node with both signs."""
    steps = [(s * x, w) for x, w in zip(nodes, weights, strict=True) for s in (-1, 1)]
    return 1.0 - sum(w for _, w in steps), steps


def _even_rule(spacing: float, reach: float) -> tuple[float, list]:
    """Nodes ``spacing`` apart out to ``reach`` standard deviations, weighted by the normal
    density: they sample a crest (a step in the hits) as finely near the centre as far out."""
    x = np.arange(spacing, reach + 1e-9, spacing)
    w = np.exp(-0.5 * x * x)
    total = 1.0 + 2.0 * w.sum()
    return _rule(tuple(x.tolist()), tuple((w / total).tolist()))


#: The quadrature's rules: the pointing moves hits smoothly; a pixel may step over a crest.
_ANGLE_RULE = _rule(_GH_NODES, _GH_WEIGHTS)
_PIXEL_RULE = _even_rule(0.25, 4.0)
#: Smallest cosine of the angle between a ray and the ground's normal that the area prior
#: takes (a ray grazing the ground closer than this counts as this): picked on the tuning
#: seeds of ``benchmarks/bench_pointing.py`` (0.02 is a ray 1.1 degrees above the slope).
MIN_INCIDENCE_COS = 0.02


def _ray_jacobian(camera: PinholeCamera, u: NDArray, v: NDArray) -> NDArray[np.float64]:
    """d(ray direction)/d(u, v, pan, tilt, roll): ``(n, 3, 5)``, per pixel and per degree."""
    d = camera.rays(u, v)
    _, right, down = camera.basis()
    jac = np.empty((d.shape[0], 3, 5))
    jac[:, :, 0] = right
    jac[:, :, 1] = down
    for k, name in enumerate(("pan_deg", "tilt_deg", "roll_deg")):
        h = _ANGLE_STEP_DEG
        plus = replace(camera, **{name: getattr(camera, name) + h}).rays(u, v)
        minus = replace(camera, **{name: getattr(camera, name) - h}).rays(u, v)
        jac[:, :, 2 + k] = (plus - minus) / (2.0 * h)
    return jac


def ground_normal(
    dem: ElevationModel,
    x: ArrayLike,
    y: ArrayLike,
    origin_xy: tuple[float, float] = (0.0, 0.0),
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> NDArray[np.float64]:
    """Upward normals ``(n, 3)`` of the ground at local points: the DEM's slope (central
    differences a quarter cell apart), plus the curvature drop's slope seen from ``origin_xy``."""
    xa = np.atleast_1d(np.asarray(x, dtype=np.float64))
    ya = np.atleast_1d(np.asarray(y, dtype=np.float64))
    h = dem.cell_m / 4.0
    gx = (dem.elevation_at(xa + h, ya) - dem.elevation_at(xa - h, ya)) / (2.0 * h)
    gy = (dem.elevation_at(xa, ya + h) - dem.elevation_at(xa, ya - h)) / (2.0 * h)
    curv = curvature_factor(curvature_coeff)
    gx = gx - 2.0 * curv * (xa - origin_xy[0])
    gy = gy - 2.0 * curv * (ya - origin_xy[1])
    return np.column_stack([-gx, -gy, np.ones_like(gx)])


def ground_covariance(
    camera: PinholeCamera,
    dem: ElevationModel,
    u: ArrayLike,
    v: ArrayLike,
    *,
    pixel_sigma: float | ArrayLike = 1.0,
    pan_sigma_deg: float = 0.0,
    tilt_sigma_deg: float = 0.0,
    roll_sigma_deg: float = 0.0,
    curvature_coeff: float = CURVATURE_REFRACTION,
    method: Literal["linear", "sigma-points", "quadrature"] = "linear",
) -> tuple[RayHits, NDArray[np.float64]]:
    """Ground positions of pixels and their covariance in the sector's frame.

    Parameters
    ----------
    camera
        The camera, its mast standing on the DEM (:func:`vigil.geo.raycast.camera_on_terrain`).
    dem
        The ground.
    u, v
        Pixel coordinates of the detections.
    pixel_sigma
        Standard deviation of a detection's pixel position, pixels: one for all, one per
        detection ``(n,)`` for both axes, or ``(n, 2)`` per detection for ``u`` and ``v``.
    pan_sigma_deg, tilt_sigma_deg, roll_sigma_deg
        Standard deviations of the camera's pointing, degrees: the tower's specification, or
        what its calibration left.
    curvature_coeff
        Earth curvature and refraction coefficient, as for the ray casting.
    method
        ``linear``: first order at the hit (the local slope), exact for small errors on
        smooth ground. ``sigma-points``: the spread of the hits of ten rays cast at
        ``+-sqrt(5)`` standard deviations of each error source (an unscented transform with
        no centre weight), which also sees a ray that slips over a crest onto ground far
        behind, or into sky (placed at the rated range); ten ray casts per detection.
        ``quadrature``: for each error source, the second moment about the hit of the hits
        at the nodes of a rule for that source (the pixel's: 33 nodes a quarter of a standard
        deviation apart out to 4, weighted by the normal density, so that a crest a fraction
        of a pixel away is sampled as finely as one further out; the pointing's: the seven
        Gauss-Hermite nodes, out to 3.75 standard deviations), each node weighted also by the
        ground area its ray sees per unit of image (people stand anywhere on the ground, so a
        pixel on ground that the ray grazes, or on the far side of a crest, holds more of
        them: slant**2 / cos(incidence), the cosine no less than :data:`MIN_INCIDENCE_COS`);
        a node whose ray goes into sky weighs nothing (no ground to stand on there). The
        sources' moments add. 83 ray casts per detection; it sees a ray a few pixels from a
        crest that the others miss.

    Returns
    -------
    hits, covariance
        The ground points, and ``(n, 2, 2)`` covariances of their ``(x, y)``, square metres
        (NaN where a pixel sees sky).
    """
    for name, value in (
        ("pan_sigma_deg", pan_sigma_deg),
        ("tilt_sigma_deg", tilt_sigma_deg),
        ("roll_sigma_deg", roll_sigma_deg),
    ):
        if not (math.isfinite(value) and value >= 0.0):
            raise TerrainError(f"{name}={value!r}; expected a standard deviation >= 0")
    uu = np.atleast_1d(np.asarray(u, dtype=np.float64))
    vv = np.atleast_1d(np.asarray(v, dtype=np.float64))
    sig = _error_sigmas(uu.size, pixel_sigma, (pan_sigma_deg, tilt_sigma_deg, roll_sigma_deg))
    hits = pixels_to_terrain(camera, dem, uu, vv, curvature_coeff=curvature_coeff)
    if method == "sigma-points":
        return hits, _sigma_point_covariance(camera, dem, uu, vv, sig, hits, curvature_coeff)
    if method == "quadrature":
        return hits, _quadrature_covariance(camera, dem, uu, vv, sig, hits, curvature_coeff)
    if method != "linear":
        raise TerrainError(f"method={method!r}; expected 'linear', 'sigma-points' or 'quadrature'")
    d = camera.rays(uu, vv)
    t = hits.range_m / np.hypot(d[:, 0], d[:, 1])
    n = ground_normal(
        dem, np.nan_to_num(hits.x), np.nan_to_num(hits.y), (camera.x, camera.y), curvature_coeff
    )
    nd = np.einsum("ij,ij->i", n, d)
    jd = _ray_jacobian(camera, uu, vv)
    # dp = t (dd - d (n . dd) / (n . d)), for each of the five error sources
    n_jd = np.einsum("ij,ijk->ik", n, jd)
    jp = t[:, None, None] * (jd - d[:, :, None] * (n_jd / nd[:, None])[:, None, :])
    jxy = jp[:, :2, :] * sig[:, None, :]
    cov = np.einsum("nik,njk->nij", jxy, jxy)
    cov[~hits.hit] = np.nan
    return hits, cov


def _error_sigmas(n: int, pixel_sigma: float | ArrayLike, pointing: tuple) -> NDArray:
    """Standard deviations ``(n, 5)`` of each detection's error sources: pixel ``u`` and
    ``v``, then pan, tilt and roll (degrees, the same for all)."""
    px = np.asarray(pixel_sigma, dtype=np.float64)
    if px.ndim == 0 or px.shape == (n,):
        px = np.repeat(np.broadcast_to(px, (n,))[:, None], 2, axis=1)
    if px.shape != (n, 2):
        raise TerrainError(
            f"pixel_sigma of shape {px.shape}; expected one value, (n,) or (n, 2) for n={n}"
        )
    if not (np.all(np.isfinite(px)) and np.all(px >= 0.0)):
        raise TerrainError("pixel_sigma: expected standard deviations >= 0, pixels")
    sig = np.empty((n, 5))
    sig[:, :2] = px
    sig[:, 2:] = np.asarray(pointing, dtype=np.float64)[None, :]
    return sig


def _sigma_point_covariance(
    camera: PinholeCamera,
    dem: ElevationModel,
    u: NDArray,
    v: NDArray,
    sig: NDArray,
    hits: RayHits,
    curvature_coeff: float,
) -> NDArray[np.float64]:
    """Covariance of the hits of rays cast at +-sqrt(5) sigma of each error source about the
    nominal hit; a sigma ray into sky counts at the rated range on its azimuth. ``sig`` is
    ``(n, 5)``: per detection, pixel ``u``, ``v``, pan, tilt, roll."""
    n = sig.shape[1]
    spread = math.sqrt(n)
    errors = []
    for k in range(n):
        if not np.any(sig[:, k] != 0.0):
            continue
        for sign in (-1.0, 1.0):
            _, _, _, x, y = _perturbed_hits(
                camera, dem, u, v, k, sign * spread * sig[:, k], curvature_coeff
            )
            errors.append(np.column_stack([x - hits.x, y - hits.y]))
    if not errors:
        cov = np.zeros((u.size, 2, 2))
    else:
        e = np.stack(errors)
        cov = np.einsum("kni,knj->nij", e, e) / (2.0 * n)
    cov[~hits.hit] = np.nan
    return cov


def _perturbed_hits(
    camera: PinholeCamera,
    dem: ElevationModel,
    u: NDArray,
    v: NDArray,
    k: int,
    step: NDArray,
    curvature_coeff: float,
) -> tuple[PinholeCamera, RayHits, NDArray, NDArray, NDArray]:
    """Cast the rays with error source ``k`` (pixel u, v, pan, tilt, roll) moved by ``step``
    (per detection): the camera, the hits, the rays, and ``(x, y)`` where a ray into sky is
    placed at the rated range on its azimuth."""
    names = (None, None, "pan_deg", "tilt_deg", "roll_deg")
    cam = camera
    du = step if k == 0 else 0.0
    dv = step if k == 1 else 0.0
    if names[k] is not None:
        angle = float(step[0])  # the pointing's sigmas are the same for all
        cam = replace(camera, **{names[k]: getattr(camera, names[k]) + angle})
    got = pixels_to_terrain(cam, dem, u + du, v + dv, curvature_coeff=curvature_coeff)
    d = cam.rays(u + du, v + dv)
    az = np.arctan2(d[:, 0], d[:, 1])
    x = np.where(got.hit, got.x, cam.x + cam.max_range_m * np.sin(az))
    y = np.where(got.hit, got.y, cam.y + cam.max_range_m * np.cos(az))
    return cam, got, d, x, y


def ground_per_pixel(
    camera: PinholeCamera,
    dem: ElevationModel,
    hits: RayHits,
    rays: NDArray,
    curvature_coeff: float = CURVATURE_REFRACTION,
    min_cos: float = MIN_INCIDENCE_COS,
) -> NDArray[np.float64]:
    """Map area (square metres, up to a constant) that each ray's pixel covers at its hit:
    ``slant**2 * n_z / cos(incidence) * f / |d|**3`` (``d`` the unnormalised ray, ``f`` the
    focal length in pixels, ``n`` the ground's unit normal); NaN where a ray sees sky."""
    n = ground_normal(
        dem, np.nan_to_num(hits.x), np.nan_to_num(hits.y), (camera.x, camera.y), curvature_coeff
    )
    n_len = np.linalg.norm(n, axis=1)
    d_len = np.linalg.norm(rays, axis=1)
    cos = np.abs(np.einsum("ij,ij->i", n, rays)) / (n_len * d_len)
    c = camera.centre
    slant2 = (hits.x - c[0]) ** 2 + (hits.y - c[1]) ** 2 + (hits.z - c[2]) ** 2
    return slant2 / n_len / np.maximum(cos, min_cos) * camera.focal_px / d_len**3


def _quadrature_covariance(
    camera: PinholeCamera,
    dem: ElevationModel,
    u: NDArray,
    v: NDArray,
    sig: NDArray,
    hits: RayHits,
    curvature_coeff: float,
) -> NDArray[np.float64]:
    """Sum over the error sources of the area-weighted second moment, about the hit, of the
    hits at the nodes of that source's rule (see :func:`ground_covariance`). All the nodes'
    rays are cast at once (turning the camera does not move its centre)."""
    names = (None, None, "pan_deg", "tilt_deg", "roll_deg")
    n = u.size
    sources = [k for k in range(sig.shape[1]) if np.any(sig[:, k] != 0.0)]
    rules = {k: (_PIXEL_RULE if k < 2 else _ANGLE_RULE) for k in sources}
    d0 = camera.rays(u, v)
    _, right, down = camera.basis()
    rays = []
    for k in sources:
        for step, _ in rules[k][1]:
            delta = step * sig[:, k]
            if names[k] is None:
                # a pinhole's ray moves along the image's axes with the pixel
                rays.append(d0 + delta[:, None] * (right if k == 0 else down)[None, :])
            else:
                angle = float(delta[0])  # the pointing's sigmas are the same for all
                cam = replace(camera, **{names[k]: getattr(camera, names[k]) + angle})
                rays.append(cam.rays(u, v))
    d = np.concatenate([d0, *rays]) if rays else d0
    got = cast_rays(
        dem,
        np.broadcast_to(camera.centre, d.shape),
        d,
        max_range_m=camera.max_range_m,
        curvature_coeff=curvature_coeff,
    )
    area = ground_per_pixel(camera, dem, got, d, curvature_coeff).reshape(-1, n)
    area0 = area[0]
    # a ray into sky meets no ground a person could stand on: its node weighs nothing
    area = np.where(np.isfinite(area[1:]), area[1:], 0.0)
    az = np.arctan2(d[n:, 0], d[n:, 1])
    x = np.where(np.isfinite(got.x[n:]), got.x[n:], camera.x + camera.max_range_m * np.sin(az))
    y = np.where(np.isfinite(got.y[n:]), got.y[n:], camera.y + camera.max_range_m * np.cos(az))
    ex = x.reshape(-1, n) - hits.x[None, :]
    ey = y.reshape(-1, n) - hits.y[None, :]
    cov = np.zeros((n, 2, 2))
    start = 0
    for k in sources:
        w0, steps = rules[k]
        weights = np.array([w for _, w in steps])
        sl = slice(start, start + len(steps))
        start += len(steps)
        wa = weights[:, None] * area[sl]
        den = w0 * area0 + wa.sum(0)
        cov[:, 0, 0] += (wa * ex[sl] ** 2).sum(0) / den
        cov[:, 1, 1] += (wa * ey[sl] ** 2).sum(0) / den
        cov[:, 0, 1] += (wa * ex[sl] * ey[sl]).sum(0) / den
    cov[:, 1, 0] = cov[:, 0, 1]
    cov[~hits.hit] = np.nan
    return cov


@dataclass(frozen=True)
class PointingCalibration:
    """A camera's pointing solved from landmarks.

    Attributes
    ----------
    camera
        The calibrated camera (offsets applied; focal length too when solved).
    pan_offset_deg, tilt_offset_deg, roll_offset_deg
        What was added to the nominal pan, tilt and roll, degrees.
    hfov_deg
        The horizontal field of view after calibration, degrees.
    residual_px
        Each landmark's pixel residual after calibration (distance), pixels.
    residual_m
        Each landmark's residual on the ground, metres: from where its observed pixel's ray
        meets the DEM to the landmark (NaN where that ray sees sky); without a DEM, the pixel
        residual's size at the landmark's distance.
    sigma_deg
        Standard errors of the pan, tilt and roll offsets, degrees (from the fit's Jacobian and
        its residuals): the pointing uncertainty to give :func:`ground_covariance`.
    """

    camera: PinholeCamera
    pan_offset_deg: float
    tilt_offset_deg: float
    roll_offset_deg: float
    hfov_deg: float
    residual_px: NDArray[np.float64]
    residual_m: NDArray[np.float64]
    sigma_deg: tuple[float, float, float]

    @property
    def rms_px(self) -> float:
        """Root mean square of the pixel residuals."""
        return float(np.sqrt(np.mean(self.residual_px**2)))


def _adjusted(camera: PinholeCamera, params: NDArray, solve_focal: bool) -> PinholeCamera:
    pan = float((camera.pan_deg + params[0]) % 360.0)
    hfov = camera.hfov_deg
    if solve_focal:
        half = math.radians(camera.hfov_deg) / 2.0
        hfov = math.degrees(2.0 * math.atan(math.tan(half) / math.exp(params[3])))
    return replace(
        camera,
        pan_deg=pan,
        tilt_deg=float(camera.tilt_deg + params[1]),
        roll_deg=float(camera.roll_deg + params[2]),
        hfov_deg=hfov,
    )


def calibrate_pointing(
    camera: PinholeCamera,
    pixels: ArrayLike,
    landmarks: ArrayLike,
    *,
    solve_focal: bool = False,
    dem: ElevationModel | None = None,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> PointingCalibration:
    """Solve a camera's pan, tilt and roll offsets (and focal length) from landmarks.

    Parameters
    ----------
    camera
        The camera as the deployment describes it, its mast standing on the ground
        (``ground_z`` the ground's height there).
    pixels
        ``(n, 2)`` pixel coordinates ``(u, v)`` where each landmark is seen.
    landmarks
        ``(n, 3)`` surveyed positions: local ``x``, ``y`` and height ``z`` (the DEM's datum),
        metres.
    solve_focal
        Also solve the focal length (the field of view); needs at least two landmarks well
        apart in the image.
    dem
        The ground, for the residuals in metres.
    curvature_coeff
        Earth curvature and refraction coefficient: a landmark ``r`` metres away is seen
        ``coeff * r**2 / (2 a)`` lower than its surveyed height, as the ray casting has it.

    Raises
    ------
    TerrainError
        Too few landmarks, bad shapes or values, or a landmark behind the camera.
    """
    from scipy.optimize import least_squares

    px = np.asarray(pixels, dtype=np.float64)
    lm = np.asarray(landmarks, dtype=np.float64)
    if px.ndim != 2 or px.shape[1] != 2 or lm.shape != (px.shape[0], 3):
        raise TerrainError(f"pixels {px.shape} and landmarks {lm.shape}; expected (n, 2), (n, 3)")
    n_params = 4 if solve_focal else 3
    if 2 * px.shape[0] < n_params + 1:
        raise TerrainError(
            f"{px.shape[0]} landmark(s); at least {(n_params + 2) // 2} needed to solve "
            f"{n_params} unknowns with a check"
        )
    if px.shape[0] > 10_000:
        raise TerrainError(f"{px.shape[0]} landmarks; at most 10000")
    if not (np.all(np.isfinite(px)) and np.all(np.isfinite(lm))):
        raise TerrainError("pixels or landmarks contain NaN or infinity")
    drop = curvature_factor(curvature_coeff) * (
        (lm[:, 0] - camera.x) ** 2 + (lm[:, 1] - camera.y) ** 2
    )
    rel_z = lm[:, 2] - drop - camera.ground_z
    _, _, depth = camera.project(lm[:, 0], lm[:, 1], rel_z)
    if np.any(depth <= 0.0):
        k = int(np.flatnonzero(depth <= 0.0)[0])
        raise TerrainError(f"landmark {k} at {lm[k].tolist()} is behind the camera")

    def residuals(params: NDArray) -> NDArray:
        cam = _adjusted(camera, params, solve_focal)
        u, v, _ = cam.project(lm[:, 0], lm[:, 1], rel_z)
        return np.concatenate([u - px[:, 0], v - px[:, 1]])

    fit = least_squares(residuals, np.zeros(n_params), method="lm", xtol=1e-12, ftol=1e-12)
    cam = _adjusted(camera, fit.x, solve_focal)
    r = fit.fun.reshape(2, -1)
    residual_px = np.hypot(r[0], r[1])
    if dem is not None:
        hits = pixels_to_terrain(cam, dem, px[:, 0], px[:, 1], curvature_coeff=curvature_coeff)
        residual_m = np.hypot(hits.x - lm[:, 0], hits.y - lm[:, 1])
    else:
        slant = np.sqrt(
            (lm[:, 0] - cam.x) ** 2 + (lm[:, 1] - cam.y) ** 2 + (rel_z - cam.height_m) ** 2
        )
        residual_m = residual_px * slant / cam.focal_px
    m, p = fit.fun.size, n_params
    dof = max(m - p, 1)
    s2 = float(np.sum(fit.fun**2)) / dof
    try:
        param_cov = np.linalg.inv(fit.jac.T @ fit.jac) * s2
        sig = np.sqrt(np.clip(np.diag(param_cov)[:3], 0.0, None))
    except np.linalg.LinAlgError:
        sig = np.full(3, np.inf)
    return PointingCalibration(
        camera=cam,
        pan_offset_deg=float(fit.x[0]),
        tilt_offset_deg=float(fit.x[1]),
        roll_offset_deg=float(fit.x[2]),
        hfov_deg=cam.hfov_deg,
        residual_px=residual_px,
        residual_m=residual_m,
        sigma_deg=(float(sig[0]), float(sig[1]), float(sig[2])),
    )
