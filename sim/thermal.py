"""Thermal tower cameras: what each tower sees, as 8-bit frames, and the truth of each frame.

The scene is the flat ground of the sector seen through the tower's
:class:`~vigil.geo.camera.PinholeCamera` (the model detection uses to go back to the ground): a
temperature texture fixed in the world (so it stays put when a camera turns), bushes that
flicker in the wind, a cold sky, and warm bodies sized by their real size and range. The
nuisances each have a switch in :class:`~vigil.sim.settings.SimSettings`: sensor noise,
slow gain drift over the day, heat shimmer, vegetation flicker and camera shake. On relief
(:class:`vigil.sim.terrain.SimTerrain`) the ground is the DEM: bodies stand on it and are cut
where it hides them, and the camera draws what it sees pointed off by a hidden error.

Convention for the truth: a body's box is centred on the image of its ground position, so
the camera model maps the position to the box centre and the box centre back to the
position (on flat ground); the box is not clipped at the image edge.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from vigil.geo.camera import PinholeCamera
from vigil.geo.raycast import camera_on_terrain, pixels_to_terrain

from . import kernels
from .climate import season_for
from .movers import HOUR_S, MoverStates, rng_for
from .perturbations import Perturbations
from .perturbations_render import (
    CameraPerturber,
    blur_background,
    brush_hidden,
    crossover_multiplier,
    draw_bodies,
)
from .settings import SimSettings
from .terrain import SimTerrain

STREAM_TERRAIN, STREAM_NOISE, STREAM_SHAKE, STREAM_FRAME = 10, 11, 12, 13
NOISE_TILE = 512
VEG_GROUPS = 32
SKY_DN, GROUND_DN = 40.0, 95.0
HAZE_M = 9000.0


def day_fraction(local_hour: float) -> float:
    """How much daylight heating there is at a local hour: 0 at night, 1 at mid-afternoon."""
    return max(0.0, math.sin(math.pi * (local_hour - 6.5) / 14.0))


class Terrain:
    """The sector's ground temperature texture and bushes, fixed in the local frame."""

    def __init__(self, seed: int) -> None:
        rng = rng_for(seed, STREAM_TERRAIN, 0, 0)
        self.coarse = rng.normal(0.0, 1.0, (256, 256)).astype(np.float32)
        self.fine = rng.normal(0.0, 1.0, (256, 256)).astype(np.float32)
        self.bush = rng.uniform(size=(512, 512)).astype(np.float32)
        self.flicker_hz = rng.uniform(0.4, 2.0, VEG_GROUPS)
        self.flicker_phase = rng.uniform(0.0, 2 * np.pi, VEG_GROUPS)

    @staticmethod
    def _bilinear(grid: NDArray[np.float32], x: NDArray, y: NDArray, cell: float) -> NDArray:
        n = grid.shape[0]
        gx, gy = x / cell, y / cell
        x0, y0 = np.floor(gx), np.floor(gy)
        fx, fy = gx - x0, gy - y0
        i0 = y0.astype(np.int64) % n
        j0 = x0.astype(np.int64) % n
        i1, j1 = (i0 + 1) % n, (j0 + 1) % n
        top = grid[i0, j0] * (1 - fx) + grid[i0, j1] * fx
        bot = grid[i1, j0] * (1 - fx) + grid[i1, j1] * fx
        return top * (1 - fy) + bot * fy

    def ground(self, x: NDArray, y: NDArray) -> tuple[NDArray, NDArray, NDArray]:
        """Temperature offset (DN), bush cover (0 or 1) and flicker group at ground points."""
        temp = 9.0 * self._bilinear(self.coarse, x, y, 60.0) + 4.0 * self._bilinear(
            self.fine, x, y, 9.0
        )
        ci = np.floor(y / 4.0).astype(np.int64) % 512
        cj = np.floor(x / 4.0).astype(np.int64) % 512
        h = self.bush[ci, cj]
        bush = (h < 0.18).astype(np.float32)
        group = (np.floor(h * 1e4).astype(np.int64) % VEG_GROUPS).astype(np.uint8)
        return temp, bush, group


