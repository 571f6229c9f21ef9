"""One tower frame on relief between the detector and the bus (``vigil demo --relief``): the
people whose box's bottom sits on a crest placed by their top (issue 21), and the frame's feet
margins given to the image side. Wiring only: the placement is
:mod:`vigil.geo.crest_placement`'s, the crest test :func:`vigil.geo.hidden_side.on_crest`'s.

The field path takes the same steps from here: the camera edge places its crest boxes with
:func:`place_crest_boxes` (:class:`vigil.edge.TowerDetector`), and the sector service's core
judges each received frame with :func:`judge_frame_sides` (:meth:`vigil.core.SectorCore.
use_image_side` with the towers' geometries). This module imports nothing of the core (it sits
below it in the import layers): the core is passed in as a :class:`SideCore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec
import numpy as np
from numpy.typing import NDArray

from vigil.detection.objects import PixelDetection
from vigil.geo.border import Border
from vigil.geo.crest_placement import (
    CREST_MARGIN,
    CREST_MODE,
    CrestMode,
    CrestPlacement,
    crest_margin_kept,
    place_by_top,
    spread_about,
)
from vigil.geo.frames import LocalFrame
from vigil.geo.hidden_side import CHAIN_CREST_TOL_PX, on_crest
from vigil.geo.image_side import (
    FEET_ROW_SHARE,
    ImageMargins,
    ImageSideMonitor,
    SideGeometry,
    image_margins,
)
from vigil.ingest.schema import CameraDetection

#: Class guesses whose boxes are not taken for a standing person's (as the tops).
NOT_PEOPLE = ("animal", "vehicle")


class SideCore(Protocol):
    """What the image-side steps take of a sector core (:class:`vigil.core.SectorCore`): its
    crossing ``monitor``, local ``frame`` and ``border``, and its plain
    :meth:`~vigil.core.SectorCore.observe_sides`."""

    monitor: object
    frame: LocalFrame
    border: Border

    def observe_sides(self, geometry: SideGeometry, dets: Sequence[CameraDetection]) -> None:
        """One frame's detections' margins, each judged at its ground point's feet pixel."""


def people_boxes(dets: Sequence[CameraDetection]) -> list[int]:
    """Indices of the detections with a box whose class guess may be a person."""
    return [i for i, d in enumerate(dets) if d.box and d.class_guess not in NOT_PEOPLE]


def place_crest_boxes(
    side: SideGeometry,
    frame: LocalFrame,
    dets: Sequence[CameraDetection],
    on: NDArray[np.bool_] | None = None,
    mode: CrestMode = CREST_MODE,
) -> tuple[list[CameraDetection], NDArray[np.bool_]]:
    """The detections to publish, and which of them were placed so: a person's
    (:func:`people_boxes`) whose box's bottom sits on a crest (``on``, per detection; None:
    :func:`~vigil.geo.hidden_side.on_crest` at the box's middle column, within
    :data:`~vigil.geo.hidden_side.CHAIN_CREST_TOL_PX` rows) placed by its box's
    top and bottom rows (``mode`` ``top``: :func:`~vigil.geo.crest_placement.place_by_top`),
    kept where the detector put it with a covariance spanning those places (``spread``), or
    as it was (``off``, or where no range fits the box's rows); the others as they were."""
    out = list(dets)
    done = np.zeros(len(dets), dtype=bool)
    people = people_boxes(dets)
    if mode == "off" or not people:
        return out, done
    boxes = np.array([dets[i].box for i in people], dtype=np.float64)
    if on is None:
        u = 0.5 * (boxes[:, 0] + boxes[:, 2])
        hid = on_crest(
            side.camera, side.dem, u, boxes[:, 3], CHAIN_CREST_TOL_PX,
            max_range_m=side.max_range_m, curvature_coeff=side.curvature_coeff,
        )  # fmt: skip
    else:
        hid = np.asarray(on, dtype=bool)[people]
    hid &= np.all(np.isfinite(boxes), axis=1)
    if not hid.any():
        return out, done
    idx = np.array([i for i, h in zip(people, hid, strict=True) if h])
    p = place_by_top(side, boxes[hid])
    idx = idx[p.placed]
    x, y = frame.to_local([dets[i].lat for i in idx], [dets[i].lon for i in idx])
    cov = np.array([dets[i].cov for i in idx], dtype=np.float64).reshape(-1, 2, 2)
    if mode == "spread":
        sub = CrestPlacement(*(a[p.placed] for a in (p.placed, p.x, p.y, p.cov, p.candidates)))
        cov = spread_about(sub, x, y, cov)
    else:
        x, y, cov = p.x[p.placed], p.y[p.placed], p.cov[p.placed]
    lat, lon = frame.to_wgs84(x, y)
    lat, lon = np.atleast_1d(lat), np.atleast_1d(lon)
    for k, i in enumerate(idx):
        c = cov[k]
        en = 0.5 * float(c[0, 1] + c[1, 0])
        out[i] = msgspec.structs.replace(
            out[i], lat=float(lat[k]), lon=float(lon[k]),
            cov=(float(c[0, 0]), en, en, float(c[1, 1])),
        )  # fmt: skip
        done[i] = True
    return out, done


