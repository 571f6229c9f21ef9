"""Viewsheds: which DEM cells an observer (a tower's camera) can see, as GDAL computes them.

The kernel follows ``gdal_viewshed`` (GDAL's ``GDALViewshedGenerate``, "edge" cell mode), the
anchor this module is checked against cell by cell: Wang, Robinson and White's single scan
("Generating viewsheds without using sightlines", PE&RS 66(1), 2000). Heights are taken
relative to the observer's eye (its cell's height plus ``observer_height_m``) and lowered by
the earth's curvature with refraction, ``coeff * d**2 / (2 a)`` (``a`` the WGS84 semi-major
axis, as GDAL takes from the frame's CRS; ``coeff`` 0.85714 by default, as ``-cc``). The scan
runs out from the observer's row, line by line: each cell's "horizon height" is interpolated
from the two cells next to it that are one step closer to the observer, scaled out to its
distance; a cell is visible when its height plus ``target_height_m`` reaches that horizon, and
then carries the larger of the two onwards. Cells beyond ``max_distance_m`` are out of range.

The grid is :class:`vigil.geo.dem.ElevationModel`'s (rows north); the scan is symmetric in the
row order, so it gives GDAL's answer on the same grid written north-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike, NDArray

from vigil.geo.dem import ElevationModel, TerrainError
from vigil.geo.raycast import CURVATURE_REFRACTION, curvature_factor

#: Cell codes in a viewshed grid.
HIDDEN, VISIBLE, OUT_OF_RANGE = 0, 1, 2

#: Most observers in one call (towers and PTZ presets of a sector fit easily).
MAX_OBSERVERS = 1024

#: Height given to unknown (NaN) cells: far below any ground, so they hide nothing and are not
#: seen themselves.
_UNKNOWN_M = -1.0e7


@njit(cache=True, nogil=True)
def _adjust(line, y_off, ox, cell, adj, max_d2, z_obs):
    """Heights of one line relative to the eye, less curvature; the in-range span [left, right)."""
    n = line.shape[0]
    left, right = 0, n
    dy = cell * y_off
    for x_off in range(0, -ox - 1, -1):
        dx = cell * x_off
        r2 = dx * dx + dy * dy
        if r2 > max_d2:
            left = x_off + ox + 1
            break
        line[ox + x_off] -= adj * r2 + z_obs
    for x_off in range(1, n - ox):
        dx = cell * x_off
        r2 = dx * dx + dy * dy
        if r2 > max_d2:
            right = x_off + ox
            break
        line[ox + x_off] -= adj * r2 + z_obs
    return left, right


@njit(cache=True, nogil=True)
def _edge(x_off, y_off, this_prev, last, last_prev):
    """GDAL's edge mode: the horizon through the two cells one step nearer the observer."""
    if x_off >= y_off:
        return (last_prev * y_off + this_prev * (x_off - y_off)) / (x_off - 1)
    return (last_prev * x_off + last * (y_off - x_off)) / (y_off - 1)


@njit(cache=True, nogil=True)
def _set(out_row, k, line, dz, target):
    """Visibility of cell k from its horizon height dz; the cell then carries the larger."""
    out_row[k] = HIDDEN if line[k] + target < dz else VISIBLE
    if dz > line[k]:
        line[k] = dz


@njit(cache=True, nogil=True)
def _process_line(out_row, this, last, ox, y_off, left, right, target):
    """One line above or below the observer's (y_off >= 1), out from the observer's column."""
    n = this.shape[0]
    if left < right:
        dz = this[ox] if y_off == 1 else last[ox] * y_off / (y_off - 1)
        _set(out_row, ox, this, dz, target)
    else:
        out_row[ox] = OUT_OF_RANGE
    for k in range(ox - 1, left - 1, -1):
        x_off = ox - k
        if x_off == y_off:
            dz = this[k] if x_off == 1 else last[k + 1] * x_off / (x_off - 1)
        else:
            dz = _edge(x_off, y_off, this[k + 1], last[k], last[k + 1])
        _set(out_row, k, this, dz, target)
    for k in range(0, min(left, n)):
        out_row[k] = OUT_OF_RANGE
    for k in range(ox + 1, right):
        x_off = k - ox
        if x_off == y_off:
            dz = this[k] if x_off == 1 else last[k - 1] * x_off / (x_off - 1)
        else:
            dz = _edge(x_off, y_off, this[k - 1], last[k], last[k - 1])
        _set(out_row, k, this, dz, target)
    for k in range(max(right, 0), n):
        out_row[k] = OUT_OF_RANGE


