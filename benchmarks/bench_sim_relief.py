"""The simulator on relief (issue 21 item 5) against the ground geometry: people walking the
demo sector's synthetic relief, seen by tower cameras that point off by a hidden error, placed
back on the ground through landmark calibration and ``TerrainGeometry``.

Per tower (t02, t04, t05, t06: t01 and t03 see nothing at 1.5-2.5 km on this relief): the
world (``vigil.sim.World(terrain=SimTerrain(dem, pointing_sigma_deg=0.05))``, truth frames at
1 Hz, people only) gives each frame's bodies as drawn: their boxes stand on the DEM, cut where
the ground hides them, in the image of the truly pointed camera. Ten landmarks seen by that
camera (0.5 px error) calibrate the deployment's camera as in ``bench_pointing``; each drawn
person 1.5-2.5 km away is "detected" at the bottom middle of its box with 1 px of error per
axis and placed by ``TerrainGeometry.ground`` with ``TerrainGeometry.covariance`` (the
chain's floor included). No motion detector or tracker: what the geometry makes of what the
simulator draws.

Printed: bodies within the field of view and range whose feet the ground hides (partly or
wholly) and wholly hidden ones (not drawn); then per tower the detections, people, median and
90th percentile error, mean NEES with a 95 % interval from resampling whole people (one person
gives many correlated detections), and the share on the right side of the line more than 50 m
from it; detections whose feet the ground hides are reported apart (their box bottom is the
crest in front of them, not their feet). Then the same detections as the chain places them
(``vigil.relief_frame``): those whose box's bottom sits on a crest (``on_crest``) placed by
their box's top and bottom rows (``vigil.geo.crest_placement.place_by_top``; the top row
detected with 1 px of error), the others as above.

Run: ``python -m benchmarks sim_relief`` (seed 1001, 20 simulated minutes from 23:00 local,
crossings at 10 times the deployment's rates). ``--seeds`` runs several and pools each line's
NEES over them (intervals resampling people); ``--cache`` keeps a seed's simulation (a path
with ``{seed}``); ``--diagnose`` splits the feet-hidden NEES by placement and along / across
the sight line; ``--crest-tol`` the chain's crest tolerance (rows).
"""

from __future__ import annotations

import argparse
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.bench_pointing import _cluster_ci, site_and_dem
from vigil.config import load_default
from vigil.detection.terrain import TerrainGeometry
from vigil.geo.crest_placement import place_by_top
from vigil.geo.hidden_side import CHAIN_CREST_TOL_PX, on_crest
from vigil.geo.image_side import SideGeometry
from vigil.geo.pointing import calibrate_pointing
from vigil.geo.raycast import pixels_to_terrain
from vigil.sim import SimSettings, World
from vigil.sim.terrain import SimTerrain
from vigil.sim.world import CameraFrame

TOWERS = ("t02", "t04", "t05", "t06")
POINTING_SIGMA_DEG = 0.05
LANDMARK_PX = 0.5
DETECTION_PX = 1.0


def _calibrate(world: World, tower: str, dem, rng):
    view = world.views[tower]
    nominal = world.camera(tower)
    dp, dt, dr = view.pointing_error
    true = replace(
        nominal,
        pan_deg=(nominal.pan_deg + dp) % 360.0,
        tilt_deg=nominal.tilt_deg + dt,
        roll_deg=nominal.roll_deg + dr,
    )
    u, v = (a.ravel() for a in np.meshgrid(np.linspace(30, 610, 12), np.arange(200, 470, 2.0)))
    h = pixels_to_terrain(true, dem, u, v)
    ok = np.flatnonzero(h.hit & (h.range_m > 400.0) & (h.range_m < 3500.0))
    ok = ok[np.argsort(u[ok] + 1e-3 * v[ok], kind="stable")]
    pick = ok[np.linspace(0, ok.size - 1, 10).astype(int)]
    marks = np.column_stack([h.x[pick], h.y[pick], h.z[pick]])
    px = np.column_stack([u[pick], v[pick]]) + rng.normal(0.0, LANDMARK_PX, (10, 2))
    return true, calibrate_pointing(nominal, px, marks, dem=dem)


