"""Planners' analyses: planted patterns are recovered, readers agree, Dask equals memory."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.stats import spearmanr

from vigil.geo.border import Border
from vigil.geo.camera import PinholeCamera
from vigil.geo.crossings import crossings_geodataframe, detect_crossings
from vigil.geo.frames import LocalFrame
from vigil.geo.patterns import aggregate_crossings, analyze_crossing_table, read_crossings
from vigil.geo.patterns.aggregate import segment_period_counts
from vigil.geo.patterns.counts import hour_profile, segment_day_matrix, weekday_profile
from vigil.geo.patterns.coverage import (
    best_new_tower,
    segment_coverage,
    sensor_disc,
    tower_candidates,
    uncovered_segments,
)
from vigil.geo.patterns.displacement import displacement, find_drops
from vigil.geo.patterns.hotspots import chain_neighbours, corridors, gi_star, path_density
from vigil.geo.patterns.io import PatternInputError, normalise_crossings
from vigil.geo.patterns.scale import (
    dask_scheduler,
    open_crossings_dask,
    write_partitioned_geoparquet,
)
from vigil.geo.patterns.seasonality import monthly_profile, stl_trend, year_of
from vigil.geo.patterns.synthetic import corridor_rates, night_schedule, simulate_crossings

TZ = "America/Phoenix"  # UTC-7 all year


@pytest.fixture(scope="module")
def border() -> Border:
    return Border(
        "tucson", LocalFrame(31.33, -110.94), start=(31.333, -111.15), end=(31.333, -110.73)
    )


# -- end to end: planted corridors and schedule -> walker paths -> crossings -> analysis ----
@pytest.fixture(scope="module")
def planted_paths(border):
    """Walkers whose crossing points follow planted per-segment rates and a night schedule."""
    rng = np.random.default_rng(7)
    n_seg = len(border.segments)
    # Distinct rates everywhere (a gentle gradient under two corridors) so ranks are defined.
    rates = corridor_rates(n_seg, [(27, 14.0, 1.2), (9, 6.0, 2.0)], background=0.6)
    rates += np.linspace(0.0, 1.5, n_seg)
    days = 45
    hourly = night_schedule(peak_hour=3, spread_h=1.0)
    counts = rng.poisson(rates * days)
    seg_of = np.repeat(np.arange(n_seg), counts)
    n = seg_of.size
    starts = np.array([s.chainage_start_km * 1000 for s in border.segments])
    lengths = np.array([s.length_m for s in border.segments])
    c = starts[seg_of] + rng.uniform(5.0, lengths[seg_of] - 5.0)
    p = shapely.line_interpolate_point(border.line, c)
    q = shapely.line_interpolate_point(border.line, c + 1.0)
    tx, ty = shapely.get_x(q) - shapely.get_x(p), shapely.get_y(q) - shapely.get_y(p)
    norm = np.hypot(tx, ty)
    nx, ny = ty / norm, -tx / norm
    # Each walker starts 60 m into Mexico and walks 120 m north through its crossing point.
    s = np.linspace(-60.0, 60.0, 25)
    wobble = rng.normal(0.0, 1.5, (n, s.size))
    x = shapely.get_x(p)[:, None] + s * nx[:, None] + wobble * ny[:, None]
    y = shapely.get_y(p)[:, None] + s * ny[:, None] - wobble * nx[:, None]
    local_start = (
        pd.Timestamp("2024-03-04").value / 1e9
        + rng.integers(days, size=n) * 86400.0
        + rng.choice(24, size=n, p=hourly) * 3600.0
        + rng.uniform(0, 3600, size=n)
    )
    utc_start = local_start + 7 * 3600.0  # Phoenix is UTC-7 all year
    t = utc_start[:, None] + (np.arange(s.size) - 12) * 4.0
    tid = np.repeat(np.arange(n), s.size)
    rows = [pd.DataFrame({"track_id": tid, "t": t.ravel(), "x": x.ravel(), "y": y.ravel()})]
    return pd.concat(rows, ignore_index=True), rates


@pytest.fixture(scope="module")
def planted_analysis(planted_paths, border):
    paths, _ = planted_paths
    events = detect_crossings(paths.track_id, paths.t, paths.x, paths.y, border)
    return events, analyze_crossing_table(events.crossings, border=border, timezone=TZ)


def test_planted_rates_hotspot_and_peak_hour_recovered(planted_paths, planted_analysis):
    paths, rates = planted_paths
    events, a = planted_analysis
    assert len(events.crossings) == paths.track_id.nunique()
    rho = spearmanr(rates, a.segments["per_day"]).statistic
    assert rho >= 0.9, f"Spearman {rho:.3f}"
    top = a.segments.sort_values("gi_z", ascending=False).iloc[0]
    assert top.segment_id == "tucson-0027"
    assert a.summary["top_hotspot"]["segment_id"] == "tucson-0027"
    assert a.summary["peak_hour"] == 3
    assert "tucson-0027" in a.summary["hot_segments"]


def test_peak_hour_is_local_time():
    """09:30 UTC is 02:30 in Phoenix (UTC-7, no daylight saving)."""
    t = pd.Timestamp("2024-07-01 09:30", tz="UTC").timestamp()
    table = pd.DataFrame({"time": [t, t + 60, t + 86400], "segment_id": ["a", "a", "b"]})
    agg = aggregate_crossings(table, timezone=TZ, h3_resolution=None)
    prof = hour_profile(agg)
    assert prof.set_index("hour").loc[2, "crossings"] == 3
    week = weekday_profile(agg)
    assert week.set_index("day").loc["Mon", "crossings"] == 2  # 2024-07-01 was a Monday


# -- Gi* against the closed form -----------------------------------------------------------
def _gi_star_reference(y: np.ndarray, nb: dict[int, list[int]]) -> np.ndarray:
    """Getis and Ord (1995) Gi* with binary weights including the unit itself."""
    n = len(y)
    mean, s = y.mean(), np.sqrt((y**2).mean() - y.mean() ** 2)
    z = np.empty(n)
    for i in range(n):
        w = np.zeros(n)
        w[[i, *nb[i]]] = 1.0
        sw, sw2 = w.sum(), (w**2).sum()
        z[i] = (w @ y - mean * sw) / (s * np.sqrt((n * sw2 - sw**2) / (n - 1)))
    return z


@pytest.mark.parametrize("bandwidth", [1, 2], ids=["bw1", "bw2"])
def test_gi_star_matches_closed_form(bandwidth):
    y = np.random.default_rng(bandwidth).poisson(5.0, 30).astype(float)
    y[12] += 30
    nb = chain_neighbours(len(y), bandwidth)
    got = gi_star(y, nb)["gi_z"].to_numpy()
    assert np.allclose(got, _gi_star_reference(y, nb), atol=1e-9)


# -- displacement --------------------------------------------------------------------------
def test_displacement_finds_the_fall_and_the_neighbours(border):
    rates = corridor_rates(len(border.segments), [(20, 10.0, 1.0)], background=1.0)
    after = rates.copy()
    after[20] = 2.0  # a tower goes up on day 70
    after[22] += 5.0
    after[23] += 3.0
    table, _ = simulate_crossings(
        border, days=140, rates=rates, rates_after=after, change_day=70, timezone=TZ,
        positions=False, seed=4,
    )  # fmt: skip
    agg = aggregate_crossings(table, timezone=TZ, h3_resolution=None)
    wide = segment_day_matrix(agg, border.segment_ids)
    drops = find_drops(wide)
    assert drops.segment_id.tolist() == ["tucson-0020"]
    assert abs((drops["at"].iloc[0] - pd.Timestamp("2024-01-01")).days - 70) <= 2
    moved = displacement(wide)
    top2 = moved.sort_values("rise_per_day", ascending=False).head(2)
    assert top2.neighbour_id.tolist() == ["tucson-0022", "tucson-0023"]
    assert top2.share.iloc[0] == pytest.approx(5.0 / 8.4, abs=0.15)
    given = displacement(wide, at="2024-03-11", segment_id="tucson-0020")
    assert given.neighbour_id.iloc[0] == "tucson-0022"


# -- coverage ------------------------------------------------------------------------------
def test_segment_coverage_of_a_disc(border):
    seg = border.segments[10]
    mid = seg.line.interpolate(0.5, normalized=True)
    disc = sensor_disc(mid.x, mid.y, 200.0)
    cov = segment_coverage(border, [disc]).set_index("segment_id")
    # A disc centred on a nearly straight segment covers a 400 m chord of it.
    assert cov.loc[seg.segment_id, "covered_m"] == pytest.approx(400.0, abs=2.0)
    assert cov["covered_m"].drop(seg.segment_id).sum() == pytest.approx(0.0)
    assert seg.segment_id in uncovered_segments(cov.reset_index())


def test_best_new_tower_goes_where_the_crossings_are(border):
    weights = {sid: 1.0 for sid in border.segment_ids}
    weights["tucson-0031"] = 200.0
    existing = [sensor_disc(*border.segments[i].line.centroid.coords[0], 600) for i in (5, 6)]

    def camera_at(x, y, ax, ay):
        cam = PinholeCamera(x, y, height_m=25.0, pan_deg=0.0, tilt_deg=5.0, hfov_deg=40.0)
        return cam.pointed_at(ax, ay).footprint()

    # One candidate per segment, aimed at the segment's middle.
    candidates = tower_candidates(border, camera_at, spacing_m=1000.0, setback_m=300.0)
    assert len(candidates) >= 35
    ranked = best_new_tower(border, existing, weights, candidates)
    assert ranked.candidate.iloc[0] == "c031500", ranked.head(3)
    best = candidates[ranked.candidate.iloc[0]]
    centre = border.segments[31].line.interpolate(0.5, normalized=True)
    assert best.distance(centre) < 1.0
    assert ranked.gain.is_monotonic_decreasing


# -- seasonality ---------------------------------------------------------------------------
def test_monthly_profile_and_trend_recover_planted():
    rng = np.random.default_rng(0)
    idx = pd.date_range("2010-01-01", "2019-12-01", freq="MS")
    shape = 1.0 + 0.4 * np.cos(2 * np.pi * (idx.month - 4) / 12)  # peak in April
    level = 1000.0 * (1.0 + 0.05) ** ((idx.year - 2010) + idx.month / 12)
    s = pd.Series(rng.poisson(level * shape), index=idx, dtype=float)
    prof = monthly_profile(s)
    assert int(prof.idxmax()) == 4 and int(prof.idxmin()) == 10
    assert prof.mean() == pytest.approx(1.0, abs=0.02)
    tr = stl_trend(s, period=12)
    assert tr["direction"] == "rising"
    assert tr["percent_per_year"] == pytest.approx(5.0, abs=1.5)
    flat = stl_trend(pd.Series(rng.poisson(100, 120), index=idx, dtype=float), period=12)
    assert flat["direction"] == "flat"


def test_fiscal_years():
    idx = pd.DatetimeIndex(["1999-10-01", "2000-09-01", "2000-10-01"])
    assert year_of(idx, 10).tolist() == [2000, 2000, 2001]
    assert year_of(idx, 1).tolist() == [1999, 2000, 2000]


# -- inland density and corridors ----------------------------------------------------------
def test_path_density_counts_tracks_once_and_finds_the_corridor():
    rng = np.random.default_rng(2)
    rows = []
    for tid in range(60):
        lon = -110.95 + rng.normal(0, 0.0005) + np.zeros(80)
        lat = 31.33 + np.linspace(0.0, 0.03, 80)
        rows.append(pd.DataFrame({"track_id": tid, "lat": lat, "lon": lon}))
    for tid in range(60, 90):  # scattered walkers elsewhere
        lat = 31.30 + np.cumsum(rng.normal(0, 0.002, 40))
        lon = -110.85 + np.cumsum(rng.normal(0, 0.002, 40))
        rows.append(pd.DataFrame({"track_id": tid, "lat": lat, "lon": lon}))
    p = pd.concat(rows)
    d = path_density(p.track_id, p.lat, p.lon, resolution=9)
    assert d.tracks.max() == 60  # many samples per cell, each track counted once
    corr = corridors(d, top_share=0.1)
    assert len(corr) >= 1
    assert corr.geometry.iloc[0].contains(shapely.Point(-110.95, 31.345))


# -- readers and backends agree ------------------------------------------------------------
@pytest.fixture(scope="module")
def crossings_table(border):
    rates = corridor_rates(len(border.segments), [(12, 6.0, 1.5)], background=0.5)
    table, _ = simulate_crossings(
        border, days=21, rates=rates, hourly=night_schedule(1), timezone=TZ, seed=11
    )
    return table


def _assert_same(a, b):
    for name, t in a.tables().items():
        pd.testing.assert_frame_equal(t, b.tables()[name], obj=name)
    assert (a.n_crossings, a.first_time, a.last_time) == (b.n_crossings, b.first_time, b.last_time)


def test_readers_agree(crossings_table, tmp_path):
    ref = aggregate_crossings(normalise_crossings(crossings_table), timezone=TZ)
    crossings_table.to_csv(tmp_path / "c.csv", index=False)
    gdf = crossings_geodataframe(crossings_table.drop(columns=["lat", "lon"]).assign(
        lat=crossings_table.lat, lon=crossings_table.lon))  # fmt: skip
    gdf.drop(columns=["lat", "lon"]).to_file(tmp_path / "c.gpkg", layer="crossings")
    gdf.to_parquet(tmp_path / "c.parquet")
    with sqlite3.connect(tmp_path / "store.db") as con:
        crossings_table.to_sql("crossings", con, index=False)
    for name in ("c.csv", "c.gpkg", "c.parquet", "store.db"):
        got = aggregate_crossings(read_crossings(tmp_path / name), timezone=TZ)
        _assert_same(ref, got)


def test_iso_times_with_offsets_are_read_and_naive_ones_refused(crossings_table):
    t = pd.to_datetime(crossings_table.time, unit="s", utc=True).dt.tz_convert(TZ)
    iso = crossings_table.assign(time=t.map(lambda v: v.isoformat()))
    back = normalise_crossings(iso)
    assert np.allclose(back.time, crossings_table.time, atol=1e-6)
    naive = crossings_table.assign(time=t.dt.tz_localize(None).astype(str))
    with pytest.raises(PatternInputError, match="without a time zone"):
        normalise_crossings(naive)
    with pytest.raises(PatternInputError, match=r"lacks column\(s\) \['segment_id'\]"):
        normalise_crossings(crossings_table.drop(columns="segment_id"))


def test_dask_and_memory_give_identical_tables(crossings_table, border, tmp_path):
    pytest.importorskip("dask_geopandas", reason="the Dask path needs the bench extra")
    folder = write_partitioned_geoparquet(crossings_table, tmp_path / "parts", npartitions=5)
    assert len(list(folder.glob("*.parquet"))) == 5
    memory = read_crossings(folder)
    mem = aggregate_crossings(memory, timezone=TZ)
    with dask_scheduler("synchronous"):
        ddf = open_crossings_dask(folder)
        assert ddf.npartitions == 5
        dsk = aggregate_crossings(ddf, timezone=TZ)
        hourly_dask = segment_period_counts(ddf)
        a_dask = analyze_crossing_table(ddf, border=border, timezone=TZ)
    _assert_same(mem, dsk)
    pd.testing.assert_frame_equal(segment_period_counts(memory), hourly_dask)
    a_mem = analyze_crossing_table(memory, border=border, timezone=TZ)
    pd.testing.assert_frame_equal(a_mem.segments, a_dask.segments)
    pd.testing.assert_frame_equal(a_mem.hour_profile, a_dask.hour_profile)
    a_dask.summary.pop("backend")
    a_mem.summary.pop("backend")
    assert a_mem.summary == a_dask.summary


def test_segment_period_counts_sum(crossings_table):
    hourly = segment_period_counts(crossings_table)
    assert hourly["count"].sum() == len(crossings_table)
    assert (hourly.period % 3600 == 0).all()
    one = hourly.iloc[0]
    t = crossings_table
    n = ((t.segment_id == one.segment_id) & (t.time // 3600 * 3600 == one.period)).sum()
    assert n == one["count"]


def test_unknown_scheduler_is_named():
    with pytest.raises(PatternInputError, match="dask='nonsense'"), dask_scheduler("nonsense"):
        pass
