"""The side of the line decided per person by the live chain, on relief with an unknown
pointing error after landmark calibration (issue 21's acceptance: "crossing side decided right
for >= 99 % of people more than 50 m from the line").

``bench_pointing`` scores single detections. The chain does not decide a side per detection:
:class:`~vigil.tracks.fusion.FusionTracker` fuses a person's detections (each with its
covariance) into a track, and :class:`~vigil.geo.crossing_monitor.CrossingMonitor` gives the
track a side (and commits crossings) from the track's positions, as
:class:`vigil.core.SectorCore` runs them. This benchmark runs those real parts.

Per tower of the demo deployment, on the synthetic relief of ``bench_pointing`` (seed 0, 30 m
cells), per calibration (a fresh hidden N(0, 0.05 degree) pan, tilt and roll error, ten
landmarks, :func:`bench_pointing.calibrated`): ``--people`` people start on ground the true
camera sees 1.5-2.5 km away in its field of view and walk ``--seconds`` (120 by default: at
1.2 m/s a person 1.5-2.5 km out stays in a tower's view for minutes; 20 before) at 1.2 m/s on
a random heading, seen at ``--fps`` frames a second. In each frame where the true camera sees
a person's feet (the ground does not hide them), the feet's pixel is detected with 1 px of
error per axis and placed by :class:`~vigil.detection.terrain.TerrainGeometry` (the chain's
ray casting, quadrature covariance and 0.5 m floor) through the calibrated camera; the
detection goes to a fresh ``FusionTracker`` (``TrackerConfig.for_sector()`` with the relief's
:data:`~vigil.tracks.config.RELIEF_TRACKER_CHANGES`, ``--max-sigma``) as a
``CameraDetection``; each frame the confirmed tracks a detection updated go to a
``CrossingMonitor`` (side probability ``--side``, hold ``--hold``), as in ``SectorCore.tick``.
With ``--image`` (the default, as the relief pipeline runs) each detection's feet pixel is
also judged against the border's row in its image column
(:func:`vigil.geo.image_side.image_margins`, through the calibrated camera and the DEM); the
margins of the detections that updated a track are pooled over ``--window`` seconds (all by
default; ``--change-s``, ``--change-p``: the change test that lets a crossing show) into a
z-score (:class:`~vigil.geo.image_side.SideEvidence`) that the monitor takes as ``side_z``
(``--image-p``; ``--image-only``: positions wait where the image has margins). The truth's
margins (noise-free pixels through the true camera) count the people whose feet stay within
``NEAR_PX`` of the line's row: the image cannot tell their side at 1 px of error.
``--shared`` adds to each track's covariance the pointing residual's part of its latest
detection's (all of a calibration's detections share it; the tracker averages it down as if
they did not). Only people whose whole walk stays more than 50 m from the line count.

Per person: **right** when every track the monitor gave a side holds the person's true side at
the end and no crossing was committed; **wrong** otherwise; **no side** when no track was
given a side, split by why: the feet were seen in fewer frames than a track needs to be
confirmed (the ground hides them), no track was confirmed, or a confirmed track was never sure
enough of a side. Shares of right among decided people, and among all people, carry Wilson
95 % intervals (people of one calibration share its pointing residual: the intervals are a
little optimistic). The per-detection share of the same detections is printed beside it.

Seeds: :data:`EVALUATION_SEEDS` (never used to tune anything); ``bench_pointing``'s
``TUNING_SEEDS`` are refused for reporting.

``--hidden``: boxes whose bottom sits on a crest give the side of the top of the body, as the
chain takes them (``benchmarks/pointing_hidden.py``, :class:`vigil.geo.hidden_side.HiddenTops`:
matched to the person's tracks in the image, the side given where the margins are unsure).

Run: ``python -m benchmarks pointing_track`` (defaults) or with ``--seeds ... --draws N``.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import pointing_track_args
from benchmarks.bench_pointing import TUNING_SEEDS, calibrated, site_and_dem
from benchmarks.pointing_hidden import crest_margins, place_crest_boxes, place_tops, top_frames
from benchmarks.pointing_person import person
from vigil.detection.terrain import TerrainGeometry
from vigil.geo.hidden_side import pooled_side
from vigil.geo.image_side import (
    ImageMargins,
    SideGeometry,
    image_margins,
)
from vigil.geo.raycast import camera_on_terrain, cast_rays, curvature_factor
from vigil.geo.site import tower_camera
from vigil.sim.protocol import wilson
from vigil.tracks.config import TrackerConfig

DETECTION_PX = 1.0
WALK_MPS = 1.2
FAR_M = 50.0
#: With --image: a person whose feet stay (on average over the frames the camera sees them)
#: within this many rows of the border's row in the true image is counted apart: 1 px of
#: detection error and the calibration's shared residual (0.1-0.3 px) leave such a side a coin
#: toss in one frame and barely decidable over a walk.
NEAR_PX = 0.5
#: Seeds of the reported figures: disjoint from bench_pointing.TUNING_SEEDS.
EVALUATION_SEEDS = (1001, 1002, 1003, 1004, 1005, 1006)
T0 = 1_780_000_000.0


def _walks(true, dem, border, rng, people: int, frames: int, fps: float):
    """Walks of ``people`` people: true positions ``(people, frames)`` x, y, z (z relative to
    the mast's foot, the curvature drop included), whether the true camera sees the feet, and
    which people stay more than FAR_M from the line; people start on ground the camera sees."""
    tries = 200 * people
    az = np.radians(true.pan_deg + rng.uniform(-true.hfov_deg / 2, true.hfov_deg / 2, tries))
    r = rng.uniform(1500.0, 2500.0, tries)
    heading = rng.uniform(0.0, 2.0 * np.pi, tries)
    x0, y0 = true.x + r * np.sin(az), true.y + r * np.cos(az)
    step = WALK_MPS / fps * np.arange(frames)

    def seen(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Whether the true camera sees the feet at ``(x, y)``, and their pixel."""
        rr = np.hypot(x - true.x, y - true.y)
        z = dem.elevation_at(x.ravel(), y.ravel()).reshape(x.shape) - curvature_factor() * rr**2
        d = np.stack([x, y, z], axis=-1).reshape(-1, 3) - true.centre
        hits = cast_rays(dem, np.broadcast_to(true.centre, d.shape), d)
        u, v, _ = true.project(x.ravel(), y.ravel(), z.ravel() - true.ground_z)
        vis = hits.hit & (np.abs(hits.range_m - rr.ravel()) < 1.0)
        vis &= (u >= 0) & (u < true.width) & (v >= 0) & (v < true.height)
        return vis.reshape(x.shape), u.reshape(x.shape), v.reshape(x.shape)

    # the start of every try first, then the whole walk of those picked (the same people as
    # casting every try's walk, for a fraction of the rays)
    pick = np.flatnonzero(seen(x0[:, None], y0[:, None])[0][:, 0])[:people]
    x = x0[pick, None] + np.sin(heading[pick])[:, None] * step[None, :]
    y = y0[pick, None] + np.cos(heading[pick])[:, None] * step[None, :]
    vis, u, v = seen(x, y)
    far = np.all(np.abs(border.signed_distance(x.ravel(), y.ravel()).reshape(x.shape)) > FAR_M, 1)
    return x, y, u, v, vis, far


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = pointing_track_args.parser(__doc__.splitlines()[0], EVALUATION_SEEDS)
    args = parser.parse_args(argv)
    tuning = sorted(set(args.seeds) & set(TUNING_SEEDS))
    site, dem, frame, border = site_and_dem()
    changes: dict[str, float] = {}
    if args.max_sigma is not None:
        changes["max_position_sigma_m"] = args.max_sigma
    if args.speed_sigma is not None:
        changes["initial_speed_sigma_mps"] = args.speed_sigma
    config = TrackerConfig.for_sector(**changes)
    frames = int(round(args.seconds * args.fps)) + 1
    t = T0 + np.arange(frames) / args.fps
    print(
        f"people walking {args.seconds:g} s at {WALK_MPS} m/s, {args.fps:g} fps, 1.5-2.5 km, "
        f"> {FAR_M:g} m from the line; {args.draws} calibrations x {args.people} people per "
        f"tower and seed; seeds {args.seeds}; tracker changes {changes or 'none'}; hold "
        f"{args.hold:g} s; shared pointing covariance {'added' if args.shared else 'not added'}; "
        + (
            f"image side on (window {args.window:g} s, change {args.change_s:g} s at "
            f"{args.change_p:g}, probability {args.image_p:g}, "
            f"{'image alone' if args.image_only else 'positions where unsure'})"
            if args.image
            else "image side off"
        )
        + f"; sky detections' margins {'kept' if args.sky else 'dropped'}"
        + (f" (TUNING seeds {tuning}: not for reporting)" if tuning else " (evaluation)")
    )
    started = time.perf_counter()
    for tower in site.towers:
        if tower.id not in args.towers:
            continue
        nominal = camera_on_terrain(tower_camera(tower, frame), dem)
        right = wrong = undecided = 0
        # why a person got no side: seen in fewer frames than a track needs to be
        # confirmed, no track confirmed, or confirmed but never sure enough of a side
        few = unconfirmed = unsure = 0
        # with --image: people seen in enough frames whose feet stay (on average) within
        # NEAR_PX of the border's row in the true image, and how the others fare
        near = clear_n = clear_right = 0
        det_right = det_n = 0
        crossing_people = 0
        sky_n = sky_matched = 0  # frames whose feet pixel saw sky, and those matched to a track
        bias: list[tuple[float, float]] = []  # per calibration: mean margin error (px), its z
        # with --hidden: frames with the body's top seen over hidden feet; boxes the chain
        # takes as tops (of them over hidden feet), their decided and wrong sides and those
        # matched to a track; people given the tops' side at some update (right of them); and
        # people left without a side whose own tops' frames would give one (right, wrong)
        hid_seen = taken = taken_hid = top_dec = top_bad = top_matched = 0
        top_people = top_people_right = lost_right = lost_wrong = crest_n = 0
        for seed in args.seeds:
            rng = np.random.default_rng([seed, int(tower.id.lstrip("t") or 0), 21])
            hrng = np.random.default_rng([seed, int(tower.id.lstrip("t") or 0), 2121])
            for _ in range(args.draws):
                true, cal = calibrated(nominal, dem, rng)
                geo = TerrainGeometry(
                    cal.camera, frame, tower.id, dem, pointing_sigma_deg=cal.sigma_deg
                )
                x, y, u, v, vis, far = _walks(true, dem, border, rng, args.people, frames, args.fps)
                if not x.size:
                    continue
                ou = u + rng.normal(0.0, DETECTION_PX, u.shape)
                ov = v + rng.normal(0.0, DETECTION_PX, v.shape)
                gx, gy, hit, _ = geo.ground(ou.ravel(), ov.ravel())
                ok = (vis.ravel() & hit).reshape(u.shape)
                cov = np.full((u.size, 2, 2), np.nan)
                flat = ok.ravel()
                if flat.any():
                    cov[flat] = geo.covariance(
                        ou.ravel()[flat], ov.ravel()[flat], DETECTION_PX, DETECTION_PX
                    )
                shared = np.full((u.size, 2, 2), np.nan)
                if args.shared and flat.any():
                    # the pointing residual's part alone (no pixel error): common to every
                    # detection of this calibration
                    shared[flat] = geo.covariance(
                        ou.ravel()[flat], ov.ravel()[flat], 0.0, 0.0, floor_sigma_m=0.0
                    )
                shared = shared.reshape(*u.shape, 2, 2)
                tp = None
                svv = np.full(u.size, DETECTION_PX)  # the margins' row error
                skyd = (vis.ravel() & ~hit) if args.sky else np.zeros(u.size, bool)
                if args.hidden:
                    tp = top_frames(true, geo, dem, border, x, y, vis, ov, hrng, args.crest_tol)
                    if args.place_tops:  # the detector's boxes over hidden feet
                        pl = place_tops(tp, geo)
                        flat = flat | pl.placed
                        skyd = skyd | (pl.sky & args.sky)
                        new = pl.placed | (pl.sky & args.sky)
                        gx, gy, cov = gx.copy(), gy.copy(), cov.copy()
                        gx[pl.placed], gy[pl.placed] = pl.x[pl.placed], pl.y[pl.placed]
                        cov[pl.placed] = pl.cov[pl.placed]
                        ou, ov = ou.ravel().copy(), ov.ravel().copy()
                        ou[new], ov[new], svv[new] = pl.u[new], pl.v[new], pl.sv[new]
                        ou, ov = ou.reshape(u.shape), ov.reshape(u.shape)
                        ok = flat.reshape(u.shape)
                        # the chain's placement of detections whose box sits on a crest
                        ou, ov = ou.ravel(), ov.ravel()
                        feet = (ou, ov, svv) if args.crest_margin != "place" else None
                        crest_n += place_crest_boxes(
                            tp, geo, flat, gx, gy, cov, args.crest_place, feet
                        )
                        ou, ov = ou.reshape(u.shape), ov.reshape(u.shape)
                margins = None
                judged = flat | skyd
                if tp is not None and args.drop_tops:  # a box on a crest: its bottom, not feet
                    judged &= ~tp.top.ravel()
                if args.image and judged.any():
                    mm = image_margins(
                        geo.camera,
                        dem,
                        border,
                        ou.ravel()[judged],
                        ov.ravel()[judged],
                        DETECTION_PX,
                        svv[judged],
                        cal.sigma_deg,
                        max_range_m=geo.reach_m,
                    )
                    cols = []
                    for a in (mm.margin_px, mm.sigma_px, mm.shared_px):
                        full = np.full(u.size, np.nan)
                        full[judged] = a
                        cols.append(full.reshape(u.shape))
                    if tp is not None and args.place_tops and args.crest_place != "off":
                        crest_margins(cols, tp.top.ravel() & flat, args.crest_margin)
                    margins = [ImageMargins(*(c[p] for c in cols)) for p in range(u.shape[0])]
                    # the truth's margins: noise-free feet pixels through the true camera
                    sv = vis.ravel()
                    tm = np.full(u.size, np.nan)
                    if sv.any():
                        tm[sv] = image_margins(
                            true, dem, border, u.ravel()[sv], v.ravel()[sv], 0.0, 0.0
                        ).margin_px
                    near_line = np.nanmean(np.abs(tm.reshape(u.shape)), axis=1) < NEAR_PX
                    # the calibration's mean margin error (judged detections, margins unclipped)
                    use = (np.abs(tm) < 20.0) & np.isfinite(cols[0].ravel())
                    if use.any():
                        e = float(np.mean(cols[0].ravel()[use] - tm[use]))
                        sd = np.hypot(np.mean(cols[2].ravel()[use]), 1.0 / np.sqrt(use.sum()))
                        bias.append((e, e / sd))
                gx, gy, cov = gx.reshape(u.shape), gy.reshape(u.shape), cov.reshape(*u.shape, 2, 2)
                for p in np.flatnonzero(far):
                    truth = int(border.side([x[p, 0]], [y[p, 0]])[0])
                    m = ok[p]
                    if m.any():
                        s = border.side(gx[p, m], gy[p, m]) == truth
                        det_right += int(s.sum())
                        det_n += int(m.sum())
                    sides, crossed, confirmed, matched, tmatched, tused = person(
                        geo,
                        frame,
                        border,
                        config,
                        t,
                        gx[p],
                        gy[p],
                        cov[p],
                        m,
                        args.side,
                        shared[p] if args.shared else None,
                        args.hold,
                        margins[p] if margins is not None else None,
                        args.window,
                        args.image_only,
                        args.image_p,
                        args.change_s,
                        args.change_p,
                        (skyd.reshape(u.shape)[p], ou[p], ov[p], geo) if args.sky else None,
                        (tp, p, SideGeometry.of(geo)) if tp is not None else None,
                    )
                    sky_n += int(skyd.reshape(u.shape)[p].sum())
                    sky_matched += matched
                    crossing_people += crossed > 0
                    if tp is not None:
                        hid_seen += int(tp.seen[p].sum())
                        taken += int(tp.top[p].sum())
                        taken_hid += int((tp.top[p] & tp.seen[p]).sum())
                        top_dec += int(np.sum(tp.side[p] != 0))
                        top_bad += int(np.sum(tp.side[p] == -truth))
                        top_matched += tmatched
                        top_people += tused
                        top_people_right += tused and sides == {truth} and crossed == 0
                        if not sides:
                            lost = pooled_side(tp.side[p][tp.top[p]])
                            lost_right += lost == truth
                            lost_wrong += lost == -truth
                    seen3 = int(m.sum()) >= config.confirm_m
                    if args.image and seen3:
                        if near_line[p]:
                            near += 1
                        else:
                            clear_n += 1
                            clear_right += bool(sides == {truth} and crossed == 0)
                    if not sides:
                        undecided += 1
                        if int(m.sum()) < config.confirm_m:
                            few += 1
                        elif not confirmed:
                            unconfirmed += 1
                        else:
                            unsure += 1
                    elif sides == {truth} and crossed == 0:
                        right += 1
                    else:
                        wrong += 1
        n = right + wrong
        lo, hi = wilson(right, n)
        dlo, dhi = wilson(det_right, det_n)
        print(
            f"{tower.id}: people decided {n} (no side {undecided}: seen in < "
            f"{config.confirm_m} frames {few}, no confirmed track {unconfirmed}, never sure "
            f"{unsure}): right {right}/{n} = "
            f"{right / max(n, 1):.4f} [{lo:.4f}, {hi:.4f}]; of all {n + undecided} people "
            f"right {right / max(n + undecided, 1):.4f} "
            f"[{wilson(right, n + undecided)[0]:.4f}, {wilson(right, n + undecided)[1]:.4f}]; "
            f"with a crossing committed "
            f"{crossing_people}; their detections on the right side {det_right}/{det_n} = "
            f"{det_right / max(det_n, 1):.4f} [{dlo:.4f}, {dhi:.4f}]",
            flush=True,
        )
        if args.image and args.sky:
            print(
                f"{tower.id}: feet pixels that saw sky (no ground point) {sky_n}, their margins "
                f"matched to a track in the image {sky_matched}",
                flush=True,
            )
        if args.image and bias:
            b = np.array(bias)
            print(
                f"{tower.id}: per calibration, mean margin error {b[:, 0].mean():+.3f} px, its z "
                f"against the pooled sd: mean {b[:, 1].mean():+.2f}, rms "
                f"{np.sqrt(np.mean(b[:, 1] ** 2)):.2f} ({len(b)} calibrations)",
                flush=True,
            )
        if args.image:
            clo, chi = wilson(clear_right, clear_n)
            print(
                f"{tower.id}: of people seen in >= {config.confirm_m} frames, {near} stay within "
                f"{NEAR_PX:g} px of the line's row in the true image (mean); of the other "
                f"{clear_n} right {clear_right}/{clear_n} = {clear_right / max(clear_n, 1):.4f} "
                f"[{clo:.4f}, {chi:.4f}]",
                flush=True,
            )
        if args.hidden:
            print(
                f"{tower.id}: body's top seen over hidden feet in {hid_seen} frames; boxes on a "
                f"crest taken as tops {taken} ({taken_hid} over hidden feet), {top_dec} decided, "
                f"{top_bad} wrong, {top_matched} matched to a track; people given the tops' side "
                f"{top_people} ({top_people_right} right in the end); people left without a side "
                f"whose tops would give one: {lost_right} right, {lost_wrong} wrong; detections "
                f"on a crest placed '{args.crest_place}' {crest_n}",
                flush=True,
            )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
