"""Side evidence from detections the ground cannot place: a feet pixel whose ray sees sky.

On relief a tower's detection is placed where its ray meets the DEM. A feet pixel just above
a crest, with nothing behind it within the ray caster's reach (1.5 times the rated range),
meets no ground: it has no ground point, no covariance, and the tracker cannot take it. Its
feet pixel is still a measurement of the feet's row, and its image margin
(:func:`vigil.geo.image_side.image_margins`: a ray into sky takes the side of the ground at
the reach along its azimuth) is as good as any other's. Dropping such detections censors the
feet rows the side evidence pools: near a crest the detections whose pixel error pushes them
up (toward the far side) are the ones lost, so the kept rows are biased toward the near side
(issue 21, ``bench_pointing_track`` tuning t02: kept rows' mean pixel error +0.22 px, per
calibration z of the mean margin rms 1.84 against 0.83-1.11 at the other towers).

Such a detection cannot feed a track's position; it only adds its margin to the side evidence
of the track it matches. Without a ground point it is matched in the image:
:func:`pixel_gate` projects a track's position (standing on the DEM) and its covariance (by
sigma points along its principal axes, each on the DEM) into the camera, and gives the squared
Mahalanobis distance of the detection's pixel from it, under that pixel covariance plus the
detection's pixel error and :data:`GATE_FLOOR_PX` squared. :func:`match_unplaced` picks the
nearest track within :data:`GATE_CHI2`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vigil.geo.border import Border
from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel
from vigil.geo.image_side import (
    FEET_ROW_SHARE,
    ImageMargins,
    SideEvidence,
    SideGeometry,
    image_margins,
)
from vigil.geo.raycast import CURVATURE_REFRACTION, curvature_factor

#: The pixel gate (squared Mahalanobis distance, chi-squared 2 degrees of freedom, 0.9999), as
#: :data:`vigil.geo.image_side.MATCH_CHI2` on the ground.
GATE_CHI2 = 18.42
#: Added (squared) to the gate's pixel covariance per axis, pixels: the track's position is a
#: frame or more old and the feet's row is not the box's bottom to better than that.
GATE_FLOOR_PX = 2.0
#: A track's sigma points go no further than this many metres along any axis: a track on
#: relief may carry a position sd of kilometres (the 5 km cap); beyond the camera's view such
#: points project nowhere useful.
MAX_SPREAD_M = 3000.0
#: At most this many detections wait from one camera (:class:`UnplacedDetections`), the
#: oldest received going first: a tower's frame of sky blobs is a few, a device message may
#: carry any number.
MAX_PER_CAMERA = 256
#: At most this many detections wait from all cameras together, the oldest received first.
MAX_WAITING = 2048


def _project(
    camera: PinholeCamera,
    dem: ElevationModel,
    x: NDArray,
    y: NDArray,
    z_fallback: NDArray,
    k: float,
) -> tuple[NDArray, NDArray, NDArray]:
    """Pixels of ground points (local m) standing on the DEM (``z_fallback`` off the grid)."""
    z = dem.elevation_at(x, y)
    z = np.where(np.isfinite(z), z, z_fallback)
    drop = curvature_factor(k) * ((x - camera.x) ** 2 + (y - camera.y) ** 2)
    return camera.project(x, y, z - drop - camera.ground_z)


def pixel_gate(
    camera: PinholeCamera,
    dem: ElevationModel,
    x: ArrayLike,
    y: ArrayLike,
    cov: ArrayLike,
    u: float,
    v: float,
    sigma_u: float = 1.0,
    sigma_v: float = 1.0,
    *,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> NDArray[np.float64]:
    """Squared Mahalanobis distance (pixels) of the detection at pixel ``(u, v)`` from each
    track at local ``(x, y)`` (m) with east-north covariance ``cov`` (``(n, 2, 2)``, m^2),
    projected through ``camera`` (the calibrated camera standing on the DEM) with the track
    standing on ``dem``. The pixel covariance is the sigma points' (mean +- one sd along each
    principal axis, at most :data:`MAX_SPREAD_M`), plus the detection's ``sigma_u``,
    ``sigma_v`` (pixels) and :data:`GATE_FLOOR_PX`, squared. Infinity where the track (or a
    sigma point) projects behind the camera or the inputs are not finite."""
    xs = np.atleast_1d(np.asarray(x, dtype=np.float64))
    ys = np.atleast_1d(np.asarray(y, dtype=np.float64))
    c = np.asarray(cov, dtype=np.float64).reshape(xs.size, 2, 2)
    out = np.full(xs.size, np.inf)
    finite = np.isfinite(xs) & np.isfinite(ys) & np.all(np.isfinite(c), axis=(1, 2))
    if not (np.isfinite(u) and np.isfinite(v) and finite.any()):
        return out
    idx = np.flatnonzero(finite)
    cs = 0.5 * (c[idx] + np.swapaxes(c[idx], 1, 2))
    lam, vec = np.linalg.eigh(cs)
    sd = np.minimum(np.sqrt(np.maximum(lam, 0.0)), MAX_SPREAD_M)  # (m, 2)
    # points: the mean, then +- sd along each axis
    px = np.empty((idx.size, 5))
    py = np.empty((idx.size, 5))
    px[:, 0], py[:, 0] = xs[idx], ys[idx]
    for a in range(2):
        for s, col in ((1.0, 1 + 2 * a), (-1.0, 2 + 2 * a)):
            px[:, col] = xs[idx] + s * sd[:, a] * vec[:, 0, a]
            py[:, col] = ys[idx] + s * sd[:, a] * vec[:, 1, a]
    z0 = dem.elevation_at(xs[idx], ys[idx])
    z0 = np.where(np.isfinite(z0), z0, camera.ground_z)
    pu, pv, depth = _project(camera, dem, px.ravel(), py.ravel(), np.repeat(z0, 5), curvature_coeff)
    pu, pv, depth = pu.reshape(-1, 5), pv.reshape(-1, 5), depth.reshape(-1, 5)
    good = np.all(depth > 0, axis=1) & np.all(np.isfinite(pu) & np.isfinite(pv), axis=1)
    # second moment about the mean's pixel of the four axis points (each one sd out)
    du = pu[:, 1:] - pu[:, :1]
    dv = pv[:, 1:] - pv[:, :1]
    suu = 0.5 * np.sum(du * du, axis=1) + sigma_u**2 + GATE_FLOOR_PX**2
    svv = 0.5 * np.sum(dv * dv, axis=1) + sigma_v**2 + GATE_FLOOR_PX**2
    suv = 0.5 * np.sum(du * dv, axis=1)
    det = suu * svv - suv * suv
    ru, rv = u - pu[:, 0], v - pv[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        d2 = (svv * ru * ru - 2.0 * suv * ru * rv + suu * rv * rv) / det
    d2 = np.where(good & (det > 0) & np.isfinite(d2), d2, np.inf)
    out[idx] = d2
    return out


def match_unplaced(
    camera: PinholeCamera,
    dem: ElevationModel,
    x: ArrayLike,
    y: ArrayLike,
    cov: ArrayLike,
    u: float,
    v: float,
    sigma_u: float = 1.0,
    sigma_v: float = 1.0,
    *,
    gate_chi2: float = GATE_CHI2,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> int:
    """Index of the track (of those at ``x``, ``y`` with ``cov``, as :func:`pixel_gate`)
    nearest the unplaced detection at pixel ``(u, v)`` within ``gate_chi2``; -1 if none."""
    d2 = pixel_gate(camera, dem, x, y, cov, u, v, sigma_u, sigma_v, curvature_coeff=curvature_coeff)
    if not d2.size:
        return -1
    best = int(np.argmin(d2))
    return best if d2[best] <= gate_chi2 else -1


def unplaced_margins(
    geometry: SideGeometry, border: Border, u: ArrayLike, v: ArrayLike, box_height_px: ArrayLike
) -> ImageMargins:
    """Margins of feet pixels ``(u, v)`` that have no ground point, seen by ``geometry``'s
    calibrated camera; the row's error is the detector's pixel plus
    :data:`~vigil.geo.image_side.FEET_ROW_SHARE` of the box's height, as for placed ones."""
    h = np.atleast_1d(np.asarray(box_height_px, dtype=np.float64))
    sv = np.sqrt(1.0 + (FEET_ROW_SHARE * h) ** 2)
    return image_margins(
        geometry.camera, geometry.dem, border, u, v, 1.0, sv, geometry.pointing_sigma_deg,
        max_range_m=geometry.max_range_m, curvature_coeff=geometry.curvature_coeff,
    )  # fmt: skip