@dataclass(frozen=True)
class ObjectTruth:
    """One body visible in one frame.

    ``box`` is ``(u0, v0, u1, v1)`` in continuous pixels: the body stands on the ground, so
    the middle of the box's bottom edge is the image of the ground position ``(x, y)``
    (local metres) and the box rises the body's height above it; ``mask`` is a boolean array
    of the pixels the body covers (at least half its peak), with its top-left pixel at
    ``mask_origin = (row, col)``.
    """

    mover_id: str
    cls: str
    kind: str
    group_id: str
    x: float
    y: float
    range_m: float
    box: tuple[float, float, float, float]
    contrast_dn: float
    mask_origin: tuple[int, int] | None = None
    mask: NDArray[np.bool_] | None = None

    @property
    def centre(self) -> tuple[float, float]:
        u0, v0, u1, v1 = self.box
        return (u0 + u1) / 2.0, (v0 + v1) / 2.0

    @property
    def foot(self) -> tuple[float, float]:
        """Pixel of the ground point under the body: the middle of the box's bottom edge."""
        u0, _, u1, v1 = self.box
        return (u0 + u1) / 2.0, v1

    def to_builtins(self) -> dict:
        """A JSON-ready record; the mask as packed bits in base64."""
        out = {
            "id": self.mover_id,
            "class": self.cls,
            "kind": self.kind,
            "group": self.group_id,
            "x": round(self.x, 3),
            "y": round(self.y, 3),
            "range_m": round(self.range_m, 2),
            "box": [round(b, 4) for b in self.box],
            "contrast_dn": round(self.contrast_dn, 2),
        }
        if self.mask is not None and self.mask_origin is not None:
            h, w = self.mask.shape
            out["mask"] = {
                "row": self.mask_origin[0],
                "col": self.mask_origin[1],
                "height": h,
                "width": w,
                "bits": base64.b64encode(np.packbits(self.mask.ravel())).decode("ascii"),
            }
        return out


def decode_mask(record: dict) -> tuple[int, int, NDArray[np.bool_]]:
    """``(row, col, mask)`` from an object record's ``mask`` entry (see ``to_builtins``)."""
    h, w = record["height"], record["width"]
    bits = np.unpackbits(np.frombuffer(base64.b64decode(record["bits"]), np.uint8))
    return record["row"], record["col"], bits[: h * w].reshape(h, w).astype(bool)


def coverage(u0: float, u1: float, v0: float, v1: float, rows: int, cols: int):
    """Pixel-area coverage of a rectangle, cropped to the image: ``(row0, col0, array)``."""
    j0, j1 = max(int(math.floor(u0)), 0), min(int(math.ceil(u1)), cols)
    i0, i1 = max(int(math.floor(v0)), 0), min(int(math.ceil(v1)), rows)
    if j1 <= j0 or i1 <= i0:
        return i0, j0, np.zeros((0, 0))
    jj = np.arange(j0, j1, dtype=np.float64)
    ii = np.arange(i0, i1, dtype=np.float64)
    ox = np.clip(np.minimum(u1, jj + 1) - np.maximum(u0, jj), 0, None)
    oy = np.clip(np.minimum(v1, ii + 1) - np.maximum(v0, ii), 0, None)
    return i0, j0, np.outer(oy, ox)


