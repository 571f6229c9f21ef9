"""Synthetic relief for sectors without a real DEM (the demo sector): hills, ridges, washes.

No real elevation model of the Nogales sector can be fetched offline, so the demo's ground is
generated, with a model that is documented here and seeded, so that the same seed gives the
same ground on every machine and at every grid spacing (the height is a function of the local
coordinates, not of the grid):

- **hills**: a fractal (fractional Brownian) surface summed over octaves whose wavelengths
  halve from ``longest_m`` down to 60 m, each octave's amplitude scaled by
  ``(wavelength / longest_m) ** hurst``. Each octave is a sum of 12 plane waves of random
  direction and phase, which is close to a Gaussian field with unit variance;
- **ridges**: a share ``ridge_share`` of each octave is the "ridged" transform
  ``0.798 - |n|`` of the same field (scaled to unit variance), which has sharp crests and broad
  valleys, as eroded desert hills have;
- the hills' sum is scaled so that its standard deviation is ``relief_m``;
- **washes**: channels that run north (the Santa Cruz basin drains north), one about every
  ``wash_spacing_m`` of easting, meandering by a fifth of the spacing, cut ``wash_depth_m`` deep
  with a Gaussian cross-section of half-width ``wash_width_m``;
- **regional slope**: ``rise_north`` metres per metre, around ``base_m`` at the sector centre.

The defaults (:class:`vigil.geo.dem.SyntheticRelief`) give 100-150 m between ridge and valley
within a few kilometres, as around Nogales; it is a stand-in for testing how terrain hides and
displaces people, not a map of the place.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vigil.geo.dem import Bounds, ElevationModel, SyntheticRelief, _grid_for
from vigil.geo.frames import LocalFrame

#: Shortest wavelength of the hills, metres: finer relief than this is below a 30 m DEM's reach.
SHORTEST_M = 60.0
#: Plane waves per octave: enough for a near-Gaussian field, few enough to stay fast.
WAVES_PER_OCTAVE = 12
#: Mean and standard deviation of |n| for a standard normal n, for the ridged transform.
_ABS_MEAN = math.sqrt(2.0 / math.pi)
_ABS_STD = math.sqrt(1.0 - 2.0 / math.pi)


def relief_height(spec: SyntheticRelief, x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
    """Ground height, metres, of the synthetic relief at local points ``(x, y)`` (metres)."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(spec.seed)
    hills = np.zeros(np.broadcast(xa, ya).shape)
    w = spec.ridge_share
    octave_var = (1.0 - w) ** 2 + w**2
    total_var = 0.0
    wavelength = spec.longest_m
    while wavelength >= SHORTEST_M:
        k = 2.0 * math.pi / wavelength
        theta = rng.uniform(0.0, math.pi, WAVES_PER_OCTAVE)
        phase = rng.uniform(0.0, 2.0 * math.pi, WAVES_PER_OCTAVE)
        field = np.zeros_like(hills)
        for t, p in zip(theta, phase, strict=True):
            field += np.cos(k * (xa * math.cos(t) + ya * math.sin(t)) + p)
        field *= math.sqrt(2.0 / WAVES_PER_OCTAVE)
        ridged = (_ABS_MEAN - np.abs(field)) / _ABS_STD
        amplitude = (wavelength / spec.longest_m) ** spec.hurst
        hills += amplitude * ((1.0 - w) * field + w * ridged)
        total_var += amplitude**2 * octave_var
        wavelength /= 2.0
    if total_var > 0:
        hills *= spec.relief_m / math.sqrt(total_var)
    return spec.base_m + spec.rise_north * ya + hills - _washes(spec, xa, ya)


def _washes(spec: SyntheticRelief, x: NDArray[np.float64], y: NDArray[np.float64]):
    """Depth cut by the washes at each point, metres (0 away from them)."""
    cut = np.zeros(np.broadcast(x, y).shape)
    if spec.wash_depth_m == 0.0 or cut.size == 0:
        return cut
    spacing = spec.wash_spacing_m
    reach = 0.5 * spacing + 4.0 * spec.wash_width_m
    first = math.floor((float(np.min(x)) - reach) / spacing) - 1
    last = math.ceil((float(np.max(x)) + reach) / spacing) + 1
    for n in range(first, last + 1):
        # Each wash has its own stream of numbers, so a wash does not move with the grid.
        r = np.random.default_rng([spec.seed, n % 2**32, 7])
        centre0 = (n + r.uniform(-0.3, 0.3)) * spacing
        l1, l2 = r.uniform(2000.0, 4000.0), r.uniform(400.0, 900.0)
        p1, p2, p3 = r.uniform(0.0, 2.0 * math.pi, 3)
        centre = (
            centre0
            + 0.2 * spacing * np.sin(2.0 * math.pi * y / l1 + p1)
            + 0.05 * spacing * np.sin(2.0 * math.pi * y / l2 + p2)
        )
        depth = spec.wash_depth_m * (0.75 + 0.25 * np.sin(2.0 * math.pi * y / 5000.0 + p3))
        cut += depth * np.exp(-(((x - centre) / spec.wash_width_m) ** 2))
    return cut


def synthetic_relief(
    spec: SyntheticRelief,
    bounds: Bounds,
    cell_m: float = 30.0,
    frame: LocalFrame | None = None,
) -> ElevationModel:
    """The synthetic relief sampled on a grid covering ``bounds`` (local metres)."""
    x0, y0, nx, ny = _grid_for(bounds, cell_m)
    xs = x0 + cell_m * np.arange(nx)
    z = np.empty((ny, nx))
    rows = max(1, 200_000 // nx)
    for i in range(0, ny, rows):
        ys = y0 + cell_m * np.arange(i, min(ny, i + rows))
        gx, gy = np.meshgrid(xs, ys)
        z[i : i + len(ys)] = relief_height(spec, gx, gy)
    return ElevationModel(z, x0, y0, cell_m, frame)
