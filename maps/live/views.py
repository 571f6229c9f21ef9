"""The compact, JSON-ready views the live page reads: a track as a list, an alert as a dict,
a polygon as a latitude/longitude ring, and history items from stored tracks.

A track is ``[id, lat, lon, class, state, course_deg, speed_mps, time, count]`` (course
clockwise from north, ``None`` when still). Times are UTC seconds since the epoch, positions
WGS84 degrees rounded to 1e-6 (about 0.1 m).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from vigil.ingest.schema import Alert, Track


def _r(v: float) -> float:
    return round(float(v), 6)


def track_row(t: Track) -> list[Any]:
    """A track as the compact list the page reads."""
    speed = math.hypot(t.vx, t.vy)
    course = round(math.degrees(math.atan2(t.vx, t.vy)) % 360.0, 1) if speed > 0.05 else None
    return [
        t.track_id,
        _r(t.lat),
        _r(t.lon),
        t.class_guess,
        t.state,
        course,
        round(speed, 2),
        round(t.time, 3),
        t.count,
    ]


def alert_view(a: Alert, by: str | None = None) -> dict[str, Any]:
    """An alert as the dict the page's queue reads."""
    last_by = by
    if last_by is None and a.history:
        last_by = a.history[-1].by
    return {
        "id": a.alert_id,
        "time": round(a.time, 3),
        "kind": a.kind,
        "priority": a.priority,
        "segment": a.segment_id,
        "zone": a.zone,
        "lat": _r(a.lat),
        "lon": _r(a.lon),
        "track": a.track_id,
        "units": list(a.units),
        "assigned": a.assigned_unit,
        "state": a.state,
        "by": last_by,
        "summary": a.summary,
        "predicted": [[_r(p.lat), _r(p.lon), round(p.time, 1)] for p in a.predicted],
    }


def latlon_ring(frame, polygon) -> list[list[float]]:
    """A shapely polygon in the local frame as ``[[lat, lon], ...]``."""
    xy = np.asarray(polygon.exterior.coords)
    lat, lon = frame.to_wgs84(xy[:, 0], xy[:, 1])
    return [[_r(a), _r(o)] for a, o in zip(lat, lon, strict=True)]


def history_from_tracks(tracks: Iterable[Track]) -> list[dict[str, Any]]:
    """Track messages (from a store) in the same form as :meth:`LiveState.history`."""
    by_id: dict[str, dict[str, Any]] = {}
    for t in sorted(tracks, key=lambda m: m.time):
        item = by_id.setdefault(
            t.track_id, {"id": t.track_id, "class": t.class_guess, "points": []}
        )
        item["class"] = t.class_guess
        item["points"].append([round(t.time, 2), _r(t.lat), _r(t.lon)])
    return list(by_id.values())
