"""The class-table fit's options for a detector other than the base tables' (issue 22): a
camera cell seen little leans on the fit's own neighbouring ranges (``backoff_bands``), and
speed rows read at full strength (``speed_temper``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.tracks import label_fit as lf
from vigil.tracks.calibration import ClassModel, calibrate_class_model
from vigil.tracks.classes import table_likelihood

#: The cell under test: an "animal" guess of confidence 0.32-0.4 at 1250-1750 m.
CELL = ("animal", 0.32, 0.4, 1250.0, 1750.0)
#: What the base tables (another detector's) say of that cell: mostly people.
BASE_ROW = (*CELL, 0.3, 0.001, 0.01)


def labelled(far_animals: int, far_people: int) -> lf.Joined:
    """Labelled detections: near (750-1250 m) animals guessed "animal" at 0.35 and people
    "person" at 0.35, 20 tracks of 30 each; and a few far (1250-1750 m) ones, animals and
    people both guessed "animal" at 0.35 (one track each)."""
    j = lf.Joined()

    def add(tid: str, truth: str, guess: str, r: float) -> None:
        j.track_id.append(tid)
        j.truth.append(truth)
        j.guess.append(guess)
        j.confidence.append(0.35)
        j.range_m.append(r)

    for k in range(20):
        for _ in range(30):
            add(f"A{k}", "animal", "animal", 1000.0)
            add(f"P{k}", "person", "person", 1000.0)
    for _ in range(far_animals):
        add("FA", "animal", "animal", 1500.0)
    for _ in range(far_people):
        add("FP", "person", "animal", 1500.0)
    return j


def cell_ratio(rows, guess: str = "animal", conf: float = 0.35, range_m: float = 1500.0) -> float:
    """``ln P(animal) / P(person)`` that a table gives a guess."""
    lik = table_likelihood(rows, guess, conf, range_m)
    return math.log(lik[2] / lik[0])


@pytest.mark.parametrize("bands", [-1, 1], ids=["base", "neighbours"])
def test_a_far_cell_seen_little_leans_on_the_neighbouring_range_or_the_base(bands: int) -> None:
    """A far cell with 12 animal and 12 person detections (no evidence of its own either way):
    backed off to the base tables it reads as people (the base says so); to the fit's own
    neighbouring range, where that guess came from animals, it reads as animals."""
    base = ClassModel(camera=(BASE_ROW,))
    rows = calibrate_class_model(
        *(lambda j: (j.guess, j.confidence, j.range_m, j.truth))(labelled(12, 12)),
        min_count=20,
        base=base.camera,
        backoff_bands=bands,
    )
    ratio = cell_ratio(rows)
    if bands < 0:
        assert ratio < -0.5, rows
    else:
        assert ratio > 1.0, rows


def test_the_neighbouring_ranges_do_not_outvote_a_cell_seen_often() -> None:
    """Far off, where 300 people guessed "animal" and 300 animals "person" (the other way
    round from the neighbouring range), the cell reads as people."""
    j = labelled(0, 300)
    for _ in range(300):
        j.track_id.append("FA")
        j.truth.append("animal")
        j.guess.append("person")
        j.confidence.append(0.35)
        j.range_m.append(1500.0)
    rows = calibrate_class_model(
        j.guess, j.confidence, j.range_m, j.truth, min_count=20, backoff_bands=1
    )
    assert cell_ratio(rows) < -1.5
    assert cell_ratio(rows, guess="person") > 1.5


def test_speed_rows_read_at_a_power_keep_their_order_and_raise_their_ratios() -> None:
    """``speed_temper``: each speed row's ratio between classes is the fitted one to the
    power (to rounding), and the table still reads back."""
    rng = np.random.default_rng(1)
    tids = [f"P{k % 10}" for k in range(300)] + [f"A{k % 10}" for k in range(300)]
    speeds = list(rng.uniform(0.8, 1.6, 300)) + list(rng.uniform(0.0, 0.9, 300))
    truth = ["person"] * 300 + ["animal"] * 300
    j = lf.Joined()
    base = ClassModel()
    plain = lf.fit_tables(j, (tids, speeds, truth), base, min_speeds=10)
    strong = lf.fit_tables(j, (tids, speeds, truth), base, min_speeds=10, speed_temper=3.0)
    assert [r[:2] for r in plain.speed] == [r[:2] for r in strong.speed]
    for a, b in zip(plain.speed, strong.speed, strict=True):
        r_plain = math.log(a[2] / a[4])  # person / animal
        r_strong = math.log(max(b[2], 1e-6) / max(b[4], 1e-6))
        if abs(3 * r_plain) < 10:  # away from the floor
            assert r_strong == pytest.approx(3 * r_plain, abs=0.01)
        assert max(b[2:]) == pytest.approx(1.0)