class UnplacedDetections:
    """Detections without a ground point, each waiting (at most ``keep_s`` seconds) for a
    track to match in the image; a matched one's margin joins that track's side evidence
    and never its position. :class:`~vigil.geo.image_side.ImageSideMonitor` holds one
    (``unplaced``) and matches them at each update, among the tracks updated then."""

    def __init__(
        self,
        keep_s: float = 30.0,
        max_per_camera: int = MAX_PER_CAMERA,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        if max_per_camera < 1 or max_waiting < 1:
            raise ValueError(f"max_per_camera={max_per_camera}, max_waiting={max_waiting}: >= 1")
        self.keep_s = float(keep_s)
        self.max_per_camera = int(max_per_camera)
        self.max_waiting = int(max_waiting)
        #: Detections dropped, all told, to keep within ``max_per_camera`` and ``max_waiting``
        #: (the oldest received first); those that aged past ``keep_s`` are not counted.
        self.dropped = 0
        # (camera key, time, geometry, u, v, sigma_u, sigma_v, margin, its sd, shared sd), in
        # the order received; how many wait per camera key
        self._rows: list[tuple[Any, ...]] = []
        self._count: dict[Any, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def observe(
        self,
        t: float,
        geometry: SideGeometry,
        u: ArrayLike,
        v: ArrayLike,
        box_height_px: ArrayLike,
        margins: ImageMargins,
        camera_id: str | None = None,
    ) -> None:
        """Unplaced detections of one frame at ``t`` (s): feet pixels ``(u, v)`` of
        ``geometry``'s camera (named ``camera_id``; None: that camera object), their boxes'
        heights (pixels) and their margins. Pixels outside the image, heights outside (0, image
        height] and non-finite values are refused (ValueError): they come from device
        messages. Beyond ``max_per_camera`` waiting from this camera or ``max_waiting`` in all,
        the oldest received go (counted in :attr:`dropped`)."""
        uu = np.atleast_1d(np.asarray(u, dtype=np.float64))
        vv = np.atleast_1d(np.asarray(v, dtype=np.float64))
        hh = np.broadcast_to(np.asarray(box_height_px, dtype=np.float64), uu.shape)
        cam = geometry.camera
        if not math.isfinite(t):
            raise ValueError(f"t={t!r}: expected a finite time, s")
        if uu.shape != vv.shape or margins.margin_px.shape != uu.shape:
            raise ValueError("observe: u, v and the margins differ in length")
        ok = np.isfinite(uu) & np.isfinite(vv) & np.isfinite(hh)
        ok &= (uu >= 0) & (uu <= cam.width) & (vv >= 0) & (vv <= cam.height)
        ok &= (hh > 0) & (hh <= cam.height)
        if not ok.all():
            raise ValueError("observe: pixels outside the image or box heights out of range")
        sv = np.sqrt(1.0 + (FEET_ROW_SHARE * hh) ** 2)
        key = camera_id if camera_id is not None else id(cam)
        for k in range(uu.size):
            self._rows.append(
                (
                    key,
                    float(t),
                    geometry,
                    float(uu[k]),
                    float(vv[k]),
                    1.0,
                    float(sv[k]),
                    float(margins.margin_px[k]),
                    float(margins.sigma_px[k]),
                    float(margins.shared_px[k]),
                )  # fmt: skip
            )
        self._count[key] = self._count.get(key, 0) + uu.size
        self._bound(key)

    def observe_boxes(
        self,
        t: float,
        geometry: SideGeometry,
        border: Border,
        u: ArrayLike,
        boxes: ArrayLike,
        camera_id: str | None = None,
    ) -> None:
        """As :meth:`observe`, detections given by their boxes ``(u0, v0, u1, v1)`` (pixels):
        feet at column ``u`` (the centroid's) on the box's bottom, judged by
        :func:`unplaced_margins`."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        h = b[:, 3] - b[:, 1]
        m = unplaced_margins(geometry, border, u, b[:, 3], h)
        self.observe(t, geometry, u, b[:, 3], h, m, camera_id)

    def _bound(self, key: Any) -> None:
        """Drop the oldest received beyond ``key``'s camera's cap, then beyond the total."""
        over = self._count[key] - self.max_per_camera
        if over > 0:
            kept = []
            for row in self._rows:
                if over > 0 and row[0] == key:
                    over -= 1
                else:
                    kept.append(row)
            self.dropped += self._count[key] - self.max_per_camera
            self._count[key] = self.max_per_camera
            self._rows = kept
        extra = len(self._rows) - self.max_waiting
        if extra > 0:
            for row in self._rows[:extra]:
                self._count[row[0]] -= 1
            self._rows = self._rows[extra:]
            self.dropped += extra
            self._count = {k: n for k, n in self._count.items() if n > 0}

    def attach(
        self,
        evidence: SideEvidence,
        track_ids: list[str],
        t: ArrayLike,
        x: ArrayLike,
        y: ArrayLike,
        cov: ArrayLike | None = None,
    ) -> int:
        """Match the waiting detections seen no later than each track's time ``t`` (s) to the
        nearest of these tracks (local ``x``, ``y``, m; east-north ``cov``, m^2, None: the
        gate's floor alone) within :data:`GATE_CHI2` in the image; a matched detection's
        margin goes to the track's ``evidence``. Detections older than ``keep_s`` go.
        Returns how many were matched."""
        if not self._rows or not len(track_ids):
            return 0
        tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
        xx = np.atleast_1d(np.asarray(x, dtype=np.float64))
        yy = np.atleast_1d(np.asarray(y, dtype=np.float64))
        n = len(track_ids)
        c = np.zeros((n, 2, 2)) if cov is None else np.asarray(cov, np.float64).reshape(n, 2, 2)
        now = float(np.max(tt))
        matched, left = 0, []
        for row in self._rows:
            _, ts, geo, u, v, su, sv = row[:7]
            if ts < now - self.keep_s:
                continue
            ready = tt >= ts
            if not ready.any():
                left.append(row)
                continue
            d2 = pixel_gate(
                geo.camera, geo.dem, xx, yy, c, u, v, su, sv,
                curvature_coeff=geo.curvature_coeff,
            )  # fmt: skip
            d2 = np.where(ready, d2, np.inf)
            k = int(np.argmin(d2))
            if d2[k] <= GATE_CHI2:
                self._take(evidence, track_ids[k], row)
                matched += 1
            else:
                left.append(row)
        self._rows = left
        self._count = {}
        for row in left:
            self._count[row[0]] = self._count.get(row[0], 0) + 1
        return matched

    def _take(self, evidence: SideEvidence, track_id: str, row: tuple[Any, ...]) -> None:
        """A waiting detection (``row``) matched track ``track_id``: its margin joins the
        track's evidence."""
        _, ts, _, _, _, _, _, m, s, sh = row
        evidence.add(track_id, ts, ImageMargins(np.array([m]), np.array([s]), np.array([sh])))


__all__ = [
    "GATE_CHI2",
    "GATE_FLOOR_PX",
    "MAX_PER_CAMERA",
    "MAX_SPREAD_M",
    "MAX_WAITING",
    "UnplacedDetections",
    "match_unplaced",
    "pixel_gate",
    "unplaced_margins",
]
