"""Issue 22: the perturbations of bodies, of the aircraft's classifier and of the ground sensors
change the world's movers and messages as their settings say."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from vigil.config import load_default
from vigil.sim import SimSettings, World
from vigil.sim.movers import BODY, MoverStates
from vigil.sim.perturbations import Bodies, Perturbations, UasClassifier, UgsNuisance
from vigil.sim.perturbations_bodies import (
    CALF_SIZE,
    CROUCH_HEIGHT,
    LOAD_HEIGHT_M,
    LYING_HEIGHT_M,
    BodyShaper,
)
from vigil.sim.uas import Orbiter
from vigil.sim.ugs import SensorField

START = SimSettings().start_time
NIGHT = START + 6 * 3600  # 23:00 in Arizona


@pytest.fixture(scope="module")
def site():
    return load_default().site


def wilson(k: int, n: int, z: float = 3.0) -> tuple[float, float]:
    """Wilson interval for k of n (z = 3: a test that fails one time in ~370 by chance)."""
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def rows_for(kind: str, n: int, moving: bool) -> np.ndarray:
    w, h, c = BODY[kind]
    a = np.zeros((n, 7))
    a[:, 2] = 1.2 if moving else 0.0
    a[:, 4], a[:, 5], a[:, 6] = w, h, c
    return a


def test_bodies_vary_in_size_and_pose_as_set():
    cfg = Bodies(size_sd=0.1, crouch_probability=0.3, load_probability=0.4,
                 lying_probability=0.5, calf_probability=0.2)  # fmt: skip
    shaper = BodyShaper(cfg, seed=3)
    n = 2000
    ids = [f"p{i}" for i in range(n)]
    walking = rows_for("person", n, True)
    shaper.apply(["person"] * n, ids, walking)
    stopped = rows_for("person", n, False)
    shaper.apply(["person"] * n, ids, stopped)
    size = np.array([shaper.draws(i, "person")[0] for i in ids])
    assert np.log(size).std() == pytest.approx(0.1, rel=0.1)
    loaded = np.array([shaper.draws(i, "person")[2] for i in ids])
    lo, hi = wilson(int(loaded.sum()), n)
    assert lo <= 0.4 <= hi
    # walking: nominal times size, plus the load
    want_h = 1.7 * size + np.where(loaded, LOAD_HEIGHT_M, 0.0)
    assert np.allclose(walking[:, 5], want_h)
    # stopped: the crouchers are 0.6 as tall as when walking, the rest unchanged
    ratio = stopped[:, 5] / walking[:, 5]
    crouched = np.isclose(ratio, CROUCH_HEIGHT)
    assert np.all(crouched | np.isclose(ratio, 1.0))
    lo, hi = wilson(int(crouched.sum()), n)
    assert lo <= 0.3 <= hi
    # cattle: calves at 0.6 size, lying ones at most 0.8 m tall when stopped
    cows = [f"c{i}" for i in range(n)]
    walk_c = rows_for("cattle", n, True)
    shaper.apply(["cattle"] * n, cows, walk_c)
    rest_c = rows_for("cattle", n, False)
    shaper.apply(["cattle"] * n, cows, rest_c)
    calf = np.array([shaper.draws(i, "cattle")[2] for i in cows])
    size_c = np.array([shaper.draws(i, "cattle")[0] for i in cows])
    assert np.allclose(walk_c[:, 5], 1.4 * size_c * np.where(calf, CALF_SIZE, 1.0))
    lying = rest_c[:, 5] < walk_c[:, 5] - 1e-9
    assert np.all(rest_c[lying, 5] <= LYING_HEIGHT_M + 1e-9)
    for k, p in ((int(calf.sum()), 0.2), (int(lying.sum()), 0.5)):
        lo, hi = wilson(k, n)
        assert lo <= p <= hi
    # the draws are by id: the same mover keeps its body; another seed draws others
    again = BodyShaper(cfg, seed=3)
    assert again.draws("p7", "person") == shaper.draws("p7", "person")
    other = BodyShaper(cfg, seed=4)
    assert [other.draws(i, "person") for i in ids[:50]] != [
        shaper.draws(i, "person") for i in ids[:50]
    ]


def test_world_bodies_change_only_sizes(site):
    st = SimSettings(cameras="off", ugs=False, uas=False, road_traffic=False)
    plain = World(site, st, 7)
    shaped = World(site, st, 7, perturbations=Perturbations().only("bodies"))
    t = NIGHT
    a, b = plain.states(t), shaped.states(t)
    assert a.ids == b.ids and len(a) > 10
    assert np.array_equal(a.x, b.x) and np.array_equal(a.contrast_dn, b.contrast_dn)
    assert not np.array_equal(a.height_m, b.height_m)
    friendly = [i for i, k in enumerate(a.kinds) if k in ("agent", "patrol_vehicle", "atv")]
    assert np.array_equal(a.height_m[friendly], b.height_m[friendly])


def states_inside(orbiter: Orbiter, t: float, n: int, cls: str) -> MoverStates:
    _, fp = orbiter.view(t)
    c = fp.centroid
    rng = np.random.default_rng(0)
    x = c.x + rng.uniform(-100, 100, n)
    y = c.y + rng.uniform(-100, 100, n)
    kind = {"person": "person", "animal": "cattle", "vehicle": "car"}[cls]
    w, h, con = BODY[kind]
    z = np.zeros(n)
    return MoverStates(
        t, [f"m{i}" for i in range(n)], [kind] * n, [cls] * n, ["g"] * n, x, y, z, z,
        z + w, z + h, z + con,
    )  # fmt: skip


@pytest.mark.parametrize("cls", ["person", "animal"])
def test_uas_classifier_follows_its_confusion_matrix(site, cls):
    clf = UasClassifier(false_per_hour=0.0)
    st = SimSettings()
    orb = Orbiter(site.aircraft[0], 0, site.frame(), st, 1, None, clf)
    plain = Orbiter(site.aircraft[0], 0, site.frame(), st, 1, None, None)
    guesses: Counter = Counter()
    plain_guesses: Counter = Counter()
    for k in range(20):
        t = START + k
        s = states_inside(orb, t, 60, cls)
        guesses.update(d.message.class_guess for d in orb.detect(t, s))
        if k < 5:
            plain_guesses.update(d.message.class_guess for d in plain.detect(t, s))
    n = sum(guesses.values())
    assert n > 800
    for guess, p in clf.confusion[cls].items():
        lo, hi = wilson(guesses[guess], n)
        assert lo <= p <= hi, (guess, guesses[guess], n, p)
    # off: the guess is the truth or "unknown", never another class
    assert set(plain_guesses) <= {cls, "unknown"}


def test_uas_false_alarms_at_the_set_rate(site):
    clf = UasClassifier(false_per_hour=1800.0)  # 0.5 per 1 s detection period
    st = SimSettings()
    orb = Orbiter(site.aircraft[0], 0, site.frame(), st, 2, None, clf)
    empty = states_inside(orb, START, 0, "person")
    dets = [d for k in range(200) for d in orb.detect(START + k, empty)]
    assert all(d.mover_id == "" for d in dets)
    expected = 200 * 0.5
    assert abs(len(dets) - expected) < 4 * math.sqrt(expected)
    assert {d.message.class_guess for d in dets} <= set(clf.false_guess)
    plain = Orbiter(site.aircraft[0], 0, site.frame(), st, 2, None, None)
    assert not [d for k in range(20) for d in plain.detect(START + k, empty)]


def test_ugs_nuisance_alarms_from_small_animals_and_far_vehicles(site):
    st = SimSettings(wind_nuisance_per_hour=0.0, ugs_holdoff_s=0.0, malformed_rate=0.0,
                     skewed_rate=0.0)  # fmt: skip
    nz = UgsNuisance(small_animal_per_hour=60.0, far_vehicle_per_hour=40.0)
    field = SensorField(site.sensors, site.frame(), st, 4, None, nz)
    plain = SensorField(site.sensors, site.frame(), st, 4, None, None)
    empty = MoverStates(0.0, [], [], [], [], *(np.zeros(0) for _ in range(7)))
    ticks = 300
    causes: Counter = Counter()
    for k in range(ticks):
        t = NIGHT + k
        for m in field.step(t, empty, 23.0):
            if m.cause:
                causes[(m.message.modality, m.cause[0])] += 1
        if k < 30:
            assert not [m for m in plain.step(t, empty, 23.0) if m.cause]
    mods = Counter(s.modality for s in site.sensors)
    hours = ticks / 3600.0
    # night: small animals at twice their rate, on seismic and infrared sensors only
    for (mod, cause), rate in {
        ("seismic", "small_animal"): 120.0, ("pir", "small_animal"): 120.0,
        ("seismic", "far_vehicle"): 40.0, ("magnetic", "far_vehicle"): 40.0,
    }.items():  # fmt: skip
        expected = mods[mod] * rate * hours
        assert abs(causes[(mod, cause)] - expected) < 4 * math.sqrt(expected) + 2, (mod, cause)
    assert causes[("magnetic", "small_animal")] == 0
    assert causes[("pir", "far_vehicle")] == 0
