"""Issue 22: each camera perturbation changes the rendered frames as its settings say.

Tiny frames of one tower camera (its real lens, image cut to a few dozen pixels), bodies put
where the test wants them, the other nuisances off unless a test needs them.
"""

from __future__ import annotations

import math
from dataclasses import replace

import msgspec
import numpy as np
import pytest

from vigil.config import load_default
from vigil.geo.site import tower_camera
from vigil.sim import SimSettings
from vigil.sim.movers import MoverStates
from vigil.sim.perturbations import (
    Agc,
    Attenuation,
    Blur,
    Brush,
    Crossover,
    FixedPattern,
    FlatField,
    Perturbations,
)
from vigil.sim.perturbations_render import crossover_hours
from vigil.sim.thermal import Terrain, TowerView, day_fraction

T0 = SimSettings().start_time  # 2026-06-01
CALM = dict(sensor_noise=False, gain_drift=False, shimmer=False, vegetation=False, shake=False)
NIGHT = 1.0  # local hour
OFF = Perturbations.none()


@pytest.fixture(scope="module")
def site():
    return load_default().site


def view(site, pert: Perturbations, width=64, height=48, seed=5, **settings) -> TowerView:
    cam = tower_camera(site.towers[0], site.frame())
    cam = replace(cam, width=width, height=height)
    st = SimSettings(**{**CALM, **settings})
    return TowerView("t", cam, st, seed, 0, Terrain(seed), None, pert)


def bodies(
    v: TowerView,
    pix: list[tuple[float, float]],
    w_px: list[float],
    h_px: list[float],
    contrast: float | list[float] = 200.0,
    kinds: list[str] | None = None,
) -> MoverStates:
    """Bodies standing at image points ``(u, v)`` with sizes in pixels at their range."""
    cam = v.camera
    u = np.array([p[0] for p in pix])
    vv = np.array([p[1] for p in pix])
    x, y, hit = cam.to_ground(u, vv)
    assert hit.all()
    _, _, depth = cam.project(x, y, 0.0)
    n = len(pix)
    con = np.broadcast_to(np.asarray(contrast, float), (n,)).copy()
    kinds = kinds or ["person"] * n
    return MoverStates(
        0.0, [f"m{i}" for i in range(n)], kinds, ["person"] * n, [f"g{i}" for i in range(n)],
        x, y, np.zeros(n), np.zeros(n),
        np.asarray(w_px) * depth / cam.focal_px, np.asarray(h_px) * depth / cam.focal_px, con,
    )  # fmt: skip


def render(v: TowerView, states: MoverStates, t: float = T0, i: int = 0, hour: float = NIGHT):
    _, img, objs = v.frame(t, i, hour, states, True)
    return img.astype(np.float64), objs


def empty(v: TowerView) -> MoverStates:
    return bodies(v, [], [], [])


def test_none_is_every_family_off_and_field_is_the_default():
    assert not Perturbations.none().any_on
    assert Perturbations.field() == Perturbations()
    assert all(getattr(Perturbations.field(), n).on for n in Perturbations.__struct_fields__)
    assert Perturbations.field().blur.sigma_px == 0.8
    one = Perturbations.field().only("blur")
    assert one.blur.on and not one.agc.on
    with pytest.raises(ValueError, match="unknown perturbation"):
        Perturbations.field().only("fog")
    with pytest.raises(msgspec.ValidationError, match="sigma_px"):
        msgspec.convert({"blur": {"sigma_px": -1}}, Perturbations)


