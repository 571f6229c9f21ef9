"""How the camera perturbations of :mod:`vigil.sim.perturbations` change a tower's frames.

:class:`CameraPerturber` is one tower's state (its fixed pattern, its flat-field corrections,
its AGC); :class:`vigil.sim.thermal.TowerView` calls it at fixed points of a frame. Every
call is a no-op when its family is off, so ``Perturbations.none()`` renders the frames as
before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from . import kernels
from .perturbations import (
    STREAM_BIRDS,
    STREAM_COLUMN,
    STREAM_DUST,
    STREAM_FFC,
    STREAM_FPN,
    Brush,
    Crossover,
    Perturbations,
)
from .plans import rng_for

HOUR_S = 3600.0
#: the Sonoran climate's day washout, for which the crossover curve is written
DESERT_WASHOUT = 0.55
#: how far back the flat-field schedule is searched for the last correction, hours
FFC_LOOKBACK_H = 6


def season_weight(t: float) -> float:
    """1 in mid-July, 0 in mid-January (northern hemisphere), by the UTC day of year at ``t``."""
    doy = datetime.fromtimestamp(t, tz=UTC).timetuple().tm_yday
    return 0.5 * (1.0 + math.cos(2.0 * math.pi * (doy - 196) / 365.25))


def crossover_hours(cfg: Crossover, t: float) -> tuple[float, float]:
    """Local hours of the morning and the evening crossover on the day of ``t``."""
    h_c = cfg.morning_hour + cfg.winter_delay_h * (1.0 - season_weight(t))
    h_c = min(h_c, 13.4)
    return h_c, 27.0 - h_c


def crossover_multiplier(
    cfg: Crossover,
    local_hour: float,
    t: float,
    day_fraction: Callable[[float], float],
    day_washout: float = DESERT_WASHOUT,
) -> float:
    """Bodies' contrast at ``local_hour`` as a fraction of the night's: 1 at night, 0 at the
    crossovers, down to minus the season's negative depth at the afternoon's peak.

    ``day_fraction`` is the renderer's daylight heating (0 at night, 1 at 13:30); the
    multiplier is piecewise linear in it, so its sign flips exactly at the crossover hours.
    ``day_washout`` is the climate's (:mod:`vigil.sim.climate`): the desert's 0.55 gives the
    curve as described; a climate that washes out less (snow, 0.2) scales the day's loss
    down by ``day_washout / 0.55``, so bodies on snow stay warmer than the ground.
    """
    s = season_weight(t)
    depth = cfg.negative_summer * s + cfg.negative_winter * (1.0 - s)
    h_c, _ = crossover_hours(cfg, t)
    d_c = max(day_fraction(h_c), 1e-6)
    d = day_fraction(local_hour)
    m = 1.0 - d / d_c if d <= d_c else -depth * (d - d_c) / max(1.0 - d_c, 1e-06)
    return 1.0 - (1.0 - m) * min(day_washout / DESERT_WASHOUT, 1.0)


def blur_bodies(acc: NDArray[np.float32], sigma_px: float) -> None:
    """Blur the bodies' layer ``acc`` in place with a Gaussian PSF of ``sigma_px`` pixels.

    Only the box around the non-zero pixels, padded by the kernel's reach, is filtered (the
    rest is zero before and after), so a frame with few bodies costs little.
    """
    if sigma_px <= 0:
        return
    rows = np.flatnonzero(acc.any(axis=1))
    if rows.size == 0:
        return
    cols = np.flatnonzero(acc.any(axis=0))
    pad = int(math.ceil(4.0 * sigma_px)) + 1
    i0, i1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, acc.shape[0])
    j0, j1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, acc.shape[1])
    sub = acc[i0:i1, j0:j1]
    sub[...] = ndimage.gaussian_filter(sub, sigma_px, mode="constant", cval=0.0)


def blur_background(bg: NDArray[np.float32], sigma_px: float) -> NDArray[np.float32]:
    """The background seen through the PSF (edges repeated)."""
    if sigma_px <= 0:
        return bg
    return ndimage.gaussian_filter(bg, sigma_px, mode="nearest").astype(np.float32)


class CameraPerturber:
    """One tower's camera perturbations: fixed pattern, flat-field corrections and AGC.

    Parameters
    ----------
    p
        The world's perturbations.
    seed, index
        The world's seed and the tower's index (its own random streams).
    shape
        ``(rows, cols)`` of the frames.
    """

    def __init__(self, p: Perturbations, seed: int, index: int, shape: tuple[int, int]) -> None:
        self.p = p
        self.seed, self.index = seed, index
        rows, cols = shape
        fp = p.fixed_pattern
        self.pattern: NDArray[np.float32] | None = None
        if fp.on and (fp.pixel_dn > 0 or fp.column_dn > 0):
            rng = rng_for(seed, STREAM_FPN, index, 0)
            pix = rng.normal(0.0, fp.pixel_dn, (rows, cols))
            col = rng.normal(0.0, fp.column_dn, cols)
            self.pattern = (pix + col[None, :]).astype(np.float32)
        self._ffc: dict[int, list[tuple[float, float]]] = {}
        self.last_image: NDArray[np.uint8] | None = None
        self._agc_gain = 1.0
        self._dust: dict[int, NDArray[np.float64]] = {}
        self._birds: dict[int, NDArray[np.float64]] = {}
        self._agc_t: float | None = None

    # -- fixed pattern -----------------------------------------------------------------------
    def add_pattern(self, acc: NDArray[np.float32], frame_index: int) -> None:
        """Add the fixed pattern and this frame's column noise to the scene layer ``acc``."""
        fp = self.p.fixed_pattern
        if not fp.on:
            return
        if self.pattern is not None:
            acc += self.pattern
        if fp.column_temporal_dn > 0:
            rng = rng_for(self.seed, STREAM_COLUMN, self.index, frame_index)
            acc += rng.normal(0.0, fp.column_temporal_dn, acc.shape[1]).astype(np.float32)

    # -- flat-field corrections --------------------------------------------------------------
    def _events(self, k: int) -> list[tuple[float, float]]:
        """Corrections in hour ``k``: ``(start time, level after it)``."""
        if k not in self._ffc:
            ff = self.p.flat_field
            rng = rng_for(self.seed, STREAM_FFC, self.index, k)
            n = int(rng.poisson(HOUR_S / ff.mean_interval_s))
            times = np.sort(rng.uniform(k * HOUR_S, (k + 1) * HOUR_S, n))
            levels = rng.normal(0.0, ff.jump_dn, n)
            self._ffc[k] = [(float(a), float(b)) for a, b in zip(times, levels, strict=True)]
            for old in [j for j in self._ffc if j < k - FFC_LOOKBACK_H - 1]:
                del self._ffc[old]
        return self._ffc[k]

    def ffc_state(self, t: float) -> tuple[bool, float]:
        """``(frozen, level)`` at ``t``: whether the shutter is closed (the output repeats the
        last frame) and the level (DN) the last correction left."""
        ff = self.p.flat_field
        if not ff.on:
            return False, 0.0
        k = math.floor(t / HOUR_S)
        for j in range(k, k - FFC_LOOKBACK_H - 1, -1):
            past = [e for e in self._events(j) if e[0] <= t]
            if past:
                t0, level = past[-1]
                return t < t0 + ff.freeze_s, level
        return False, 0.0

    def ffc_times(self, t0: float, t1: float) -> list[float]:
        """Start times of the corrections in ``[t0, t1)``."""
        out = []
        for k in range(math.floor(t0 / HOUR_S), math.floor(t1 / HOUR_S) + 1):
            out += [e[0] for e in self._events(k) if t0 <= e[0] < t1]
        return out

    # -- dust devils -------------------------------------------------------------------------
    def dust_events(self, k: int, cam) -> NDArray[np.float64]:
        """Dust devils of hour ``k`` as rows ``(t0, duration, x0, y0, vx, vy, keep)``, placed
        across ``cam``'s view as it points when the hour is first asked for."""
        if k not in self._dust:
            d = self.p.dust
            rng = rng_for(self.seed, STREAM_DUST, self.index, k)
            n = int(rng.poisson(d.per_hour))
            t0 = rng.uniform(k * HOUR_S, (k + 1) * HOUR_S, n)
            dur = rng.uniform(d.min_s, max(d.max_s, d.min_s), n)
            bearing = np.radians(cam.pan_deg + rng.uniform(-0.5, 0.5, n) * cam.hfov_deg)
            rng_m = rng.uniform(300.0, max(cam.max_range_m, 301.0), n)
            speed = rng.uniform(1.0, 6.0, n)
            head = rng.uniform(0.0, 2 * np.pi, n)
            self._dust[k] = np.column_stack([
                t0, dur, cam.x + rng_m * np.sin(bearing), cam.y + rng_m * np.cos(bearing),
                speed * np.sin(head), speed * np.cos(head), rng.uniform(size=n),
            ])  # fmt: skip
            for old in [j for j in self._dust if j < k - 2]:
                del self._dust[old]
        return self._dust[k]

    def add_dust(self, acc: NDArray[np.float32], cam, t: float, day: float) -> int:
        """Draw the dust devils alive at ``t`` into ``acc``; ``day`` (0-1) is the daylight
        heating, which thins them (an event shows where its ``keep`` draw is below it).
        Returns how many were drawn."""
        d = self.p.dust
        if not d.on or day <= 0:
            return 0
        k = math.floor(t / HOUR_S)
        ev = np.vstack([self.dust_events(j, cam) for j in (k - 1, k)])
        live = ev[(ev[:, 0] <= t) & (t < ev[:, 0] + ev[:, 1]) & (ev[:, 6] < day)]
        drawn = 0
        rows, cols = acc.shape
        for t0, dur, x0, y0, vx, vy, _ in live:
            x, y = x0 + vx * (t - t0), y0 + vy * (t - t0)
            u, v, depth = cam.project([x, x], [y, y], [0.0, d.height_m])
            if depth[0] <= 0:
                continue
            su = max(d.width_m * cam.focal_px / depth[0] / 2.355, 0.3)
            sv = max(abs(v[0] - v[1]) / 2.355, 0.3)
            vc = 0.5 * (v[0] + v[1])
            if not (-4 * su < u[0] < cols + 4 * su and -4 * sv < vc < rows + 4 * sv):
                continue
            s = (t - t0) / dur  # fades in and out
            amp = d.contrast_dn * min(1.0, 4 * s, 4 * (1 - s))
            j0, j1 = max(int(u[0] - 4 * su), 0), min(int(u[0] + 4 * su) + 2, cols)
            i0, i1 = max(int(vc - 4 * sv), 0), min(int(vc + 4 * sv) + 2, rows)
            gu = np.exp(-0.5 * ((np.arange(j0, j1) + 0.5 - u[0]) / su) ** 2)
            gv = np.exp(-0.5 * ((np.arange(i0, i1) + 0.5 - vc) / sv) ** 2)
            acc[i0:i1, j0:j1] += (amp * np.outer(gv, gu)).astype(np.float32)
            drawn += 1
        return drawn

    # -- birds ----------------------------------------------------------------------------------
    def bird_events(self, k: int, cam) -> NDArray[np.float64]:
        """Birds of hour ``k`` as rows ``(t_mid, x_mid, y_mid, z, vx, vy)``: each passes its
        middle point (across ``cam``'s view as it points when the hour is first asked for) at
        ``t_mid``; it is drawn within 60 s either side."""
        if k not in self._birds:
            b = self.p.birds
            rng = rng_for(self.seed, STREAM_BIRDS, self.index, k)
            n = int(rng.poisson(b.per_hour))
            t_mid = rng.uniform(k * HOUR_S, (k + 1) * HOUR_S, n)
            bearing = np.radians(cam.pan_deg + rng.uniform(-0.5, 0.5, n) * cam.hfov_deg)
            rng_m = rng.uniform(b.range_min_m, max(b.range_max_m, b.range_min_m), n)
            speed = rng.uniform(8.0, 15.0, n)
            head = rng.uniform(0.0, 2 * np.pi, n)
            self._birds[k] = np.column_stack([
                t_mid, cam.x + rng_m * np.sin(bearing), cam.y + rng_m * np.cos(bearing),
                rng.uniform(5.0, 40.0, n), speed * np.sin(head), speed * np.cos(head),
            ])  # fmt: skip
            for old in [j for j in self._birds if j < k - 2]:
                del self._birds[old]
        return self._birds[k]

    def add_birds(self, acc: NDArray[np.float32], cam, t: float) -> int:
        """Draw the birds in view at ``t`` into ``acc`` (area-sampled squares through the PSF
        when the blur is on; the warmest wins where they meet bodies); returns how many."""
        b = self.p.birds
        if not b.on:
            return 0
        k = math.floor(t / HOUR_S)
        ev = np.vstack([self.bird_events(j, cam) for j in (k - 1, k, k + 1)])
        ev = ev[np.abs(t - ev[:, 0]) <= 60.0]
        if len(ev) == 0:
            return 0
        dt = t - ev[:, 0]
        u, v, depth = cam.project(ev[:, 1] + ev[:, 4] * dt, ev[:, 2] + ev[:, 5] * dt, ev[:, 3])
        rows, cols = acc.shape
        ok = (depth > 0) & (u > -2) & (u < cols + 2) & (v > -2) & (v < rows + 2)
        if not ok.any():
            return 0
        size = b.size_m * cam.focal_px / depth[ok]
        u, v = u[ok], v[ok]
        # drawn in a patch around them (padded by the PSF's reach), then into the frame
        pad = size.max() / 2 + (4.0 * self.p.blur.sigma_px + 2 if self.p.blur.on else 1)
        i0, i1 = max(int(v.min() - pad), 0), min(int(v.max() + pad) + 1, rows)
        j0, j1 = max(int(u.min() - pad), 0), min(int(u.max() + pad) + 1, cols)
        if i1 <= i0 or j1 <= j0:
            return 0
        layer = np.zeros((i1 - i0, j1 - j0), np.float32)
        kernels.add_blobs(layer, u - j0, v - i0, size, size, np.full(size.shape, b.contrast_dn))
        if self.p.blur.on:
            blur_bodies(layer, self.p.blur.sigma_px)
        patch = acc[i0:i1, j0:j1]
        np.maximum(patch, layer, out=patch)
        return int(len(u))

    # -- AGC ---------------------------------------------------------------------------------
    def agc_gain(self, t: float, hot: bool) -> float:
        """The AGC's gain factor at ``t`` (1 without hot objects), given whether one is in view."""
        a = self.p.agc
        if not a.on:
            return 1.0
        target = 1.0 / (1.0 + a.step) if hot else 1.0
        if self._agc_t is None or a.tau_s <= 0:
            self._agc_gain = target
        else:
            dt = max(t - self._agc_t, 0.0)
            self._agc_gain += (target - self._agc_gain) * (1.0 - math.exp(-dt / a.tau_s))
        self._agc_t = t
        return self._agc_gain


