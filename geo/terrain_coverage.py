"""What a tower camera really sees on hilly ground: its image's footprint less what hills hide.

:meth:`vigil.geo.camera.PinholeCamera.footprint` is the image's wedge on a flat plane. On a
DEM, a cell is seen when it is inside the image (pan, tilt and field of view, within the rated
range, taking the cell's height into account) and in the tower's viewshed
(:mod:`vigil.geo.viewshed`, for a target standing ``target_height_m`` tall). The seen cells are
turned into polygons in the sector's frame, so that the coverage figures and the tower advice
of :mod:`vigil.geo.patterns.coverage` take them where they took flat wedges:
``footprints=[visible_footprint(cam, dem) for cam in cameras]`` and
``tower_candidates(border, terrain_footprint_at(dem, ...))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry

from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel, TerrainError
from vigil.geo.raycast import CURVATURE_REFRACTION, camera_on_terrain
from vigil.geo.viewshed import VISIBLE, viewsheds

if TYPE_CHECKING:
    from vigil.geo.site import Site

#: A standing person's height, metres: what a tower must see for its coverage to count.
PERSON_HEIGHT_M = 1.7


def seen_cells(
    camera: PinholeCamera,
    dem: ElevationModel,
    *,
    target_height_m: float = PERSON_HEIGHT_M,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> tuple[NDArray[np.bool_], int, int]:
    """Cells of the DEM that the camera sees, within the window around it that its range
    reaches: ``(mask, row0, col0)``, the mask's first row and column in the DEM's grid.

    ``camera.ground_z`` must be the ground's height at the mast
    (:func:`vigil.geo.raycast.camera_on_terrain`).
    """
    view = TowerViewshed(
        camera, dem, target_height_m=target_height_m, curvature_coeff=curvature_coeff
    )
    return view.cells(camera), view.row0, view.col0


def mask_to_polygons(
    mask: NDArray[np.bool_], dem: ElevationModel, row0: int = 0, col0: int = 0
) -> BaseGeometry:
    """Union of the cells set in ``mask`` (rows north, from ``row0``, ``col0`` of the DEM's
    grid) as polygons in the sector's frame; an empty polygon when none is set."""
    from rasterio.features import shapes
    from rasterio.transform import Affine

    if not mask.any():
        return Polygon()
    half = dem.cell_m / 2.0
    transform = Affine(
        dem.cell_m,
        0.0,
        dem.x0 + col0 * dem.cell_m - half,
        0.0,
        dem.cell_m,
        dem.y0 + row0 * dem.cell_m - half,
    )
    m = mask.astype(np.uint8)
    parts = [shape(geom) for geom, value in shapes(m, mask=mask, transform=transform) if value]
    return shapely.union_all(parts)