def _simulate(args, seed: int, dem, frame):
    """Run the world; each tower's drawn people at 1.5-2.5 km and calibrated geometry."""
    site = load_default().site  # the same deployment, with its corridors
    settings = SimSettings(
        start_time=SimSettings().start_time + 6 * 3600,  # 23:00 local: the crossings' hours
        cameras="truth", towers=TOWERS, frame_rate_hz=1.0, ugs=False, uas=False,
        animals=False, road_traffic=False, shake=False, crossing_rate_scale=args.rate_scale,
    )  # fmt: skip
    relief = SimTerrain(dem, pointing_sigma_deg=POINTING_SIGMA_DEG)
    rng = np.random.default_rng(seed)
    with World(site, settings, seed, terrain=relief) as world:
        cams, geos = {}, {}
        for tower in TOWERS:
            true, cal = _calibrate(world, tower, dem, rng)
            cams[tower] = true
            geos[tower] = TerrainGeometry(
                cal.camera, frame, tower, dem, pointing_sigma_deg=cal.sigma_deg
            )
        rows: dict[str, list] = {t: [] for t in TOWERS}
        in_view = drawn = feet_hidden = 0
        for item in world.run(args.minutes * 60.0):
            if not isinstance(item, CameraFrame):
                continue
            true = cams[item.tower]
            states = world.states(item.time)
            people = np.array([c == "person" for c in states.classes], bool)
            fz = relief.seen_z(true.centre, states.x, states.y) - true.ground_z
            u, v, depth = true.project(states.x, states.y, fz)
            r = np.hypot(states.x - true.x, states.y - true.y)
            band = people & (depth > 0) & (u >= 0) & (u < true.width) & (v >= 0)
            band &= (v < true.height) & (r >= 1500.0) & (r <= 2500.0)
            in_view += int(band.sum())
            for obj in item.objects:
                if obj.cls != "person" or not 1500.0 <= obj.range_m <= 2500.0:
                    continue
                drawn += 1
                k = states.ids.index(obj.mover_id)
                hidden = obj.box[3] < v[k] - 0.5
                feet_hidden += int(hidden)
                rows[item.tower].append((obj.mover_id, obj.x, obj.y, *obj.foot, hidden, obj.box[1]))
    return rng, rows, geos, (in_view, drawn, feet_hidden)


def _diagnose(label, sel, cam, tx, ty, px, py, pc) -> None:
    """Print a selection's mean NEES and its parts along and across the sight line: each
    part's mean squared z (1 when the covariance fits) and mean signed z along (bias)."""
    if sel.sum() < 5:
        print(f"{label}: {int(sel.sum())} detections")
        return
    e = np.column_stack([px[sel] - tx[sel], py[sel] - ty[sel]])
    c = pc[sel]
    nees = np.einsum("ni,nij,nj->n", e, np.linalg.inv(c), e)
    az = np.arctan2(px[sel] - cam.x, py[sel] - cam.y)
    a = np.column_stack([np.sin(az), np.cos(az)])
    b = np.column_stack([np.cos(az), -np.sin(az)])
    sa = np.sqrt(np.einsum("ni,nij,nj->n", a, c, a))  # sd along the sight line, m
    za = np.einsum("ni,ni->n", e, a) / sa
    zb = np.einsum("ni,ni->n", e, b) / np.sqrt(np.einsum("ni,nij,nj->n", b, c, b))
    print(
        f"{label}: {int(sel.sum())}; mean NEES {nees.mean():.2f}; along z^2 {np.mean(za**2):.2f}"
        f" (mean z {za.mean():+.2f}, median sd {np.median(sa):.0f} m), across z^2"
        f" {np.mean(zb**2):.2f}; NEES > 13.8 (chi2 0.999): {np.mean(nees > 13.8):.3f}"
    )


