"""The side of a person from the top of their body (vigil.geo.hidden_side): every side decided
for true body tops is the person's, both sides are decided somewhere, and the pooling rule."""

from __future__ import annotations

import numpy as np
import pytest
from side_scene import scene_border, scene_camera, scene_hills

from vigil.geo.border import Border
from vigil.geo.dem import ElevationModel
from vigil.geo.hidden_side import pooled_side, top_row_sides
from vigil.geo.raycast import cast_rays, curvature_factor


@pytest.fixture(scope="module")
def border() -> Border:
    return scene_border()


@pytest.fixture(scope="module")
def hills() -> ElevationModel:
    return scene_hills()


def test_sides_of_true_body_tops_are_right(border: Border, hills: ElevationModel) -> None:
    cam = scene_camera(hills)
    rng = np.random.default_rng(5)
    n = 400
    az = np.radians(180.0 + rng.uniform(-11.0, 11.0, n))
    r = rng.uniform(1500.0, 3000.0, n)
    x, y = cam.x + r * np.sin(az), cam.y + r * np.cos(az)
    h = rng.uniform(1.5, 1.9, n)
    z = hills.elevation_at(x, y) - curvature_factor() * r**2 + h
    d = np.stack([x, y, z], axis=-1) - cam.centre
    hit = cast_rays(hills, np.broadcast_to(cam.centre, d.shape), d)
    seen = (~hit.hit) | (hit.range_m >= r - 1.0)
    u, v, _ = cam.project(x, y, z - cam.ground_z)
    seen &= np.isfinite(u) & np.isfinite(v)
    truth = border.side(x[seen], y[seen])
    far = np.abs(border.signed_distance(x[seen], y[seen])) > 50.0
    sides = top_row_sides(cam, hills, border, u[seen], v[seen], 0.3, 0.0)
    decided = sides != 0
    # a body's true top is always consistent with its own place: no wrong side
    assert np.all(sides[decided] == truth[decided])
    # and the rule says something, on both sides of the line, for people away from it
    assert decided[far].mean() > 0.5
    assert set(sides[decided].tolist()) == {-1, 1}
    # a wider error can only widen the candidates: never a side the narrow one did not give
    wide = top_row_sides(cam, hills, border, u[seen], v[seen], 3.0, 0.0)
    assert np.all((wide == 0) | (wide == sides))
    assert (wide != 0).sum() < decided.sum()


def test_top_above_the_sky_or_out_of_reach_says_nothing(
    border: Border, hills: ElevationModel
) -> None:
    cam = scene_camera(hills)
    # far above the horizon no person can stand where their top shows
    assert top_row_sides(cam, hills, border, [320.0], [5.0], 1.0, 0.0)[0] == 0
    with pytest.raises(ValueError):
        top_row_sides(cam, hills, border, [1.0, 2.0], [3.0], 1.0)
    with pytest.raises(ValueError):
        top_row_sides(cam, hills, border, [1.0], [3.0], body_top_m=(2.0, 1.0))


def test_pooled_side() -> None:
    assert pooled_side([0, 1, 0, 1]) == 1
    assert pooled_side([-1, 0]) == -1
    assert pooled_side([1, -1]) == 0
    assert pooled_side([]) == 0
    assert pooled_side([1, 1], min_frames=3) == 0