def visible_footprint(
    camera: PinholeCamera,
    dem: ElevationModel,
    *,
    target_height_m: float = PERSON_HEIGHT_M,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> BaseGeometry:
    """The ground the camera sees on the DEM, as polygons in the sector's frame (metres)."""
    mask, r0, c0 = seen_cells(
        camera, dem, target_height_m=target_height_m, curvature_coeff=curvature_coeff
    )
    return mask_to_polygons(mask, dem, r0, c0)


def aimed_on_terrain(
    camera: PinholeCamera, dem: ElevationModel, aim_x: float, aim_y: float
) -> PinholeCamera:
    """The camera, its mast on the DEM, panned and tilted to centre the ground at
    ``(aim_x, aim_y)`` (the tilt follows the ground's height there, not a flat plane)."""
    cam = camera_on_terrain(camera, dem)
    ground = float(dem.elevation_at(aim_x, aim_y))
    if not math.isfinite(ground):
        raise TerrainError(f"aim point ({aim_x:.1f}, {aim_y:.1f}) m is outside the DEM's cover")
    dx, dy = aim_x - cam.x, aim_y - cam.y
    pan = math.degrees(math.atan2(dx, dy)) % 360.0
    tilt = math.degrees(math.atan2(cam.centre[2] - ground, math.hypot(dx, dy)))
    return PinholeCamera(
        x=cam.x,
        y=cam.y,
        height_m=cam.height_m,
        pan_deg=pan,
        tilt_deg=tilt,
        hfov_deg=cam.hfov_deg,
        width=cam.width,
        height=cam.height,
        max_range_m=cam.max_range_m,
        roll_deg=cam.roll_deg,
        ground_z=cam.ground_z,
    )


def terrain_footprint_at(
    dem: ElevationModel,
    template: PinholeCamera,
    *,
    target_height_m: float = PERSON_HEIGHT_M,
    curvature_coeff: float = CURVATURE_REFRACTION,
) -> Callable[[float, float, float, float], BaseGeometry]:
    """``footprint_at(x, y, aim_x, aim_y)`` for :func:`vigil.geo.patterns.coverage.
    tower_candidates`: a tower like ``template`` (mast, lens, image, range) at ``(x, y)``,
    standing on the DEM and aimed at the border point, and what it sees."""

    def footprint_at(x: float, y: float, aim_x: float, aim_y: float) -> BaseGeometry:
        placed = PinholeCamera(
            x=x,
            y=y,
            height_m=template.height_m,
            pan_deg=0.0,
            tilt_deg=0.0,
            hfov_deg=template.hfov_deg,
            width=template.width,
            height=template.height,
            max_range_m=template.max_range_m,
        )
        cam = aimed_on_terrain(placed, dem, aim_x, aim_y)
        return visible_footprint(
            cam, dem, target_height_m=target_height_m, curvature_coeff=curvature_coeff
        )

    return footprint_at


def sector_coverage(
    site: Site,
    dem: ElevationModel,
    *,
    candidate_spacing_m: float | None = 1000.0,
    setback_m: float = 300.0,
    target_height_m: float = PERSON_HEIGHT_M,
) -> tuple[list[BaseGeometry], dict[str, BaseGeometry]]:
    """What a sector's towers and ground sensors see on its relief, and candidate new towers.

    Parameters
    ----------
    site
        The sector: towers (each camera standing on the DEM, pointed as deployed) and ground
        sensors (:func:`vigil.geo.patterns.coverage.sensor_disc`, unaffected by relief).
    dem
        The sector's ground.
    candidate_spacing_m
        Spacing of candidate tower sites along the line, metres
        (:func:`vigil.geo.patterns.coverage.tower_candidates`, each a tower like the
        deployment's first, aimed at the line and seeing what the relief lets it); None for no
        candidates.
    setback_m
        Candidates' distance from the line into the US, metres.
    target_height_m
        Height of what must be seen (a standing person), metres.

    Returns
    -------
    footprints, candidates
        Local-frame polygons for :func:`vigil.geo.patterns.analysis.analyze_crossing_table`'s
        ``footprints`` and ``candidates``: the coverage figure and the tower advice then count
        only ground the towers really see.
    """
    from vigil.geo.patterns.coverage import sensor_disc, tower_candidates
    from vigil.geo.site import tower_camera

    frame = site.frame()
    footprints: list[BaseGeometry] = []
    for tower in site.towers:
        cam = camera_on_terrain(tower_camera(tower, frame), dem)
        footprints.append(visible_footprint(cam, dem, target_height_m=target_height_m))
    if site.sensors:
        xs, ys = frame.to_local([s.lat for s in site.sensors], [s.lon for s in site.sensors])
        for x, y, sensor in zip(xs, ys, site.sensors, strict=True):
            footprints.append(sensor_disc(float(x), float(y), sensor.radius_m))
    candidates: dict[str, BaseGeometry] = {}
    if candidate_spacing_m is not None and site.towers:
        template = tower_camera(site.towers[0], frame)
        footprint_at = terrain_footprint_at(dem, template, target_height_m=target_height_m)
        border = site.border(frame)
        # a candidate off the DEM cannot be placed: it is left out, not guessed
        inside = _on_dem(dem, footprint_at)
        candidates = tower_candidates(
            border, inside, spacing_m=candidate_spacing_m, setback_m=setback_m
        )
        candidates = {k: v for k, v in candidates.items() if v is not None}
    return footprints, candidates


def _on_dem(
    dem: ElevationModel, footprint_at: Callable[[float, float, float, float], BaseGeometry]
) -> Callable[[float, float, float, float], BaseGeometry | None]:
    def placed(x: float, y: float, aim_x: float, aim_y: float) -> BaseGeometry | None:
        try:
            return footprint_at(x, y, aim_x, aim_y)
        except TerrainError:
            return None

    return placed


class TowerViewshed:
    """One tower's viewshed on the DEM, computed once, and what the camera sees of it wherever
    it points.

    Parameters
    ----------
    camera
        The tower's camera standing on the DEM (``ground_z`` the ground at the mast,
        :func:`vigil.geo.raycast.camera_on_terrain`).
    dem
        The sector's ground.
    target_height_m
        Height of what must be seen (a standing person), metres.
    """

    def __init__(
        self,
        camera: PinholeCamera,
        dem: ElevationModel,
        *,
        target_height_m: float = PERSON_HEIGHT_M,
        curvature_coeff: float = CURVATURE_REFRACTION,
    ) -> None:
        vs = viewsheds(
            dem,
            [camera.x],
            [camera.y],
            camera.height_m,
            target_height_m=target_height_m,
            max_distance_m=camera.max_range_m,
            curvature_coeff=curvature_coeff,
        )
        # the window around the mast that the rated range reaches (as seen_cells takes it)
        ny, nx = dem.shape
        reach = math.ceil(camera.max_range_m / dem.cell_m) + 1
        j0 = round((camera.x - dem.x0) / dem.cell_m)
        i0 = round((camera.y - dem.y0) / dem.cell_m)
        r0, r1 = max(0, i0 - reach), min(ny, i0 + reach + 1)
        c0, c1 = max(0, j0 - reach), min(nx, j0 + reach + 1)
        self.dem = dem
        self.row0, self.col0 = r0, c0
        self.ground_z = camera.ground_z
        self.visible: NDArray[np.bool_] = vs.codes[0, r0:r1, c0:c1] == VISIBLE
        gx, gy = np.meshgrid(
            dem.x0 + dem.cell_m * np.arange(c0, c1), dem.y0 + dem.cell_m * np.arange(r0, r1)
        )
        self._gx, self._gy, self._gz = gx, gy, dem.z[r0:r1, c0:c1]

    def seen(self, camera: PinholeCamera) -> BaseGeometry:
        """The ground the camera sees on the relief, polygons in the sector's frame (metres).

        ``camera`` is this tower's camera, panned and tilted as it now points (the mast, and
        so the viewshed, unchanged); its ``ground_z`` is the ground at the mast.
        """
        return mask_to_polygons(self.cells(camera), self.dem, self.row0, self.col0)

    def cells(self, camera: PinholeCamera) -> NDArray[np.bool_]:
        """The window's cells the camera sees as it now points (rows from ``row0``, columns
        from ``col0`` of the DEM's grid)."""
        in_image = camera.in_view(self._gx, self._gy, self._gz - camera.ground_z)
        return self.visible & in_image
