"""Coverage: which segments no tower or sensor sees, and where one new tower helps most.

Footprints are shapely polygons in the sector's local frame (metres): a tower camera's
ground footprint (:meth:`vigil.geo.camera.PinholeCamera.footprint`), a ground sensor's detection
disc (:func:`sensor_disc`). A segment's coverage is the share of its length inside the union
of footprints. A candidate tower's gain is the crossings it would newly see: for each segment,
its crossings times the share of its length the candidate adds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from vigil.geo.border import US_SIDE, Border


def sensor_disc(x: float, y: float, radius_m: float) -> Polygon:
    """A ground sensor's detection area: a disc of ``radius_m`` metres around it."""
    if not radius_m > 0:
        raise ValueError(f"radius_m={radius_m!r}; expected a positive radius in metres")
    return shapely.Point(x, y).buffer(radius_m, 32)


def segment_coverage(border: Border, footprints: Sequence[BaseGeometry]) -> pd.DataFrame:
    """Length of each segment inside the union of the footprints.

    Returns ``segment_id, length_m, covered_m, covered`` (share 0-1), chainage order.
    """
    union = shapely.union_all(list(footprints)) if len(footprints) else Polygon()
    lines = np.asarray([s.line for s in border.segments], dtype=object)
    covered = shapely.length(shapely.intersection(lines, union))
    length = shapely.length(lines)
    return pd.DataFrame(
        {
            "segment_id": border.segment_ids,
            "length_m": length,
            "covered_m": covered,
            "covered": np.clip(covered / np.maximum(length, 1e-9), 0.0, 1.0),
        }
    )


def uncovered_segments(coverage: pd.DataFrame, *, below: float = 0.5) -> list[str]:
    """Segments with less than ``below`` of their length seen by any footprint."""
    return coverage.loc[coverage["covered"] < below, "segment_id"].tolist()


def tower_candidates(
    border: Border,
    footprint_at: Callable[[float, float, float, float], BaseGeometry],
    *,
    spacing_m: float = 1000.0,
    setback_m: float = 300.0,
) -> dict[str, BaseGeometry]:
    """Candidate tower sites along the US side of the line and their footprints.

    Parameters
    ----------
    footprint_at
        ``footprint_at(x, y, aim_x, aim_y)``: the footprint of a tower at ``(x, y)`` aimed at
        the border point ``(aim_x, aim_y)``, local metres. For a camera,
        ``lambda x, y, ax, ay: PinholeCamera(x, y, ...).pointed_at(ax, ay).footprint()``.
    spacing_m
        Distance between candidates along the line, metres.
    setback_m
        Distance of each candidate from the line into the US, metres.

    Returns
    -------
    dict
        ``"c{chainage_m:06.0f}"`` -> footprint.
    """
    out: dict[str, BaseGeometry] = {}
    for c in np.arange(spacing_m / 2.0, border.length_m, spacing_m):
        p = border.line.interpolate(c)
        q = border.line.interpolate(min(c + 1.0, border.length_m))
        r = border.line.interpolate(max(c - 1.0, 0.0))
        tx, ty = q.x - r.x, q.y - r.y
        n = np.hypot(tx, ty)
        # The US is on the right of the line: the right-hand normal of (tx, ty) is (ty, -tx).
        nx, ny = ty / n, -tx / n
        x, y = p.x + setback_m * nx, p.y + setback_m * ny
        if border.side(x, y)[0] != US_SIDE:
            continue
        out[f"c{c:06.0f}"] = footprint_at(x, y, p.x, p.y)
    return out


def best_new_tower(
    border: Border,
    footprints: Sequence[BaseGeometry],
    crossings_per_segment: Mapping[str, float] | pd.Series,
    candidates: Mapping[str, BaseGeometry],
) -> pd.DataFrame:
    """Rank candidate footprints by the crossings they would newly cover.

    Parameters
    ----------
    footprints
        What is already seen (local frame).
    crossings_per_segment
        Weight of each segment: its crossings (or rate) by ``segment_id``; missing = 0.
    candidates
        Name -> footprint of each place a new tower could go.

    Returns
    -------
    DataFrame
        ``candidate, gain`` (weighted crossings newly covered), ``gain_share`` (of all
        crossings), ``segments_added`` (segments whose coverage rises by more than 1 %),
        best first.
    """
    if not candidates:
        raise ValueError("candidates is empty; expected at least one candidate footprint")
    weights = pd.Series(crossings_per_segment, dtype=np.float64)
    w = weights.reindex(border.segment_ids, fill_value=0.0).to_numpy()
    now = segment_coverage(border, footprints)["covered"].to_numpy()
    total = max(float(w.sum()), 1e-12)
    rows = []
    for name, fp in candidates.items():
        after = segment_coverage(border, [*footprints, fp])["covered"].to_numpy()
        added = after - now
        gain = float((w * added).sum())
        rows.append(
            {
                "candidate": name,
                "gain": gain,
                "gain_share": gain / total,
                "segments_added": int((added > 0.01).sum()),
                "geometry": fp,
            }
        )
    out = pd.DataFrame(rows)
    return out.sort_values(["gain", "candidate"], ascending=[False, True]).reset_index(drop=True)
