"""The evaluation protocols (vigil.sim.eval_*): pixel counts, detection matching, and their home.

The slow end-to-end runs are ``tests/test_detection_sim.py`` (simulated towers) and
``tests/test_detection_cdnet.py`` (CDnet 2014); these check the scoring rules by hand.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vigil.ingest.schema import CameraDetection
from vigil.sim.eval_detection_score import DetectorScorer, FrameTruth, peak_dn
from vigil.sim.eval_masks import Counts, detector_masks
from vigil.sim.thermal import ObjectTruth

TESTS = Path(__file__).resolve().parent


def _imports_benchmarks(path: Path) -> list[int]:
    """Lines of ``path`` that import the unpackaged ``benchmarks`` folder."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(n == "benchmarks" or n.startswith("benchmarks.") for n in names):
            lines.append(node.lineno)
    return lines


def test_only_benchmark_tests_import_benchmarks() -> None:
    # Evaluation protocols are part of the package (vigil.sim); a test that needs one imports
    # it from there, and only the tests of a benchmark itself import benchmarks/.
    offenders = {
        p.name: lines
        for p in sorted(TESTS.glob("*.py"))
        if not p.name.startswith("test_bench_") and (lines := _imports_benchmarks(p))
    }
    assert not offenders, f"import benchmarks/ outside tests/test_bench_*.py: {offenders}"
    # The scan does see an import of benchmarks where there is one.
    assert _imports_benchmarks(TESTS / "test_bench_replay.py")


def test_pixel_counts_follow_the_cdnet_labels() -> None:
    # Ground truth: 255 motion, 0 and 50 background, 85 outside the ROI and 170 unknown are
    # not scored; the ROI's last column is not scored either.
    truth = np.array([[255, 255, 0, 255], [50, 0, 85, 170], [255, 0, 0, 0]], np.uint8)
    mask = np.array([[255, 0, 255, 255], [255, 0, 255, 255], [0, 0, 0, 0]], np.uint8)
    roi = np.ones(truth.shape, bool)
    roi[:, 3] = False
    c = Counts()
    c.add(mask, truth, roi)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 2, 2, 3)
    assert c.precision == pytest.approx(1 / 3) and c.recall == pytest.approx(1 / 3)
    assert c.f1 == pytest.approx(1 / 3)
    assert Counts().f1 == 0.0


def test_detector_masks_make_the_detector_once_and_feed_seconds() -> None:
    made: list[tuple[int, int]] = []
    fed: list[float] = []

    class Fake:
        def process(self, frame, time_s):
            fed.append(time_s)
            return SimpleNamespace(mask=frame > 0)

    def make(shape):
        made.append(shape)
        return Fake()

    step = detector_masks(make)
    for _ in range(3):
        step(np.zeros((4, 6), np.uint8))
    assert made == [(4, 6)] and fed == [1.0, 2.0, 3.0]


def test_peak_is_the_contrast_times_the_most_covered_pixel() -> None:
    def body(box):
        return ObjectTruth("p", "person", "person", "g", 0.0, 0.0, 2000.0, box, 30.0)

    assert peak_dn(body((10.0, 5.0, 11.0, 7.0)), 48, 64) == pytest.approx(30.0)
    assert peak_dn(body((10.2, 5.0, 10.5, 6.5)), 48, 64) == pytest.approx(9.0)  # 0.3 px wide
    assert peak_dn(body((70.0, 5.0, 71.0, 6.0)), 48, 64) == 0.0  # outside the image


@dataclass
class _Result:
    shift_px: tuple[float, float]
    detections: list[CameraDetection] = field(default_factory=list)
    detection_objects: list[int] = field(default_factory=list)


def _detection(box, cls="person", range_m=1000.0) -> CameraDetection:
    return CameraDetection(
        camera="t01", time=0.0, box=box, lat=0.0, lon=0.0, cov=(1.0, 0.0, 0.0, 1.0),
        class_guess=cls, range_m=range_m,
    )  # fmt: skip


def test_matching_in_the_registered_image_and_false_objects_counted_once() -> None:
    # The detector estimates a shift of (3, 0) px: a body seen at u = 20..21 in the frame lies
    # at u = 17..18 in the registered image, where detections are.
    results = iter(
        [
            _Result((3.0, 0.0), [_detection((16.0, 10.0, 19.0, 13.0))], [1]),
            _Result((3.0, 0.0), [_detection((40.0, 10.0, 42.0, 12.0), "vehicle")], [2]),
            _Result((3.0, 0.0), [_detection((40.0, 10.0, 42.0, 12.0), "vehicle")], [2]),
        ]
    )
    detector = SimpleNamespace(process=lambda image, t, frame: next(results))
    world = SimpleNamespace(views={"t01": SimpleNamespace(camera=None)}, frame=None)
    scorer = DetectorScorer(lambda tower, camera, frame: detector, world, match_px=2.0)
    person = ObjectTruth("m1", "person", "person", "g", 0.0, 0.0, 1000.0, (20, 10, 21, 12), 30.0)
    one = np.array([0])
    yes = np.array([True])
    truth = FrameTruth([person], one, yes, yes, yes, ~yes, np.array([30.0]), (-3.0, 0.0))
    item = SimpleNamespace(tower="t01", image=None, time=0.0, frame=0)
    for _ in range(3):
        scorer.process(item, truth)
    s = scorer.score
    assert (s.matched_outputs, s.person_frames, s.person_frames_matched) == (1, 3, 1)
    assert scorer.detected == {"t01/m1"}
    assert s.shift_rms_px == 0.0  # the estimate undoes the true shake exactly
    assert (s.false_outputs, len(scorer.false_objects)) == (2, 1)  # one object, two outputs
    assert s.confusion == {("person", "person"): 1} and s.class_accuracy == 1.0
