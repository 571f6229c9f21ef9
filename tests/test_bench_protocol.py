"""The evaluation protocol's command (issue 22): seeds already in the cache are not run again
(a stopped run goes on where it stopped), and runs at two frame rates pool into one table."""

from __future__ import annotations

import json

from benchmarks import bench_protocol
from vigil.sim.protocol import AlertEvent, TrueCrossing, score_events

T0 = 1_780_304_400.0  # the demo's start (02:00 local, 2026-06-01 in Arizona)


def _seed_result(seed: int, alerted: bool) -> dict:
    """A seed's cached result as run_seed writes it, scored by the protocol's own function."""
    crossings = [TrueCrossing("x1", T0 + 100, 0.0, 0.0, group_id="g1")]
    events = [AlertEvent("A1", "T1", T0 + 130, 10.0, 0.0, T0 + 100)] if alerted else []
    r = score_events(crossings, events, border_km=20.0, duration_s=900.0, start_time=T0)
    misses = [] if alerted else [{"reason": "not detected", "time": T0 + 100, "to_end_s": 800}]
    diagnosis = {"misses": misses, "false": [], "uncovered": 0, "uncovered_alerted": 0}
    return {**r, "animals": {}, "lenient": [int(alerted), 1, 0], "diagnosis": diagnosis,
            "seed": seed, "wall_s": 1.0}  # fmt: skip


def test_cached_seeds_are_not_run_again_and_rates_pool(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "runs.json"
    argv = ["--seeds", "2", "--hours", "0.25", "--rate-scale", "40", "--start",
            "2026-06-01T09:00:00Z", "--perturbations", "field", "--cache", str(cache),
            "--warmup", "0", "--tail", "0"]  # fmt: skip
    args = bench_protocol.argparse.Namespace(
        hours=0.25, fps=10.0, rate_scale=40.0, perturbations="field", without=[]
    )
    ten, two = bench_protocol.run_key(args, T0), bench_protocol.run_key(args, T0, 2.0)
    runs = {ten: {"50001": _seed_result(50001, True)}, two: {"50002": _seed_result(50002, False)}}
    bench_protocol.save_cache(cache, runs)

    def no_run(*a, **k):
        raise AssertionError("a cached seed was run again")

    monkeypatch.setattr(bench_protocol, "run_seed", no_run)
    out = bench_protocol.main([*argv, "--fps", "10", "--pool-fps", "2"])
    assert (out["alerted"], out["crossings"], out["seeds"]) == (1, 2, [50001, 50002])
    assert out["latency_p50_s"] == 30.0
    text = capsys.readouterr().out
    assert "10 fps (1 seed), 2 fps (1 seed)" in text and "[0.095, 0.905]" in text
    assert "1  not detected" in text
    # table only: a seed not cached is left out, not run
    out = bench_protocol.main([*argv, "--fps", "10", "--table-only"])
    assert out["seeds"] == [50001]
    assert json.loads(cache.read_text())[ten]["50001"]["seed"] == 50001


def test_the_field_camera_deployment_changes_the_blur_and_the_class_tables_only() -> None:
    from benchmarks.protocol_deployment import FIELD_PSF_SIGMA_PX, field_camera_deployment
    from vigil.config import load_default

    shipped, field = load_default(), field_camera_deployment()
    assert field.config.detection.psf_sigma_px == FIELD_PSF_SIGMA_PX
    assert all(
        field.detection_for(t.id).psf_sigma_px == FIELD_PSF_SIGMA_PX for t in field.site.towers
    )
    assert shipped.config.detection.psf_sigma_px in (None, 0.0)
    assert field.class_model.camera != shipped.class_model.camera
    same = ("sector", "towers", "alerts", "tracker", "service")
    assert all(getattr(field.config, k) == getattr(shipped.config, k) for k in same)
