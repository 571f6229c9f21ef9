"""The side of the border a person stands on, judged in the camera's image.

On relief a tower's detection is placed where its ray meets the ground; one pixel of row error
on a grazing sight line moves that place hundreds of metres, and near a crest the place jumps
between the near slope and the far one, a kilometre behind, frame after frame (issue 21;
``benchmarks/bench_pointing_track.py``). Averaging those places, as a tracker does, trusts an
error that is neither Gaussian nor independent between frames.

In the image the same error is simple: the feet's pixel is off by the detector's pixel error,
independent from frame to frame, plus the calibration's pointing residual, shared by all of a
camera's detections. Along one image column the ground a ray meets moves away from the camera
as the row rises (a higher ray passes over everything a lower one met first), so the border,
projected into the column through the DEM, is one row: the row where the ground met changes
side. It is the border's own row where the border is in sight, and the crest's row where a
crest hides it. A person is on one side when their feet's pixel is below that row and on the
other when above, whatever the slopes behind.

:func:`image_margins` gives each detection's signed distance (rows) from that row, toward the
US side, with its standard deviations; :class:`SideEvidence` pools a track's margins into a
z-score, which :class:`vigil.geo.crossing_monitor.CrossingMonitor` takes (``side_z``).

The pooled test: if a person stays on one side, every true margin has that side's sign, so
their (weighted) mean has it too; the observed mean is the true one plus the mean pixel error
(sd ``1/sqrt(sum w)``) plus the shared pointing residual. Deciding a side when
``|mean| / sd >= z`` is wrong with probability at most ``Phi(-z)`` for such a person, however
near a crest they stand.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri

from vigil.geo.border import Border
from vigil.geo.camera import PinholeCamera
from vigil.geo.crossing_monitor import CrossingEvent, CrossingMonitor
from vigil.geo.dem import ElevationModel
from vigil.geo.raycast import CURVATURE_REFRACTION, cast_rays, curvature_factor

#: How far (rows) either side of a feet pixel the border's row is looked for; a margin larger
#: than this is reported as this (the side is then certain at any pixel error the chain has).
SEARCH_PX = 40.0
#: Bisection steps: the border's row to SEARCH_PX * 2 / 2**BISECT_STEPS (0.005 px).
BISECT_STEPS = 14


@dataclass(frozen=True)
class ImageMargins:
    """Per detection: ``margin_px``, the signed distance (rows) of the feet pixel from the
    border's row in its column, positive toward the US side (``Border.side`` +1);
    ``sigma_px``, its standard deviation from the detector's pixel error (the row's, and the
    column's through the border row's slope); ``shared_px``, the standard deviation of the
    part all of the camera's detections share (its pointing residual after calibration)."""

    margin_px: NDArray[np.float64]
    sigma_px: NDArray[np.float64]
    shared_px: NDArray[np.float64]


def _sides(
    camera: PinholeCamera,
    dem: ElevationModel,
    border: Border,
    u: NDArray[np.float64],
    v: NDArray[np.float64],
    max_range_m: float,
    curvature_coeff: float,
) -> NDArray[np.int8]:
    """Side (+1 US, -1 foreign) of the ground each pixel's ray meets first; a ray into sky
    takes the side of the point at ``max_range_m`` along its azimuth (beyond all ground)."""
    d = camera.rays(u, v)
    hits = cast_rays(
        dem, np.broadcast_to(camera.centre, d.shape), d, max_range_m=max_range_m,
        curvature_coeff=curvature_coeff,
    )  # fmt: skip
    x, y = hits.x.copy(), hits.y.copy()
    sky = ~hits.hit
    if np.any(sky):
        h = np.hypot(d[sky, 0], d[sky, 1])
        h = np.where(h > 0, h, 1.0)
        x[sky] = camera.x + max_range_m * d[sky, 0] / h
        y[sky] = camera.y + max_range_m * d[sky, 1] / h
    s = border.side(x, y)
    return np.where(s == 0, 1, s).astype(np.int8)


