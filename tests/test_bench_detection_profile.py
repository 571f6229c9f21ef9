"""The per-stage profile of issue 24's pair runs on a small video and leaves the kernels as
they were (its wrappers are undone)."""

from __future__ import annotations

from benchmarks.bench_detection_profile import profile
from vigil.detection import detector, kernels
from vigil.detection import tbd_kernels as tk


def test_profile_times_the_stages_and_restores_the_kernels() -> None:
    before = (kernels.consensus_segment, tk.velocity_filter, detector.refine_centroids)
    ms = profile(96, 64, frames=12, warmup=20)
    assert (kernels.consensus_segment, tk.velocity_filter, detector.refine_centroids) == before
    assert ms["MOG2"] > 0 and ms["pair"] > 0
    # the stage ran its blocks (velocity filter) and its parts are inside the whole
    assert 0 < ms["tbd_kernels.velocity_filter"] <= ms["stage block"] <= ms["stage"]
    assert 0 < ms["stage alignment"] <= ms["stage block"]
    assert 0 < ms["kernels.consensus_segment"] < ms["detector"] < ms["pair"]