def _run_seed(args, seed: int, dem, frame, border, pooled: dict) -> None:
    """One seed's table; each line's NEES and people added to ``pooled``."""
    cache = Path(args.cache.format(seed=seed)) if args.cache else None
    if cache is not None and cache.exists():
        with cache.open("rb") as f:
            saved = pickle.load(f)
        rng = np.random.default_rng()
        rng.bit_generator.state = saved["rng"]
        rows, (in_view, drawn, feet_hidden) = saved["rows"], saved["counts"]
        geos = {
            t: TerrainGeometry(c, frame, t, dem, pointing_sigma_deg=sd)
            for t, (c, sd) in saved["cal"].items()
        }
    else:
        rng, rows, geos, counts = _simulate(args, seed, dem, frame)
        in_view, drawn, feet_hidden = counts
        if cache is not None:
            with cache.open("wb") as f:
                cal = {t: (g.camera, g.pointing_sigma_deg) for t, g in geos.items()}
                state = {"rng": rng.bit_generator.state, "rows": rows, "counts": counts}
                pickle.dump({**state, "cal": cal}, f)
    print(
        f"seed {seed}, {args.minutes:g} simulated minutes, people at 1.5-2.5 km in the"
        f" field of view: {in_view} body-frames, {drawn} drawn ({1 - drawn / max(in_view, 1):.3f}"
        f" wholly hidden by the ground), {feet_hidden} drawn with their feet hidden"
    )
    boot = np.random.default_rng(0)
    for tower in TOWERS:
        if len(rows[tower]) < 20:
            print(f"{tower}: {len(rows[tower])} detections at 1.5-2.5 km")
            continue
        ids, tx, ty, fu, fv, hid, top = (np.asarray(c) for c in zip(*rows[tower], strict=True))
        geo = geos[tower]
        ou = fu + rng.normal(0.0, DETECTION_PX, fu.size)
        ov = fv + rng.normal(0.0, DETECTION_PX, fv.size)
        ex, ey, hit, _ = geo.ground(ou, ov)
        cov = geo.covariance(ou, ov, np.full(ou.size, DETECTION_PX), np.full(ou.size, DETECTION_PX))
        print(f"{tower}: {ou.size} detections, {int((~hit).sum())} of them into sky")
        # the chain (vigil.relief_frame): a box whose bottom sits on a crest placed by its top
        ot = top + rng.normal(0.0, DETECTION_PX, top.size)
        side = SideGeometry.of(geo)
        crest = hit & on_crest(geo.camera, dem, ou, ov, args.crest_tol, max_range_m=geo.reach_m)
        boxes = np.column_stack([ou - 0.5, np.minimum(ot, ov - 0.5), ou + 0.5, ov])
        p = place_by_top(side, boxes[crest])
        cx, cy, ccov = ex.copy(), ey.copy(), cov.copy()
        i = np.flatnonzero(crest)[p.placed]
        cx[i], cy[i], ccov[i] = p.x[p.placed], p.y[p.placed], p.cov[p.placed]
        print(
            f"{tower}: boxes on a crest {int(crest.sum())} (feet hidden {int((crest & hid).sum())}"
            f" of {int((hit & hid).sum())}), placed by their top {int(p.placed.sum())}"
        )
        for label, sel, px, py, pc in (
            ("feet seen", hit & ~hid, ex, ey, cov),
            ("feet hidden", hit & hid, ex, ey, cov),
            ("feet seen, chain's crest placement", hit & ~hid, cx, cy, ccov),
            ("feet hidden, chain's crest placement", hit & hid, cx, cy, ccov),
        ):
            if sel.sum() < 5:
                print(f"{tower} {label}: {int(sel.sum())} detections")
                continue
            e = np.column_stack([px[sel] - tx[sel], py[sel] - ty[sel]])
            nees = np.einsum("ni,nij,nj->n", e, np.linalg.inv(pc[sel]), e)
            who = np.unique(ids[sel], return_inverse=True)[1]
            lo, hi = _cluster_ci(nees, who, boot)
            pooled.setdefault((tower, label), []).append((nees, [f"{seed}:{k}" for k in ids[sel]]))
            far = np.abs(border.signed_distance(tx[sel], ty[sel])) > 50.0
            right = border.side(px[sel], py[sel]) == border.side(tx[sel], ty[sel])
            err = np.hypot(e[:, 0], e[:, 1])
            print(
                f"{tower} {label}: {int(sel.sum())} detections of {who.max() + 1} people"
                f"; error median {np.median(err):.1f} m,"
                f" p90 {np.percentile(err, 90):.0f} m; mean NEES {nees.mean():.2f}"
                f" [{lo:.2f}, {hi:.2f}]; right side > 50 m from the line"
                f" {right[far].mean() if far.any() else float('nan'):.4f} of {int(far.sum())}"
            )
        if args.diagnose:
            placed = np.zeros(ou.size, bool)
            placed[i] = True
            for label, sel in (
                ("feet hidden, placed by top", hit & hid & placed),
                ("feet hidden, not placed by top", hit & hid & ~placed),
                ("feet seen, placed by top", hit & ~hid & placed),
            ):
                _diagnose(f"{tower} {label}", sel, geo.camera, tx, ty, cx, cy, ccov)


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1001])
    parser.add_argument("--rate-scale", type=float, default=10.0)
    parser.add_argument(
        "--cache",
        default=None,
        help="pickle of a seed's simulated detections, made when absent ({seed} in the path)",
    )
    parser.add_argument("--diagnose", action="store_true", help="NEES along / across")
    parser.add_argument(
        "--crest-tol", type=float, default=CHAIN_CREST_TOL_PX, help="on_crest's tolerance, rows"
    )
    args = parser.parse_args(argv)
    _, dem, frame, border = site_and_dem()
    pooled: dict[tuple[str, str], list] = {}
    for seed in args.seeds:
        _run_seed(args, seed, dem, frame, border, pooled)
    if len(args.seeds) < 2:
        return
    boot = np.random.default_rng(0)
    print(f"pooled over seeds {' '.join(map(str, args.seeds))} (intervals resample people):")
    for (tower, label), parts in pooled.items():
        nees = np.concatenate([n for n, _ in parts])
        who = np.unique(np.concatenate([k for _, k in parts]), return_inverse=True)[1]
        lo, hi = _cluster_ci(nees, who, boot)
        print(
            f"{tower} {label}: {nees.size} detections of {who.max() + 1} people"
            f" in {len(parts)} seeds; mean NEES {nees.mean():.2f} [{lo:.2f}, {hi:.2f}]"
        )


if __name__ == "__main__":
    main()
