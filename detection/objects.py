"""Blobs -> detections: size at range, persistence over frames, a class guess, and the ground.

A blob becomes a detection when

1. its size fits something on the ground at the range of its foot pixel (a person at 2 km
   is a pixel or two tall through a tower lens, a person at 200 m fifteen), so birds in the
   sky, a dust devil's whole plume or a single flickering pixel up close are dropped;
2. it persists: a blob matched at nearly the same place in at least ``min_hits`` of the
   last ``window`` frames. Shimmer and sensor noise light single pixels at random places
   and rarely twice in a row; a walker lights the same few pixels frame after frame;
3. it is placed on the ground through the camera model, with a covariance made from the
   pixel uncertainty of its foot point through the Jacobian of pixel -> ground, which grows
   with range (roughly as range squared along the line of sight at grazing angles).

Without a camera model, steps 1 and 3 are skipped and detections stay in pixels
(:class:`PixelDetection`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import msgspec
import numpy as np
from numpy.typing import NDArray

from vigil.detection.background import DetectionError
from vigil.detection.blobs import Blobs
from vigil.detection.class_guess import SPEED_SIGMAS, ground_speed, guess_class, surely_faster
from vigil.detection.psf import guess_blurred
from vigil.geo.camera import PinholeCamera
from vigil.geo.frames import LocalFrame
from vigil.ingest.schema import CameraDetection


class PixelDetection(msgspec.Struct, frozen=True, kw_only=True, tag="pixel_detection"):
    """A moving object in image coordinates, for video without a camera model.

    ``box`` is ``(u0, v0, u1, v1)`` in continuous pixel coordinates (pixel column ``i``
    covers ``[i, i + 1)``); ``centroid`` is ``(u, v)`` in the same coordinates; ``object``
    numbers the object across frames.
    """

    camera: str
    time: float
    frame: int
    box: tuple[float, float, float, float]
    centroid: tuple[float, float]
    area_px: int
    score: float
    object: int


@dataclass(frozen=True)
class ObjectParams:
    """Settings of blob -> detection.

    Parameters
    ----------
    min_height_m, max_height_m, max_width_m
        Physical size a blob may have at its range, metres.
    size_slack_px
        Pixels of slack on the size tests (blobs at long range are quantised to pixels).
    max_range_factor
        Blobs whose foot meets the ground beyond this multiple of the rated range are dropped.
    min_area_px
        Smallest blob considered, pixels.
    min_hits, window
        Persistence: a detection needs a blob matched in ``min_hits`` of the last ``window``
        frames.
    max_missed
        Frames without a matching blob after which an object is forgotten.
    gate_px
        Base distance within which a blob continues an object, pixels; half the blob's
        size and the object's pixel speed are added.
    pixel_sigma
        Standard deviation of the foot point in pixels, added in quadrature to the blob's
        extent and the pointing error.
    pointing_sigma_deg
        Standard deviation of the camera's pointing (calibration, sway), degrees.
    floor_sigma_m
        Smallest position standard deviation reported, metres.
    centre_height_m
        Height above the ground of a body's middle, metres (half a standing person). The
        ground position is where the ray through the blob's centroid meets the plane this
        high, and the body stands under it. At a tower's grazing angles a pixel of image
        height is tens of metres of range, so this is far steadier than the blob's bottom
        row: the centroid is a sub-pixel average and does not jump as the body's lowest
        pixel crosses the threshold.
    subpixel_size_px
        Blobs at most this many pixels tall are sized for the class guess from their
        weighted spread when the blobs carry one (a body of ``w`` pixels spreads
        ``(w^2 + 1) / 12`` pixels^2), not from their whole-pixel box.
    min_size_px
        Smallest larger side (width or height) of a blob, pixels; 0 is off.
    min_size_m
        Smallest larger ground extent of a blob at its range (its larger side in pixels
        times the metres a pixel spans there, no slack), metres; 0 is off. Needs a camera
        model; without one it is not applied.
    unplaced
        Blobs the ground cannot place (the ray sees sky, or meets ground past
        ``max_range_factor`` times the range) are followed too, sized at the rated range, and
        the confirmed ones given as :class:`PixelDetection` (``ObjectsResult.unplaced``): on
        relief their feet row still tells the side of the line
        (:mod:`vigil.geo.unplaced_side`). Off: dropped, as before.
    psf_sigma_px
        Standard deviation of the optics' Gaussian PSF, pixels; 0 (sharp): the class guess
        sizes a blob from its spread (:func:`guess_class`). Above 0, a blob sized by its
        spread is guessed by blurred templates (:func:`vigil.detection.psf.guess_blurred`),
        and the weighted moments' window widens to two PSF sigmas.
    psf_cut_dn
        Grey levels under which the templates' blurred pixels weigh nothing (the background
        model's threshold: what stands out less is learnt).
    speed_sigmas
        How many of its standard errors the ground speed over the last 3 s (least squares,
        from each position's covariance: :func:`window_speed`) must stand above 6 m/s to say
        "vehicle" (:func:`surely_faster`). ``None``: 1 where the PSF model runs
        (``psf_sigma_px > 0``); on sharp frames the older rule, the first-to-last speed over
        6 m/s with no error, which the golden demo's outputs were recorded with.
    """

    min_height_m: float = 0.3
    max_height_m: float = 5.0
    max_width_m: float = 20.0
    size_slack_px: float = 1.5
    max_range_factor: float = 1.25
    min_area_px: int = 1
    min_hits: int = 3
    window: int = 5
    max_missed: int = 5
    gate_px: float = 2.0
    pixel_sigma: float = 0.5
    pointing_sigma_deg: float = 0.03
    floor_sigma_m: float = 0.5
    centre_height_m: float = 0.85
    subpixel_size_px: float = 12.0
    min_size_px: float = 0.0
    min_size_m: float = 0.0
    psf_sigma_px: float = 0.0
    psf_cut_dn: float = 12.0
    unplaced: bool = False
    speed_sigmas: float | None = None

    def __post_init__(self) -> None:
        for name in ("min_size_px", "min_size_m", "psf_sigma_px", "psf_cut_dn"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise DetectionError(f"{name}={value!r}; expected a size >= 0")
        k = self.speed_sigmas
        if k is not None and not (math.isfinite(k) and k >= 0):
            raise DetectionError(f"speed_sigmas={k!r}; expected None or a number >= 0")
        if not 1 <= self.min_hits <= self.window <= 62:
            raise DetectionError(
                f"persistence min_hits={self.min_hits!r}, window={self.window!r}; "
                "expected 1 <= min_hits <= window <= 62"
            )
        for name in ("min_height_m", "max_height_m", "max_width_m", "gate_px", "pixel_sigma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise DetectionError(f"{name}={value!r}; expected a positive number")
        if not (math.isfinite(self.centre_height_m) and self.centre_height_m >= 0):
            raise DetectionError(
                f"centre_height_m={self.centre_height_m!r}; expected a height >= 0 in metres"
            )
        if self.min_height_m >= self.max_height_m:
            raise DetectionError(
                f"min_height_m={self.min_height_m!r} >= max_height_m={self.max_height_m!r}"
            )


class CameraGeometry:
    """A camera placed in a sector: pixels -> ground position, range and covariance.

    Parameters
    ----------
    camera
        The pinhole model (position in ``frame``'s metres, pointing, lens, image size).
    frame
        The sector's local frame, for latitude and longitude.
    camera_id
        Name carried by the detections.
    """

    #: Pan, tilt and roll standard deviations (degrees) when :meth:`covariance` carries the
    #: pointing error itself (:class:`vigil.detection.terrain.TerrainGeometry`); None here,
    #: where the follower adds its ``pointing_sigma_deg`` to the pixel error instead.
    pointing_sigma_deg: tuple[float, float, float] | None = None

    def __init__(self, camera: PinholeCamera, frame: LocalFrame, camera_id: str) -> None:
        self.camera = camera
        self.frame = frame
        self.camera_id = camera_id

    def ground(
        self, u: NDArray[np.float64], v: NDArray[np.float64], z: float = 0.0
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
        """Ground ``(x, y, hit, range_m)`` under points ``z`` m up seen at pixels ``(u, v)``."""
        x, y, hit = self.camera.to_ground(u, v, z)
        rng = np.hypot(x - self.camera.x, y - self.camera.y)
        return x, y, hit, rng

    def foot_v(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        """Image row (continuous pixels) where the ground at local ``(x, y)`` is seen."""
        return self.camera.project(x, y, 0.0)[1]

    def covariance(
        self,
        u: NDArray[np.float64],
        v: NDArray[np.float64],
        sigma_u: NDArray[np.float64],
        sigma_v: NDArray[np.float64],
        floor_sigma_m: float = 0.5,
    ) -> NDArray[np.float64]:
        """East-north covariance (``(n, 2, 2)``, m^2) of ground points seen at ``(u, v)``.

        The pixel uncertainty (standard deviations ``sigma_u``, ``sigma_v`` in pixels) is
        carried to the ground through the Jacobian of pixel -> ground, taken by central
        differences of half a pixel.
        """
        u = np.asarray(u, np.float64)
        v = np.asarray(v, np.float64)
        h = 0.5
        xu1, yu1, _ = self.camera.to_ground(u + h, v)
        xu0, yu0, _ = self.camera.to_ground(u - h, v)
        xv1, yv1, _ = self.camera.to_ground(u, v + h)
        xv0, yv0, _ = self.camera.to_ground(u, v - h)
        jac = np.empty((u.size, 2, 2))
        jac[:, 0, 0] = (xu1 - xu0) / (2 * h)
        jac[:, 1, 0] = (yu1 - yu0) / (2 * h)
        jac[:, 0, 1] = (xv1 - xv0) / (2 * h)
        jac[:, 1, 1] = (yv1 - yv0) / (2 * h)
        pix = np.zeros((u.size, 2, 2))
        pix[:, 0, 0] = np.asarray(sigma_u, np.float64) ** 2
        pix[:, 1, 1] = np.asarray(sigma_v, np.float64) ** 2
        cov = jac @ pix @ np.transpose(jac, (0, 2, 1))
        cov[:, 0, 0] += floor_sigma_m**2
        cov[:, 1, 1] += floor_sigma_m**2
        return cov


@dataclass
class _Object:
    """An object followed across frames in pixels (foot point)."""

    number: int
    u: float
    v: float
    du: float = 0.0
    dv: float = 0.0
    hits: int = 1  # bit i set: matched i frames ago
    missed: int = 0
    ground: list[tuple] = field(default_factory=list)  # (t, x, y, cov 2x2) last 3 s
    spread: tuple[float, float, float, int] = (0.0, 0.0, 0.0, 0)  # mean var_u, var_v, peak; n

    def hit_count(self, window: int) -> int:
        return (self.hits & ((1 << window) - 1)).bit_count()


@dataclass
class ObjectsResult:
    """What one frame's blobs became."""

    detections: list[CameraDetection]
    pixel_detections: list[PixelDetection]
    kept: NDArray[np.bool_]  # which blobs passed the size test
    detection_objects: list[int] = field(default_factory=list)  # object number per detection
    # with ObjectParams.unplaced: confirmed blobs the ground cannot place (feet: box bottom)
    unplaced: list[PixelDetection] = field(default_factory=list)


class ObjectFollower:
    """Turn each frame's blobs into detections for one camera.

    Parameters
    ----------
    camera_id
        Name carried by the detections.
    params
        Size, persistence and covariance settings.
    geometry
        The camera placed on the ground; ``None`` for plain video (pixel detections only).
    """

    def __init__(
        self,
        camera_id: str,
        params: ObjectParams | None = None,
        geometry: CameraGeometry | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.params = params or ObjectParams()
        self.geometry = geometry
        self.objects: list[_Object] = []
        self._next = 1
        self.last_time: float | None = None

    def reset(self) -> None:
        """Forget every object (after the camera moved)."""
        self.objects = []
        self.last_time = None

    def _size_test(self, blobs: Blobs) -> tuple[NDArray[np.bool_], dict[str, NDArray]]:
        p = self.params
        u = blobs.cx + 0.5
        v_foot = (blobs.top + blobs.height).astype(np.float64)
        keep = blobs.area >= p.min_area_px
        side = np.maximum(blobs.width, blobs.height)
        if p.min_size_px > 0:
            keep &= side >= p.min_size_px
        info: dict[str, NDArray] = {"u": u, "v": v_foot}
        geo = self.geometry
        if geo is None or len(blobs) == 0:
            return keep, info
        x, y, hit, rng = geo.ground(u, blobs.cy + 0.5, p.centre_height_m)
        cam = geo.camera
        # The foot's pixel, where the body's ground point is imaged (continuous rows).
        v_foot = np.where(hit, geo.foot_v(x, y), v_foot)
        info["v"] = v_foot
        mpp = cam.metres_per_pixel(np.where(hit, rng, cam.max_range_m))
        slack = p.size_slack_px
        placed = hit & (rng <= p.max_range_factor * cam.max_range_m)
        keep &= placed | p.unplaced  # unplaced: followed, and given as pixels only
        keep &= (blobs.height + slack) * mpp >= p.min_height_m
        keep &= (blobs.height - slack) * mpp <= p.max_height_m
        keep &= (blobs.width - slack) * mpp <= p.max_width_m
        if p.min_size_m > 0:
            keep &= side * mpp >= p.min_size_m
        info.update(x=x, y=y, range=rng, mpp=mpp, placed=placed)
        return keep, info

    def update(self, blobs: Blobs, time_s: float, frame_index: int) -> ObjectsResult:
        """Follow this frame's blobs and return the detections it confirms."""
        p = self.params
        keep, info = self._size_test(blobs)
        idx = np.flatnonzero(keep)
        u, v = info["u"], info["v"]
        size = np.maximum(blobs.width, blobs.height).astype(np.float64)
        # Greedy nearest-first association of blobs to objects.
        match: dict[int, int] = {}
        if self.objects and idx.size:
            pu = np.array([o.u + o.du for o in self.objects])
            pv = np.array([o.v + o.dv for o in self.objects])
            speed = np.hypot([o.du for o in self.objects], [o.dv for o in self.objects])
            d = np.hypot(u[idx][None, :] - pu[:, None], v[idx][None, :] - pv[:, None])
            gate = p.gate_px + 0.5 * size[idx][None, :] + speed[:, None]
            jj, ii = np.nonzero(d <= gate)
            order = np.argsort(d[jj, ii], kind="stable")
            used_obj: set[int] = set()
            for k in order:
                j, i = int(jj[k]), int(idx[ii[k]])
                if j in used_obj or i in match:
                    continue
                used_obj.add(j)
                match[i] = j
        blob_obj: dict[int, _Object] = {i: self.objects[j] for i, j in match.items()}
        for obj in self.objects:
            obj.hits <<= 1
        for i, obj in blob_obj.items():
            nu, nv = float(u[i]), float(v[i])
            obj.du = 0.7 * obj.du + 0.3 * (nu - obj.u)
            obj.dv = 0.7 * obj.dv + 0.3 * (nv - obj.v)
            obj.u, obj.v = nu, nv
            obj.hits |= 1
            obj.missed = 0
        for obj in self.objects:
            if not obj.hits & 1:
                obj.missed += 1
        self.objects = [o for o in self.objects if o.missed <= p.max_missed]
        for i in idx:
            if int(i) not in blob_obj:
                obj = _Object(self._next, float(u[i]), float(v[i]))
                self._next += 1
                self.objects.append(obj)
                blob_obj[int(i)] = obj
        self.last_time = time_s
        return self._emit(blobs, info, blob_obj, time_s, frame_index, keep)

    def _emit(
        self,
        blobs: Blobs,
        info: dict[str, NDArray],
        blob_obj: dict[int, _Object],
        time_s: float,
        frame_index: int,
        keep: NDArray[np.bool_],
    ) -> ObjectsResult:
        p = self.params
        confirmed = [
            (i, o) for i, o in sorted(blob_obj.items()) if o.hit_count(p.window) >= p.min_hits
        ]
        dets: list[CameraDetection] = []
        pix: list[PixelDetection] = []
        for i, obj in confirmed:
            score = round(min(1.0, obj.hit_count(p.window) / p.window), 3)
            left, top = float(blobs.left[i]), float(blobs.top[i])
            box = (left, top, left + float(blobs.width[i]), top + float(blobs.height[i]))
            if self.geometry is None:
                pix.append(
                    PixelDetection(
                        camera=self.camera_id,
                        time=time_s,
                        frame=frame_index,
                        box=box,
                        centroid=(float(blobs.cx[i]) + 0.5, float(blobs.cy[i]) + 0.5),
                        area_px=int(blobs.area[i]),
                        score=score,
                        object=obj.number,
                    )
                )
        out: list[PixelDetection] = []
        if self.geometry is not None and p.unplaced and "placed" in info:
            out = [
                _pixels(self.camera_id, blobs, i, o, time_s, frame_index, p) for i, o in confirmed
            ]
            out = [d for (i, _), d in zip(confirmed, out, strict=True) if not info["placed"][i]]
            confirmed = [(i, o) for i, o in confirmed if info["placed"][i]]
        if self.geometry is None or not confirmed:
            return ObjectsResult(dets, pix, keep, unplaced=out)
        geo = self.geometry
        sel = np.array([i for i, _ in confirmed])
        f = geo.camera.focal_px
        point_px = f * math.tan(math.radians(p.pointing_sigma_deg))
        if geo.pointing_sigma_deg is not None:  # the geometry's covariance carries it
            point_px = 0.0
        # the centroid's scatter grows with the blob; much less when weighted (sub-pixel)
        ku, kv = (0.03, 0.05) if blobs.var_v is not None else (0.1, 0.15)
        su = np.sqrt(p.pixel_sigma**2 + point_px**2 + (ku * blobs.width[sel]) ** 2)
        sv = np.sqrt(p.pixel_sigma**2 + point_px**2 + (kv * blobs.height[sel]) ** 2)
        cov = geo.covariance(info["u"][sel], info["v"][sel], su, sv, p.floor_sigma_m)
        x, y = info["x"][sel], info["y"][sel]
        lat, lon = geo.frame.to_wgs84(x, y)
        lat, lon = np.atleast_1d(lat), np.atleast_1d(lon)
        sigmas = p.speed_sigmas
        if sigmas is None:
            sigmas = SPEED_SIGMAS if p.psf_sigma_px > 0 else None
        for k, (i, obj) in enumerate(confirmed):
            obj.ground.append((time_s, float(x[k]), float(y[k]), cov[k]))
            obj.ground = [g for g in obj.ground if time_s - g[0] <= 3.0]
            speed, speed_sd = None, 0.0  # over the last 3 s, and its standard error (m/s)
            if len(obj.ground) >= 2 and obj.ground[-1][0] - obj.ground[0][0] >= 1.0:
                speed, speed_sd = ground_speed(obj.ground, sigmas)
            mpp = float(info["mpp"][i])
            h_px, w_px = float(blobs.height[i]), float(blobs.width[i])
            spread = blobs.var_v is not None and h_px <= p.subpixel_size_px
            blurred = spread and p.psf_sigma_px > 0 and blobs.peak is not None
            if blurred and not surely_faster(speed, speed_sd, sigmas=sigmas or 0.0):
                # through the PSF: the class whose blurred template measures most alike the
                # object's mean over its last ~10 frames (one frame of a smudge says little)
                n, a = obj.spread[3], 1.0 / min(obj.spread[3] + 1, 10)
                new = (float(blobs.var_u[i]), float(blobs.var_v[i]), float(blobs.peak[i]))
                mu, mv, mk = (m + a * (x - m) for m, x in zip(obj.spread[:3], new, strict=True))
                obj.spread = (mu, mv, mk, n + 1)
                cls, conf = guess_blurred(mu, mv, mk, mpp, p.psf_sigma_px, p.psf_cut_dn, 2.0)
            else:
                if spread:
                    # a body a few pixels in size: its weighted spread says more than its box
                    h_px = math.sqrt(max(12.0 * float(blobs.var_v[i]) - 1.0, 0.04))
                    w_px = math.sqrt(max(12.0 * float(blobs.var_u[i]) - 1.0, 0.04))
                h_m, w_m, v_px = h_px * mpp, w_px * mpp, float(blobs.height[i])
                cls, conf = guess_class(h_m, w_m, speed, v_px, spread, speed_sd, sigmas or 0.0)
            left, top = float(blobs.left[i]), float(blobs.top[i])
            c = cov[k]
            en = 0.5 * (c[0, 1] + c[1, 0])
            dets.append(
                CameraDetection(
                    camera=self.camera_id,
                    time=time_s,
                    frame=frame_index,
                    box=(left, top, left + float(blobs.width[i]), top + float(blobs.height[i])),
                    score=round(min(1.0, obj.hit_count(p.window) / p.window), 3),
                    lat=float(lat[k]),
                    lon=float(lon[k]),
                    cov=(float(c[0, 0]), float(en), float(en), float(c[1, 1])),
                    class_guess=cls,
                    class_confidence=conf,
                    range_m=float(info["range"][i]),
                )
            )
        return ObjectsResult(dets, pix, keep, [obj.number for _, obj in confirmed], out)


def _pixels(
    camera_id: str, blobs: Blobs, i: int, obj: _Object, t: float, frame: int, p: ObjectParams
) -> PixelDetection:
    """Blob ``i`` (object ``obj``) as a :class:`PixelDetection`."""
    left, top = float(blobs.left[i]), float(blobs.top[i])
    return PixelDetection(
        camera=camera_id,
        time=t,
        frame=frame,
        box=(left, top, left + float(blobs.width[i]), top + float(blobs.height[i])),
        centroid=(float(blobs.cx[i]) + 0.5, float(blobs.cy[i]) + 0.5),
        area_px=int(blobs.area[i]),
        score=round(min(1.0, obj.hit_count(p.window) / p.window), 3),
        object=obj.number,
    )
