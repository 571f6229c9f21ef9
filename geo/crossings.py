"""Crossing detection: where and when track paths cross a sector's border, and which way.

A track's signed distance to the border (positive on the US side) is run through a
hysteresis state machine, one track at a time, in a numba kernel over the sorted arrays:

- the track's side is established once it has been at least ``hysteresis_m`` from the line;
- a **crossing** is committed when the track, established on one side, reaches
  ``hysteresis_m`` onto the other side. Its time and position are the interpolated zero of the
  signed distance at the last sign change before the commit; its segment is the one holding
  that point's chainage;
- an excursion into the band ``|d| < hysteresis_m`` that returns to the side it came from is
  a **turn-back** when it came within ``turn_back_within_m`` of the line (by default the
  whole band). Its record carries ``closest_m``, the least distance on its own side reached
  (negative when it went over the line and came back), and ``touched``.

So a track jittering along the line makes no crossing until it truly gets ``hysteresis_m``
across, and a track that touches the line and goes back is a turn-back, not a crossing.
The output is two tables (pandas), not wire messages: ``geo`` is the bottom layer, and the
conversion to ``vigil.ingest.schema.Crossing`` happens upstream.

Times are UTC seconds since the epoch; positions are the sector's local frame (metres) and
WGS84 degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray

from vigil.geo.border import FOREIGN_SIDE, US_SIDE, Border

# Column names of the crossing and turn-back tables.
CROSSING_ID = "crossing_id"
TRACK_ID = "track_id"
TIME = "time"
SEGMENT_ID = "segment_id"
SEGMENT_INDEX = "segment_index"
DIRECTION = "direction"
ENTERING_US = "entering_us"
CHAINAGE_KM = "chainage_km"
X, Y, LAT, LON = "x", "y", "lat", "lon"
NORTHBOUND, SOUTHBOUND = "northbound", "southbound"
CROSSING_COLUMNS = [
    CROSSING_ID, TRACK_ID, TIME, SEGMENT_ID, SEGMENT_INDEX, DIRECTION, ENTERING_US,
    CHAINAGE_KM, X, Y, LAT, LON,
]  # fmt: skip
TURN_BACK_COLUMNS = [
    TRACK_ID, TIME, SEGMENT_ID, SEGMENT_INDEX, "from_side", "closest_m", "touched",
    CHAINAGE_KM, X, Y, LAT, LON,
]  # fmt: skip

_KIND_CROSSING = 1
_KIND_TURN_BACK = 2


class CrossingInputError(ValueError):
    """Track paths that cannot be searched for crossings as given."""


@dataclass(frozen=True)
class CrossingEvents:
    """What crossing detection found over a set of track paths.

    Attributes
    ----------
    crossings
        One row per crossing: ``crossing_id, track_id, time, segment_id, segment_index,
        direction, entering_us, chainage_km, x, y, lat, lon``; sorted by time.
    turn_backs
        One row per turn-back: ``track_id, time, segment_id, segment_index, from_side,
        closest_m, touched, chainage_km, x, y, lat, lon``; ``time`` is when the track came
        closest to (or went furthest over) the line.
    n_tracks, n_points
        Size of the input.
    unresolved
        Tracks that ended inside the band, so whether they crossed is not known.
    outside_stretch
        Sign changes dropped because they happened beyond the ends of the stretch (a track
        walking round the end of the line), not across it.
    """

    crossings: pd.DataFrame
    turn_backs: pd.DataFrame
    n_tracks: int
    n_points: int
    unresolved: int
    outside_stretch: int


@numba.njit(nogil=True, cache=True)
def hysteresis_events(
    starts: NDArray[np.int64],
    d: NDArray[np.float64],
    hysteresis_m: float,
    turn_back_within_m: float,
    kind: NDArray[np.int8],
    index: NDArray[np.int64],
    from_side: NDArray[np.int8],
    extreme: NDArray[np.float64],
    unresolved: NDArray[np.int64],
) -> int:
    """Hysteresis state machine over tracks laid end to end; returns the number of events.

    ``starts[k]:starts[k+1]`` are track ``k``'s samples, in time order; ``d`` is the signed
    distance to the border (metres, + US). For event ``e``: ``kind[e]`` is 1 (crossing) or 2
    (turn-back); ``index[e]`` is, for a crossing, the sample just after the last sign change
    (the zero lies between ``index - 1`` and ``index``), for a turn-back the sample closest to
    the line; ``from_side[e]`` is the side the track came from (+1 US, -1 foreign);
    ``extreme[e]`` is the least distance on its own side reached. ``unresolved[k]`` is 1 when
    track ``k`` ended inside the band. Outputs are preallocated with one slot per sample.
    """
    n_events = 0
    for k in range(starts.shape[0] - 1):
        a = starts[k]
        b = starts[k + 1]
        side = 0
        in_band = False
        closest = 0.0
        closest_i = -1
        last_change = -1
        for i in range(a, b):
            v = d[i]
            if side == 0:
                if v >= hysteresis_m:
                    side = 1
                elif v <= -hysteresis_m:
                    side = -1
                continue
            own = v * side
            if i > a and d[i - 1] * side >= 0.0 and own < 0.0:
                last_change = i
            if own >= hysteresis_m:
                if in_band and closest <= turn_back_within_m:
                    kind[n_events] = 2
                    index[n_events] = closest_i
                    from_side[n_events] = side
                    extreme[n_events] = closest
                    n_events += 1
                in_band = False
            elif own <= -hysteresis_m:
                kind[n_events] = 1
                index[n_events] = last_change
                from_side[n_events] = side
                extreme[n_events] = own if not in_band or own < closest else closest
                n_events += 1
                side = -side
                in_band = False
                last_change = -1
            elif not in_band:
                in_band = True
                closest = own
                closest_i = i
            elif own < closest:
                closest = own
                closest_i = i
        unresolved[k] = 1 if in_band else 0
    return n_events


def detect_crossings(
    track_id: ArrayLike,
    t: ArrayLike,
    x: ArrayLike,
    y: ArrayLike,
    border: Border,
    *,
    hysteresis_m: float = 10.0,
    turn_back_within_m: float | None = None,
) -> CrossingEvents:
    """Find crossings and turn-backs in many track paths at once.

    Parameters
    ----------
    track_id
        Track of each sample (any hashable dtype); samples need not be sorted.
    t
        Sample times, UTC seconds since the epoch.
    x, y
        Sample positions in ``border.frame``, metres east and north.
    border
        The sector's border and segments.
    hysteresis_m
        How far onto the far side a track must get for a crossing to count, and how far from
        the line it must be to have a side at all, metres.
    turn_back_within_m
        An excursion into the band that goes back counts as a turn-back when it came within
        this distance of the line, metres (default ``hysteresis_m``: any entry into the band;
        0 means it must have touched the line).

    Returns
    -------
    CrossingEvents
        The crossing and turn-back tables and counts of what could not be decided.
    """
    if not (np.isfinite(hysteresis_m) and hysteresis_m > 0):
        raise CrossingInputError(f"hysteresis_m={hysteresis_m!r}; expected a positive distance")
    within = hysteresis_m if turn_back_within_m is None else float(turn_back_within_m)
    if not (np.isfinite(within) and within <= hysteresis_m):
        raise CrossingInputError(
            f"turn_back_within_m={turn_back_within_m!r}; expected at most hysteresis_m="
            f"{hysteresis_m}"
        )
    ids = np.asarray(track_id)
    tt = np.asarray(t, dtype=np.float64)
    xx = np.asarray(x, dtype=np.float64)
    yy = np.asarray(y, dtype=np.float64)
    n = tt.shape[0]
    for name, arr in (("track_id", ids), ("x", xx), ("y", yy)):
        if arr.shape != tt.shape or arr.ndim != 1:
            raise CrossingInputError(
                f"{name} has shape {arr.shape} but t has shape {tt.shape}; expected equal 1-d"
            )
    for name, arr in (("t", tt), ("x", xx), ("y", yy)):
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CrossingInputError(f"{name}[{i}] is {float(arr[i])!r}; expected a finite number")

    codes, uniques = pd.factorize(ids, sort=True)
    order = np.lexsort((tt, codes))
    codes, tt, xx, yy = codes[order], tt[order], xx[order], yy[order]
    counts = np.bincount(codes, minlength=len(uniques)) if n else np.zeros(0, np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    d = border.signed_distance(xx, yy) if n else np.zeros(0)

    kind = np.zeros(n, np.int8)
    index = np.zeros(n, np.int64)
    from_side = np.zeros(n, np.int8)
    extreme = np.zeros(n, np.float64)
    unresolved = np.zeros(len(uniques), np.int64)
    m = hysteresis_events(
        starts, d, float(hysteresis_m), within, kind, index, from_side, extreme, unresolved
    )
    kind, index, from_side, extreme = kind[:m], index[:m], from_side[:m], extreme[:m]

    # Crossings: interpolate the zero of signed distance between index - 1 and index.
    is_x = kind == _KIND_CROSSING
    j = index[is_x]
    d0, d1 = d[j - 1], d[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(d0 != d1, d0 / (d0 - d1), 0.0)
    cx = xx[j - 1] + f * (xx[j] - xx[j - 1])
    cy = yy[j - 1] + f * (yy[j] - yy[j - 1])
    ct = tt[j - 1] + f * (tt[j] - tt[j - 1])
    crossings = _event_table(border, uniques[codes[j]], ct, cx, cy)
    # Beyond the ends of the stretch the side test flips without the line being crossed.
    at_end = (crossings[CHAINAGE_KM].to_numpy() * 1000.0 <= 1e-6) | (
        crossings[CHAINAGE_KM].to_numpy() * 1000.0 >= border.length_m - 1e-6
    )
    off = at_end & (border.distance(cx, cy) > hysteresis_m) if len(j) else at_end
    entering = from_side[is_x] == FOREIGN_SIDE
    us_north = _us_is_north(border, crossings[CHAINAGE_KM].to_numpy() * 1000.0)
    crossings.insert(3, DIRECTION, np.where(entering == us_north, NORTHBOUND, SOUTHBOUND))
    crossings.insert(4, ENTERING_US, entering)
    crossings = crossings[~off].sort_values([TIME, TRACK_ID], kind="stable")
    crossings.insert(0, CROSSING_ID, np.arange(len(crossings), dtype=np.int64))
    crossings = crossings[CROSSING_COLUMNS].reset_index(drop=True)

    is_tb = kind == _KIND_TURN_BACK
    k = index[is_tb]
    turn_backs = _event_table(border, uniques[codes[k]], tt[k], xx[k], yy[k])
    turn_backs.insert(3, "from_side", np.where(from_side[is_tb] == US_SIDE, "us", "foreign"))
    turn_backs.insert(4, "closest_m", extreme[is_tb])
    turn_backs.insert(5, "touched", extreme[is_tb] <= 0.0)
    turn_backs = turn_backs.sort_values([TIME, TRACK_ID], kind="stable")
    turn_backs = turn_backs[TURN_BACK_COLUMNS].reset_index(drop=True)
    return CrossingEvents(
        crossings=crossings,
        turn_backs=turn_backs,
        n_tracks=len(uniques),
        n_points=n,
        unresolved=int(unresolved.sum()),
        outside_stretch=int(off.sum()),
    )


def detect_crossings_frame(
    paths: pd.DataFrame,
    border: Border,
    *,
    track_col: str = TRACK_ID,
    time_col: str = TIME,
    hysteresis_m: float = 10.0,
    turn_back_within_m: float | None = None,
) -> CrossingEvents:
    """:func:`detect_crossings` over a table of track samples.

    ``paths`` has a track column, a time column (UTC seconds, or timezone-aware datetimes)
    and either ``x``/``y`` in ``border.frame`` (metres), ``lat``/``lon`` (degrees), or a
    point geometry with a CRS (a GeoDataFrame; reprojected to the sector's frame).
    """
    missing = [c for c in (track_col, time_col) if c not in paths.columns]
    if missing:
        raise CrossingInputError(
            f"track paths lack column(s) {missing}; have {list(paths.columns)}"
        )
    t = paths[time_col]
    if pd.api.types.is_datetime64_any_dtype(t):
        if getattr(t.dt, "tz", None) is None:
            raise CrossingInputError(
                f"column {time_col!r} holds naive datetimes; expected UTC-aware ones or epoch s"
            )
        t = (t.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    if X in paths.columns and Y in paths.columns:
        x, y = paths[X].to_numpy(), paths[Y].to_numpy()
    elif LAT in paths.columns and LON in paths.columns:
        x, y = border.frame.to_local(paths[LAT].to_numpy(), paths[LON].to_numpy())
    elif hasattr(paths, "geometry") and getattr(paths, "crs", None) is not None:
        local = paths.geometry.to_crs(border.frame.crs)
        x, y = local.x.to_numpy(), local.y.to_numpy()
    else:
        raise CrossingInputError(
            "track paths need x/y (local metres), lat/lon (degrees) or a point geometry with a "
            f"CRS; have columns {list(paths.columns)}"
        )
    return detect_crossings(
        paths[track_col].to_numpy(),
        np.asarray(t, dtype=np.float64),
        x,
        y,
        border,
        hysteresis_m=hysteresis_m,
        turn_back_within_m=turn_back_within_m,
    )


def crossings_geodataframe(crossings: pd.DataFrame):  # -> geopandas.GeoDataFrame
    """A crossing (or turn-back) table as a GeoDataFrame of points in WGS84."""
    import geopandas as gpd

    return gpd.GeoDataFrame(
        crossings.copy(),
        geometry=gpd.points_from_xy(crossings[LON], crossings[LAT]),
        crs="EPSG:4326",
    )


def _event_table(
    border: Border,
    track_ids: NDArray,
    t: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
) -> pd.DataFrame:
    chainage = shapely.line_locate_point(border.line, shapely.points(x, y)) if len(x) else x
    seg = border.segment_at(chainage)
    if len(x):
        lat, lon = border.frame.to_wgs84(x, y)
    else:
        lat, lon = np.zeros(0), np.zeros(0)
    ids = np.asarray(border.segment_ids, dtype=object)
    return pd.DataFrame(
        {
            TRACK_ID: track_ids,
            TIME: t,
            SEGMENT_ID: ids[seg] if len(seg) else np.zeros(0, dtype=object),
            SEGMENT_INDEX: seg,
            CHAINAGE_KM: chainage / 1000.0,
            X: x,
            Y: y,
            LAT: lat,
            LON: lon,
        }
    )


def _us_is_north(border: Border, chainage_m: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Whether the US side of the line points north at each chainage (the US is on the right)."""
    if chainage_m.size == 0:
        return np.zeros(0, dtype=bool)
    a = shapely.line_interpolate_point(border.line, np.clip(chainage_m - 1.0, 0, border.length_m))
    b = shapely.line_interpolate_point(border.line, np.clip(chainage_m + 1.0, 0, border.length_m))
    dx = shapely.get_x(b) - shapely.get_x(a)
    # The right-hand normal of (dx, dy) is (dy, -dx): its north component is -dx.
    return -dx > 0
