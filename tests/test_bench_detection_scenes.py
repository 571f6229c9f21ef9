"""The development scenes (vigil.sim.scenes): deterministic, exact truth, and a short scored run.

The full evaluation (10 seeds at 640x480, MOG2 and KNN anchors) is
``python -m benchmarks detection_scenes``; here a small scene checks the generator and the
scoring, that Vigil's thermal detector with the neighbourhood test keeps brush, shimmer
and shake out where MOG2 with the same post-processing does not, and that the
track-before-detect stage after it (vigil.detection.tbd) loses nothing and adds no false blob.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.bench_detection_scenes import speed
from benchmarks.scene_methods import opencv_method, tbd_method, variant_plan, vigil_method
from vigil.detection.sensor_defaults import sensor_plan
from vigil.detection.settings import DetectionSettings
from vigil.sim.scenes import CALIBRATION_SEEDS, EVALUATION_SEEDS, SceneSpec, render_scene
from vigil.sim.scenes_score import score_scene

SMALL = SceneSpec(width=240, height=180, seconds=20.0)


@pytest.fixture(scope="module")
def scene():
    return render_scene(EVALUATION_SEEDS[0], SMALL)


def test_seeds_are_disjoint_and_ten_are_evaluated() -> None:
    assert not set(CALIBRATION_SEEDS) & set(EVALUATION_SEEDS)
    assert len(EVALUATION_SEEDS) >= 10


def test_scene_is_deterministic_by_seed(scene) -> None:
    spec = replace(SMALL, seconds=2.0)
    a, b = render_scene(7, spec), render_scene(7, spec)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.frames, render_scene(8, spec).frames)


def test_held_noise_changes_the_frames_as_specified() -> None:
    """SceneSpec.held_noise: off, the scene is the same bit for bit; on, the frames differ by
    noise of the given size that keeps its value from frame to frame (correlation about
    held_rho at one frame, its square at two) and whose pixels sit on multiples of
    held_step; labels and bodies are unchanged."""
    spec = replace(SMALL, seconds=4.0)
    base = render_scene(11, spec)
    same = render_scene(11, replace(spec, held_noise=0.0, held_rho=0.5, held_step=3.0))
    assert np.array_equal(base.frames, same.frames)
    held = render_scene(11, replace(spec, held_noise=4.0, held_rho=0.9, held_spread=0.0))
    assert np.array_equal(base.labels, held.labels)
    d = held.frames.astype(np.float64) - base.frames.astype(np.float64)
    inside = (base.frames > 20) & (base.frames < 235)  # not clipped
    assert 3.7 < d[inside].std() < 4.3
    lag1 = (d[1:] * d[:-1]).mean() / d.var()
    lag2 = (d[2:] * d[:-2]).mean() / d.var()
    assert 0.85 < lag1 < 0.95 and 0.75 < lag2 < 0.87
    spatial = (d[:, :, 1:] * d[:, :, :-1]).mean() / d.var()
    assert abs(spatial) < 0.05  # a pixel's own, as on the real camera (0.2-0.4 there)
    stepped = render_scene(11, replace(spec, held_noise=4.0, held_step=3.0))
    assert not np.array_equal(stepped.frames, held.frames)
    assert set(np.unique(stepped.frames[:, 40:, :] % 3)) == {0}


def test_labels_are_where_the_bodies_were_drawn() -> None:
    # with every nuisance and the noise off, a frame minus the empty scene is the bodies
    quiet = replace(
        SMALL,
        seconds=1.0,
        brush_patches=0,
        shimmer_px=0.0,
        gain_drift=0.0,
        offset_drift=0.0,
        noise=0.0,
        shake_px=0.0,
        jolt_px=0.0,
    )
    with_bodies = render_scene(3, quiet)
    empty = render_scene(3, replace(quiet, people=0, animals=0))
    # the bodies are drawn last from the same random stream: the ground is the same
    warm = with_bodies.frames.astype(int) - empty.frames.astype(int)
    lab = with_bodies.labels
    assert lab.max() == quiet.people + quiet.animals
    assert (warm[lab > 0] >= 2).mean() > 0.95  # labelled pixels are warmer
    assert (warm[lab == 0] > 3).mean() < 0.002  # and almost nothing else is


def test_vigil_keeps_nuisances_out_where_mog2_does_not(scene) -> None:
    cfg = replace(DetectionSettings(sensor="thermal").detector_config(), neighbour_px=1)
    vigil = score_scene(scene, vigil_method(cfg)(), "vigil")
    mog2 = score_scene(scene, opencv_method("mog2", cfg)(), "mog2")
    assert vigil.bodies >= 8
    # 8/12 = 0.667 measured, the same as on this scene rendered without its camera drift. The
    # 0.75 measured before the detector fitted gain and offset (detection.steps) came from one
    # frame where a 7 % gain error let a slow 4 px body through; 7/12 fails.
    assert vigil.object_recall >= 0.65, vigil.missed
    assert vigil.false_per_minute <= 120, vigil.false_per_minute
    assert mog2.false_per_minute > 10 * max(vigil.false_per_minute, 1.0)
    assert vigil.f1 > mog2.f1


def test_tbd_stage_keeps_what_the_detector_finds_and_adds_no_false_blobs(scene) -> None:
    cfg = replace(DetectionSettings(sensor="thermal").detector_config(), neighbour_px=1)
    vigil = score_scene(scene, vigil_method(cfg)(), "vigil+n1")
    pair = score_scene(scene, tbd_method(cfg)(), "vigil+n1+tbd")
    # measured: recall 0.667 both (the scene's 10 scored seconds are short for the stage),
    # false blobs 6 -> 0 a minute, pixel F1 0.728 -> 0.876
    assert pair.found >= vigil.found, (pair.missed, vigil.missed)
    assert pair.false_per_minute <= vigil.false_per_minute
    assert pair.f1 > vigil.f1 + 0.05


def test_speed_times_every_method_on_the_same_frames() -> None:
    ms = speed(64, 48, frames=12)
    assert set(ms) == {
        "mog2", "vigil", "vigil+n1", "vigil+n1+lk", "tbd stage", "vigil+n1+tbd", "vigil+n1+tbd+lk",
        "default",
    }  # fmt: skip
    assert all(v > 0.0 for v in ms.values())


def test_variants_of_the_default_change_only_what_they_name() -> None:
    plan = sensor_plan("thermal")
    assert variant_plan("") == plan
    v = variant_plan("register=lk4;samples=4;slow_every=2;speeds_px_s=0.4/0.8")
    assert v.config.register_method == "lk4" and v.config.background.samples == 4
    assert v.config.slow is not None and v.config.slow.every == 2
    assert v.tbd is not None and v.tbd.speeds_px_s == (0.4, 0.8)
    c = plan.config
    back = replace(v.config, register_method=c.register_method, background=c.background)
    back = replace(back, slow=c.slow)
    assert back == c
    assert replace(v.tbd, speeds_px_s=(0.6,)) == plan.tbd


def test_speed_options_rebuild_the_lk_pair_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain ``--speed`` times the ``+lk`` rows with lk (it once timed ECC there: the scene
    runs' ``--register`` default reached the timing); ``--slow-every 0`` drops the slow
    background; the kernels are loaded (a throwaway pair) before any timing."""
    from benchmarks import bench_detection_scenes as b

    seen: dict[str, object] = {}
    monkeypatch.setattr(b, "speed", lambda *a, **kw: seen.update(kw) or {"mog2": 1.0})
    b.main(["--speed", "--sizes", "64x48"])
    assert seen["register"] == "lk"
    b.main(["--speed", "--sizes", "64x48", "--register", "ecc"])
    assert seen["register"] == "ecc"
    _, cfg = b.reduced("", 0, DetectionSettings(sensor="thermal").detector_config())
    assert cfg is not None and cfg.slow is None
    loaded: list[int] = []
    real = b.SlowMoverDetector

    class Counting(real):  # type: ignore[misc, valid-type]
        def process(self, *a, **kw):  # noqa: ANN002, ANN003, ANN202
            loaded.append(1)
            return super().process(*a, **kw)

    monkeypatch.setattr(b, "SlowMoverDetector", Counting)
    n1 = replace(DetectionSettings(sensor="thermal").detector_config(), neighbour_px=1)
    b.load_kernels([replace(n1, register_method="lk")], b.TbdParams(), frames=12)
    assert len(loaded) == 12
