"""The tower detector under the field's camera perturbations (issue 22 item 2), on small
synthetic frames: bodies colder than the ground, global level steps (flat-field level jumps,
AGC steps), and the settings that switch them. The simulator-rendered figures are in
``benchmarks/bench_detection_robust.py`` (and ``tests/test_bench_detection_robust.py``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vigil.detection import kernels
from vigil.detection.background import DetectionError
from vigil.detection.detector import DetectorConfig, MotionDetector, StepParams
from vigil.detection.settings import DetectionSettings

H, W = 96, 128


def ground(seed: int = 3) -> np.ndarray:
    """A tower-like picture: a cold sky over warmer textured ground (float grey levels)."""
    rng = np.random.default_rng(seed)
    rows = np.arange(H, dtype=np.float32)[:, None]
    sky = 25.0 + 20.0 * rows / 30.0
    soil = 90.0 + 12.0 * rng.standard_normal((H, W)).astype(np.float32)
    soil = (soil + np.roll(soil, 1, 0) + np.roll(soil, 1, 1)) / 3.0
    return np.where(rows < 30, sky, soil).astype(np.float32)


def frames(n: int, body_dn: float, step_at: int | None = None, seed: int = 4):
    """``n`` frames (uint8) with a 2x4-pixel body of ``body_dn`` walking along row 60 and
    sensor noise; from ``step_at`` on, an AGC step (gain 0.8 about the mean) and a +12 DN
    flat-field level jump."""
    rng = np.random.default_rng(seed)
    base = ground()
    out = []
    for t in range(n):
        f = base + 0.7 * rng.standard_normal((H, W)).astype(np.float32)
        x = 10 + t // 2
        f[58:62, x : x + 2] += body_dn
        if step_at is not None and t >= step_at:
            f = 0.8 * f + 0.2 * float(base.mean()) + 12.0
        out.append(np.clip(f + 0.5, 0, 255).astype(np.uint8))
    return out


def tower(**changes) -> MotionDetector:
    cfg = replace(DetectorConfig.for_tower(), register=False, **changes)
    return MotionDetector((H, W), cfg)


def found_near_body(det: MotionDetector, seq) -> int:
    """Frames (after the warm-up) with a detection at the body's place."""
    hits = 0
    for t, f in enumerate(seq):
        res = det.process(f, time_s=0.2 * t)
        x = 10 + t // 2
        hits += any(
            d.box[0] - 2 <= x + 1 <= d.box[2] + 2 and d.box[1] - 2 <= 60 <= d.box[3] + 2
            for d in res.pixel_detections
        )
    return hits


def test_a_body_colder_than_the_ground_is_found_only_by_the_two_sided_test() -> None:
    seq = frames(120, body_dn=-30.0)
    assert found_near_body(tower(cold_bodies=False), seq) <= 5  # at most its warm wake
    assert found_near_body(tower(cold_bodies=True), seq) >= 60
    # warm bodies are still found with the two-sided test
    assert found_near_body(tower(cold_bodies=True), frames(120, body_dn=30.0)) >= 60


def false_blobs_after_step(det: MotionDetector, seq, step_at: int) -> list[int]:
    """Blobs away from the body in each frame from ``step_at`` on."""
    out = []
    for t, f in enumerate(seq):
        res = det.process(f, time_s=0.2 * t)
        if t < step_at:
            continue
        b = res.blobs
        x = 10 + t // 2
        away = (np.abs(b.cx - x) > 4) | (np.abs(b.cy - 60) > 4)
        out.append(int(away.sum()))
    return out


def test_a_global_step_is_mapped_back_instead_of_raising_a_frame_of_false_blobs() -> None:
    seq = frames(110, body_dn=30.0, step_at=80)
    plain = false_blobs_after_step(tower(steps=None), seq, 80)
    det = tower(steps=StepParams())
    handled = false_blobs_after_step(det, seq, 80)
    assert max(plain) >= 20, plain  # the step lights up the sky and the ground
    assert sum(handled) <= 3, handled
    assert det.steps.counts["mapped"] >= 25 and det.steps.counts["reset"] == 0
    # and the frames before the step went through untouched
    quiet = tower(steps=StepParams())
    for t, f in enumerate(seq[:80]):
        quiet.process(f, time_s=0.2 * t)
    assert quiet.steps.counts == {"mapped": 0, "reset": 0}


