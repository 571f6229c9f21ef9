"""One person's detections through the chain's parts, for ``bench_pointing_track``: a fresh
:class:`~vigil.tracks.fusion.FusionTracker` and :class:`~vigil.geo.crossing_monitor.
CrossingMonitor`, with the image side's evidence, sky detections and tops over hidden feet
as ``SectorCore.tick`` and ``ImageSideMonitor`` run them (moved from the benchmark's module)."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from vigil.geo.crossing_monitor import RELIEF_SIDE_HOLD_S, CrossingMonitor
from vigil.geo.hidden_side import TOPS_Z, HiddenTops
from vigil.geo.image_side import IMAGE_CHANGE_PROBABILITY, IMAGE_CHANGE_S, SideEvidence
from vigil.geo.unplaced_side import match_unplaced
from vigil.ingest.schema import CameraDetection
from vigil.tracks.fusion import FusionTracker

DETECTION_PX = 1.0


def person(
    geo,
    frame,
    border,
    config,
    t,
    ex,
    ey,
    cov,
    ok,
    side_probability: float | None,
    shared=None,
    hold_s: float = RELIEF_SIDE_HOLD_S,
    margins=None,
    window_s: float = np.inf,
    image_only: bool = False,
    image_probability: float | None = None,
    change_s: float = IMAGE_CHANGE_S,
    change_p: float = IMAGE_CHANGE_PROBABILITY,
    sky=None,
    tops=None,
) -> tuple[set[int], int, bool, int, int, bool]:
    """Run one person's detections through a fresh tracker and crossing monitor, as
    ``SectorCore.tick`` does: ``(outcome, crossings, confirmed)``; outcome is the set of
    sides the monitor gave the person's tracks (``{+1}``, ``{-1}``, both, or none),
    confirmed whether the tracker ever confirmed a track. ``shared``: per detection, the
    part of its covariance that all of the tower's detections share (its pointing
    residual), which the tracker's averaging of detections as independent shrinks and the
    truth does not: added to the track's covariance given to the monitor (None: not).
    ``margins``: the detections' image margins (:func:`vigil.geo.image_side.image_margins`),
    pooled per track (every track a detection updates, tentative ones too) over ``window_s``
    and given to the monitor as ``side_z`` (None: not). ``sky``: ``(seen, u, v, geometry)``,
    the frames whose feet pixel ``(u, v)`` saw sky (no ground point): their margins go to the
    track nearest in the image (:func:`vigil.geo.unplaced_side.match_unplaced`, the track's
    position and covariance projected through the calibrated camera), not to the tracker.
    Returns the count of such frames matched as a fourth item. ``tops``: ``(Tops, person,
    geometry)`` (``benchmarks/pointing_hidden.py``): the frames whose box sits on a crest go,
    with their tops' side, to a :class:`~vigil.geo.hidden_side.HiddenTops` matched to the
    person's live tracks in the image, and the monitor takes the tops' side where the margins
    are unsure (:meth:`HiddenTops.decide`, as ``ImageSideMonitor`` runs it); in a frame whose
    feet the ground hides the top's detection is taken to update its track, so the confirmed
    tracks go to the monitor again. Fifth and sixth items: how many tops were matched, and
    whether the tops' side was given to a track at some update."""
    fusion = FusionTracker(frame, config)
    monitor = CrossingMonitor(
        border,
        side_probability=side_probability or None,
        side_hold_s=hold_s,
        image_only=image_only,
        image_probability=image_probability,
    )
    evidence = SideEvidence(window_s, change_s or None, change_p)
    all_counts: dict[str, int] = {}
    counts: dict[str, int] = {}
    crossings = 0
    confirmed = False
    lat, lon = np.full(ex.shape, np.nan), np.full(ex.shape, np.nan)
    if ok.any():
        lat[ok], lon[ok] = frame.to_wgs84(ex[ok], ey[ok])
    skyseen = np.zeros(ok.shape, bool) if sky is None or margins is None else sky[0]
    matched = 0
    hidden = HiddenTops() if tops is not None and margins is not None else None
    topseen = np.zeros(ok.shape, bool)
    if hidden is not None:
        tp, p = tops[0], tops[1]
        topseen = tp.top[p] & (tp.side[p] != 0)
    z_need = float(ndtri(image_probability or side_probability or 0.5))
    top_n, top_used = 0, False

    def look(tracks, i: int) -> int:
        """The tracks' latest positions to the monitor: crossings committed."""
        nonlocal top_used
        x, y = frame.to_local([m.lat for m in tracks], [m.lon for m in tracks])
        ids, times = [m.track_id for m in tracks], [m.time for m in tracks]
        covs = None
        if side_probability:
            covs = [np.reshape(m.cov, (2, 2)) for m in tracks]
            if shared is not None:
                covs = [c + shared[i] for c in covs]
        zs = None
        if margins is not None:
            zs = [evidence.z(m.track_id) for m in tracks]
            if hidden is not None and hidden.counts:
                now = {k: monitor.states[k].side for k in ids if k in monitor.states}
                given = hidden.decide(ids, zs, z_need, now)
                top_used |= any(abs(g) >= TOPS_Z for g in given)
                zs = given
        return len(monitor.update(ids, times, x, y, covs, zs))

    for i in np.flatnonzero(ok | skyseen | topseen):
        if topseen[i]:
            live = [m for m in fusion.track_messages(include_tentative=True) if m.state != "ended"]
            if live:
                tp, p, sgeo = tops
                hidden.observe_tops(
                    float(t[i]), sgeo, [tp.u[p, i]], [tp.v[p, i]], [tp.h[p, i]], [tp.side[p, i]]
                )
                tx, ty = frame.to_local([m.lat for m in live], [m.lon for m in live])
                got = hidden.attach(
                    evidence, [m.track_id for m in live], np.full(len(live), float(t[i])), tx, ty,
                    [np.reshape(m.cov, (2, 2)) for m in live],
                )  # fmt: skip
                top_n += got
                conf = [m for m in fusion.track_messages() if m.state != "ended"]
                if got and not ok[i] and conf:
                    crossings += look(conf, i)
        if not ok[i] and not skyseen[i]:
            continue
        if not ok[i]:
            # no ground point: its margin goes to the track it matches in the image
            tracks = [
                m for m in fusion.track_messages(include_tentative=True) if m.state != "ended"
            ]
            if tracks:
                tx, ty = frame.to_local([m.lat for m in tracks], [m.lon for m in tracks])
                k = match_unplaced(
                    sky[3].camera,
                    sky[3].dem,
                    tx,
                    ty,
                    [np.reshape(m.cov, (2, 2)) for m in tracks],
                    float(sky[1][i]),
                    float(sky[2][i]),
                    DETECTION_PX,
                    DETECTION_PX,
                    curvature_coeff=sky[3].curvature_coeff,
                )
                if k >= 0 and np.isfinite(margins.margin_px[i]):
                    evidence.add(tracks[k].track_id, float(t[i]), margins, int(i))
                    matched += 1
            continue
        c = cov[i]
        fusion.ingest(
            CameraDetection(
                camera=geo.camera_id,
                time=float(t[i]),
                frame=int(i),
                lat=float(lat[i]),
                lon=float(lon[i]),
                cov=(float(c[0, 0]), float(c[0, 1]), float(c[1, 0]), float(c[1, 1])),
                class_guess="person",
                class_confidence=0.8,
            )
        )
        fusion.flush()
        if margins is not None:
            fine = bool(np.isfinite(margins.margin_px[i]))  # a dropped margin: NaN
            for m in fusion.track_messages(include_tentative=True):
                if fine and m.state != "ended" and all_counts.get(m.track_id) != m.count:
                    evidence.add(m.track_id, float(t[i]), margins, int(i))
                all_counts[m.track_id] = m.count
        live = [m for m in fusion.track_messages() if m.state != "ended"]
        confirmed = confirmed or bool(live)
        fresh = [m for m in live if counts.get(m.track_id) != m.count]
        for m in live:
            counts[m.track_id] = m.count
        if fresh:
            crossings += look(fresh, i)
    sides = {s.side for s in monitor.states.values() if s.side != 0}
    return sides, crossings, confirmed, matched, top_n, top_used