@pytest.mark.parametrize("sigma", [0.8, 1.5])
def test_blur_gives_a_point_body_the_psf_sigma(site, sigma):
    """Across a body 0.2 px wide and 12 px tall, the column profile's spread grows by the PSF's
    variance (variances add under convolution): sqrt(var_blur - var_sharp) = sigma +- 10 %."""
    spreads = {}
    for on in (False, True):
        p = Perturbations(blur=Blur(sigma_px=sigma)).only("blur") if on else OFF
        v = view(site, p)
        st = bodies(v, [(32.3, 40.0)], [0.2], [12.0], 250.0)
        with_body, objs = render(v, st)
        without, _ = render(v, empty(v))
        assert len(objs) == 1
        prof = (with_body - without).sum(axis=0)
        cols = np.arange(prof.size) + 0.5
        mean = (prof * cols).sum() / prof.sum()
        spreads[on] = (prof * (cols - mean) ** 2).sum() / prof.sum()
    measured = math.sqrt(spreads[True] - spreads[False])
    assert measured == pytest.approx(sigma, rel=0.10)


def test_column_noise_has_the_set_sigma(site):
    fp = FixedPattern(pixel_dn=0.0, column_dn=2.0, column_temporal_dn=0.0)
    on = view(site, Perturbations(fixed_pattern=fp).only("fixed_pattern"), width=256)
    off = view(site, OFF, width=256)
    a, _ = render(on, empty(on))
    b, _ = render(off, empty(off))
    col_means = (a - b).mean(axis=0)
    assert col_means.std() == pytest.approx(2.0, rel=0.2)
    # fixed: the next frame has the same columns
    a2, _ = render(on, empty(on), T0 + 0.1, 1)
    assert np.array_equal(a, a2)
    # temporal column noise: a new pattern each frame, sqrt(2) sigma between two frames
    fp_t = FixedPattern(pixel_dn=0.0, column_dn=0.0, column_temporal_dn=1.5)
    tv = view(site, Perturbations(fixed_pattern=fp_t).only("fixed_pattern"), width=256)
    f1, _ = render(tv, empty(tv), T0, 0)
    f2, _ = render(tv, empty(tv), T0 + 0.1, 1)
    assert (f1 - f2).mean(axis=0).std() == pytest.approx(1.5 * math.sqrt(2), rel=0.2)
    # per-pixel pattern: within a column the residual has the set sigma
    fp_p = FixedPattern(pixel_dn=3.0, column_dn=0.0, column_temporal_dn=0.0)
    pv = view(site, Perturbations(fixed_pattern=fp_p).only("fixed_pattern"), width=128)
    ref = view(site, OFF, width=128)
    d = render(pv, empty(pv))[0] - render(ref, empty(ref))[0]
    assert d.std() == pytest.approx(3.0, rel=0.1)


def test_flat_field_freezes_for_the_set_time_then_the_level_jumps(site):
    ff = FlatField(mean_interval_s=4.0, freeze_s=0.5, jump_dn=6.0)
    v = view(site, Perturbations(flat_field=ff).only("flat_field"), sensor_noise=True)
    fps, n = 10.0, 200
    frames = [render(v, empty(v), T0 + i / fps, i)[0] for i in range(n)]
    times = T0 + np.arange(n) / fps
    events = v.perturber.ffc_times(T0 + 1.0, T0 + n / fps - 1.0)
    assert len(events) >= 2
    checked = 0
    for t0 in events:
        k0 = int(np.searchsorted(times, t0))  # first frame at or after the correction
        k1 = int(np.searchsorted(times, t0 + ff.freeze_s))  # first after the freeze
        if any(0 < abs(e - t0) < ff.freeze_s + 0.3 for e in events) or k0 == 0:
            continue  # overlapping corrections: skip
        frozen = [np.array_equal(frames[k], frames[k0 - 1]) for k in range(k0, k1)]
        assert all(frozen) and k1 - k0 == pytest.approx(ff.freeze_s * fps, abs=1)
        assert not np.array_equal(frames[k1], frames[k0 - 1])  # live again (noise differs)
        _, before = v.perturber.ffc_state(t0 - 1e-3)
        _, after = v.perturber.ffc_state(t0 + ff.freeze_s)
        jump = frames[k1].mean() - frames[k0 - 1].mean()
        assert jump == pytest.approx(after - before, abs=0.6)
        checked += 1
    assert checked >= 1
    # the level jumps have the set size over many corrections
    levels = [v.perturber.ffc_state(e + 1.0)[1] for e in v.perturber.ffc_times(T0, T0 + 7200)]
    assert np.std(levels) == pytest.approx(6.0, rel=0.25)


