"""Crossing detection over simulated truth paths on the Tucson stretch of the border."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString

from vigil.geo.border import Border
from vigil.geo.crossings import (
    CrossingInputError,
    crossings_geodataframe,
    detect_crossings,
    detect_crossings_frame,
    hysteresis_events,
)
from vigil.geo.frames import LocalFrame

H = 10.0  # hysteresis, metres
DT = 5.0  # sample interval, seconds
T0 = 1.7e9


@pytest.fixture(scope="module")
def border() -> Border:
    frame = LocalFrame(31.33, -110.94)
    return Border("tucson", frame, start=(31.333, -111.15), end=(31.333, -110.73))


def _normal(border: Border, c: float) -> tuple[float, float, float, float]:
    """Point on the line at chainage ``c`` and the unit normal pointing into the US."""
    p = border.line.interpolate(c)
    q = border.line.interpolate(c + 1.0)
    tx, ty = q.x - p.x, q.y - p.y
    n = np.hypot(tx, ty)
    return p.x, p.y, ty / n, -tx / n


@dataclass
class Scenario:
    paths: pd.DataFrame  # track_id, t, x, y
    kind: dict[str, str]  # track id -> walker | jitter | turn_back


def _walker(rng, border, tid, start_t, northbound):
    c = rng.uniform(300.0, border.length_m - 300.0)
    px, py, nx, ny = _normal(border, c)
    sign = 1.0 if northbound else -1.0
    n = int(rng.integers(120, 200))
    heading = np.arctan2(sign * ny, sign * nx) + rng.normal(0.0, 0.35, n)
    speed = rng.uniform(0.8, 1.6) * DT
    x = px - sign * 400.0 * nx + np.cumsum(speed * np.cos(heading))
    y = py - sign * 400.0 * ny + np.cumsum(speed * np.sin(heading))
    return x, y, start_t + DT * np.arange(n)


def _jitter(rng, border, start_t, amplitude):
    """Approach the line, walk along it within ``amplitude`` of it, go back."""
    c = rng.uniform(2000.0, border.length_m - 4000.0)
    side = rng.choice([-1.0, 1.0])
    along = np.linspace(c, c + 1500.0, 300)
    offs = side * np.concatenate(
        [
            np.linspace(200.0, 0.0, 40),
            np.clip(rng.normal(0.0, amplitude / 2.0, 220), -amplitude, amplitude),
            np.linspace(0.0, 200.0, 40),
        ]
    )
    pts = [_normal(border, a) for a in along]
    x = np.array([p[0] + o * p[2] for p, o in zip(pts, offs, strict=True)])
    y = np.array([p[1] + o * p[3] for p, o in zip(pts, offs, strict=True)])
    return x, y, start_t + DT * np.arange(len(x))


def _turn_back(rng, border, start_t, depth):
    """Walk up to the line, ``depth`` metres over it (less than the hysteresis), and back."""
    c = rng.uniform(500.0, border.length_m - 500.0)
    px, py, nx, ny = _normal(border, c)
    side = rng.choice([-1.0, 1.0])
    offs = side * np.concatenate([np.linspace(300.0, -depth, 60), np.linspace(-depth, 300.0, 60)])
    return px + offs * nx, py + offs * ny, start_t + DT * np.arange(len(offs))


@pytest.fixture(scope="module")
def scenario(border) -> Scenario:
    rng = np.random.default_rng(20240611)
    rows, kind = [], {}
    for k in range(1200):
        tid = f"w{k:04d}"
        x, y, t = _walker(rng, border, tid, T0 + 37.0 * k, northbound=k % 3 != 0)
        rows.append(pd.DataFrame({"track_id": tid, "t": t, "x": x, "y": y}))
        kind[tid] = "walker"
    for k in range(60):
        tid = f"j{k:04d}"
        x, y, t = _jitter(rng, border, T0 + 91.0 * k, amplitude=H - 1.0)
        rows.append(pd.DataFrame({"track_id": tid, "t": t, "x": x, "y": y}))
        kind[tid] = "jitter"
    for k in range(60):
        tid = f"b{k:04d}"
        x, y, t = _turn_back(rng, border, T0 + 53.0 * k, depth=rng.uniform(0.5, H - 1.0))
        rows.append(pd.DataFrame({"track_id": tid, "t": t, "x": x, "y": y}))
        kind[tid] = "turn_back"
    paths = pd.concat(rows, ignore_index=True)
    # Shuffle so the detector has to sort by track and time itself.
    paths = paths.sample(frac=1.0, random_state=3).reset_index(drop=True)
    return Scenario(paths=paths, kind=kind)


@pytest.fixture(scope="module")
def events(scenario, border):
    p = scenario.paths
    return detect_crossings(p.track_id, p.t, p.x, p.y, border, hysteresis_m=H)


def _truth_crossings(scenario, border) -> pd.DataFrame:
    """For each walker: where and when its path last meets the border line (shapely)."""
    out = []
    for tid, g in scenario.paths.groupby("track_id"):
        if scenario.kind[tid] != "walker":
            continue
        g = g.sort_values("t")
        path = LineString(np.column_stack([g.x, g.y]))
        hit = path.intersection(border.line)
        pts = list(getattr(hit, "geoms", [hit])) if not hit.is_empty else []
        if not pts:
            continue
        along = np.array([path.project(p) for p in pts])
        last = pts[int(np.argmax(along))]
        steps = np.hypot(np.diff(g.x), np.diff(g.y))
        cum = np.concatenate([[0.0], np.cumsum(steps)])
        t = float(np.interp(along.max(), cum, g.t.to_numpy()))
        end_side = int(border.side(g.x.iloc[-1], g.y.iloc[-1])[0])
        out.append({"track_id": tid, "x": last.x, "y": last.y, "t": t, "end_side": end_side})
    return pd.DataFrame(out)


def test_recall_and_position_on_walkers(scenario, border, events):
    truth = _truth_crossings(scenario, border)
    assert len(truth) >= 1150  # nearly every walker reaches the line
    found = events.crossings.set_index("track_id")
    matched = truth[truth.track_id.isin(found.index)]
    recall = len(matched) / len(truth)
    assert recall >= 0.995, f"recall {recall:.4f}"
    det = found.loc[matched.track_id]
    assert np.allclose(det.x.to_numpy(), matched.x.to_numpy(), atol=1.0)
    assert np.allclose(det.y.to_numpy(), matched.y.to_numpy(), atol=1.0)
    assert np.allclose(det.time.to_numpy(), matched.t.to_numpy(), atol=2.0)
    # Direction follows the side the walker ended on (the US is north of this stretch).
    expected = np.where(matched.end_side.to_numpy() > 0, "northbound", "southbound")
    assert (det.direction.to_numpy() == expected).all()
    assert (det.entering_us.to_numpy() == (matched.end_side.to_numpy() > 0)).all()


def test_one_crossing_per_walker_and_segment_holds_the_point(scenario, border, events):
    c = events.crossings
    assert c.track_id.is_unique
    for seg_index, x, y in zip(c.segment_index, c.x, c.y, strict=True):
        seg = border.segments[seg_index].line
        assert seg.distance(shapely.Point(x, y)) < 1.0
    assert (c.segment_id == [border.segment_ids[i] for i in c.segment_index]).all()
    assert c.crossing_id.tolist() == list(range(len(c)))
    assert c.time.is_monotonic_increasing


def test_no_false_crossings_from_jitter_or_turn_backs(scenario, events):
    kinds = events.crossings.track_id.map(scenario.kind)
    assert (kinds == "walker").all(), kinds.value_counts().to_dict()


def test_turn_backs_recorded(scenario, events):
    tb = events.turn_backs
    touched = set(tb.loc[tb.touched, "track_id"])
    turners = {t for t, k in scenario.kind.items() if k == "turn_back"}
    assert turners <= touched
    assert (tb.loc[tb.track_id.isin(turners), "closest_m"] > -H).all()
    jitterers = {t for t, k in scenario.kind.items() if k == "jitter"}
    assert jitterers <= set(tb.track_id)


def test_frame_inputs_agree(scenario, border, events):
    some = sorted(scenario.kind)[::6]  # a sixth of the tracks of every kind keeps this quick
    p = scenario.paths[scenario.paths.track_id.isin(some)]
    events = detect_crossings(p.track_id, p.t, p.x, p.y, border, hysteresis_m=H)
    lat, lon = border.frame.to_wgs84(p.x, p.y)
    by_latlon = detect_crossings_frame(
        pd.DataFrame({"track_id": p.track_id, "time": p.t, "lat": lat, "lon": lon}),
        border,
        hysteresis_m=H,
    )
    pd.testing.assert_frame_equal(
        by_latlon.crossings[["track_id", "segment_id", "direction"]],
        events.crossings[["track_id", "segment_id", "direction"]],
    )
    assert np.allclose(by_latlon.crossings.time, events.crossings.time, atol=1e-3)
    gdf = crossings_geodataframe(events.crossings)
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == len(events.crossings)


def test_us_canada_entering_is_southbound():
    frame = LocalFrame(49.0, -100.0)
    border = Border("gf", frame, "us_ca", bbox=(-100.3, 48.9, -99.7, 49.1))
    x = np.full(50, 0.0)
    y0 = border.line.interpolate(border.line.project(shapely.Point(0.0, 0.0))).y
    y = y0 + np.linspace(500.0, -500.0, 50)  # north to south: Canada into the US
    ev = detect_crossings(np.zeros(50, int), np.arange(50.0), x, y, border)
    assert ev.crossings.direction.tolist() == ["southbound"]
    assert ev.crossings.entering_us.tolist() == [True]


def test_round_the_end_is_not_a_crossing(border):
    """A path passing beyond the end of the stretch changes side without crossing it."""
    end = border.line.coords[0]
    px, py, nx, ny = _normal(border, 0.0)
    tx, ty = ny, -nx  # backwards along the line, away from the stretch
    s = np.linspace(-300.0, 300.0, 121)
    x = end[0] + 200.0 * tx + s * nx
    y = end[1] + 200.0 * ty + s * ny
    ev = detect_crossings(np.zeros_like(s), np.arange(s.size) * DT, x, y, border)
    assert len(ev.crossings) == 0
    assert ev.outside_stretch == 1


# -- the kernel against an independent run-length reference ------------------------------
def _reference(d: np.ndarray, starts: np.ndarray, h: float, within: float):
    """Events by run-length: label samples far-US/far-foreign/band and read the runs."""
    out = []
    for k in range(len(starts) - 1):
        seg = d[starts[k] : starts[k + 1]]
        zone = np.where(seg >= h, 1, np.where(seg <= -h, -1, 0))
        far = np.flatnonzero(zone != 0)
        for a, b in zip(far[:-1], far[1:], strict=False):
            side = zone[a]
            gap = seg[a + 1 : b] * side  # band samples between two far samples
            if zone[b] != side:
                sign_change = [
                    i for i in range(a + 1, b + 1) if seg[i - 1] * side >= 0 and seg[i] * side < 0
                ]
                own_min = min([*gap.tolist(), seg[b] * side])
                out.append((1, starts[k] + sign_change[-1], side, own_min))
            elif gap.size and gap.min() <= within:
                out.append((2, starts[k] + a + 1 + int(np.argmin(gap)), side, gap.min()))
    return out


@pytest.mark.parametrize("seed", range(8), ids=lambda s: f"seed{s}")
def test_kernel_matches_reference(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 80, size=12)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    d = np.cumsum(rng.normal(0.0, 6.0, starts[-1])) % 60.0 - 30.0
    d[rng.random(d.size) < 0.05] = 0.0
    h, within = 8.0, float(rng.choice([8.0, 2.0, 0.0]))
    n = d.size
    kind, idx, side = np.zeros(n, np.int8), np.zeros(n, np.int64), np.zeros(n, np.int8)
    ext, unres = np.zeros(n), np.zeros(len(lengths), np.int64)
    m = hysteresis_events(starts, d, h, within, kind, idx, side, ext, unres)
    got = [(int(kind[i]), int(idx[i]), int(side[i]), float(ext[i])) for i in range(m)]
    want = [(int(a), int(b), int(c), float(e)) for a, b, c, e in _reference(d, starts, h, within)]
    assert got == want


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hysteresis_m": 0.0}, "hysteresis_m=0.0"),
        ({"turn_back_within_m": 20.0}, "turn_back_within_m=20.0"),
    ],
    ids=["zero-hysteresis", "turn-back-beyond-band"],
)
def test_bad_parameters_are_named(border, kwargs, message):
    with pytest.raises(CrossingInputError, match=message):
        detect_crossings([1, 1], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], border, **kwargs)


def test_bad_inputs_are_named(border):
    with pytest.raises(CrossingInputError, match=r"t\[1\] is nan"):
        detect_crossings([1, 1], [0.0, np.nan], [0.0, 1.0], [0.0, 1.0], border)
    with pytest.raises(CrossingInputError, match="x has shape"):
        detect_crossings([1, 1], [0.0, 1.0], [0.0], [0.0, 1.0], border)
    with pytest.raises(CrossingInputError, match="lack column"):
        detect_crossings_frame(pd.DataFrame({"t": [0.0]}), border)