class TowerView:
    """One tower's camera: its pointing, its background, its nuisances and its frames.

    Parameters
    ----------
    tower_id
        The tower's id.
    camera
        The tower's camera as installed (image size already overridden by the settings).
    settings
        Switches and sizes of the nuisances.
    seed, index
        The world's seed and the tower's index (for its own random streams).
    terrain
        The sector's shared ground texture.
    relief
        The sector's relief (:class:`vigil.sim.terrain.SimTerrain`): bodies stand on it and
        hide behind it, and the camera points off by a hidden error. None: flat ground.
    perturbations
        The camera's perturbations (:mod:`vigil.sim.perturbations`); None: none.
    """

    def __init__(
        self,
        tower_id: str,
        camera: PinholeCamera,
        settings: SimSettings,
        seed: int,
        index: int,
        terrain: Terrain,
        relief: SimTerrain | None = None,
        perturbations: Perturbations | None = None,
    ) -> None:
        self.tower_id = tower_id
        self.pert = perturbations if perturbations is not None else Perturbations.none()
        self.relief = relief
        self.pointing_error = (0.0, 0.0, 0.0)
        if relief is not None:
            camera = camera_on_terrain(camera, relief.dem)
            self.pointing_error = relief.pointing_error(tower_id, seed, index)
        self.camera = camera
        self.settings = settings
        self.seed = seed
        self.index = index
        self.terrain = terrain
        self.season = season_for(settings)  # night contrast of bodies on this ground
        self.pan_cmd, self.tilt_cmd = camera.pan_deg, camera.tilt_deg
        self._last_t: float | None = None
        self._bg_key: tuple[float, float] | None = None
        rng = rng_for(seed, STREAM_NOISE, index, 0)
        sigma = settings.noise_dn if settings.sensor_noise else 0.0
        self.noise = (rng.normal(0.0, 1.0, (NOISE_TILE, NOISE_TILE)) * sigma).astype(np.float32)
        self._shakes: dict[int, list[tuple[float, float, float, float, float, float]]] = {}
        self.acc = np.zeros((camera.height, camera.width), np.float32)
        self.perturber = CameraPerturber(self.pert, seed, index, self.acc.shape)

    # -- pointing ---------------------------------------------------------------------------
    def point(self, pan_deg: float, tilt_deg: float) -> None:
        """Command a new pointing; the camera slews there at the settings' rate."""
        self.pan_cmd = float(pan_deg) % 360.0
        self.tilt_cmd = float(np.clip(tilt_deg, -30.0, 90.0))

    def pointing_at(self, t: float) -> PinholeCamera:
        """Slew toward the commanded pointing up to time ``t`` and return the camera."""
        cam = self.camera
        if self._last_t is not None and (cam.pan_deg, cam.tilt_deg) != (
            self.pan_cmd,
            self.tilt_cmd,
        ):
            step = self.settings.slew_deg_per_s * max(t - self._last_t, 0.0)
            dpan = (self.pan_cmd - cam.pan_deg + 180.0) % 360.0 - 180.0
            dtilt = self.tilt_cmd - cam.tilt_deg
            dist = math.hypot(dpan, dtilt)
            if dist <= step:
                pan, tilt = self.pan_cmd, self.tilt_cmd
            else:
                pan = (cam.pan_deg + dpan * step / dist) % 360.0
                tilt = cam.tilt_deg + dtilt * step / dist
            self.camera = cam = replace(cam, pan_deg=pan, tilt_deg=tilt)
        self._last_t = t
        return cam

    def _true(self, cam: PinholeCamera) -> PinholeCamera:
        """Where the camera really points: ``cam`` turned by the hidden pointing error."""
        if self.relief is None:
            return cam
        dp, dt, dr = self.pointing_error
        return replace(
            cam,
            pan_deg=(cam.pan_deg + dp) % 360.0,
            tilt_deg=cam.tilt_deg + dt,
            roll_deg=cam.roll_deg + dr,
        )

    # -- nuisances --------------------------------------------------------------------------
    def _shake_events(self, k: int) -> list[tuple[float, float, float, float, float, float]]:
        if k not in self._shakes:
            rng = rng_for(self.seed, STREAM_SHAKE, self.index, k)
            n = int(rng.poisson(self.settings.shake_per_hour))
            ev = []
            for t0 in np.sort(rng.uniform(k * HOUR_S, (k + 1) * HOUR_S, n)):
                ev.append(
                    (
                        float(t0),
                        float(rng.uniform(0.5, 2.5)),
                        float(rng.uniform(0.3, 1.0) * self.settings.shake_px),
                        float(rng.uniform(3.0, 8.0)),
                        float(rng.uniform(0, 2 * np.pi)),
                        float(rng.uniform(0, 2 * np.pi)),
                    )
                )
            self._shakes[k] = ev
            for old in [j for j in self._shakes if j < k - 2]:
                del self._shakes[old]
        return self._shakes[k]

    def shake_px(self, t: float) -> tuple[float, float]:
        """Image shift ``(du, dv)`` in pixels from camera shake at ``t``."""
        if not self.settings.shake or self.settings.shake_px == 0:
            return 0.0, 0.0
        k = math.floor(t / HOUR_S)
        du = dv = 0.0
        for j in (k - 1, k):
            for t0, dur, amp, hz, pu, pv in self._shake_events(j):
                if t0 <= t < t0 + dur:
                    s = t - t0
                    a = amp * math.exp(-2.0 * s / dur)
                    du += a * math.sin(2 * math.pi * hz * s + pu)
                    dv += 0.6 * a * math.sin(2 * math.pi * hz * s + pv)
        return du, dv

    def _background(self, cam: PinholeCamera) -> None:
        key = (cam.pan_deg, cam.tilt_deg)
        if self._bg_key == key:
            return
        h, w = cam.height, cam.width
        vv, uu = np.mgrid[0:h, 0:w]
        u = uu.ravel() + 0.5
        v = vv.ravel() + 0.5
        if self.relief is None:
            gx, gy, hit = cam.to_ground(u, v)
        else:
            seen = pixels_to_terrain(
                cam, self.relief.dem, u, v, curvature_coeff=self.relief.curvature_coeff
            )
            gx, gy, hit = seen.x, seen.y, seen.hit
        rng_m = np.hypot(gx - cam.x, gy - cam.y)
        hit &= rng_m < 60_000.0
        gx = np.where(hit, gx, cam.x)
        gy = np.where(hit, gy, cam.y)
        temp, bush, group = self.terrain.ground(gx, gy)
        haze = np.where(hit, np.exp(-np.where(hit, rng_m, 0.0) / HAZE_M), 0.0)
        # The sky: coldest overhead, warmer toward the horizon.
        d = cam.rays(u, v)
        elev = np.degrees(np.arctan2(-d[:, 2], np.hypot(d[:, 0], d[:, 1])))
        sky = SKY_DN + 25.0 * np.exp(-np.clip(-elev, 0, None) / 3.0)
        horizon = SKY_DN + 25.0
        ground = GROUND_DN + temp - 6.0 * bush
        bg = np.where(hit, haze * ground + (1 - haze) * horizon, sky)
        self.bg = bg.reshape(h, w).astype(np.float32)
        if self.pert.blur.on:
            self.bg = blur_background(self.bg, self.pert.blur.sigma_px)
        self.bg_mean = float(self.bg.mean())
        self.veg_w = (bush * haze * hit).reshape(h, w).astype(np.float32)
        self.veg_group = group.reshape(h, w)
        # Rows near the horizon look through the most air: shimmer is strongest there.
        if self.relief is None:
            cx = np.full(h, w / 2.0)
            _, _, hits = cam.to_ground(cx, np.arange(h) + 0.5)
        else:
            hits = hit.reshape(h, w)[:, w // 2]
        v_h = float(np.argmax(hits)) if hits.any() else float(h)
        self.shimmer_weight = np.exp(-np.abs(np.arange(h) - v_h) / 40.0).astype(np.float32)
        self._bg_key = key

    # -- a frame ----------------------------------------------------------------------------
    def frame(
        self, t: float, frame_index: int, local_hour: float, states: MoverStates, render: bool
    ) -> tuple[PinholeCamera, NDArray[np.uint8] | None, list[ObjectTruth]]:
        """The camera (as shaken), the image (``None`` if not rendered) and the truth at ``t``."""
        st = self.settings
        cam = self.pointing_at(t)
        du, dv = self.shake_px(t)
        f = cam.focal_px
        shaken = cam
        if du or dv:
            shaken = replace(
                cam,
                pan_deg=(cam.pan_deg + math.degrees(du / f)) % 360.0,
                tilt_deg=cam.tilt_deg + math.degrees(dv / f),
            )
        day = day_fraction(local_hour)
        season = self.season
        pert, perturber = self.pert, self.perturber
        if pert.crossover.on:
            cross = crossover_multiplier(
                pert.crossover, local_hour, t, day_fraction, season.day_washout
            )
            contrast_scale = season.body_contrast * cross
        else:
            contrast_scale = season.body_contrast * (1.0 - season.day_washout * day)
        objects = self._visible(self._true(shaken), states, contrast_scale, render)
        if not render:
            return shaken, None, objects
        frozen, ffc_level = perturber.ffc_state(t)
        if frozen and perturber.last_image is not None:  # the shutter is closed
            return shaken, perturber.last_image.copy(), objects
        self._background(self._true(cam))
        rng = rng_for(self.seed, STREAM_FRAME, self.index, frame_index)
        noise_row, noise_col = (int(a) for a in rng.integers(0, NOISE_TILE, 2))
        phase = float(rng.uniform(0, 2 * np.pi))
        if st.shimmer and st.shimmer_px > 0:
            amp = st.shimmer_px * (0.3 + 0.7 * day)
            rows = np.arange(cam.height)
            row_shift = (
                amp
                * self.shimmer_weight
                * (
                    np.sin(2 * np.pi * 2.3 * t + 0.35 * rows + phase)
                    + 0.5 * np.sin(2 * np.pi * 5.1 * t - 0.9 * rows)
                )
            ).astype(np.float32)
        else:
            row_shift = np.zeros(cam.height, np.float32)
        if st.vegetation and st.vegetation_dn > 0:
            wind = 0.4 + 0.6 * day
            tr = self.terrain
            flicker = (
                st.vegetation_dn * wind * np.sin(2 * np.pi * tr.flicker_hz * t + tr.flicker_phase)
            ).astype(np.float32)
        else:
            flicker = np.zeros(VEG_GROUPS, np.float32)
        if st.gain_drift:
            gain = 1.0 + st.gain_drift_fraction * math.sin(2 * math.pi * (local_hour - 9.0) / 24.0)
            offset = 14.0 * day
        else:
            gain, offset = 1.0, 0.0
        self.acc.fill(0.0)
        hot = draw_bodies(self.acc, objects, pert) if objects else False
        perturber.add_dust(self.acc, self._true(shaken), t, day)
        perturber.add_birds(self.acc, self._true(shaken), t)
        perturber.add_pattern(self.acc, frame_index)
        if pert.agc.on:
            g = perturber.agc_gain(t, hot)
            offset += gain * (1.0 - g) * self.bg_mean
            gain *= g
        offset += ffc_level
        out = np.empty((cam.height, cam.width), np.uint8)
        kernels.compose_frame(
            self.bg, row_shift, float(du), float(dv), self.veg_w, self.veg_group, flicker,
            self.acc, float(gain), float(offset), self.noise, noise_row, noise_col, out,
        )  # fmt: skip
        if pert.flat_field.on:
            perturber.last_image = out
        return shaken, out, objects

    def _visible(
        self, cam: PinholeCamera, states: MoverStates, contrast_scale: float, with_masks: bool
    ) -> list[ObjectTruth]:
        if len(states) == 0:
            return []
        relief = self.relief
        foot_z = 0.0
        if relief is not None:
            foot_z = relief.seen_z(cam.centre, states.x, states.y) - cam.ground_z
        u, v, depth = cam.project(states.x, states.y, foot_z)
        rng_m = np.hypot(states.x - cam.x, states.y - cam.y)
        ok = (
            (depth > 0)
            & (u >= 0)
            & (u < cam.width)
            & (v >= 0)
            & (v < cam.height)
            & (rng_m <= cam.max_range_m)
        )
        out = []
        f = cam.focal_px
        # the share of each body's height the ground hides from the camera (feet up)
        hidden = np.zeros(len(states))
        if relief is not None and ok.any():
            idx = np.flatnonzero(ok)
            hidden[idx] = relief.lowest_seen(
                cam.centre,
                states.x[idx],
                states.y[idx],
                np.asarray(foot_z)[idx] + cam.ground_z,
                states.height_m[idx],
            )
            ok &= np.isfinite(hidden)
        pert = self.pert
        if pert.brush.on and ok.any():
            idx = np.flatnonzero(ok)
            cut = brush_hidden(pert.brush, self.terrain, cam, states.x[idx], states.y[idx],
                               states.height_m[idx])  # fmt: skip
            hidden[idx] = np.maximum(hidden[idx], cut)
            ok[idx[cut >= 1.0]] = False
        att = pert.attenuation
        for k in np.flatnonzero(ok):
            w_px = states.width_m[k] * f / depth[k]
            h_px = states.height_m[k] * f / depth[k]
            con = float(states.contrast_dn[k] * contrast_scale)
            if att.on:
                con *= math.exp(-att.extinction_per_km * rng_m[k] / 1000.0)
            peak = abs(con) * min(1.0, w_px) * min(1.0, h_px * (1.0 - hidden[k]))
            if peak < self.settings.visible_contrast_dn:
                continue
            # feet on the ground; the part the ground hides is cut off the bottom
            box = (u[k] - w_px / 2, v[k] - h_px, u[k] + w_px / 2, v[k] - hidden[k] * h_px)
            origin, mask = None, None
            if with_masks:
                i0, j0, cov = coverage(box[0], box[2], box[1], box[3], cam.height, cam.width)
                mask = cov >= 0.5 * cov.max()
                origin = (i0, j0)
            out.append(
                ObjectTruth(
                    states.ids[k], states.classes[k], states.kinds[k], states.groups[k],
                    float(states.x[k]), float(states.y[k]), float(rng_m[k]),
                    tuple(float(b) for b in box), con, origin, mask,
                )
            )  # fmt: skip
        return out
