"""The simulator seeds that may tune the chain, and the seeds that may only evaluate it (issue 22).

Every seed that has been replayed to choose a constant is a **calibration** seed: figures on
it say how well the chain was fitted, not how well it works. Evaluation figures (the
protocol, :mod:`vigil.sim.protocol`; ``python -m benchmarks protocol``) come only from
**evaluation** seeds, which no setting has been chosen on. The two sets are disjoint
(:func:`check_evaluation` refuses a calibration seed), and a seed moves from evaluation to
calibration the day someone tunes on it: add it to :data:`CALIBRATION_SEEDS` here and draw
fresh evaluation seeds.

Where the calibration seeds come from (issue 22):

- 7 and 11: the tower camera class table and the track-speed table were fitted on them
  (``python -m benchmarks.bench_demo --calibrate --seeds 7 11``); they are also the
  detector's acceptance seeds;
- 1, 2 and 5: fusion and alert settings were tuned round after round by replaying them (1 is
  the demo's headline day, 2 the evening, 5 the demo-quality test, ``tests/test_demo_quality.py``);
- 0: the default seed of most simulator tests and benchmarks, looked at while developing;
- 40001-40024: recorded to fit the field camera's class tables on more than six seeds (the
  far range cells rested on about five tracks a class): fits on them were chosen between on
  calibration folds (``python -m benchmarks.class_folds --pool``; ``python -m benchmarks
  calibrate_classes --class-fit-seeds``);
- 1001 and 1002 are the pointing benchmark's evaluation seeds and 100-103, 201-220 the
  trajectory and tracking benchmarks' (other components): the chain's evaluation seeds
  below avoid them too, so that no figure quoted elsewhere shares a seed with this one.
"""

from __future__ import annotations

#: Seeds for fitting the field camera's class tables, besides the six below (a block nothing
#: else uses; see the module docstring).
CLASS_FIT_SEEDS: tuple[int, ...] = tuple(range(40_001, 40_025))

#: Seeds that tuned something in the chain (see the module docstring). Never evaluate on them.
CALIBRATION_SEEDS: frozenset[int] = frozenset({0, 1, 2, 5, 7, 11, *CLASS_FIT_SEEDS})

#: Seeds other benchmarks evaluate on (kept out of the chain's evaluation seeds).
OTHER_BENCHMARK_SEEDS: frozenset[int] = frozenset({1001, 1002, *range(100, 104), *range(201, 221)})

#: The chain's evaluation seeds, in the order the protocol takes them (``--seeds N`` runs the
#: first N). Drawn as a block nothing else uses; 500 of them.
EVALUATION_SEEDS: tuple[int, ...] = tuple(range(50_001, 50_501))


class SeedError(ValueError):
    """A calibration seed was offered for evaluation."""


def check_evaluation(seeds: list[int] | tuple[int, ...]) -> list[int]:
    """The seeds, if none was used for calibration; else :class:`SeedError` naming them."""
    bad = sorted(set(seeds) & CALIBRATION_SEEDS)
    if bad:
        raise SeedError(f"seeds {bad} were used for calibration; evaluate on EVALUATION_SEEDS")
    return list(seeds)


def evaluation_seeds(n: int) -> list[int]:
    """The first ``n`` evaluation seeds (``1 <= n <= len(EVALUATION_SEEDS)``)."""
    if not 1 <= n <= len(EVALUATION_SEEDS):
        raise ValueError(f"between 1 and {len(EVALUATION_SEEDS)} evaluation seeds, not {n}")
    return list(EVALUATION_SEEDS[:n])
