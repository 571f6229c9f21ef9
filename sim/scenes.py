"""Development scenes for motion detection: a thermal tower's view, its nuisances, exact masks.

A scene is a few tens of seconds of 8-bit thermal-style video seen from a mast: textured
ground under a cold sky, with small warm walkers and animals that grow and speed up toward
the bottom of the picture (near the camera) and shrink to a pixel or two near the horizon,
where they cover a fraction of a pixel per frame. Every nuisance a tower camera meets is
drawn: wind-blown brush (patches of warm and cold stems swaying with the gusts), heat
shimmer (a smooth random displacement of the ground, stronger toward the horizon), gain
drift (slow changes of the camera's gain and offset), sensor noise (per pixel, plus a row
pattern) and mast shake (a jitter of the whole picture with occasional jolts). Each frame
comes with its exact truth: a label image numbering the pixels each body covers.

The generator is deterministic by seed: :func:`render_scene` with the same
:class:`SceneSpec` and seed gives the same frames and labels bit for bit. Which seeds are
for choosing constants and which for reporting is set here once,
:data:`CALIBRATION_SEEDS` and :data:`EVALUATION_SEEDS` (disjoint).

Scoring (per object, per pixel, false blobs) is :mod:`.scenes_score`; the benchmark that
runs Vigil's detector against OpenCV's MOG2 and KNN on these scenes is
``benchmarks/bench_detection_scenes.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

#: Seeds used while choosing detector constants (never reported as results).
#: 901-905 from the start; 906-925 added for issue 24's track-before-detect stage, whose
#: settings passed at all of 901-905 and so could not be judged there.
CALIBRATION_SEEDS: tuple[int, ...] = tuple(range(901, 926))
#: Seeds the reported figures come from (disjoint from :data:`CALIBRATION_SEEDS`).
EVALUATION_SEEDS: tuple[int, ...] = tuple(range(1, 11))

#: Bodies' kinds: ``(name, height at the bottom row px, width/height, contrast range grey
#: levels, ground speed range as a share of the frame height per second at the bottom row)``.
KINDS: dict[str, tuple[float, float, tuple[float, float], tuple[float, float]]] = {
    "person": (16.0, 0.38, (14.0, 40.0), (0.010, 0.030)),
    "animal": (9.0, 1.7, (10.0, 30.0), (0.006, 0.040)),
}


@dataclass(frozen=True)
class SceneSpec:
    """What a scene holds; sizes in pixels, times in seconds, levels in grey levels (0-255).

    Attributes
    ----------
    width, height
        Frame size, pixels.
    fps
        Frame rate, Hz.
    seconds
        Length of the scene, seconds.
    horizon
        Row of the horizon as a share of the height (sky above it).
    people, animals
        Bodies of each kind, each moving the whole scene.
    brush_patches
        Patches of wind-blown brush on the ground.
    brush_sway_px
        Largest sway of the brush stems in a gust at the bottom row, pixels; a bush sways
        as many metres anywhere, so as many fewer pixels as it is further away.
    shimmer_px
        Heat shimmer's displacement at the horizon, pixels (standard deviation); it falls
        with the square of the distance from the horizon to nothing at the bottom row.
    gain_drift
        Relative amplitude of the camera gain's slow drift (0.03: +-3 %).
    offset_drift
        Amplitude of the slow offset drift, grey levels.
    noise
        Sensor noise, grey levels (standard deviation per pixel); a row pattern of a third
        of it is added.
    shake_px
        Mast jitter, pixels (standard deviation of the picture's shift).
    jolt_px
        Size of the occasional jolts of the mast, pixels (one every ``jolt_every_s``).
    jolt_every_s
        Mean time between jolts, seconds.
    held_noise
        Held sensor noise, grey levels (standard deviation per pixel; 0 is off): noise that
        keeps its value for frames, as a thermal core's does once a scene of a few dozen
        counts is stretched over 255 grey levels (:func:`held_noise`). Off in the
        development scenes' defaults; the benchmark's ``--held-noise`` turns it on.
    held_rho
        Its correlation from one frame to the next (an AR(1) process: it holds its value
        for about ``1 / (1 - held_rho)`` frames).
    held_spread
        Spread of its size from pixel to pixel: each pixel's standard deviation is
        ``held_noise`` times a log-normal factor of this log-standard deviation (some
        pixels are much noisier than most: heavy tails).
    held_step
        The frame is rounded to multiples of this many grey levels after the noise (one
        sensor count stretched; 0 or 1 is off).
    """

    width: int = 640
    height: int = 480
    fps: float = 10.0
    seconds: float = 60.0
    horizon: float = 0.12
    people: int = 8
    animals: int = 4
    brush_patches: int = 10
    brush_sway_px: float = 1.5
    shimmer_px: float = 0.8
    gain_drift: float = 0.03
    offset_drift: float = 4.0
    noise: float = 1.2
    shake_px: float = 0.15
    jolt_px: float = 1.5
    jolt_every_s: float = 15.0
    held_noise: float = 0.0
    held_rho: float = 0.9
    held_spread: float = 0.3
    held_step: float = 0.0

    @property
    def frames(self) -> int:
        """Number of frames."""
        return int(round(self.seconds * self.fps))


@dataclass
class Body:
    """One moving body's path and looks (positions in pixels of the unshaken picture)."""

    ident: int
    kind: str
    u: NDArray[np.float64]  # centre column per frame
    v: NDArray[np.float64]  # centre row per frame
    height_px: NDArray[np.float64]  # its height per frame (grows toward the camera)
    aspect: float  # width / height
    contrast: float  # grey levels above the ground
    peak: NDArray[np.float64] | None = None  # its brightest pixel over the ground per frame


@dataclass
class Scene:
    """A rendered scene: frames, truth labels and what made them.

    ``frames`` is ``(n, height, width)`` uint8; ``labels`` the same shape int16, 0 where no
    body is and the body's ``ident`` where one covers at least a quarter of the pixel (or,
    for a body narrower than that everywhere, its most covered pixel). ``shake`` is the
    picture's shift per frame ``(n, 2)`` in pixels ``(dx, dy)``; ``speed_px_s`` each body's
    mean image speed, pixels per second.
    """

    spec: SceneSpec
    seed: int
    frames: NDArray[np.uint8]
    labels: NDArray[np.int16]
    bodies: list[Body]
    shake: NDArray[np.float64]
    speed_px_s: dict[int, float] = field(default_factory=dict)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> NDArray:
    """Gaussian-smoothed white noise of unit standard deviation, features ``scale`` px wide."""
    z = rng.standard_normal(shape).astype(np.float32)
    if scale > 0.3:
        z = cv2.GaussianBlur(z, (0, 0), scale)
    return z / max(float(z.std()), 1e-6)


def _ground(rng: np.random.Generator, spec: SceneSpec, margin: int) -> tuple[NDArray, NDArray]:
    """The still ground and sky (float32 grey levels, with a margin) and each row's nearness.

    Nearness is 0 at the horizon and 1 at the bottom row (negative in the sky).
    """
    h, w = spec.height + 2 * margin, spec.width + 2 * margin
    rows = (np.arange(h, dtype=np.float32) - margin - spec.horizon * spec.height) / (
        (1.0 - spec.horizon) * spec.height
    )
    near = np.broadcast_to(rows[:, None], (h, w))
    # texture: coarse and fine, finer toward the horizon (things further away)
    tex = 14.0 * _smooth_noise(rng, (h, w), 10.0) + 6.0 * _smooth_noise(rng, (h, w), 1.2)
    rock = (_smooth_noise(rng, (h, w), 3.0) > 1.6).astype(np.float32) * 12.0
    ground = 95.0 + 10.0 * near + tex + rock
    sky = 45.0 + 8.0 * (near + 0.3) + 1.5 * _smooth_noise(rng, (h, w), 20.0)
    img = np.where(near >= 0, ground, sky).astype(np.float32)
    return img, near.astype(np.float32)


def _brush(
    rng: np.random.Generator, spec: SceneSpec, margin: int, near: NDArray
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Brush: stems' grey levels, where it is (0-1), each pixel's gust phase and sway (px)."""
    h, w = near.shape
    stems = 18.0 * _smooth_noise(rng, (h, w), 0.7)
    alpha = np.zeros((h, w), np.float32)
    for _ in range(spec.brush_patches):
        cy = rng.uniform(spec.horizon * spec.height + 0.1 * spec.height, spec.height) + margin
        cx = rng.uniform(0, spec.width) + margin
        scale = 0.2 + 0.8 * float(near[int(min(cy, h - 1)), 0])
        ry, rx = (rng.uniform(6, 18) * scale + 2, rng.uniform(12, 40) * scale + 3)
        cv2.ellipse(alpha, (int(cx), int(cy)), (int(rx), int(ry)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
    phase = (2 * math.pi * _smooth_noise(rng, (h, w), 25.0)).astype(np.float32)
    reach = (spec.brush_sway_px * np.clip(near, 0.1, 1.0)).astype(np.float32)
    return stems.astype(np.float32), alpha, phase, reach


def _paths(rng: np.random.Generator, spec: SceneSpec) -> list[Body]:
    """Bodies moving for the whole scene: a slowly turning heading, reflected at the edges."""
    n, dt = spec.frames, 1.0 / spec.fps
    top = spec.horizon * spec.height
    bodies: list[Body] = []
    kinds = ["person"] * spec.people + ["animal"] * spec.animals
    for ident, kind in enumerate(kinds, start=1):
        h_bottom, aspect, (c0, c1), (s0, s1) = KINDS[kind]
        # nearness uniform in sqrt so that far (small, slow) bodies are common
        near = rng.uniform(0.2, 1.0) ** 2
        u = rng.uniform(0.05, 0.95) * spec.width
        speed = rng.uniform(s0, s1) * spec.height  # px/s at the bottom row
        heading = rng.uniform(0, 2 * math.pi)
        us, vs, hs = np.empty(n), np.empty(n), np.empty(n)
        for i in range(n):
            heading += rng.normal(0, 0.05)
            # along the ground: toward / away from the camera changes nearness
            du = math.cos(heading) * speed * near * dt
            dn = math.sin(heading) * speed * near * dt / ((1 - spec.horizon) * spec.height)
            u += du
            near += dn * near
            if u < 4 or u > spec.width - 4:
                heading = math.pi - heading
                u = min(max(u, 4.0), spec.width - 4.0)
            if near < 0.03 or near > 0.97:
                heading = -heading
                near = min(max(near, 0.03), 0.97)
            us[i] = u
            vs[i] = top + near * (1 - spec.horizon) * spec.height
            hs[i] = max(h_bottom * near, 1.0)
        contrast = float(rng.uniform(c0, c1))
        bodies.append(Body(ident, kind, us, vs - 0.5 * hs, hs, aspect, contrast))
    return bodies


def _coverage(cu: float, cv: float, a: float, b: float) -> tuple[int, int, NDArray]:
    """An ellipse's cover of each pixel (4x4 sub-samples): ``(left, top, cover)``.

    ``cu, cv`` is the centre and ``a, b`` the half-width and half-height in pixels; pixel
    ``(x, y)`` spans ``[x - 0.5, x + 0.5]`` around its centre.
    """
    x0, x1 = int(math.floor(cu - a - 0.5)), int(math.ceil(cu + a + 0.5))
    y0, y1 = int(math.floor(cv - b - 0.5)), int(math.ceil(cv + b + 0.5))
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    xs = (np.arange(x0, x1 + 1)[:, None] + sub[None, :]).ravel()
    ys = (np.arange(y0, y1 + 1)[:, None] + sub[None, :]).ravel()
    inside = ((xs[None, :] - cu) / a) ** 2 + ((ys[:, None] - cv) / b) ** 2 <= 1.0
    cover = inside.reshape(y1 - y0 + 1, 4, x1 - x0 + 1, 4).mean(axis=(1, 3))
    return x0, y0, cover.astype(np.float32)


def held_noise(seed: int, spec: SceneSpec) -> Iterator[NDArray[np.float32]]:
    """The held sensor noise of a scene, frame by frame (``(height, width)`` grey levels;
    nothing when ``spec.held_noise`` is 0). Per pixel an AR(1) process of coefficient
    ``held_rho`` from frame to frame, stationary from the first frame, of standard
    deviation ``held_noise`` times the pixel's log-normal factor (``held_spread``). Drawn
    from its own random stream (seeded by ``seed``), so that turning it on changes nothing
    else of the scene."""
    if spec.held_noise <= 0:
        return
    rng = np.random.default_rng([seed, 24])
    h, w = spec.height, spec.width
    size = spec.held_noise * np.exp(spec.held_spread * rng.standard_normal((h, w)))
    size = size.astype(np.float32)
    rho = np.float32(spec.held_rho)
    innov = np.float32(math.sqrt(max(1.0 - float(rho) ** 2, 0.0)))
    state = rng.standard_normal((h, w), np.float32)
    for i in range(spec.frames):
        if i:
            state = rho * state + innov * rng.standard_normal((h, w), np.float32)
        yield state * size


def render_scene(seed: int, spec: SceneSpec | None = None) -> Scene:
    """Render a scene at ``seed`` (deterministic): frames, exact labels, bodies, shake."""
    spec = spec or SceneSpec()
    if spec.width < 32 or spec.height < 32 or spec.frames < 1:
        raise ValueError(f"scene {spec.width}x{spec.height}, {spec.frames} frames; too small")
    rng = np.random.default_rng(seed)
    margin = 8
    ground, near = _ground(rng, spec, margin)
    stems, brush_alpha, phase, reach = _brush(rng, spec, margin, near)
    bodies = _paths(rng, spec)
    n, h, w = spec.frames, spec.height, spec.width
    # shimmer: two smooth fields crossfaded, strongest at the horizon
    shimmer_amp = spec.shimmer_px * np.clip(1.0 - np.maximum(near, 0.0), 0, 1) ** 2
    shimmer_amp = np.where(near < 0, 0.0, shimmer_amp).astype(np.float32)
    fields = [_smooth_noise(rng, near.shape, 4.0) for _ in range(4)]
    # mast: AR(1) jitter plus decaying jolts
    shake = np.zeros((n, 2))
    state = np.zeros(2)
    jolt = np.zeros(2)
    for i in range(n):
        state = 0.8 * state + rng.normal(0, spec.shake_px * 0.6, 2)
        if rng.random() < 1.0 / (spec.jolt_every_s * spec.fps):
            jolt = rng.normal(0, spec.jolt_px, 2)
        jolt *= 0.9
        shake[i] = np.clip(state + jolt, -margin + 1, margin - 1)
    t = np.arange(n) / spec.fps
    gain = 1.0 + spec.gain_drift * np.sin(2 * math.pi * t / 47.0 + rng.uniform(0, 6.3))
    offset = spec.offset_drift * np.sin(2 * math.pi * t / 31.0 + rng.uniform(0, 6.3))
    gust = 0.5 + 0.5 * np.sin(2 * math.pi * t / 9.0) ** 2 + 0.2 * rng.standard_normal(n)
    row_pattern = _smooth_noise(rng, (n, h), 0.0) * spec.noise / 3.0
    gx, gy = np.meshgrid(np.arange(w + 2 * margin, dtype=np.float32), np.arange(h + 2 * margin))
    gy = gy.astype(np.float32)
    frames = np.empty((n, h, w), np.uint8)
    labels = np.zeros((n, h, w), np.int16)
    for b in bodies:
        b.peak = np.zeros(n)
    for i in range(n):
        # brush sways with the gust, each stem with its own phase
        sway = reach * float(gust[i]) * np.sin(2 * math.pi * float(t[i]) / 1.3 + phase)
        swayed = cv2.remap(
            stems,
            (gx + sway).astype(np.float32),
            gy,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        scene = ground * (1 - brush_alpha) + (ground + swayed) * brush_alpha
        k = (t[i] / 2.0) % 4
        j, f = int(k), k - int(k)
        fx = (1 - f) * fields[j] + f * fields[(j + 1) % 4]
        fy = (1 - f) * fields[(j + 2) % 4] + f * fields[(j + 3) % 4]
        mx = gx[margin : margin + h, margin : margin + w] - shake[i, 0]
        my = gy[margin : margin + h, margin : margin + w] - shake[i, 1]
        amp = shimmer_amp[margin : margin + h, margin : margin + w]
        mx = (mx + amp * fx[margin : margin + h, margin : margin + w]).astype(np.float32)
        my = (my + 0.5 * amp * fy[margin : margin + h, margin : margin + w]).astype(np.float32)
        img = cv2.remap(scene, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        lab = labels[i]
        best = np.zeros((h, w), np.float32)
        for b in bodies:
            cu, cv_ = b.u[i] + shake[i, 0], b.v[i] + shake[i, 1]
            hh = b.height_px[i]
            x0, y0, cover = _coverage(cu, cv_, 0.5 * max(hh * b.aspect, 0.3), 0.5 * hh)
            ys, xs = (
                slice(max(y0, 0), min(y0 + cover.shape[0], h)),
                slice(max(x0, 0), min(x0 + cover.shape[1], w)),
            )
            c = cover[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
            if c.size == 0:
                continue
            img[ys, xs] += b.contrast * c
            b.peak[i] = b.contrast * float(c.max())
            sel = (c >= 0.25) & (c > best[ys, xs])
            if not sel.any() and c.max() > 0:
                sel = c == c.max()
            lab[ys, xs][sel] = b.ident
            best[ys, xs] = np.maximum(best[ys, xs], np.where(sel, c, 0))
        img = gain[i] * img + offset[i] + row_pattern[i][:, None]
        img += rng.standard_normal((h, w), np.float32) * spec.noise
        np.clip(img + 0.5, 0, 255, out=img)
        frames[i] = img.astype(np.uint8)
    step = max(float(spec.held_step), 1.0)
    for i, noise in enumerate(held_noise(seed, spec)):
        out = np.rint((frames[i] + noise) / step) * step
        frames[i] = np.clip(out, 0, 255).astype(np.uint8)
    speeds = {
        b.ident: float(np.mean(np.hypot(np.diff(b.u), np.diff(b.v))) * spec.fps) for b in bodies
    }
    return Scene(spec, seed, frames, labels, bodies, shake, speeds)