def test_frames_without_a_step_give_the_same_detections_as_without_the_handling() -> None:
    seq = frames(90, body_dn=30.0)
    a, b = tower(steps=None), tower(steps=StepParams())
    for t, f in enumerate(seq):
        ra, rb = a.process(f, time_s=0.2 * t), b.process(f, time_s=0.2 * t)
        assert ra.pixel_detections == rb.pixel_detections
        np.testing.assert_array_equal(ra.mask, rb.mask)


def test_a_picture_no_gain_and_offset_explain_restarts_the_background() -> None:
    det = tower(steps=StepParams())
    seq = frames(60, body_dn=30.0)
    for t, f in enumerate(seq):
        det.process(f, time_s=0.2 * t)
    other = np.ascontiguousarray(np.flipud(seq[-1]))  # the camera looks elsewhere
    res = det.process(other, time_s=20.0)
    assert det.steps.counts["reset"] == 1 and det.steps.last == "reset"
    assert res.pixel_detections == []
    res = det.process(other, time_s=20.2)
    assert det.model.frames_seen == 2 and res.pixel_detections == []  # learning afresh


def test_the_affine_fit_recovers_gain_and_offset_over_foreground() -> None:
    rng = np.random.default_rng(9)
    ref = np.clip(ground() + 0.5, 0, 255).astype(np.uint8)
    samples = np.repeat(ref[None], 8, axis=0)
    frame = np.clip(0.8 * ref + 30.0 + rng.normal(0, 0.7, ref.shape) + 0.5, 0, 255)
    frame[40:60, 40:80] = 250  # a hot object the fit must not follow
    fg = np.zeros_like(ref)
    out = np.zeros(6)
    kernels.affine_fit(frame.astype(np.uint8), samples, fg, 2, 4.0, out)
    a, b, gain, kept = out[:4]
    assert a == pytest.approx(0.8, abs=0.01) and b == pytest.approx(30.0, abs=1.0)
    assert 0.85 < kept < 0.99  # the hot object was trimmed away


def test_the_settings_switch_each_capability_and_report_it() -> None:
    cfg = DetectionSettings(polarity="both", global_steps=False, psf_sigma_px=0.8).detector_config()
    assert cfg.cold_bodies and cfg.steps is None and cfg.objects.psf_sigma_px == 0.8
    plain = DetectionSettings().detector_config()
    assert not plain.cold_bodies and plain.steps is not None and plain.objects.psf_sigma_px == 0
    assert plain == DetectorConfig.for_tower()
    robust = DetectionSettings(polarity="both", psf_sigma_px=0.8).effective()["robust"]
    assert robust == {"polarity": "both", "global_steps": True, "psf_sigma_px": 0.8}
    with pytest.raises(ValueError, match="cold_bodies"):
        DetectionSettings(polarity="both", neighbour_px=2).detector_config()
    with pytest.raises(DetectionError, match="step_dn"):
        StepParams(step_dn=-1.0)


def blurred_body(w_px: float, h_px: float, phase: float, contrast: float) -> np.ndarray:
    """A body drawn as the simulator draws it (area-sampled, then a Gaussian PSF of 0.8 px)
    on a 21x21 patch, grey levels above the ground."""
    from scipy import ndimage

    edges = np.arange(21, dtype=np.float64) - 10.0
    cu = np.clip(
        np.minimum(phase + w_px / 2, edges + 1) - np.maximum(phase - w_px / 2, edges), 0, 1
    )
    cv = np.clip(
        np.minimum(phase + h_px / 2, edges + 1) - np.maximum(phase - h_px / 2, edges), 0, 1
    )
    return ndimage.gaussian_filter(contrast * np.outer(cv, cu), 0.8, mode="constant")


