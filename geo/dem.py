"""Ground elevation over a sector: a DEM on a regular grid in the sector's local frame.

A deployment names its ground in a ``[terrain]`` section (:class:`TerrainSettings`): a GeoTIFF
elevation model in any CRS, read with rasterio and reprojected once onto a regular grid in the
sector's local frame (:class:`vigil.geo.frames.LocalFrame`, metres east and north of the
sector's centre); or the documented synthetic relief of :mod:`vigil.geo.relief` (for the demo
sector, where no real DEM can be shipped); or nothing, which is flat ground at height 0 as
before, said with a :class:`FlatGroundWarning`.

Grid convention (:class:`ElevationModel`): ``z[i, j]`` is the ground height, metres, at the
cell centre ``(x0 + j * cell_m, y0 + i * cell_m)``: rows run north, columns east. Between
centres the ground is bilinear; cells the DEM does not cover are NaN.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec
import numpy as np
from msgspec import Meta
from numpy.typing import ArrayLike, NDArray

from vigil.geo.frames import LocalFrame

if TYPE_CHECKING:
    from vigil.geo.site import Site

#: Most cells a sector grid may hold (4096 x 4096 float64 is 128 MiB): a DEM path, cell size
#: or extent that asks for more is refused rather than filling memory.
MAX_CELLS = 4096 * 4096

#: Most cells read from a source GeoTIFF (a 16k x 16k tile): larger files are refused.
MAX_SOURCE_CELLS = 16384 * 16384


class TerrainError(ValueError):
    """A DEM that cannot be read or placed (missing file, no CRS, too large, no overlap)."""


class FlatGroundWarning(UserWarning):
    """The deployment names no DEM: detections are placed on flat ground at height 0."""


class SyntheticRelief(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Parameters of the synthetic relief (:func:`vigil.geo.relief.synthetic_relief`).

    The defaults follow the hills north of Nogales, Arizona (Santa Cruz County): ground about
    1200 m above sea level, rolling hills with 100-150 m between ridge and valley floor within
    a few kilometres, and sandy washes a few metres deep draining north down a regional
    slope of about 8 m per kilometre (Nogales, 1180 m, to Rio Rico, 1050 m, 16 km north).
    """

    seed: Annotated[int, Meta(ge=0, le=2**32 - 1, description="random seed")] = 0
    base_m: Annotated[float, Meta(ge=-500.0, le=9000.0, description="mean height, metres")] = 1200.0
    relief_m: Annotated[
        float, Meta(ge=0.0, le=2000.0, description="standard deviation of the hills, metres")
    ] = 35.0
    longest_m: Annotated[
        float, Meta(ge=100.0, le=100_000.0, description="longest wavelength of the hills, metres")
    ] = 8000.0
    hurst: Annotated[
        float, Meta(ge=0.1, le=1.0, description="roughness exponent: 1 smooth, 0.1 rough")
    ] = 0.8
    ridge_share: Annotated[
        float, Meta(ge=0.0, le=1.0, description="share of sharp-crested (ridged) relief")
    ] = 0.4
    wash_spacing_m: Annotated[
        float, Meta(ge=100.0, le=50_000.0, description="mean spacing of the washes, metres")
    ] = 1500.0
    wash_depth_m: Annotated[
        float, Meta(ge=0.0, le=100.0, description="depth of a wash below its banks, metres")
    ] = 6.0
    wash_width_m: Annotated[
        float, Meta(ge=1.0, le=1000.0, description="half-width of a wash, metres")
    ] = 25.0
    rise_north: Annotated[
        float, Meta(ge=-0.2, le=0.2, description="regional slope: metres up per metre north")
    ] = -0.008


class TerrainSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The deployment's ``[terrain]`` section: where the sector's ground heights come from.

    Attributes
    ----------
    dem
        A GeoTIFF elevation model (heights in metres), path relative to the deployment file.
        Any CRS the file declares; it is reprojected once onto the sector's grid.
    synthetic
        Generate the ground instead (:mod:`vigil.geo.relief`): for demonstrations and the
        simulator where no real DEM is at hand. Not together with ``dem``.
    band
        Which band of the GeoTIFF holds the heights (1 = first).
    cell_m
        Grid spacing of the sector grid, metres: 30 m matches SRTM/3DEP 1 arc-second.
    margin_m
        Ground kept around the towers' rated ranges and the sector's ends, metres.
    resampling
        How the DEM is resampled onto the grid: ``bilinear`` (default), ``cubic`` or
        ``nearest``.
    pointing
        A pointing calibration file (:mod:`vigil.geo.landmarks`, written by ``vigil
        calibrate tower``), path relative to the deployment file: each tower's pan, tilt and
        roll offsets from surveyed landmarks and their standard errors, applied where
        detections are placed on the ground.

    Without ``dem`` and ``synthetic`` the ground is flat at height 0 (the behaviour before
    terrain), said with a :class:`FlatGroundWarning` when loaded.
    """

    dem: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None
    synthetic: SyntheticRelief | None = None
    band: Annotated[int, Meta(ge=1, le=1000)] = 1
    cell_m: Annotated[float, Meta(ge=1.0, le=1000.0, description="grid spacing, metres")] = 30.0
    margin_m: Annotated[float, Meta(ge=0.0, le=50_000.0, description="metres")] = 1000.0
    resampling: Literal["bilinear", "cubic", "nearest"] = "bilinear"
    pointing: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None

    def __post_init__(self) -> None:
        if self.dem is not None and self.synthetic is not None:
            raise TerrainError("terrain: give either dem or synthetic, not both")


Bounds = tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class ElevationModel:
    """Ground heights on a regular grid in a sector's local frame.

    Parameters
    ----------
    z
        Heights, metres, shape ``(rows, cols)``: ``z[i, j]`` at ``(x0 + j*cell_m, y0 + i*cell_m)``
        (rows north, columns east). NaN where unknown.
    x0, y0
        Local coordinates of the centre of cell ``[0, 0]`` (the south-west one), metres.
    cell_m
        Grid spacing, metres.
    frame
        The local frame the grid is in (None for a grid in an abstract frame, as in tests).
    """

    z: NDArray[np.float64]
    x0: float
    y0: float
    cell_m: float
    frame: LocalFrame | None = None

    def __post_init__(self) -> None:
        z = np.ascontiguousarray(self.z, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] < 2 or z.shape[1] < 2:
            raise TerrainError(f"elevation grid of shape {z.shape}; expected at least 2 x 2")
        if z.size > MAX_CELLS:
            raise TerrainError(f"elevation grid of {z.size} cells; at most {MAX_CELLS}")
        if not (math.isfinite(self.cell_m) and self.cell_m > 0):
            raise TerrainError(f"cell_m={self.cell_m!r}; expected a positive spacing in metres")
        if not (math.isfinite(self.x0) and math.isfinite(self.y0)):
            raise TerrainError(f"grid origin ({self.x0!r}, {self.y0!r}) is not finite")
        object.__setattr__(self, "z", z)

    @classmethod
    def flat(cls, bounds: Bounds, cell_m: float, height_m: float = 0.0, frame=None):
        """Flat ground at ``height_m`` covering ``bounds`` (xmin, ymin, xmax, ymax), metres."""
        x0, y0, nx, ny = _grid_for(bounds, cell_m)
        return cls(np.full((ny, nx), float(height_m)), x0, y0, cell_m, frame)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the grid."""
        return self.z.shape  # type: ignore[return-value]

    @property
    def bounds(self) -> Bounds:
        """Extent of the cell centres ``(xmin, ymin, xmax, ymax)``, metres: where the
        bilinear ground is defined."""
        ny, nx = self.z.shape
        return (
            self.x0,
            self.y0,
            self.x0 + (nx - 1) * self.cell_m,
            self.y0 + (ny - 1) * self.cell_m,
        )

    def elevation_at(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        """Bilinear ground height at local points, metres; NaN outside the grid."""
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        ny, nx = self.z.shape
        u = (xa - self.x0) / self.cell_m
        v = (ya - self.y0) / self.cell_m
        inside = (u >= 0) & (u <= nx - 1) & (v >= 0) & (v <= ny - 1)
        u = np.where(inside, u, 0.0)
        v = np.where(inside, v, 0.0)
        j = np.minimum(np.floor(u).astype(np.int64), nx - 2)
        i = np.minimum(np.floor(v).astype(np.int64), ny - 2)
        a, b = u - j, v - i
        z = self.z
        out = (
            z[i, j] * (1 - a) * (1 - b)
            + z[i, j + 1] * a * (1 - b)
            + z[i + 1, j] * (1 - a) * b
            + z[i + 1, j + 1] * a * b
        )
        return np.where(inside, out, np.nan)

    def to_geotiff(self, path: str | Path) -> Path:
        """Write the grid as a north-up float64 GeoTIFF in the frame's CRS (NaN is nodata)."""
        import rasterio
        from rasterio.transform import Affine

        if self.frame is None:
            raise TerrainError("an elevation grid without a frame has no CRS to write")
        ny, nx = self.z.shape
        half = self.cell_m / 2.0
        top = self.y0 + (ny - 1) * self.cell_m + half
        transform = Affine(self.cell_m, 0.0, self.x0 - half, 0.0, -self.cell_m, top)
        out = Path(path)
        with rasterio.open(
            out,
            "w",
            driver="GTiff",
            width=nx,
            height=ny,
            count=1,
            dtype="float64",
            crs=self.frame.crs.to_wkt(),
            transform=transform,
            nodata=np.nan,
        ) as dst:
            dst.write(self.z[::-1], 1)
        return out


def _shown(bounds: Bounds) -> str:
    """Bounds as an error shows them: ``(xmin, ymin, xmax, ymax)`` to the decimetre."""
    return "(" + ", ".join(f"{float(b):.1f}" for b in bounds) + ")"


def _grid_for(bounds: Bounds, cell_m: float) -> tuple[float, float, int, int]:
    """Origin and size of a grid whose cell centres cover ``bounds``."""
    xmin, ymin, xmax, ymax = (float(b) for b in bounds)
    if not all(math.isfinite(b) for b in (xmin, ymin, xmax, ymax)) or xmax <= xmin or ymax <= ymin:
        raise TerrainError(f"grid bounds {bounds!r}; expected finite xmin < xmax, ymin < ymax")
    nx = math.ceil((xmax - xmin) / cell_m) + 1
    ny = math.ceil((ymax - ymin) / cell_m) + 1
    if nx * ny > MAX_CELLS:
        raise TerrainError(
            f"a grid of {nx} x {ny} cells at cell_m={cell_m} over {_shown(bounds)} m; at most "
            f"{MAX_CELLS} cells: use a larger cell_m or a smaller margin"
        )
    return xmin, ymin, nx, ny


def read_geotiff(
    path: str | Path,
    frame: LocalFrame,
    bounds: Bounds,
    cell_m: float = 30.0,
    *,
    band: int = 1,
    resampling: str = "bilinear",
) -> ElevationModel:
    """Read a GeoTIFF DEM in any CRS onto a grid in ``frame`` covering ``bounds``.

    Parameters
    ----------
    path
        The GeoTIFF; heights in metres. Its nodata cells become NaN.
    frame
        The sector's local frame.
    bounds
        ``(xmin, ymin, xmax, ymax)`` in the frame, metres: the grid's cell centres cover it.
    cell_m
        Grid spacing, metres.
    band
        Band holding the heights (1 = first).
    resampling
        ``bilinear``, ``cubic`` or ``nearest``.

    Raises
    ------
    TerrainError
        The file is missing or unreadable, declares no CRS, is too large, lacks the band, or
        does not overlap the bounds at all.
    """
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.transform import Affine
    from rasterio.warp import Resampling, reproject

    p = Path(path)
    if not p.is_file():
        raise TerrainError(f"DEM {str(p)!r}: no such file")
    x0, y0, nx, ny = _grid_for(bounds, cell_m)
    try:
        src = rasterio.open(p)
    except RasterioIOError as exc:
        raise TerrainError(f"DEM {str(p)!r}: not a raster GDAL can read ({exc})") from None
    with src:
        if src.crs is None:
            raise TerrainError(f"DEM {str(p)!r} declares no CRS; expected a georeferenced GeoTIFF")
        if src.width * src.height > MAX_SOURCE_CELLS:
            raise TerrainError(
                f"DEM {str(p)!r} is {src.width} x {src.height} cells; at most "
                f"{MAX_SOURCE_CELLS}: crop it to the sector first"
            )
        if not 1 <= band <= src.count:
            raise TerrainError(f"DEM {str(p)!r} has {src.count} band(s); band={band} asked for")
        half = cell_m / 2.0
        top = y0 + (ny - 1) * cell_m + half
        dst = np.full((ny, nx), np.nan, dtype=np.float64)
        reproject(
            source=rasterio.band(src, band),
            destination=dst,
            src_nodata=src.nodata,
            dst_transform=Affine(cell_m, 0.0, x0 - half, 0.0, -cell_m, top),
            dst_crs=frame.crs.to_wkt(),
            dst_nodata=np.nan,
            resampling=getattr(Resampling, resampling),
        )
    if not np.any(np.isfinite(dst)):
        raise TerrainError(f"DEM {str(p)!r} does not cover the sector's grid {_shown(bounds)} m")
    return ElevationModel(dst[::-1].copy(), x0, y0, cell_m, frame)


def site_bounds(site: Site, margin_m: float = 1000.0) -> Bounds:
    """Local extent that the sector's ground must cover, metres: the sector's centre and ends,
    each tower's rated range and the ground sensors, plus ``margin_m``."""
    frame = site.frame()
    lats = [site.sector.centre[0]]
    lons = [site.sector.centre[1]]
    for end in (site.sector.start, site.sector.end):
        if end is not None:
            lats.append(end[0])
            lons.append(end[1])
    lats += [s.lat for s in site.sensors]
    lons += [s.lon for s in site.sensors]
    x, y = frame.to_local(lats, lons)
    xs, ys = list(x), list(y)
    if site.towers:
        tx, ty = frame.to_local([t.lat for t in site.towers], [t.lon for t in site.towers])
        for xi, yi, t in zip(tx, ty, site.towers, strict=True):
            xs += [xi - t.range_m, xi + t.range_m]
            ys += [yi - t.range_m, yi + t.range_m]
    return (
        min(xs) - margin_m,
        min(ys) - margin_m,
        max(xs) + margin_m,
        max(ys) + margin_m,
    )


def load_terrain(
    settings: TerrainSettings | None,
    site: Site,
    base_dir: str | Path = ".",
) -> ElevationModel:
    """The sector's ground as the deployment describes it.

    Parameters
    ----------
    settings
        The deployment's ``[terrain]`` section, or None when it has none.
    site
        The sector: its frame and :func:`site_bounds` give the grid.
    base_dir
        Folder of the deployment file: a relative ``dem`` path is taken from there.

    Without a DEM or synthetic relief the ground is flat at 0 m, with a
    :class:`FlatGroundWarning`.
    """
    s = settings or TerrainSettings()
    frame = site.frame()
    bounds = site_bounds(site, s.margin_m)
    if s.dem is not None:
        path = Path(s.dem)
        if not path.is_absolute():
            path = Path(base_dir) / path
        return read_geotiff(path, frame, bounds, s.cell_m, band=s.band, resampling=s.resampling)
    if s.synthetic is not None:
        from vigil.geo.relief import synthetic_relief

        return synthetic_relief(s.synthetic, bounds, s.cell_m, frame)
    warnings.warn(
        f"sector {site.sector.name!r}: no [terrain] dem in the deployment; the ground is taken "
        "as flat at height 0, and ground positions on hills are off by tens to hundreds of "
        "metres at long range",
        FlatGroundWarning,
        stacklevel=2,
    )
    return ElevationModel.flat(bounds, s.cell_m, 0.0, frame)
