"""The live map's camera coverage: flat wedges, or what each tower sees on the relief.

Without terrain a tower's coverage is its image's wedge on a flat plane
(:meth:`vigil.geo.camera.PinholeCamera.footprint`), as before. When the deployment's
``[terrain]`` names a DEM or synthetic relief, it is the ground the camera really sees there,
as the planners' report counts it (:func:`vigil.geo.terrain_coverage.visible_footprint`): the
cells inside the image that are in the tower's viewshed for a standing person. The viewshed
does not depend on where the camera points, so it is computed once per tower when the map
starts (:class:`TowerViewshed`, a few tens of milliseconds a tower); a camera command only
cuts it again by the turned image (about ten milliseconds).

The page gets each coverage as a GeoJSON ``MultiPolygon`` in WGS84 (``[lon, lat]``, rounded to
1e-6 degrees), holes included, simplified to :data:`COVERAGE_TOLERANCE_M`; a coverage that
still has more than :data:`MAX_COVERAGE_VERTICES` vertices is simplified further (the
tolerance doubles until it fits), so one tower's payload is bounded whatever the DEM's cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from vigil.geo.dem import ElevationModel, TerrainSettings

if TYPE_CHECKING:
    from vigil.geo.frames import LocalFrame
    from vigil.geo.site import Site

#: Coverage polygons are simplified to this tolerance before they go to the page, metres.
COVERAGE_TOLERANCE_M = 5.0
#: Most vertices one tower's coverage may carry to the page (about 24 bytes each in JSON).
MAX_COVERAGE_VERTICES = 4000


def live_relief(
    settings: TerrainSettings | None, site: Site, base_dir: str | Path = "."
) -> ElevationModel | None:
    """The sector's ground for the live map's coverage: the DEM or synthetic relief the
    deployment's ``[terrain]`` names, or None without either (the map then draws flat wedges,
    and no flat-ground warning is given: flat wedges are what it always drew)."""
    from vigil.geo.dem import load_terrain

    if settings is None or (settings.dem is None and settings.synthetic is None):
        return None
    return load_terrain(settings, site, base_dir)


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [] if geom.is_empty else [geom]
    return [p for g in getattr(geom, "geoms", []) for p in _polygons(g)]


def coverage_geojson(
    frame: LocalFrame,
    geom: BaseGeometry,
    *,
    tolerance_m: float = COVERAGE_TOLERANCE_M,
    max_vertices: int = MAX_COVERAGE_VERTICES,
) -> dict[str, Any]:
    """A local-frame coverage as a GeoJSON ``MultiPolygon`` in WGS84 for the page.

    Simplified to ``tolerance_m`` metres (topology kept: holes stay holes), then, while it has
    more than ``max_vertices`` vertices, to twice the tolerance. Coordinates ``[lon, lat]``,
    degrees rounded to 1e-6; an empty coverage is a ``MultiPolygon`` with no coordinates.
    """
    tol = tolerance_m
    simple = geom.simplify(tol) if tol > 0 else geom
    while shapely.get_num_coordinates(simple) > max_vertices:
        tol = max(2.0 * tol, 1.0)
        simple = geom.simplify(tol)
    coordinates = []
    for poly in _polygons(simple):
        rings = []
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords)
            lat, lon = frame.to_wgs84(xy[:, 0], xy[:, 1])
            rings.append(
                [[round(float(o), 6), round(float(a), 6)] for a, o in zip(lat, lon, strict=True)]
            )
        coordinates.append(rings)
    return {"type": "MultiPolygon", "coordinates": coordinates}