@pytest.mark.parametrize("truth", ["person", "animal"])
def test_blurred_templates_tell_an_animal_from_a_person(truth: str) -> None:
    """Bodies drawn through the PSF as the simulator draws them, their dim skirt learnt as
    background, measured as the detector measures: the nearest blurred template is right."""
    from vigil.detection.blobs import label_components
    from vigil.detection.centroid import refine_centroids
    from vigil.detection.objects import ObjectParams
    from vigil.detection.psf import TEMPLATES_M, guess_blurred

    cut = ObjectParams().psf_cut_dn
    mpp = 0.66  # metres a pixel spans 1 km from a 640-px, 24-degree tower camera
    w_m, h_m = {"person": (0.5, 1.7), "animal": (2.0, 1.3)}[truth]
    assert TEMPLATES_M["person"] == (0.5, 1.7)
    measured = []
    for phase in (0.1, 0.3, 0.5, 0.7, 0.9):  # the body walking across the pixel grid
        body = blurred_body(w_m / mpp, h_m / mpp, phase, 60.0)
        # what stands out less than the cut has been learnt as background
        ground = np.full(body.shape, 60.0)
        seen = np.clip(ground + body + 0.5, 0, 255).astype(np.uint8)
        learnt = np.clip(ground + np.where(body < cut, body, 0.0) + 0.5, 0, 255).astype(np.uint8)
        samples = np.repeat(learnt[None], 8, axis=0)
        _, blobs = label_components((body >= 8.0).astype(np.uint8) * 255)
        b = refine_centroids(blobs, seen, samples, pad=2, warm_only=True)
        k = int(np.argmax(b.area))
        vu, vv, peak = float(b.var_u[k]), float(b.var_v[k]), float(b.peak[k])
        measured.append((vu, vv, peak))
    # the follower keeps each object's mean measurements over its frames
    vu, vv, peak = np.mean(measured, axis=0)
    assert guess_blurred(vu, vv, peak, mpp, 0.8, cut, 2.0)[0] == truth, measured


def test_the_step_fit_follows_the_scenes_camera_drift_not_its_bodies_or_nuisances() -> None:
    """The development scene's slow camera drift (gain 3 %, offset 4 DN, the whole picture)
    is what the handling maps back: its fit matches the drift measured against the same
    scene rendered without drift, with brush, shimmer and bodies in view, and nothing is
    restarted. (Found while tracing the scenes test's body 3: see the report of the change.)
    """
    from vigil.sim.scenes import EVALUATION_SEEDS, SceneSpec, render_scene

    spec = SceneSpec(width=240, height=180, seconds=20.0)
    drift = render_scene(EVALUATION_SEEDS[0], spec)
    still = render_scene(EVALUATION_SEEDS[0], replace(spec, gain_drift=0.0, offset_drift=0.0))

    def true_map(i: int) -> tuple[float, float]:
        x, y = still.frames[i].astype(float).ravel(), drift.frames[i].astype(float).ravel()
        keep = (x > 2) & (x < 253) & (y > 2) & (y < 253)
        a, b = np.polyfit(x[keep], y[keep], 1)
        return float(a), float(b)

    cfg = replace(DetectionSettings(sensor="thermal").detector_config(), neighbour_px=1)
    det = MotionDetector(drift.frames[0].shape, cfg)
    for i, f in enumerate(drift.frames):
        det.process(f, (i + 1) / 10, i + 1)
    assert det.steps.counts["reset"] == 0 and det.steps.counts["mapped"] >= 40
    assert det.steps.last == "mapped"
    (a0, b0), (a1, b1) = true_map(0), true_map(len(drift.frames) - 1)
    gain, offset = a1 / a0, b1 - a1 / a0 * b0  # the last frame against the first's levels
    assert det.steps.fit[0] == pytest.approx(gain, abs=0.015)
    assert det.steps.fit[1] == pytest.approx(offset, abs=1.0)