@njit(cache=True, nogil=True)
def _viewshed_one(z_all, ox_all, oy, obs_h, target, cell, adj, max_d2, max_rows, out_all):
    """One observer at cell (oy, ox); fills out (rows, cols) with HIDDEN/VISIBLE/OUT_OF_RANGE.

    Only the columns within ``max_rows`` cells of the observer can be in range: the scan works
    on that window (as GDAL's does), and everything else is out of range.
    """
    out_all[:, :] = OUT_OF_RANGE
    c0 = max(0, ox_all - max_rows)
    c1 = min(z_all.shape[1], ox_all + max_rows + 1)
    z = z_all[:, c0:c1]
    out = out_all[:, c0:c1]
    ox = ox_all - c0
    ny, nx = z.shape
    first = np.empty(nx)
    for k in range(nx):
        v = z[oy, k]
        first[k] = v if math.isfinite(v) else _UNKNOWN_M
    z_obs = obs_h + first[ox]
    row = out[oy]
    row[ox] = VISIBLE
    if ox - 1 >= 0:
        row[ox - 1] = VISIBLE
    if ox + 1 < nx:
        row[ox + 1] = VISIBLE
    left, right = _adjust(first, 0, ox, cell, adj, max_d2, z_obs)
    # along the observer's own line the horizon is the line through the previous cell
    for k in range(ox - 2, left - 1, -1):
        x_off = ox - k
        _set(row, k, first, first[k + 1] * x_off / (x_off - 1), target)
    for k in range(0, min(left, nx)):
        row[k] = OUT_OF_RANGE
    for k in range(ox + 2, right):
        x_off = k - ox
        _set(row, k, first, first[k - 1] * x_off / (x_off - 1), target)
    for k in range(max(right, 0), nx):
        row[k] = OUT_OF_RANGE
    this = np.empty(nx)
    last = np.empty(nx)
    for step in (-1, 1):
        last[:] = first
        line = oy + step
        y_off = 1
        while 0 <= line < ny and y_off <= max_rows:
            for k in range(nx):
                v = z[line, k]
                this[k] = v if math.isfinite(v) else _UNKNOWN_M
            left, right = _adjust(this, y_off, ox, cell, adj, max_d2, z_obs)
            _process_line(out[line], this, last, ox, y_off, left, right, target)
            this, last = last, this
            line += step
            y_off += 1


@njit(cache=True, nogil=True, parallel=True)
def _viewsheds(z, cols, rows, obs_h, target, cell, adj, max_d2, max_rows, out):
    for n in prange(cols.shape[0]):
        _viewshed_one(z, cols[n], rows[n], obs_h[n], target, cell, adj, max_d2, max_rows, out[n])


@dataclass(frozen=True)
class Viewsheds:
    """Visibility grids, one per observer, on the DEM's grid.

    Attributes
    ----------
    codes
        ``(observers, rows, cols)`` of :data:`HIDDEN`, :data:`VISIBLE`, :data:`OUT_OF_RANGE`.
    dem
        The grid they are on.
    """

    codes: NDArray[np.uint8]
    dem: ElevationModel

    @property
    def visible(self) -> NDArray[np.bool_]:
        """True where each observer sees the ground (within range)."""
        return self.codes == VISIBLE

    def any_visible(self) -> NDArray[np.bool_]:
        """Cells that at least one observer sees: the sector's terrain coverage."""
        return np.any(self.codes == VISIBLE, axis=0)

    def seen_at(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.bool_]:
        """Whether each observer sees the cell holding each local point; ``(observers, n)``."""
        i, j, inside = observer_cell(self.dem, x, y)
        out = np.zeros((self.codes.shape[0], i.size), dtype=bool)
        out[:, inside] = self.codes[:, i[inside], j[inside]] == VISIBLE
        return out