def border_rows(
    camera: PinholeCamera,
    dem: ElevationModel,
    border: Border,
    u: ArrayLike,
    v: ArrayLike,
    *,
    search_px: float = SEARCH_PX,
    max_range_m: float | None = None,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
    """The border's row in each pixel's column within ``search_px`` rows of ``v``, by
    bisection on the side of the ground the rays meet: ``(row, below)`` where ``below`` is
    the side of the rows under it (nearer the camera). Where the column's rows within the
    search are all on one side, ``row`` is NaN and ``below`` that side."""
    uu = np.atleast_1d(np.asarray(u, dtype=np.float64))
    vv = np.atleast_1d(np.asarray(v, dtype=np.float64))
    reach = camera.max_range_m if max_range_m is None else float(max_range_m)
    lo, hi = vv - search_px, vv + search_px  # lo: the upper (far) end, hi: the lower (near)
    s_lo = _sides(camera, dem, border, uu, lo, reach, curvature_coeff)
    s_hi = _sides(camera, dem, border, uu, hi, reach, curvature_coeff)
    flip = s_lo != s_hi
    a, b, sa = lo[flip].copy(), hi[flip].copy(), s_lo[flip]
    for _ in range(BISECT_STEPS):
        if not a.size:
            break
        mid = 0.5 * (a + b)
        sm = _sides(camera, dem, border, uu[flip], mid, reach, curvature_coeff)
        same = sm == sa
        a = np.where(same, mid, a)
        b = np.where(same, b, mid)
    row = np.full(uu.shape, np.nan)
    row[flip] = 0.5 * (a + b)
    return row, s_hi


def image_margins(
    camera: PinholeCamera,
    dem: ElevationModel,
    border: Border,
    u: ArrayLike,
    v: ArrayLike,
    sigma_u: ArrayLike = 1.0,
    sigma_v: ArrayLike = 1.0,
    pointing_sigma_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
    *,
    search_px: float = SEARCH_PX,
    max_range_m: float | None = None,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> ImageMargins:
    """Each feet pixel's signed distance from the border's row in its column (rows, + toward
    the US side), and its standard deviations: the pixel error (``sigma_u``, ``sigma_v``,
    pixels; the column's through the border row's slope over +-1 column) and the pointing
    residual (``pointing_sigma_deg``: pan, tilt, roll, degrees) shared by the camera's
    detections. ``camera`` is the calibrated camera standing on the DEM (its ``ground_z``
    the DEM's height under the mast); a margin beyond ``search_px`` is reported as
    ``search_px`` (certain)."""
    uu = np.atleast_1d(np.asarray(u, dtype=np.float64))
    vv = np.atleast_1d(np.asarray(v, dtype=np.float64))
    if uu.shape != vv.shape:
        raise ValueError(f"u {uu.shape} and v {vv.shape}: expected the same shape")
    if not (np.all(np.isfinite(uu)) and np.all(np.isfinite(vv))):
        raise ValueError("image_margins: pixels contain NaN or infinity")
    sigma_u = np.asarray(sigma_u, dtype=np.float64)
    sigma_v = np.asarray(sigma_v, dtype=np.float64)
    checks = (sigma_u, sigma_v, np.asarray(pointing_sigma_deg, dtype=np.float64))
    if not all(np.all(np.isfinite(a) & (a >= 0)) for a in checks):
        raise ValueError("image_margins: standard deviations must be finite and >= 0")
    kw = {"search_px": search_px, "max_range_m": max_range_m, "curvature_coeff": curvature_coeff}
    row, below = border_rows(camera, dem, border, uu, vv, **kw)
    margin = np.where(below > 0, vv - row, row - vv)
    margin = np.where(np.isnan(row), below * search_px, np.clip(margin, -search_px, search_px))
    # the border row's slope across columns: the column's error moves the row by that much
    r_left, _ = border_rows(camera, dem, border, uu - 1.0, vv, **kw)
    r_right, _ = border_rows(camera, dem, border, uu + 1.0, vv, **kw)
    slope = 0.5 * (r_right - r_left)
    # a row that comes or goes within a column (the border's end, a crest's edge): as unsure
    # as the search
    slope = np.where(np.isfinite(slope), np.minimum(np.abs(slope), search_px), search_px)
    slope = np.where(np.isnan(row) & np.isnan(r_left) & np.isnan(r_right), 0.0, slope)
    sigma = np.sqrt(sigma_v**2 + (slope * sigma_u) ** 2)
    f = camera.focal_px
    pan, tilt, roll = (math.radians(a) for a in pointing_sigma_deg)
    shared = np.sqrt(
        (f * tilt) ** 2 + ((uu - camera.width / 2.0) * roll) ** 2 + (slope * f * pan) ** 2
    )
    return ImageMargins(margin, sigma, shared)


#: The feet row's error beyond the detector's pixel: this share of the box's height (a blob's
#: bottom is not the feet to better than that), pixels per pixel. Not measured against truth.
FEET_ROW_SHARE = 0.15


def detection_margins(
    camera: PinholeCamera,
    dem: ElevationModel,
    border: Border,
    x: ArrayLike,
    y: ArrayLike,
    box_height_px: ArrayLike,
    pointing_sigma_deg: tuple[float, float, float],
    *,
    max_range_m: float | None = None,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> tuple[NDArray[np.bool_], ImageMargins]:
    """Margins of detections given by their ground points: each point (local ``x``, ``y``, m,
    on the DEM) is projected into ``camera`` (the calibrated camera that placed it) to its
    feet pixel, whose row error is the detector's pixel plus :data:`FEET_ROW_SHARE` of its
    box's height (``box_height_px``). Returns ``(ok, margins)``: ``ok`` marks the points that
    project into the image (pixels finite); ``margins`` are theirs."""
    xx = np.atleast_1d(np.asarray(x, dtype=np.float64))
    yy = np.atleast_1d(np.asarray(y, dtype=np.float64))
    h = np.atleast_1d(np.asarray(box_height_px, dtype=np.float64))
    drop = curvature_factor(curvature_coeff) * ((xx - camera.x) ** 2 + (yy - camera.y) ** 2)
    u, v, _ = camera.project(xx, yy, dem.elevation_at(xx, yy) - drop - camera.ground_z)
    ok = np.isfinite(u) & np.isfinite(v)
    if not ok.any():
        empty = np.zeros(0)
        return ok, ImageMargins(empty, empty, empty)
    sv = np.sqrt(1.0 + (FEET_ROW_SHARE * h[ok]) ** 2)
    m = image_margins(
        camera, dem, border, u[ok], v[ok], 1.0, sv, pointing_sigma_deg,
        max_range_m=max_range_m, curvature_coeff=curvature_coeff,
    )  # fmt: skip
    return ok, m


@dataclass(frozen=True)
class SideGeometry:
    """What judging a tower's detections' sides in its image needs: the calibrated
    ``camera`` that placed them (standing on the DEM), the ``dem``, the pointing residual's
    standard deviations (pan, tilt, roll, degrees), the ray caster's reach (m) and its
    curvature coefficient. :meth:`of` takes them from a
    :class:`vigil.detection.terrain.TerrainGeometry`."""

    camera: PinholeCamera
    dem: ElevationModel
    pointing_sigma_deg: tuple[float, float, float]
    max_range_m: float | None = None
    curvature_coeff: float = CURVATURE_REFRACTION

    @classmethod
    def of(cls, geometry: Any) -> SideGeometry:
        """From a terrain geometry (``camera``, ``dem``, ``pointing_sigma_deg``,
        ``curvature_coeff`` and its reach's ``max_range_m``)."""
        return cls(
            geometry.camera, geometry.dem, tuple(geometry.pointing_sigma_deg),
            getattr(geometry, "reach_m", None), geometry.curvature_coeff,
        )  # fmt: skip

    def margins(
        self, border: Border, x: ArrayLike, y: ArrayLike, box_height_px: ArrayLike
    ) -> tuple[NDArray[np.bool_], ImageMargins]:
        """:func:`detection_margins` of ground points (local m) seen by this camera."""
        return detection_margins(
            self.camera, self.dem, border, x, y, box_height_px, self.pointing_sigma_deg,
            max_range_m=self.max_range_m, curvature_coeff=self.curvature_coeff,
        )  # fmt: skip


@dataclass
class _Pool:
    items: deque[tuple[float, float, float, float]] = field(default_factory=deque)


def _pooled_z(a: NDArray[np.float64]) -> float:
    """z-score of pooled margins (rows: time, weight, margin, shared sd)."""
    w = a[:, 1]
    mean = float((w * a[:, 2]).sum() / w.sum())
    shared = float(np.max(a[:, 3]))
    return mean / math.sqrt(1.0 / float(w.sum()) + shared * shared)


class SideEvidence:
    """Each track's image margins pooled into a z-score of its side (+ toward the US).

    Parameters
    ----------
    window_s
        Margins older than this (seconds before the newest) are dropped; ``math.inf`` keeps
        a track's whole history (a side is surest from all of it).
    change_s, change_probability
        A change of side: when the margins of the last ``change_s`` seconds are sure of the
        other side than the whole history (their z-score's normal mass at least
        ``change_probability``), the older margins are dropped and the recent z-score is
        given: a person who crosses is seen on the new side within about ``change_s``, while a
        stricter probability than the side's keeps the many overlapping recent windows of a
        person who does not cross from flipping the side. None: no change test.
    change_min
        The change test needs at least this many recent margins (on tuning t04 a track that
        reappeared after 70 s unseen flipped its side on 8 detections near a crest).
    """

    def __init__(
        self,
        window_s: float = math.inf,
        change_s: float | None = None,
        change_probability: float = 0.999,
        change_min: int = 20,
    ) -> None:
        if not (window_s > 0):
            raise ValueError(f"window_s={window_s!r}; expected a positive duration, seconds")
        if change_s is not None and not (math.isfinite(change_s) and change_s > 0):
            raise ValueError(f"change_s={change_s!r}; expected None or a positive duration, s")
        if not (0.5 <= change_probability < 1.0):
            raise ValueError(f"change_probability={change_probability!r}; expected [0.5, 1)")
        self.window_s = float(window_s)
        self.change_s = None if change_s is None else float(change_s)
        self.change_z = float(ndtri(change_probability))
        self.change_min = int(change_min)
        self._pools: dict[str, _Pool] = {}

    def add(self, track_id: str, t: float, margins: ImageMargins, index: int = 0) -> None:
        """Add detection ``index`` of ``margins`` (seen at time ``t``, s) to the track."""
        pool = self._pools.setdefault(track_id, _Pool())
        s = float(margins.sigma_px[index])
        pool.items.append(
            (
                float(t),
                1.0 / max(s * s, 1e-6),
                float(margins.margin_px[index]),
                float(margins.shared_px[index]),
            )
        )

    def z(self, track_id: str, t: float | None = None) -> float:
        """The track's side z-score at ``t`` (its newest margin's time by default): the
        weighted mean margin over its sd (pixel errors averaged, the shared residual not);
        NaN without margins."""
        pool = self._pools.get(track_id)
        if pool is None or not pool.items:
            return math.nan
        now = pool.items[-1][0] if t is None else float(t)
        while pool.items and pool.items[0][0] < now - self.window_s:
            pool.items.popleft()
        if not pool.items:
            return math.nan
        a = np.asarray(pool.items, dtype=np.float64)
        z = _pooled_z(a)
        if self.change_s is not None and a[0, 0] < now - self.change_s:
            recent = a[a[:, 0] >= now - self.change_s]
            if recent.shape[0] >= self.change_min:
                zr = _pooled_z(recent)
                if abs(zr) >= self.change_z and zr * z < 0:
                    while pool.items and pool.items[0][0] < now - self.change_s:
                        pool.items.popleft()
                    return zr
        return z

    def merge(self, merged: str, into: str) -> None:
        """Track ``merged`` was folded into ``into``: its margins join ``into``'s."""
        pool = self._pools.pop(merged, None)
        if pool is None:
            return
        keep = self._pools.setdefault(into, _Pool())
        keep.items = deque(sorted([*keep.items, *pool.items]))

    def forget(self, track_id: str) -> None:
        """Drop an ended track's margins."""
        self._pools.pop(track_id, None)


#: The change test's window, seconds (:class:`SideEvidence` ``change_s``): a person who crosses
#: is seen on the new side within about this long. On ``bench_pointing_track``'s tuning seeds
#: (1, 2, 5; 120 s walks) a plain 60 s window instead of the whole history made false crossings
#: (t04: 1 at side probability 0.99, 2 at 0.95), hence the whole history and a change test.
IMAGE_CHANGE_S = 60.0
#: How sure the change test must be (:class:`SideEvidence` ``change_probability``).
IMAGE_CHANGE_PROBABILITY = 0.999
#: How sure a track's image z-score must be of a side (the normal's mass) for the track to take
#: it, on relief (tuning seeds 1, 2, 5, tower t02, 120 s walks, image alone: 0.99 199/199
#: right of 240; 0.95 205/205; 0.9 209/212 with 3 false crossings).
RELIEF_IMAGE_PROBABILITY = 0.99
#: A detection is matched to a track only where its squared Mahalanobis distance from the
#: track's updated position, under the detection's own covariance (plus :data:`MATCH_FLOOR_M`
#: squared), is at most this (chi-squared, 2 degrees of freedom, 0.9999). The Kalman update
#: leaves the detection that made it within that covariance of the updated position (the
#: residual's covariance ``R - R S^-1 R`` is at most ``R``). Without a gate, the nearest
#: detection of the frame could be any tower's: in ``bench_demo_relief`` at seed 2101 a track
#: updated in a frame where its tower saw nothing near it took, for 30 s, the margins of a
#: person 14 km away on the other side, flipped south and back north: one false crossing alert.
MATCH_CHI2 = 18.42
#: The gate's floor, metres (grouped detections are merged before the update).
MATCH_FLOOR_M = 15.0


class ImageSideMonitor(CrossingMonitor):
    """A :class:`CrossingMonitor` that judges sides in the image as well.

    Fed each camera frame's detections (:meth:`observe`: ground positions and their image
    margins), it pools, per track, the margins of the detection that updated it (at the
    track's time, the nearest to its updated position) in a :class:`SideEvidence` and gives
    their z-score to the side rule (``side_z``). Parameters as the monitor's, and
    ``window_s``, ``change_s``, ``change_probability``: the evidence's (:class:`SideEvidence`).
    """

    def __init__(
        self,
        border: Border,
        *,
        window_s: float = math.inf,
        change_s: float | None = IMAGE_CHANGE_S,
        change_probability: float = IMAGE_CHANGE_PROBABILITY,
        **kw: Any,
    ) -> None:
        super().__init__(border, **kw)
        from vigil.geo.hidden_side import HiddenTops
        from vigil.geo.unplaced_side import UnplacedDetections

        self.evidence = SideEvidence(window_s, change_s, change_probability)
        #: Detections without a ground point (:meth:`UnplacedDetections.observe`): their
        #: margins go to the track they match in the image, at its next update. ``hidden``:
        #: tops of bodies whose feet a crest hides, their sides where the margins are unsure.
        self.unplaced, self.hidden = UnplacedDetections(), HiddenTops()
        # time -> the detections seen then: x, y (local m), margin, its sd, shared sd, and the
        # inverse of the gate's covariance (ee, en, nn; 1/m^2)
        self._seen: dict[float, list[tuple[float, ...]]] = {}

    def observe(
        self,
        t: float,
        x: ArrayLike,
        y: ArrayLike,
        margins: ImageMargins,
        cov: ArrayLike | None = None,
    ) -> None:
        """Detections of one frame at ``t`` (s): local ``x``, ``y`` (m), their margins and
        their ground covariances ``cov`` (``(n, 2, 2)`` or ``(n, 4)`` as ``(ee, en, ne,
        nn)``, m^2; None: the gate's floor alone)."""
        xs = np.atleast_1d(np.asarray(x, dtype=np.float64))
        ys = np.atleast_1d(np.asarray(y, dtype=np.float64))
        c = np.zeros((xs.size, 2, 2))
        if cov is not None:
            c = np.asarray(cov, dtype=np.float64).reshape(xs.size, 2, 2)
        c = np.where(np.isfinite(c), c, 0.0) + MATCH_FLOOR_M**2 * np.eye(2)
        det = c[:, 0, 0] * c[:, 1, 1] - c[:, 0, 1] * c[:, 1, 0]
        rows = self._seen.setdefault(float(t), [])
        for k in range(xs.size):
            rows.append((
                float(xs[k]), float(ys[k]), float(margins.margin_px[k]),
                float(margins.sigma_px[k]), float(margins.shared_px[k]), float(c[k, 1, 1] / det[k]),
                float(-0.5 * (c[k, 0, 1] + c[k, 1, 0]) / det[k]), float(c[k, 0, 0] / det[k]),
            ))  # fmt: skip
        # keep a few seconds: the tracker may apply a late batch (out of sequence)
        for old in [s for s in self._seen if s < t - 30.0]:
            del self._seen[old]

    def update(
        self,
        track_ids: list[str],
        t: ArrayLike,
        x: ArrayLike,
        y: ArrayLike,
        cov: ArrayLike | None = None,
        side_z: ArrayLike | None = None,
    ) -> list[CrossingEvent]:
        """As :meth:`CrossingMonitor.update`, the image's z-scores made from what was observed
        when ``side_z`` is not given."""
        waiting = self._seen or self.unplaced or self.hidden or self.hidden.counts
        if side_z is None and len(track_ids) and waiting:
            for pool in (self.unplaced, self.hidden):
                pool.attach(self.evidence, track_ids, t, x, y, cov)
            side_z = self._side_z(track_ids, t, x, y)
            if self.hidden.counts:  # the tops' side where the margins are unsure
                z_need = float(ndtri(self.image_probability or self.side_probability or 0.5))
                sides = {k: self.states[k].side for k in track_ids if k in self.states}
                side_z = self.hidden.decide(track_ids, side_z, z_need, sides)
        return super().update(track_ids, t, x, y, cov, side_z)

    def _side_z(
        self, track_ids: list[str], t: ArrayLike, x: ArrayLike, y: ArrayLike
    ) -> list[float]:
        tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
        xx = np.atleast_1d(np.asarray(x, dtype=np.float64))
        yy = np.atleast_1d(np.asarray(y, dtype=np.float64))
        used: set[tuple[float, int]] = set()
        out = []
        for i, tid in enumerate(track_ids):
            rows = self._seen.get(float(tt[i]), [])
            best, best_d = -1, MATCH_CHI2
            for k, r in enumerate(rows):
                dx, dy = r[0] - xx[i], r[1] - yy[i]
                d = r[5] * dx * dx + 2.0 * r[6] * dx * dy + r[7] * dy * dy
                if (float(tt[i]), k) not in used and d <= best_d:
                    best, best_d = k, d
            if best >= 0:
                used.add((float(tt[i]), best))
                m, s, sh = rows[best][2:5]
                self.evidence.add(
                    tid, float(tt[i]), ImageMargins(np.array([m]), np.array([s]), np.array([sh]))
                )
            out.append(self.evidence.z(tid, float(tt[i])))
        return out

    def merge(self, merged: str, into: str) -> None:
        """As the monitor's, and the merged track's margins join ``into``'s."""
        super().merge(merged, into)
        self.evidence.merge(merged, into)
        self.hidden.merge(merged, into)

    def forget(self, track_id: str) -> None:
        """As the monitor's, and the track's margins go."""
        super().forget(track_id)
        self.evidence.forget(track_id)
        self.hidden.forget(track_id)
