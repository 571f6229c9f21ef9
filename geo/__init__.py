"""Geometry for Vigil: coordinate frames, the border and its segments, camera geometry.

``geo`` is the bottom layer: it imports no other Vigil package and works on coordinates,
shapely geometries, numpy arrays and GeoDataFrames.
"""

from vigil.geo.frames import LocalFrame

__all__ = ["LocalFrame"]
