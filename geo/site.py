"""A sector's physical layout: its stretch of border, towers, ground sensors, aircraft, units,
zones, roads and crossing corridors.

These are the typed pieces of the deployment file that every stage can read (the simulator,
detection, tracking, maps). Positions are WGS84 degrees ``(lat, lon)``; lengths in metres;
angles in degrees (azimuths clockwise from north). The structs validate their own bounds when
built with :func:`msgspec.convert`; ``vigil.config`` adds the file, line numbers and the
cross-checks (ids unique, devices on the US side).
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from vigil.geo.border import Border
from vigil.geo.camera import (
    FrameRate,
    HfovDeg,
    ImageHeight,
    ImageWidth,
    PinholeCamera,
    RangeM,
    TiltDeg,
)
from vigil.geo.frames import LocalFrame

Lat = Annotated[float, Meta(ge=-90.0, le=90.0, description="latitude, degrees WGS84")]
Lon = Annotated[float, Meta(ge=-180.0, le=180.0, description="longitude, degrees WGS84")]
LatLon = tuple[Lat, Lon]
Ident = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$(?!\n)")]
Positive = Annotated[float, Meta(gt=0.0)]
Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]
Azimuth = Annotated[float, Meta(ge=0.0, lt=360.0)]


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class SectorSpec(_Strict, kw_only=True):
    """Which stretch of which boundary the sector covers, and how it is cut into segments."""

    name: Ident
    boundary: Literal["us_mx", "us_ca"] = "us_mx"
    centre: LatLon
    start: LatLon | None = None
    end: LatLon | None = None
    bbox: tuple[Lon, Lat, Lon, Lat] | None = None
    segment_length_m: Annotated[float, Meta(ge=50.0, le=50_000.0)] = 1000.0
    timezone: str = "UTC"
    #: The place's climate for the simulator (``vigil.sim.climate``): species, snow, nights.
    climate: Literal["sonoran", "northern"] = "sonoran"


class Tower(_Strict, kw_only=True):
    """A camera tower: mast, camera pointing, field of view, image size, frame rate, range.

    The camera's fields are bounded by :data:`vigil.geo.camera.CAMERA_BOUNDS`; the mast's own.
    """

    id: Ident
    lat: Lat
    lon: Lon
    mast_height_m: Annotated[float, Meta(ge=2.0, le=200.0)] = 25.0
    pan_deg: Azimuth = 180.0
    tilt_deg: TiltDeg = 2.0
    hfov_deg: HfovDeg = 24.0
    width: ImageWidth = 640
    height: ImageHeight = 480
    fps: FrameRate = 10.0
    range_m: RangeM = 4000.0
    thermal: bool = True


class GroundSensor(_Strict, kw_only=True):
    """An unattended ground sensor and the radius within which it can detect, metres."""

    id: Ident
    lat: Lat
    lon: Lon
    modality: Literal["seismic", "magnetic", "pir", "acoustic"] = "seismic"
    radius_m: Annotated[float, Meta(ge=1.0, le=1000.0)] = 30.0
    azimuth_deg: Azimuth | None = None
    beam_deg: Annotated[float, Meta(gt=0.0, le=360.0)] = 360.0
    line: str | None = None


class Aircraft(_Strict, kw_only=True):
    """A UAS flying an orbit around a point, with a gimballed camera."""

    id: Ident
    orbit_centre: LatLon
    orbit_radius_m: Annotated[float, Meta(ge=100.0, le=50_000.0)] = 2000.0
    altitude_agl_m: Annotated[float, Meta(ge=30.0, le=6000.0)] = 1500.0
    ground_elevation_m: Annotated[float, Meta(ge=-500.0, le=9000.0)] = 1200.0
    speed_mps: Annotated[float, Meta(ge=5.0, le=150.0)] = 35.0
    hfov_deg: HfovDeg = 20.0
    width: ImageWidth = 640
    height: ImageHeight = 480
    detection_probability: Fraction = 0.8
    position_error_m: Annotated[float, Meta(ge=0.0, le=1000.0)] = 15.0


class PatrolUnit(_Strict, kw_only=True):
    """A patrol unit's home position and how fast it moves off-road, m/s."""

    id: Ident
    lat: Lat
    lon: Lon
    kind: Literal["vehicle", "horse", "foot", "atv"] = "vehicle"
    speed_mps: Annotated[float, Meta(gt=0.0, le=40.0)] = 8.0
    road_speed_mps: Annotated[float, Meta(gt=0.0, le=50.0)] = 20.0


