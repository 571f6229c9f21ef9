"""``vigil run``'s core on relief judges sides in the towers' images (issue 21): a relief
deployment's tower geometries (:func:`vigil.cli.run.side_geometries`) given to a
:class:`~vigil.runner.SectorRunner`'s core turn its crossing monitor into the image-side one,
and camera detections fed through the runner reach it with the side their ground points are
on; flat ground has none."""

from __future__ import annotations

import numpy as np

from vigil.cli.run import side_geometries, tracker_for
from vigil.config import default_deployment_path, load, load_default
from vigil.detection.terrain import TerrainGeometry
from vigil.geo.crossing_monitor import side_probability_for
from vigil.geo.image_side import ImageSideMonitor
from vigil.ingest.schema import CameraDetection, topic_for
from vigil.runner import SectorRunner

T0 = 1_780_000_000.0  # UTC s
RELIEF = "\n[terrain]\nsynthetic = { seed = 2 }\n"


def test_flat_deployment_has_no_image_side() -> None:
    assert side_geometries(load_default()) == {}


def test_runner_core_judges_sides_in_the_image(tmp_path) -> None:
    path = tmp_path / "sector.toml"
    path.write_text(default_deployment_path().read_text(encoding="utf-8") + RELIEF, "utf-8")
    d = load(path)
    geos = side_geometries(d)
    assert set(geos) == {t.id for t in d.site.towers}
    runner = SectorRunner(d.site, tracker=tracker_for(d))
    core = runner.core
    core.monitor.side_probability = side_probability_for(d.config.terrain)
    core.use_image_side(geos)
    monitor = core.monitor
    assert isinstance(monitor, ImageSideMonitor) and monitor.image_only
    assert monitor.side_probability == side_probability_for(d.config.terrain)
    # two people standing still in t05's view, one each side of the line, > 100 m from it
    g = geos["t05"]
    terrain = TerrainGeometry(
        g.camera, core.frame, "t05", g.dem, pointing_sigma_deg=g.pointing_sigma_deg
    )
    cam = g.camera
    u, v = np.meshgrid(np.linspace(60, cam.width - 60, 15), np.linspace(120, cam.height - 5, 30))
    x, y, hit, _ = terrain.ground(u.ravel(), v.ravel())
    sd = core.border.signed_distance(np.nan_to_num(x), np.nan_to_num(y))
    picks = {}
    for side in (-1, 1):
        k = np.flatnonzero(hit & (side * sd > 100.0))
        assert k.size, f"no ground on side {side} in view"
        picks[side] = int(k[k.size // 2])
    lat, lon = core.frame.to_wgs84(x[list(picks.values())], y[list(picks.values())])
    for t in range(100, 160):
        for i, _side in enumerate(picks):
            uu, vv = float(u.ravel()[picks[_side]]), float(v.ravel()[picks[_side]])
            msg = CameraDetection(
                camera="t05", time=T0 + t, frame=t, box=(uu - 2, vv - 12, uu + 2, vv),
                lat=float(lat[i]), lon=float(lon[i]), cov=(400.0, 0.0, 0.0, 400.0),
                class_guess="person", class_confidence=0.9,
            )  # fmt: skip
            runner.handle(topic_for(d.sector, msg), msg)
        runner.advance_to(T0 + t - 1.5)
    got = {}
    for m, tx, ty in core.live:
        z = monitor.evidence.z(m.track_id)
        got[int(np.sign(core.border.signed_distance([tx], [ty])[0]))] = z
    assert set(got) == {-1, 1}
    assert got[1] > 3.0 and got[-1] < -3.0  # each sure of its own side