def test_agc_steps_when_a_hot_object_enters(site):
    a = Agc(trigger_dn=68.0, trigger_px=20.0, step=0.25, tau_s=0.5)
    v = view(site, Perturbations(agc=a).only("agc"))
    ref = view(site, OFF)
    far = np.zeros((48, 64), bool)
    far[:, :20] = True  # the left third: no body drawn there
    base, _ = render(ref, empty(ref))
    walker = bodies(v, [(50.0, 40.0)], [3.0], [10.0], 60.0)
    car = bodies(v, [(50.0, 40.0)], [9.0], [4.0], 80.0, ["car"])
    slopes = []
    for i, st in enumerate([walker] * 10 + [car] * 30):
        img, _ = render(v, st, T0 + i / 10.0, i)
        x = base[far] - v.bg_mean
        slopes.append(np.polyfit(x, img[far] - v.bg_mean, 1)[0])
    assert slopes[9] == pytest.approx(1.0, abs=0.02)  # a walker does not move the AGC
    assert slopes[-1] == pytest.approx(1 / 1.25, abs=0.02)  # the car: gain 1 / (1 + step)
    # approached with the time constant: after 0.5 s, 63 % of the way
    assert 1 - slopes[14] == pytest.approx((1 - 0.8) * (1 - math.exp(-1.0)), abs=0.03)


def test_crossover_flips_contrast_at_the_set_hour_by_season(site):
    c = Crossover(morning_hour=9.0, winter_delay_h=1.5, negative_summer=0.4)
    # every body drawn, however faint (the crossover takes contrast through zero)
    v = view(site, Perturbations(crossover=c).only("crossover"), visible_contrast_dn=0.0)
    st = bodies(v, [(32.0, 40.0)], [4.0], [10.0], 60.0)
    july = T0 + 44 * 86400  # 2026-07-15
    jan = T0 - 137 * 86400  # 2026-01-15
    assert crossover_hours(c, july)[0] == pytest.approx(9.0, abs=0.01)
    assert crossover_hours(c, jan)[0] == pytest.approx(10.5, abs=0.01)
    for t in (july, jan):
        h_c, h_e = crossover_hours(c, t)
        for hour, sign in ((h_c - 0.05, 1), (h_c + 0.05, -1), (h_e - 0.05, -1), (h_e + 0.05, 1)):
            _, _, objs = v.frame(t, 0, hour, st, False)
            assert np.sign(objs[0].contrast_dn) == sign, (t, hour)
    # night: unchanged; afternoon peak: -0.4 of it in July, rendered colder than the ground
    _, _, night = v.frame(july, 0, 1.0, st, False)
    assert night[0].contrast_dn == pytest.approx(60.0)
    img, objs = render(v, st, july, 0, 13.5)
    assert objs[0].contrast_dn == pytest.approx(-0.4 * 60.0 * day_fraction(13.5), rel=1e-6)
    ground, _ = render(v, empty(v), july, 1, 13.5)
    assert (img - ground)[32:38, 31:33].mean() < -15.0


def test_attenuation_scales_contrast_by_range(site):
    v = view(site, Perturbations(attenuation=Attenuation(extinction_per_km=0.5)).only(
        "attenuation"))  # fmt: skip
    ref = view(site, OFF)
    st = bodies(v, [(20.0, 30.0), (40.0, 46.0)], [3.0, 3.0], [6.0, 6.0], 60.0)
    _, _, got = v.frame(T0, 0, NIGHT, st, False)
    _, _, want = ref.frame(T0, 0, NIGHT, st, False)
    assert got[0].range_m > got[1].range_m + 100
    for g, w in zip(got, want, strict=True):
        assert g.contrast_dn / w.contrast_dn == pytest.approx(math.exp(-0.5 * g.range_m / 1000))