def observe_sky_and_tops(
    monitor: ImageSideMonitor,
    side: SideGeometry,
    border: Border,
    sky: Sequence[PixelDetection],
    placed: Sequence[CameraDetection],
) -> NDArray[np.bool_]:
    """One frame's sky blobs (feet: the box's bottom at the centroid's column) to the image
    side for their margins (``monitor.unplaced``), and its people's boxes (:func:`people_boxes`
    of ``placed``, and the sky blobs') whose bottom sits on a crest for their tops
    (``monitor.hidden``). Returns which of ``placed`` sat on a crest. Raises ``ValueError``
    where a pixel is outside the image or not finite (the caller refuses the frame)."""
    first = (sky or placed)[0]
    t, cam = first.time, first.camera
    if sky:
        u, boxes = [d.centroid[0] for d in sky], [d.box for d in sky]
        monitor.unplaced.observe_boxes(t, side, border, u, boxes, cam)
    people = people_boxes(placed)
    boxes = [d.box for d in sky] + [placed[i].box for i in people]
    hid = monitor.hidden.observe_boxes(t, side, border, boxes, cam, CHAIN_CREST_TOL_PX)
    on = np.zeros(len(placed), dtype=bool)
    on[people] = hid[len(sky) :]
    return on


def observe_feet_sides(
    core: SideCore,
    side: SideGeometry,
    dets: Sequence[CameraDetection],
    placed: Sequence[CameraDetection] | None = None,
    crest: NDArray[np.bool_] | None = None,
    margin: str = CREST_MARGIN,
) -> None:
    """One frame's detections (same time) to the image side (:meth:`SectorCore.observe_sides`
    when nothing was re-placed): each one's margin judged at the feet pixel its detector's
    ground point is seen at (``dets``), kept with the place and covariance the tracker is
    given (``placed``), where the monitor matches it to the track it updated. Those placed by
    their box (``crest``) are judged as ``margin`` says
    (:data:`~vigil.geo.crest_placement.CREST_MARGIN`): at the box's bottom (``bottom``),
    there only where the crest's row cannot turn it (``sure``), not at all (``drop``), or as
    the others (``place``)."""
    monitor = core.monitor
    if not dets or not isinstance(monitor, ImageSideMonitor):
        return
    placed = dets if placed is None else placed
    hid = np.zeros(len(dets), bool) if crest is None else np.asarray(crest, dtype=bool)
    if not hid.any():
        core.observe_sides(side, placed)
        return
    x0, y0 = core.frame.to_local([d.lat for d in dets], [d.lon for d in dets])
    x1, y1 = core.frame.to_local([d.lat for d in placed], [d.lon for d in placed])
    h = np.array([(d.box[3] - d.box[1]) if d.box else 0.0 for d in dets])
    ok, got = side.margins(core.border, x0, y0, h)
    cols = np.full((3, len(dets)), np.nan)
    cols[:, ok] = np.array([got.margin_px, got.sigma_px, got.shared_px])
    if margin != "place":
        cols[:, hid] = np.nan
    if margin in ("bottom", "sure"):
        b = np.array([dets[i].box for i in np.flatnonzero(hid)], dtype=np.float64)
        m = image_margins(
            side.camera, side.dem, core.border, 0.5 * (b[:, 0] + b[:, 2]), b[:, 3], 1.0,
            np.sqrt(1.0 + (FEET_ROW_SHARE * h[hid]) ** 2), side.pointing_sigma_deg,
            max_range_m=side.max_range_m, curvature_coeff=side.curvature_coeff,
        )  # fmt: skip
        keep = np.ones(m.margin_px.size, bool)
        if margin == "sure":
            keep = crest_margin_kept(m.margin_px, m.sigma_px)
        sub = np.array([m.margin_px, m.sigma_px, m.shared_px])
        sub[:, ~keep] = np.nan
        cols[:, hid] = sub
    use = np.isfinite(cols[0])
    if use.any():
        cov = np.array([d.cov for d in placed], dtype=np.float64)[use]
        x1, y1 = np.atleast_1d(x1)[use], np.atleast_1d(y1)[use]
        monitor.observe(dets[0].time, x1, y1, ImageMargins(*cols[:, use]), cov)


def judge_frame_sides(
    core: SideCore, side: SideGeometry, dets: Sequence[CameraDetection]
) -> NDArray[np.bool_]:
    """One received frame's camera detections (same camera and time, as the edge published
    them) to the core's image side, as ``vigil demo --relief`` judges its frames
    (``Pipeline._relief_frame``): its people's boxes whose bottom sits on a crest give their
    tops (:func:`observe_sky_and_tops`; no sky blobs: they are not on the wire), those the
    edge placed by their top (:func:`place_crest_boxes` on the same boxes and geometry tells
    which) are judged at their box's bottom as :data:`~vigil.geo.crest_placement.CREST_MARGIN`
    says, the others at their ground point (:func:`observe_feet_sides`). Returns which were
    placed by their top. Raises ``ValueError`` where a pixel is outside the image or not
    finite (the caller skips the frame)."""
    monitor = core.monitor
    if not dets or not isinstance(monitor, ImageSideMonitor):
        return np.zeros(len(dets), dtype=bool)
    on = observe_sky_and_tops(monitor, side, core.border, [], dets)
    _, crest = place_crest_boxes(side, core.frame, dets, on)
    observe_feet_sides(core, side, dets, None, crest)
    return crest


__all__ = [
    "NOT_PEOPLE",
    "SideCore",
    "judge_frame_sides",
    "observe_feet_sides",
    "observe_sky_and_tops",
    "people_boxes",
    "place_crest_boxes",
]