def observer_cell(
    dem: ElevationModel, x: ArrayLike, y: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """Row, column of the cell whose centre is nearest each point, and whether it is inside."""
    xa = np.atleast_1d(np.asarray(x, dtype=np.float64))
    ya = np.atleast_1d(np.asarray(y, dtype=np.float64))
    j = np.floor((xa - dem.x0) / dem.cell_m + 0.5)
    i = np.floor((ya - dem.y0) / dem.cell_m + 0.5)
    ny, nx = dem.shape
    inside = (j >= 0) & (j < nx) & (i >= 0) & (i < ny)
    return (
        np.where(inside, i, 0).astype(np.int64),
        np.where(inside, j, 0).astype(np.int64),
        inside,
    )


def viewsheds(
    dem: ElevationModel,
    x: ArrayLike,
    y: ArrayLike,
    observer_height_m: ArrayLike,
    *,
    target_height_m: float = 0.0,
    max_distance_m: float = 0.0,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> Viewsheds:
    """Viewsheds of observers standing on the DEM, as ``gdal_viewshed`` computes them.

    Parameters
    ----------
    dem
        The ground.
    x, y
        Observers' positions in the local frame, metres; each stands on the cell nearest it.
    observer_height_m
        Eye (camera) height above that cell's ground, metres: one value or one per observer.
    target_height_m
        Height above the ground of what must be seen, metres (0: the ground; 1.7: a person).
    max_distance_m
        Range beyond which cells are out of range, metres; 0 for no limit.
    curvature_coeff
        Earth curvature and refraction coefficient (GDAL's ``-cc``); 0 for a flat earth.
    """
    i, j, inside = observer_cell(dem, x, y)
    n = i.size
    if n == 0 or n > MAX_OBSERVERS:
        raise TerrainError(f"{n} observers; expected 1 to {MAX_OBSERVERS}")
    if not np.all(inside):
        k = int(np.flatnonzero(~inside)[0])
        raise TerrainError(
            f"observer {k} at ({np.atleast_1d(x)[k]!r}, {np.atleast_1d(y)[k]!r}) m is outside "
            f"the DEM's grid {dem.bounds!r}"
        )
    heights = np.broadcast_to(np.asarray(observer_height_m, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(heights)):
        raise TerrainError("observer heights contain NaN or infinity")
    if not np.all(np.isfinite(dem.z[i, j])):
        k = int(np.flatnonzero(~np.isfinite(dem.z[i, j]))[0])
        raise TerrainError(f"observer {k} stands on a cell with no known height")
    if not (math.isfinite(max_distance_m) and max_distance_m >= 0.0):
        raise TerrainError(f"max_distance_m={max_distance_m!r}; expected metres >= 0")
    if not (math.isfinite(curvature_coeff) and 0.0 <= curvature_coeff <= 2.0):
        raise TerrainError(f"curvature_coeff={curvature_coeff!r}; expected a value in [0, 2]")
    if not math.isfinite(target_height_m):
        raise TerrainError(f"target_height_m={target_height_m!r}; expected metres")
    if max_distance_m > 0.0:
        max_d2 = max_distance_m**2
        max_rows = math.ceil(max_distance_m / dem.cell_m) + 1
    else:
        max_d2 = math.inf
        max_rows = max(dem.shape)
    out = np.empty((n, *dem.shape), dtype=np.uint8)
    _viewsheds(
        dem.z,
        j,
        i,
        heights,
        float(target_height_m),
        dem.cell_m,
        curvature_factor(curvature_coeff),
        max_d2,
        max_rows,
        out,
    )
    return Viewsheds(out, dem)
