"""Pinhole camera geometry for tower and aircraft cameras: ground <-> pixel, footprints.

The same model renders the simulator's frames and takes detections back to the ground, so
the two agree by construction. Conventions:

- world: the sector's local frame, metres, ``x`` east, ``y`` north, ``z`` up; flat ground at
  ``z = ground_z``;
- ``pan``: azimuth of the optical axis, degrees clockwise from north;
- ``tilt``: degrees below the horizontal (positive looks down);
- pixels: continuous coordinates, ``u`` to the right and ``v`` down; pixel column ``i``
  covers ``[i, i + 1)``, so the image centre is ``(width / 2, height / 2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import shapely
from msgspec import Meta
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import Polygon

#: A camera's specification, lowest and highest values (inclusive): the one table that the
#: deployment file's towers and aircraft (:mod:`vigil.geo.site`), the camera file of
#: ``vigil detect`` and :class:`PinholeCamera` all check against. The geometry's limits, wide enough
#: for every camera Vigil models: tower lenses from a long-range zoom at full tele (daylight optics
#: past 1000 mm and cooled MWIR narrow fields are 0.2 to 1 degree across) to a wide-area lens, and
#: aircraft gimbals (straight down, kilometres up).
CAMERA_BOUNDS: dict[str, tuple[float, float]] = {
    # optical centre above the ground, metres: a pole (0.5) to an aircraft's ceiling
    "height_m": (0.5, 20000.0),
    # degrees below the horizontal: up at a ridge (-30) to a gimbal at nadir (90)
    "tilt_deg": (-30.0, 90.0),
    # degrees: a tele lens (0.1) to a wide-area one (170, short of 180 where a pinhole has no
    # focal length)
    "hfov_deg": (0.1, 170.0),
    # pixels: small thermal cores (80 x 60) to 8K daylight sensors (7680 x 4320) fit
    "width": (8, 10000),
    "height": (8, 10000),
    # rated range, metres (an aircraft's camera reaches to three orbit radii)
    "max_range_m": (1.0, 100000.0),
}

#: Highest frame rate a camera (or a video's container) may state, frames per second: thermal
#: cores run at 9 to 60 Hz, daylight and high-speed cameras higher; a container that announces
#: more is not believed.
MAX_FRAME_RATE_HZ = 1000.0


def _bounded(kind: type, key: str, description: str) -> Any:
    lo, hi = CAMERA_BOUNDS[key]
    return Annotated[kind, Meta(ge=lo, le=hi, description=description)]


# Field types for structs that declare a camera (msgspec checks them on decode).
CameraHeightM = _bounded(float, "height_m", "optical centre above the ground, metres")
TiltDeg = _bounded(float, "tilt_deg", "optical axis below the horizontal, degrees")
HfovDeg = _bounded(float, "hfov_deg", "horizontal field of view, degrees")
ImageWidth = _bounded(int, "width", "image width, pixels")
ImageHeight = _bounded(int, "height", "image height, pixels")
RangeM = _bounded(float, "max_range_m", "rated range, metres")
FrameRate = Annotated[float, Meta(gt=0.0, le=MAX_FRAME_RATE_HZ, description="frames per second")]


class CameraError(ValueError):
    """A camera set up with impossible values."""


@dataclass(frozen=True)
class PinholeCamera:
    """A camera on a mast (or an aircraft) looking at flat ground.

    Parameters
    ----------
    x, y
        Position in the local frame, metres.
    height_m
        Height of the optical centre above the ground, metres.
    pan_deg, tilt_deg
        Optical axis: azimuth clockwise from north; angle below horizontal, degrees.
    hfov_deg
        Horizontal field of view, degrees. The vertical one follows from square pixels.
    width, height
        Image size, pixels.
    max_range_m
        Rated range: the footprint stops here, metres.
    roll_deg
        Rotation about the optical axis, degrees (aircraft gimbals; towers use 0).
    """

    x: float
    y: float
    height_m: float
    pan_deg: float
    tilt_deg: float
    hfov_deg: float
    width: int = 640
    height: int = 480
    max_range_m: float = 5000.0
    roll_deg: float = 0.0
    ground_z: float = 0.0

    def __post_init__(self) -> None:
        for name, (lo, hi) in CAMERA_BOUNDS.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and lo <= value <= hi):
                raise CameraError(f"camera {name}={value!r}; expected a value in [{lo}, {hi}]")

    # -- basis ----------------------------------------------------------------------------
    @property
    def focal_px(self) -> float:
        """Focal length in pixels."""
        return (self.width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view in degrees (square pixels)."""
        return math.degrees(2.0 * math.atan((self.height / 2.0) / self.focal_px))

    @property
    def centre(self) -> NDArray[np.float64]:
        """Optical centre ``(x, y, z)`` in metres."""
        return np.array([self.x, self.y, self.ground_z + self.height_m])

    def basis(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Unit vectors ``(forward, right, down)`` of the camera in world coordinates."""
        pan, tilt, roll = (math.radians(a) for a in (self.pan_deg, self.tilt_deg, self.roll_deg))
        fwd = np.array(
            [math.sin(pan) * math.cos(tilt), math.cos(pan) * math.cos(tilt), -math.sin(tilt)]
        )
        right = np.array([math.cos(pan), -math.sin(pan), 0.0])
        down = np.cross(fwd, right)
        if roll:
            c, s = math.cos(roll), math.sin(roll)
            right, down = c * right + s * down, -s * right + c * down
        return fwd, right, down

    # -- projection -----------------------------------------------------------------------
    def project(
        self, x: ArrayLike, y: ArrayLike, z: ArrayLike = 0.0
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """World points to pixels: returns ``(u, v, depth_m)``; depth <= 0 is behind the camera."""
        px = np.asarray(x, dtype=np.float64)
        py = np.asarray(y, dtype=np.float64)
        pz = np.asarray(z, dtype=np.float64) + self.ground_z
        fwd, right, down = self.basis()
        c = self.centre
        dx, dy, dz = px - c[0], py - c[1], pz - c[2]
        zc = dx * fwd[0] + dy * fwd[1] + dz * fwd[2]
        xc = dx * right[0] + dy * right[1] + dz * right[2]
        yc = dx * down[0] + dy * down[1] + dz * down[2]
        f = self.focal_px
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.width / 2.0 + f * xc / zc
            v = self.height / 2.0 + f * yc / zc
        return u, v, zc

    def in_view(self, x: ArrayLike, y: ArrayLike, z: ArrayLike = 0.0) -> NDArray[np.bool_]:
        """Whether world points fall inside the image, in front of the camera, within range."""
        u, v, depth = self.project(x, y, z)
        rng = np.hypot(np.asarray(x, dtype=np.float64) - self.x, np.asarray(y) - self.y)
        return (
            (depth > 0)
            & (u >= 0)
            & (u < self.width)
            & (v >= 0)
            & (v < self.height)
            & (rng <= self.max_range_m)
        )

    def rays(self, u: ArrayLike, v: ArrayLike) -> NDArray[np.float64]:
        """World direction (unnormalised) of the ray through each pixel, shape ``(n, 3)``."""
        uu = np.atleast_1d(np.asarray(u, dtype=np.float64))
        vv = np.atleast_1d(np.asarray(v, dtype=np.float64))
        fwd, right, down = self.basis()
        f = self.focal_px
        return (
            f * fwd[None, :]
            + (uu - self.width / 2.0)[:, None] * right[None, :]
            + (vv - self.height / 2.0)[:, None] * down[None, :]
        )

    def to_ground(
        self, u: ArrayLike, v: ArrayLike, z: float = 0.0
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        """Pixels to the flat ground: ``(x, y, hit)``; ``hit`` is False above the horizon.

        With ``z`` (metres above the ground) the rays meet the horizontal plane that high
        instead: where a point seen at ``(u, v)`` stands if it is ``z`` above the ground.
        """
        d = self.rays(u, v)
        c = self.centre
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.ground_z + z - c[2]) / d[:, 2]
        hit = np.isfinite(t) & (t > 0)
        t = np.where(hit, t, np.nan)
        return c[0] + t * d[:, 0], c[1] + t * d[:, 1], hit

    def ground_range(self, u: ArrayLike, v: ArrayLike) -> NDArray[np.float64]:
        """Horizontal distance from the mast to where each pixel meets the ground, metres."""
        gx, gy, _ = self.to_ground(u, v)
        return np.hypot(gx - self.x, gy - self.y)

    def metres_per_pixel(self, range_m: ArrayLike) -> NDArray[np.float64]:
        """Approximate size of one pixel across the line of sight at a range, metres."""
        r = np.asarray(range_m, dtype=np.float64)
        slant = np.hypot(r, self.height_m)
        return slant / self.focal_px

    def footprint(self, samples_per_edge: int = 16) -> Polygon:
        """The ground the image covers, clipped at the rated range, in the local frame.

        Rays at or above the horizon are cut off at ``max_range_m`` along their azimuth.
        """
        n = samples_per_edge
        w, h = float(self.width), float(self.height)
        top = np.column_stack([np.linspace(0, w, n), np.zeros(n)])
        rgt = np.column_stack([np.full(n, w), np.linspace(0, h, n)])
        bot = np.column_stack([np.linspace(w, 0, n), np.full(n, h)])
        lft = np.column_stack([np.zeros(n), np.linspace(h, 0, n)])
        uv = np.vstack([top, rgt, bot, lft])
        gx, gy, hit = self.to_ground(uv[:, 0], uv[:, 1])
        d = self.rays(uv[:, 0], uv[:, 1])
        az = np.arctan2(d[:, 0], d[:, 1])
        far_x = self.x + self.max_range_m * np.sin(az)
        far_y = self.y + self.max_range_m * np.cos(az)
        rng = np.hypot(gx - self.x, gy - self.y)
        use_far = ~hit | (rng > self.max_range_m)
        px = np.where(use_far, far_x, gx)
        py = np.where(use_far, far_y, gy)
        poly = Polygon(np.column_stack([px, py]))
        if not poly.is_valid:
            poly = shapely.make_valid(poly)
            if not isinstance(poly, Polygon):
                poly = max(getattr(poly, "geoms", [poly]), key=lambda g: g.area)
        disc = shapely.Point(self.x, self.y).buffer(self.max_range_m, 64)
        out = poly.intersection(disc)
        return out if isinstance(out, Polygon) else max(out.geoms, key=lambda g: g.area)

    def pointed_at(self, x: float, y: float) -> PinholeCamera:
        """The same camera panned and tilted to centre the ground point ``(x, y)``."""
        dx, dy = x - self.x, y - self.y
        pan = math.degrees(math.atan2(dx, dy)) % 360.0
        tilt = math.degrees(math.atan2(self.height_m, math.hypot(dx, dy)))
        return PinholeCamera(
            x=self.x,
            y=self.y,
            height_m=self.height_m,
            pan_deg=pan,
            tilt_deg=tilt,
            hfov_deg=self.hfov_deg,
            width=self.width,
            height=self.height,
            max_range_m=self.max_range_m,
            roll_deg=self.roll_deg,
            ground_z=self.ground_z,
        )
