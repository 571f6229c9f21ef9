"""The border: real boundary lines, a sector's stretch of one, and its segments.

The shipped lines (``geo/data``) are Natural Earth's land boundaries. In both files the US
lies on the **right** of each line's coordinate order (the US-Mexico line runs from the Gulf
to the Pacific; the US-Canada parts run south along Alaska and east along the 49th parallel),
which is what the signed side test uses. Tests pin this down with towns on either side.
The US-Canada line also runs through the water where the boundary does (the Great Lakes, the
St. Lawrence, the Detroit and Niagara rivers, the outlet of Lake Champlain and Missisquoi
Bay): a point on a lake or river is on the side the line puts it, so someone crossing by
boat or on the ice is on the US side once past it. Entering the US is northbound on the
southern border and southbound on most of the northern one (:meth:`Border.entry_direction`).

A sector's :class:`Border` works in the sector's :class:`~vigil.geo.frames.LocalFrame`: the stretch
is cut into segments of equal length (default 1 km) with stable ids ``{sector}-{index:04d}``
counted from the stretch's start, each with its chainage (km from the start).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import LineString, MultiLineString, Point
from shapely.ops import substring

from vigil.geo.frames import LocalFrame

BOUNDARIES = {"us_mx": "us_mx_border.geojson", "us_ca": "us_ca_border.geojson"}
US_SIDE = 1
FOREIGN_SIDE = -1
#: Compass directions of a crossing (see :meth:`Border.entry_direction`).
NORTHBOUND, SOUTHBOUND = "northbound", "southbound"


class BorderError(ValueError):
    """A stretch of border that cannot be built as asked."""


def load_boundary(name: str) -> list[LineString]:
    """The parts of a shipped boundary line, WGS84 lon/lat, US on the right of each.

    Parameters
    ----------
    name
        ``"us_mx"`` or ``"us_ca"``.
    """
    if name not in BOUNDARIES:
        raise BorderError(f"boundary {name!r} is not shipped; expected one of {sorted(BOUNDARIES)}")
    text = (
        resources.files("vigil.geo").joinpath("data", BOUNDARIES[name]).read_text(encoding="utf-8")
    )
    parts: list[LineString] = []
    for feature in json.loads(text)["features"]:
        geom = shapely.geometry.shape(feature["geometry"])
        if isinstance(geom, MultiLineString):
            parts.extend(geom.geoms)
        else:
            parts.append(geom)
    return parts


@dataclass(frozen=True)
class Segment:
    """One piece of a sector's border.

    ``line`` is in the sector's local frame (metres); ``chainage_start_km`` and
    ``chainage_end_km`` are distances along the stretch from its start.
    """

    segment_id: str
    index: int
    line: LineString
    chainage_start_km: float
    chainage_end_km: float

    @property
    def length_m(self) -> float:
        """Length of the segment in metres."""
        return float(self.line.length)


class Border:
    """A sector's stretch of a boundary line cut into segments, in the sector's frame.

    Parameters
    ----------
    sector
        Sector name, used in segment ids.
    frame
        The sector's local metric frame.
    boundary
        ``"us_mx"`` or ``"us_ca"``.
    start, end
        ``(lat, lon)`` degrees: the stretch runs between the points of the line nearest to
        these. Give these or ``bbox``.
    bbox
        ``(min_lon, min_lat, max_lon, max_lat)`` degrees: the stretch is the part of the line
        from its first entry into the box to its last exit.
    segment_length_m
        Length of each segment, metres (default 1000). The last segment takes the remainder.
    """

    def __init__(
        self,
        sector: str,
        frame: LocalFrame,
        boundary: str = "us_mx",
        *,
        start: tuple[float, float] | None = None,
        end: tuple[float, float] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        segment_length_m: float = 1000.0,
    ) -> None:
        if not (np.isfinite(segment_length_m) and segment_length_m > 0):
            raise BorderError(f"segment_length_m={segment_length_m!r}; expected a positive length")
        if (start is None) != (end is None):
            raise BorderError("give both start and end, or neither")
        if (start is None) == (bbox is None):
            raise BorderError("give either start and end, or bbox, to choose the stretch")
        self.sector = sector
        self.frame = frame
        self.boundary = boundary
        self.segment_length_m = float(segment_length_m)
        self.line = self._stretch(load_boundary(boundary), start, end, bbox)
        self.segments = self._cut(self.line)
        self._tree = shapely.STRtree([s.line for s in self.segments])

    # -- building -------------------------------------------------------------------------
    def _to_local_line(self, part: LineString) -> LineString:
        lon, lat = np.asarray(part.coords).T
        x, y = self.frame.to_local(lat, lon)
        return LineString(np.column_stack([x, y]))

    def _stretch(
        self,
        parts: list[LineString],
        start: tuple[float, float] | None,
        end: tuple[float, float] | None,
        bbox: tuple[float, float, float, float] | None,
    ) -> LineString:
        if bbox is not None:
            lon0, lat0, lon1, lat1 = bbox
            if not (lon0 < lon1 and lat0 < lat1):
                raise BorderError(f"bbox={bbox!r}; expected (min_lon, min_lat, max_lon, max_lat)")
            box = shapely.box(*bbox)
            hits = [(p, p.intersection(box)) for p in parts if p.intersects(box)]
            if not hits:
                raise BorderError(
                    f"the {self.boundary} boundary does not pass through bbox={bbox!r}"
                )
            part, inside = max(hits, key=lambda h: h[1].length)
            pieces = list(getattr(inside, "geoms", [inside]))
            ends = [Point(c) for g in pieces for c in (g.coords[0], g.coords[-1])]
            d = [part.project(e) for e in ends]
            local = self._to_local_line(part)
            first, last = ends[int(np.argmin(d))], ends[int(np.argmax(d))]
            x, y = self.frame.to_local([first.y, last.y], [first.x, last.x])
            a = local.project(Point(x[0], y[0]))
            b = local.project(Point(x[1], y[1]))
        else:
            assert start is not None and end is not None
            (la0, lo0), (la1, lo1) = start, end
            p0, p1 = Point(lo0, la0), Point(lo1, la1)
            part = min(parts, key=lambda p: p.distance(p0) + p.distance(p1))
            local = self._to_local_line(part)
            x, y = self.frame.to_local([la0, la1], [lo0, lo1])
            a = local.project(Point(x[0], y[0]))
            b = local.project(Point(x[1], y[1]))
        if a > b:
            # Keep the line's own orientation so the US stays on the right.
            a, b = b, a
        if b - a < 1.0:
            raise BorderError("the chosen stretch of border is shorter than 1 m")
        return substring(local, a, b)

    def _cut(self, line: LineString) -> list[Segment]:
        total = line.length
        n = max(1, int(np.ceil(total / self.segment_length_m - 1e-9)))
        cuts = [min(i * self.segment_length_m, total) for i in range(n + 1)]
        cuts[-1] = total
        if n > 1 and cuts[-1] - cuts[-2] < 1e-6:
            cuts.pop(-2)
            n -= 1
        segments = []
        for i in range(n):
            piece = substring(line, cuts[i], cuts[i + 1])
            segments.append(
                Segment(
                    segment_id=f"{self.sector}-{i:04d}",
                    index=i,
                    line=piece,
                    chainage_start_km=cuts[i] / 1000.0,
                    chainage_end_km=cuts[i + 1] / 1000.0,
                )
            )
        return segments

    # -- queries --------------------------------------------------------------------------
    @property
    def length_m(self) -> float:
        """Length of the stretch in metres."""
        return float(self.line.length)

    @property
    def segment_ids(self) -> list[str]:
        """Segment ids in chainage order."""
        return [s.segment_id for s in self.segments]

    def side(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.int8]:
        """Which side of the border each local point is on: ``+1`` US, ``-1`` foreign, 0 on it.

        The sign is that of the cross product of the line's tangent at the nearest point and
        the offset to the point; the US is on the right of the line's direction.
        """
        px, py = _as_xy(x, y)
        pts = shapely.points(px, py)
        along = shapely.line_locate_point(self.line, pts)
        eps = 0.5
        a = shapely.line_interpolate_point(self.line, np.clip(along - eps, 0, self.length_m))
        b = shapely.line_interpolate_point(self.line, np.clip(along + eps, 0, self.length_m))
        q = shapely.line_interpolate_point(self.line, along)
        ax, ay = shapely.get_x(a), shapely.get_y(a)
        bx, by = shapely.get_x(b), shapely.get_y(b)
        qx, qy = shapely.get_x(q), shapely.get_y(q)
        cross = (bx - ax) * (py - qy) - (by - ay) * (px - qx)
        out = np.zeros(px.shape, dtype=np.int8)
        out[cross < 0] = US_SIDE
        out[cross > 0] = FOREIGN_SIDE
        return out

    def entry_direction(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.str_]:
        """The compass direction of a crossing *into* the US at the point of the stretch
        nearest each local point: ``"northbound"`` where the US lies north of the line (the
        US-Mexico line), ``"southbound"`` where it lies south (the 49th parallel, the 45th in
        Swanton sector). A crossing's ``direction`` is a compass direction; compare it with
        this to know whether it entered the US, on land or on the water alike.
        """
        px, py = _as_xy(x, y)
        along = shapely.line_locate_point(self.line, shapely.points(px, py))
        a = shapely.line_interpolate_point(self.line, np.clip(along - 1.0, 0, self.length_m))
        b = shapely.line_interpolate_point(self.line, np.clip(along + 1.0, 0, self.length_m))
        # The US is on the right of the line's direction (dx, dy); the right-hand normal
        # (dy, -dx) points north where -dx > 0.
        us_north = -(shapely.get_x(b) - shapely.get_x(a)) > 0
        return np.where(us_north, NORTHBOUND, SOUTHBOUND)

    def distance(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        """Distance from each local point to the stretch of border, metres."""
        px, py = _as_xy(x, y)
        return shapely.distance(self.line, shapely.points(px, py))

    def signed_distance(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        """Distance to the border in metres, positive on the US side, negative on the other."""
        return self.distance(x, y) * self.side(x, y)

    def nearest_segment(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.int64]:
        """Index of the nearest segment to each local point (vectorised, STRtree)."""
        px, py = _as_xy(x, y)
        pts = shapely.points(px, py)
        idx = self._tree.query_nearest(pts, all_matches=False, return_distance=False)
        out = np.empty(px.shape[0], dtype=np.int64)
        out[idx[0]] = idx[1]
        return out

    def segment_at(self, chainage_m: ArrayLike) -> NDArray[np.int64]:
        """Index of the segment holding each chainage along the stretch (metres from start)."""
        c = np.asarray(chainage_m, dtype=np.float64)
        i = np.floor(c / self.segment_length_m).astype(np.int64)
        return np.clip(i, 0, len(self.segments) - 1)

    @cached_property
    def segments_frame(self):  # -> geopandas.GeoDataFrame
        """Segments as a GeoDataFrame in WGS84 (EPSG:4326) with ids, chainage and length."""
        import geopandas as gpd

        geoms = []
        for s in self.segments:
            x, y = np.asarray(s.line.coords).T
            lat, lon = self.frame.to_wgs84(x, y)
            geoms.append(LineString(np.column_stack([lon, lat])))
        return gpd.GeoDataFrame(
            {
                "segment_id": self.segment_ids,
                "chainage_start_km": [s.chainage_start_km for s in self.segments],
                "chainage_end_km": [s.chainage_end_km for s in self.segments],
                "length_m": [s.length_m for s in self.segments],
            },
            geometry=geoms,
            crs="EPSG:4326",
        )


def _as_xy(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    px = np.atleast_1d(np.asarray(x, dtype=np.float64))
    py = np.atleast_1d(np.asarray(y, dtype=np.float64))
    if px.shape != py.shape:
        raise BorderError(f"x has shape {px.shape} but y has shape {py.shape}")
    return px, py