def draw_bodies(acc: NDArray[np.float32], objects: list, p: Perturbations) -> bool:
    """Draw the visible bodies (``ObjectTruth``) into the zeroed layer ``acc``; blur them if
    the blur is on. Bodies colder than the ground are drawn apart and subtracted (the kernel
    keeps the warmest where bodies overlap). Returns whether a hot object (AGC) is in view."""
    uc = np.array([o.centre[0] for o in objects])
    vc = np.array([o.centre[1] for o in objects])
    bw = np.array([o.box[2] - o.box[0] for o in objects])
    bh = np.array([o.box[3] - o.box[1] for o in objects])
    con = np.array([o.contrast_dn for o in objects])
    if (con < 0).all():  # the crossover turns every body the same way: draw, then negate
        kernels.add_blobs(acc, uc, vc, bw, bh, -con)
        np.negative(acc, out=acc)
    elif (con < 0).any():
        neg = np.zeros_like(acc)
        c = con < 0
        kernels.add_blobs(neg, uc[c], vc[c], bw[c], bh[c], -con[c])
        kernels.add_blobs(acc, uc[~c], vc[~c], bw[~c], bh[~c], con[~c])
        acc -= neg
    else:
        kernels.add_blobs(acc, uc, vc, bw, bh, con)
    if p.blur.on:
        blur_bodies(acc, p.blur.sigma_px)
    if not p.agc.on:
        return False
    hot = (np.abs(con) >= p.agc.trigger_dn) & (bw * bh >= p.agc.trigger_px)
    return bool(hot.any())


def brush_hidden(
    cfg: Brush,
    terrain,
    cam,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    height_m: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Share of each body's height (feet up) that brush hides from the camera at ``cam``.

    ``terrain`` is the sector's :class:`vigil.sim.thermal.Terrain` (its bush cells); a body
    is behind brush when its ground point, or a point every 2 m up to ``cfg.look_m`` toward
    the camera, falls in a bush cell. Values of 1 or more: the body is hidden.
    """
    dx, dy = cam.x - x, cam.y - y
    dist = np.maximum(np.hypot(dx, dy), 1e-9)
    behind = np.zeros(len(x), bool)
    for s in np.arange(0.0, cfg.look_m + 1e-9, 2.0):
        _, bush, _ = terrain.ground(x + dx / dist * s, y + dy / dist * s)
        behind |= bush > 0
    return np.where(behind, cfg.height_m / np.maximum(height_m, 1e-9), 0.0)
