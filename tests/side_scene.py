"""The synthetic hills, border and tower shared by the image-side tests (test_image_side,
test_hidden_side, test_unplaced_side): a 25 m mast 2.1 km north of a straight line, looking
south over relief of 40 m with 6 m washes (seed 4, 30 m cells); and the demo chain on the demo's
relief for the relief pipeline tests."""

from __future__ import annotations

from vigil.config import load_default
from vigil.demo import demo_relief
from vigil.geo.border import Border
from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel, SyntheticRelief
from vigil.geo.frames import LocalFrame
from vigil.geo.raycast import camera_on_terrain
from vigil.geo.relief import synthetic_relief
from vigil.pipeline import Pipeline
from vigil.sim import SimSettings
from vigil.sim.terrain import SimTerrain

FRAME = LocalFrame(31.33, -110.94)


def scene_border() -> Border:
    """The straight border line of the scene."""
    return Border("tucson", FRAME, start=(31.333, -111.15), end=(31.333, -110.73))


def scene_hills() -> ElevationModel:
    """The scene's relief, local metres."""
    spec = SyntheticRelief(seed=4, relief_m=40.0, wash_depth_m=6.0)
    return synthetic_relief(spec, (-4000.0, -3500.0, 4000.0, 4000.0), 30.0)


def scene_camera(dem: ElevationModel) -> PinholeCamera:
    """The tower's camera (pan 180 deg, tilt 0.9 deg down, 24 deg view) standing on ``dem``."""
    return camera_on_terrain(PinholeCamera(0.0, 2100.0, 25.0, 180.0, 0.9, 24.0), dem)


def relief_pipeline(tower: str, *, image_side: bool = True) -> Pipeline:
    """The demo chain on the demo's relief (0.05 deg of hidden pointing error) with one tower
    at 1 Hz and nothing else simulated, seed 1 (the relief pipeline tests)."""
    d = load_default()
    terrain = SimTerrain(demo_relief(d), pointing_sigma_deg=0.05)
    sim = SimSettings(towers=(tower,), frame_rate_hz=1.0, animals=False, uas=False, ugs=False)
    return Pipeline(d.site, sim, 1, terrain=terrain, image_side=image_side)