class Zone(_Strict, kw_only=True):
    """A named area (polygon of ``(lat, lon)`` vertices) for alert rules and maps."""

    id: Ident
    name: str
    polygon: Annotated[list[LatLon], Meta(min_length=3)]
    priority: Annotated[int, Meta(ge=1, le=5)] = 2


class Road(_Strict, kw_only=True):
    """A road as a polyline; legitimate traffic drives it."""

    id: Ident
    path: Annotated[list[LatLon], Meta(min_length=2)]
    speed_mps: Annotated[float, Meta(gt=0.0, le=40.0)] = 18.0
    vehicles_per_hour: Annotated[float, Meta(ge=0.0, le=10_000.0)] = 6.0


class Corridor(_Strict, kw_only=True):
    """A route people use to cross: a polyline from the south side to the north side.

    ``groups_per_day`` is the mean number of groups starting along it per day.
    """

    id: Ident
    path: Annotated[list[LatLon], Meta(min_length=2)]
    groups_per_day: Annotated[float, Meta(ge=0.0, le=10_000.0)] = 2.0
    width_m: Annotated[float, Meta(ge=1.0, le=5000.0)] = 150.0


class Site(_Strict, kw_only=True, dict=True):
    """Everything physical in a sector.

    Its local frame and its border are built once, on first use, and shared by every stage
    that asks (``dict=True`` holds them; they are not fields, so not encoded or compared).
    """

    sector: SectorSpec
    towers: list[Tower] = []
    sensors: list[GroundSensor] = []
    aircraft: list[Aircraft] = []
    units: list[PatrolUnit] = []
    zones: list[Zone] = []
    roads: list[Road] = []
    corridors: list[Corridor] = []

    @cached_property
    def _frame(self) -> LocalFrame:
        lat, lon = self.sector.centre
        return LocalFrame(lat, lon)

    @cached_property
    def _border(self) -> Border:
        return self._build_border(self._frame)

    def frame(self) -> LocalFrame:
        """The sector's local metric frame, centred on ``sector.centre`` (built once)."""
        return self._frame

    def border(self, frame: LocalFrame | None = None) -> Border:
        """The sector's stretch of border, cut into segments (built once, in the site's frame).

        Parameters
        ----------
        frame
            The frame to build it in; the site's own (or one equal to it) shares the one
            border, any other builds a new one.
        """
        if frame is None or frame == self._frame:
            return self._border
        return self._build_border(frame)

    def _build_border(self, frame: LocalFrame) -> Border:
        s = self.sector
        return Border(
            s.name,
            frame,
            s.boundary,
            start=s.start,
            end=s.end,
            bbox=s.bbox,
            segment_length_m=s.segment_length_m,
        )


def tower_camera(tower: Tower, frame: LocalFrame) -> PinholeCamera:
    """The pinhole camera of a tower in the sector's frame."""
    x, y = frame.to_local([tower.lat], [tower.lon])
    return PinholeCamera(
        x=float(x[0]),
        y=float(y[0]),
        height_m=tower.mast_height_m,
        pan_deg=tower.pan_deg,
        tilt_deg=tower.tilt_deg,
        hfov_deg=tower.hfov_deg,
        width=tower.width,
        height=tower.height,
        max_range_m=tower.range_m,
    )
