"""Ground positions on relief with an unknown pointing error, after landmark calibration: the
geometry of issue 21's acceptance (median error at 1.5-2.5 km, NEES, side of the line).

Scenario, per tower of the demo deployment (``vigil/data/tucson.toml``), on the synthetic
relief of :mod:`vigil.geo.relief` (seed 0, 30 m cells): the tower's true camera is off its
deployment's pan, tilt and roll by draws of N(0, 0.05 degree) that nothing downstream knows.
Ten surveyed landmarks spread over its image (0.4-3.5 km, pixels with 0.5 px of error) give
:func:`vigil.geo.pointing.calibrate_pointing` its pan, tilt and roll offsets. People stand at
random on the ground the true camera sees 1.5-2.5 km away within its field of view; their feet
are detected with 1 px of error per axis; their ground positions come from the calibrated
camera through the ray caster, with covariances from :func:`ground_covariance` (pixel error,
the calibration's standard errors, the slope; first order and sigma points).

Printed per tower: people seen, rays into sky, median and 90th percentile ground error, mean
NEES (and the 95 % band of the mean for that many people), the share inside the 95 % ellipse,
and the share of people more than 50 m from the line put on the right side of it. This is the
geometry alone (no rendering, no motion detector, no tracker): the simulator on the same relief
(issue 21 item 5) will measure the whole chain.

Run: ``python -m benchmarks pointing`` or ``python -m benchmarks.bench_pointing --people 4000``.
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import replace
from pathlib import Path

import msgspec
import numpy as np
from scipy.stats import chi2

from vigil.geo.dem import SyntheticRelief, site_bounds
from vigil.geo.pointing import calibrate_pointing, ground_covariance
from vigil.geo.raycast import camera_on_terrain, cast_rays, curvature_factor, pixels_to_terrain
from vigil.geo.relief import synthetic_relief
from vigil.geo.site import Site, tower_camera

DEPLOYMENT = Path(__file__).resolve().parent.parent / "vigil" / "data" / "tucson.toml"
POINTING_SIGMA_DEG = 0.05
LANDMARK_PX = 0.5
DETECTION_PX = 1.0


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=4000, help="ground points tried per tower")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args(argv)
    raw = tomllib.loads(DEPLOYMENT.read_text())
    site = msgspec.convert({"sector": raw["sector"], "towers": raw["towers"]}, Site)
    frame, border = site.frame(), site.border()
    dem = synthetic_relief(SyntheticRelief(seed=0), site_bounds(site, 1000.0), 30.0, frame)
    rng = np.random.default_rng(args.seed)
    print(
        f"pointing error N(0, {POINTING_SIGMA_DEG} deg) unknown; {LANDMARK_PX} px landmarks; "
        f"{DETECTION_PX} px detections; people at 1.5-2.5 km"
    )
    print(
        "tower  seen  sky  median_m  p90_m  NEES_lin  NEES_sp  band        in95_lin  in95_sp"
        "  side>50m"
    )
    for tower in site.towers:
        nominal = camera_on_terrain(tower_camera(tower, frame), dem)
        err = rng.normal(0.0, POINTING_SIGMA_DEG, 3)
        true = replace(
            nominal,
            pan_deg=nominal.pan_deg + err[0],
            tilt_deg=nominal.tilt_deg + err[1],
            roll_deg=nominal.roll_deg + err[2],
        )
        u, v = (a.ravel() for a in np.meshgrid(np.linspace(30, 610, 12), np.arange(200, 470, 2.0)))
        h = pixels_to_terrain(true, dem, u, v)
        ok = np.flatnonzero(h.hit & (h.range_m > 400.0) & (h.range_m < 3500.0))
        ok = ok[np.argsort(u[ok] + 1e-3 * v[ok], kind="stable")]
        pick = ok[np.linspace(0, ok.size - 1, 10).astype(int)]
        marks = np.column_stack([h.x[pick], h.y[pick], h.z[pick]])
        px = np.column_stack([u[pick], v[pick]]) + rng.normal(0.0, LANDMARK_PX, (10, 2))
        cal = calibrate_pointing(nominal, px, marks, dem=dem)
        n = args.people
        az = np.radians(true.pan_deg + rng.uniform(-true.hfov_deg / 2, true.hfov_deg / 2, n))
        r = rng.uniform(1500.0, 2500.0, n)
        gx, gy = true.x + r * np.sin(az), true.y + r * np.cos(az)
        gz = dem.elevation_at(gx, gy) - curvature_factor() * r**2
        d = np.column_stack([gx, gy, gz]) - true.centre
        seen = cast_rays(dem, np.broadcast_to(true.centre, d.shape), d)
        pu, pv, _ = true.project(gx, gy, gz - true.ground_z)
        keep = seen.hit & (np.abs(seen.range_m - r) < 1.0)
        keep &= (pu >= 0) & (pu < true.width) & (pv >= 0) & (pv < true.height)
        if keep.sum() < 20:
            print(f"{tower.id:5s}  {int(keep.sum()):4d}  (too few people in view: hills hide them)")
            continue
        tx, ty = gx[keep], gy[keep]
        ou = pu[keep] + rng.normal(0.0, DETECTION_PX, tx.size)
        ov = pv[keep] + rng.normal(0.0, DETECTION_PX, tx.size)
        sig = {
            "pixel_sigma": DETECTION_PX,
            "pan_sigma_deg": cal.sigma_deg[0],
            "tilt_sigma_deg": cal.sigma_deg[1],
            "roll_sigma_deg": cal.sigma_deg[2],
        }
        est, cov_lin = ground_covariance(cal.camera, dem, ou, ov, **sig)
        _, cov_sp = ground_covariance(cal.camera, dem, ou, ov, method="sigma-points", **sig)
        hit = est.hit
        e = np.column_stack([est.x - tx, est.y - ty])[hit]
        dist = np.hypot(e[:, 0], e[:, 1])
        nees = {
            name: np.einsum("ni,nij,nj->n", e, np.linalg.inv(c[hit]), e)
            for name, c in (("lin", cov_lin), ("sp", cov_sp))
        }
        m = int(hit.sum())
        lo, hi = chi2.ppf([0.025, 0.975], 2 * m) / m
        far = np.abs(border.signed_distance(tx[hit], ty[hit])) > 50.0
        side = border.side(est.x[hit], est.y[hit]) == border.side(tx[hit], ty[hit])
        print(
            f"{tower.id:5s}  {m:4d}  {int((~hit).sum()):3d}  {np.median(dist):8.1f}  "
            f"{np.percentile(dist, 90):5.0f}  {nees['lin'].mean():8.2f}  {nees['sp'].mean():7.2f}"
            f"  {lo:.2f}-{hi:.2f}   {np.mean(nees['lin'] < 5.991):8.3f}  "
            f"{np.mean(nees['sp'] < 5.991):7.3f}  {side[far].mean():8.4f}"
        )


if __name__ == "__main__":
    main()