def test_brush_hides_the_lower_part_of_bodies_behind_bushes(site):
    b = Brush(height_m=0.8, look_m=2.0)
    v = view(site, Perturbations(brush=b).only("brush"), width=160, height=120)
    ref = view(site, OFF, width=160, height=120)
    cam = v.camera
    vv, uu = np.mgrid[60:120:3, 0:160:3]
    x, y, hit = cam.to_ground(uu.ravel() + 0.5, vv.ravel() + 0.5)
    _, bush, _ = v.terrain.ground(x, y)
    n = len(x)
    h = np.full(n, 1.7)
    h[::2] = 0.6  # coyote-sized bodies every other point
    st = MoverStates(
        0.0, [f"m{i}" for i in range(n)], ["person"] * n, ["person"] * n, ["g"] * n,
        x, y, np.zeros(n), np.zeros(n), np.full(n, 0.5), h, np.full(n, 200.0),
    )  # fmt: skip
    got = {o.mover_id: o for o in v.frame(T0, 0, NIGHT, st, False)[2]}
    want = {o.mover_id: o for o in ref.frame(T0, 0, NIGHT, st, False)[2]}
    on_bush = [i for i in range(n) if bush[i] > 0 and f"m{i}" in want]
    assert len(on_bush) >= 5
    for i in on_bush:
        mid = f"m{i}"
        if h[i] < 0.8:
            assert mid not in got  # wholly hidden
            continue
        g, w = got[mid].box, want[mid].box
        assert g[1] == pytest.approx(w[1])  # the head still shows
        assert (w[3] - g[3]) / (w[3] - w[1]) == pytest.approx(0.8 / 1.7)
    clear = [f"m{i}" for i in range(n) if f"m{i}" in got and got[f"m{i}"].box == want[
        f"m{i}"].box]  # fmt: skip
    hidden_share = 1 - len(clear) / len(want)
    assert 0.1 < hidden_share < 0.6  # bush cells are 18 % of the ground; a 2 m look widens it


def test_dust_devils_by_day_only_with_the_set_size_and_no_truth(site):
    from vigil.sim.perturbations import Dust

    d = Dust(per_hour=600.0, min_s=60.0, max_s=60.0, width_m=10.0, height_m=60.0,
             contrast_dn=8.0)  # fmt: skip
    v = view(site, Perturbations(dust=d).only("dust"), width=160, height=120)
    ref = view(site, OFF, width=160, height=120)
    st = bodies(v, [(80.0, 100.0)], [3.0], [8.0], 60.0)
    t = T0 + 1800.0
    night, objs_n = render(v, st, t, 0, 1.0)
    assert np.array_equal(night, render(ref, st, t, 0, 1.0)[0])  # none at night
    day, objs_d = render(v, st, t, 1, 15.0)
    diff = day - render(ref, st, t, 1, 15.0)[0]
    assert diff.min() >= 0 and diff.max() >= 3.0  # warm columns, nothing else
    assert [o.mover_id for o in objs_d] == ["m0"]  # no truth for dust
    # the rate: Poisson per tower-hour
    counts = [len(v.perturber.dust_events(k, v.camera)) for k in range(1000, 1100)]
    assert np.mean(counts) == pytest.approx(600.0, rel=0.02)
    # one devil 300 m out, mid-life: peak contrast and width as set
    cam = v.camera
    k = math.floor(t / 3600.0)
    x, y = cam.x + 300.0 * math.sin(math.radians(cam.pan_deg)), cam.y + 300.0 * math.cos(
        math.radians(cam.pan_deg))  # fmt: skip
    v.perturber._dust[k] = np.array([[t - 30.0, 60.0, x, y, 0.0, 0.0, 0.0]])
    v.perturber._dust[k - 1] = np.zeros((0, 7))
    acc = np.zeros((120, 160), np.float32)
    assert v.perturber.add_dust(acc, cam, t, 1.0) == 1
    assert acc.max() == pytest.approx(8.0, rel=0.05)
    row = acc[np.unravel_index(acc.argmax(), acc.shape)[0]]
    _, _, depth = cam.project([x], [y], [0.0])
    fwhm = (row >= 0.5 * row.max()).sum()
    assert fwhm == pytest.approx(10.0 * cam.focal_px / depth[0], abs=1.5)


