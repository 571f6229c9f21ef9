"""Tops over hidden feet in the chain (issue 21; vigil.geo.hidden_side): a box's bottom on a
crest is found where a body behind the crest shows (a dense scan of rows as the reference),
the tops' sides wait and match a track in the image, and a track takes their side only where
its margins leave it unsure and no margin-given side says otherwise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from side_scene import scene_border, scene_camera, scene_hills

from vigil.geo.border import Border
from vigil.geo.dem import ElevationModel
from vigil.geo.hidden_side import TOPS_Z, HiddenTops, box_tops, on_crest
from vigil.geo.image_side import ImageSideMonitor, SideGeometry
from vigil.geo.raycast import cast_rays, curvature_factor


@pytest.fixture(scope="module")
def hills() -> ElevationModel:
    return scene_hills()


@pytest.fixture(scope="module")
def border() -> Border:
    return scene_border()


def _bodies(cam, hills, n: int, seed: int):
    """Bodies 1.7 m tall 1.5-3 km out in the view: pixel of the top, whether the feet are
    seen, and the lowest row the body shows (its box's bottom) by a dense scan of rows."""
    rng = np.random.default_rng(seed)
    az = np.radians(180.0 + rng.uniform(-11.0, 11.0, n))
    r = rng.uniform(1500.0, 3000.0, n)
    x, y = cam.x + r * np.sin(az), cam.y + r * np.cos(az)
    z = hills.elevation_at(x, y) - curvature_factor() * r**2
    u, vf, _ = cam.project(x, y, z - cam.ground_z)
    _, vt, _ = cam.project(x, y, z + 1.7 - cam.ground_z)
    bottom = np.full(n, np.nan)
    for k in range(n):
        # from the feet's row upward: the first row whose ray is not stopped before the body
        rows = np.arange(vf[k], vt[k], -0.02)
        d = cam.rays(np.full(rows.size, u[k]), rows)
        hit = cast_rays(hills, np.broadcast_to(cam.centre, d.shape), d)
        clear = (~hit.hit) | (hit.range_m >= r[k] - 1.0)
        if clear.any():
            bottom[k] = rows[int(np.argmax(clear))]
    feet_seen = np.abs(bottom - vf) < 0.05
    return u, vt, vf, bottom, feet_seen


def test_box_bottoms_over_hidden_feet_sit_on_a_crest(hills: ElevationModel) -> None:
    cam = scene_camera(hills)
    u, _, vf, bottom, feet_seen = _bodies(cam, hills, 300, 3)
    hidden = np.isfinite(bottom) & ~feet_seen & (bottom < vf - 0.5)
    assert hidden.sum() >= 20
    assert on_crest(cam, hills, u[hidden], bottom[hidden]).mean() >= 0.95
    # feet seen on open ground: mostly no crest at their row; and never one far from any
    seen = feet_seen & np.isfinite(bottom)
    assert on_crest(cam, hills, u[seen], vf[seen]).mean() < 0.5
    assert not on_crest(cam, hills, [320.0], [5.0])[0]  # far above the horizon
    with pytest.raises(ValueError):
        on_crest(cam, hills, [1.0, 2.0], [3.0])


def test_box_tops_of_hidden_bodies_give_their_side(hills, border) -> None:
    cam = scene_camera(hills)
    u, vt, vf, bottom, feet_seen = _bodies(cam, hills, 300, 7)
    hidden = np.isfinite(bottom) & ~feet_seen & (bottom < vf - 0.5)
    boxes = np.column_stack([u - 1.0, vt, u + 1.0, bottom])[hidden]
    geo = SideGeometry(cam, hills, (0.0, 0.005, 0.005))
    on, sides = box_tops(geo, border, boxes)
    assert on.mean() >= 0.95 and sides.size == on.sum()
    # their sides: never the wrong one
    d = cam.rays(u[hidden][on], vf[hidden][on])
    rng_m = (cam.centre[2] - hills.elevation_at(cam.x, cam.y)) / np.maximum(-d[:, 2], 1e-9)
    assert np.all(np.isfinite(rng_m))
    hit = cast_rays(hills, np.broadcast_to(cam.centre, d.shape), d * 1e4)
    truth = border.side(hit.x, hit.y)
    assert np.all((sides == 0) | (sides == truth) | ~hit.hit)


def _monitor(border: Border) -> ImageSideMonitor:
    return ImageSideMonitor(border, side_probability=0.99, image_only=True, image_probability=0.99)


def test_tops_wait_match_in_the_image_and_decide_only_unsure_tracks(hills, border) -> None:
    cam = scene_camera(hills)
    geo = SideGeometry(cam, hills, (0.0, 0.0, 0.0))
    x, y = np.array([0.0, 600.0]), np.array([-200.0, -300.0])  # 2.3-2.4 km south of the mast
    z = hills.elevation_at(x, y) - curvature_factor() * ((x - cam.x) ** 2 + (y - cam.y) ** 2)
    u, v, _ = cam.project(x, y, z - cam.ground_z)
    tops = HiddenTops()
    tops.observe_tops(10.0, geo, [u[0]], [v[0]], [2.0], [-1])
    tops.observe_tops(10.0, geo, [u[0]], [v[0]], [2.0], [0])  # undecided: not kept
    assert len(tops) == 1
    covs = np.stack([np.eye(2) * 25.0] * 2)
    # a track seen before the top does not take it yet; then the one it projects near does
    assert tops.attach(None, ["a", "b"], [9.0, 9.0], x, y, covs) == 0  # type: ignore[arg-type]
    assert tops.attach(None, ["a", "b"], [11.0, 11.0], x, y, covs) == 1  # type: ignore[arg-type]
    assert tops.side("a") == -1 and tops.side("b") == 0 and len(tops) == 0
    z_need = 2.33
    out = tops.decide(["a", "b"], [0.5, math.nan], z_need, {})
    assert out[0] == -TOPS_Z and math.isnan(out[1])
    assert tops.decide(["a"], [3.0], z_need, {}) == [3.0]  # the margins are sure: theirs
    assert tops.decide(["a"], [0.5], z_need, {"a": 1}) == [0.5]  # never turns a margins' side
    assert tops.decide(["a"], [0.5], z_need, {"a": -1}) == [-TOPS_Z]
    # a top of the other side: the pooled side is none
    tops.observe_tops(12.0, geo, [u[0]], [v[0]], [2.0], [1])
    tops.attach(None, ["a"], [12.0], x[:1], y[:1], covs[:1])  # type: ignore[arg-type]
    assert tops.side("a") == 0 and tops.decide(["a"], [0.5], z_need, {}) == [0.5]
    tops.merge("a", "b")
    assert tops.counts["b"] == [1, 1] and "a" not in tops.counts
    tops.forget("b")
    assert tops.side("b") == 0


def test_the_monitor_gives_an_unsure_track_its_tops_side(hills, border) -> None:
    cam = scene_camera(hills)
    geo = SideGeometry(cam, hills, (0.0, 0.0, 0.0))
    x, y = 0.0, -200.0
    z = float(hills.elevation_at([x], [y])[0]) - curvature_factor() * (
        (x - cam.x) ** 2 + (y - cam.y) ** 2
    )
    u, v, _ = cam.project([x], [y], [z - cam.ground_z])
    truth = int(border.side([x], [y])[0])
    mon = _monitor(border)
    mon.update(["t"], [5.0], [x], [y], [np.eye(2) * 1e6])
    assert mon.states["t"].side == 0  # unsure by its position, no margins
    mon.hidden.observe_tops(6.0, geo, u, v, [2.0], [truth])
    mon.update(["t"], [6.0], [x], [y], [np.eye(2) * 1e6])
    assert mon.states["t"].side == truth
    mon.forget("t")
    assert "t" not in mon.hidden.counts