def test_birds_cross_the_view_fast_and_leave_no_truth(site):
    from vigil.sim.perturbations import Birds

    b = Birds(per_hour=3600.0, range_min_m=100.0, range_max_m=100.0, size_m=0.5,
              contrast_dn=40.0)  # fmt: skip
    v = view(site, Perturbations(birds=b).only("birds"), width=160, height=120)
    ref = view(site, OFF, width=160, height=120)
    t = T0 + 1800.0
    a, objs = render(v, empty(v), t, 0)
    diff = a - render(ref, empty(ref), t, 0)[0]
    assert objs == [] and diff.min() >= 0 and diff.max() >= 20.0
    # at 100 m a 0.5 m bird is ~0.5 m * f / 100 px: blobs of about that many pixels
    k = math.floor(t / 3600.0)
    ev = np.vstack([v.perturber.bird_events(j, v.camera) for j in (k - 1, k, k + 1)])
    in_time = np.abs(t - ev[:, 0]) <= 60.0
    assert v.perturber.add_birds(np.zeros((120, 160), np.float32), v.camera, t) <= in_time.sum()
    # one bird, 100 m out, 12 m/s across the view: drawn where it is, moving ~1.2 m * f / 100 m
    # in a tenth of a second
    cam = v.camera
    pan = math.radians(cam.pan_deg)
    x, y = cam.x + 100.0 * math.sin(pan), cam.y + 100.0 * math.cos(pan)
    one = np.array([[t, x, y, 10.0, 12.0 * math.cos(pan), -12.0 * math.sin(pan)]])
    for j in (k - 1, k, k + 1):
        v.perturber._birds[j] = one if j == k else np.zeros((0, 6))
    centres = []
    for dt in (0.0, 0.1):
        layer = np.zeros((120, 160), np.float32)
        assert v.perturber.add_birds(layer, cam, t + dt) == 1
        jj = np.arange(160) + 0.5
        centres.append((layer.sum(axis=0) * jj).sum() / layer.sum())
    u, _, _ = cam.project([x, x + 1.2 * math.cos(pan)], [y, y - 1.2 * math.sin(pan)], [10.0, 10.0])
    assert centres[0] == pytest.approx(u[0], abs=0.05)
    assert centres[1] - centres[0] == pytest.approx(u[1] - u[0], abs=0.05)
    assert abs(u[1] - u[0]) > 1.0
    counts = [len(v.perturber.bird_events(j, v.camera)) for j in range(2000, 2020)]
    assert np.mean(counts) == pytest.approx(3600.0, rel=0.02)


def test_bodies_of_both_signs_draw_warm_and_cold():
    from vigil.sim.perturbations_render import draw_bodies
    from vigil.sim.thermal import ObjectTruth

    def obj(u: float, con: float) -> ObjectTruth:
        return ObjectTruth("m", "person", "person", "g", 0.0, 0.0, 100.0,
                           (u - 2.0, 4.0, u + 2.0, 12.0), con)  # fmt: skip

    acc = np.zeros((16, 32), np.float32)
    draw_bodies(acc, [obj(8.0, 30.0), obj(24.0, -20.0)], OFF)
    assert acc[:, :16].max() == pytest.approx(30.0) and acc[:, :16].min() == 0.0
    assert acc[:, 16:].min() == pytest.approx(-20.0) and acc[:, 16:].max() == 0.0
    only_cold = np.zeros((16, 32), np.float32)
    draw_bodies(only_cold, [obj(24.0, -20.0)], OFF)
    assert np.array_equal(only_cold[:, 16:], acc[:, 16:])
