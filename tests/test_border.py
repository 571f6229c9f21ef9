"""The border model: real lines, stable segment ids, lengths, the US side, vectorised lookups."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
import shapely

from vigil.geo import site as site_module
from vigil.geo.border import Border, BorderError, load_boundary
from vigil.geo.frames import LocalFrame
from vigil.geo.site import Site

NOGALES = LocalFrame(31.33, -110.94)


@pytest.fixture(scope="module")
def border() -> Border:
    return Border("tucson", NOGALES, "us_mx", start=(31.333, -111.15), end=(31.333, -110.73))


def test_shipped_lines_are_the_real_boundaries() -> None:
    mx = load_boundary("us_mx")
    ca = load_boundary("us_ca")
    assert len(mx) == 1 and len(mx[0].coords) == 968
    assert len(ca) == 4 and sum(len(p.coords) for p in ca) == 1233
    with pytest.raises(BorderError, match="us_xx"):
        load_boundary("us_xx")


def test_segment_ids_are_stable_across_runs(border: Border) -> None:
    again = Border("tucson", NOGALES, "us_mx", start=(31.333, -111.15), end=(31.333, -110.73))
    assert border.segment_ids == again.segment_ids
    assert border.segment_ids[0] == "tucson-0000"
    assert border.segment_ids[-1] == f"tucson-{len(border.segments) - 1:04d}"
    for a, b in zip(border.segments, again.segments, strict=True):
        assert a.line.equals_exact(b.line, 1e-9)
    # the same stretch asked for in the other order gives the same segments
    reverse = Border("tucson", NOGALES, "us_mx", start=(31.333, -110.73), end=(31.333, -111.15))
    assert reverse.segment_ids == border.segment_ids
    assert reverse.segments[5].line.equals_exact(border.segments[5].line, 1e-6)


@pytest.mark.parametrize("length_m", [250.0, 1000.0, 3000.0])
def test_segment_lengths_within_one_percent(length_m: float) -> None:
    b = Border(
        "t", NOGALES, start=(31.333, -111.15), end=(31.333, -110.73), segment_length_m=length_m
    )
    lengths = np.array([s.length_m for s in b.segments])
    assert np.all(np.abs(lengths[:-1] - length_m) / length_m < 0.01)
    assert 0 < lengths[-1] <= length_m * 1.01
    assert abs(lengths.sum() - b.length_m) < 1e-6
    chain = np.array([s.chainage_start_km for s in b.segments])
    assert np.allclose(np.diff(chain), length_m / 1000.0)


def test_stretch_is_about_40_km(border: Border) -> None:
    assert 38_000 < border.length_m < 42_000
    assert len(border.segments) == 40


@pytest.mark.parametrize(
    ("name", "lat", "lon", "side"),
    [
        ("Nogales, Arizona", 31.3404, -110.9343, 1),
        ("Nogales, Sonora", 31.3086, -110.9422, -1),
        ("Rio Rico, Arizona", 31.4715, -110.9765, 1),
        ("Sasabe-ward, Sonora", 31.25, -111.10, -1),
    ],
    ids=["nogales-az", "nogales-son", "rio-rico", "sonora-west"],
)
def test_us_side_is_right_for_known_places(
    border: Border, name: str, lat: float, lon: float, side: int
) -> None:
    x, y = NOGALES.to_local([lat], [lon])
    assert border.side(x, y)[0] == side, name


@pytest.mark.parametrize(
    ("centre", "start", "end", "us", "foreign"),
    [
        ((49.0, -122.5), (49.0, -122.75), (49.0, -122.2), (48.95, -122.45), (49.05, -122.45)),
        ((62.6, -141.0), (63.0, -141.0), (62.2, -141.0), (62.6, -141.4), (62.6, -140.6)),
        ((45.0, -73.5), (45.0, -74.0), (45.0, -73.0), (44.95, -73.5), (45.05, -73.5)),
    ],
    ids=["blaine-surrey", "alaska-yukon", "new-york-quebec"],
)
def test_us_side_on_the_canadian_border(centre, start, end, us, foreign) -> None:
    frame = LocalFrame(*centre)
    b = Border("n", frame, "us_ca", start=start, end=end)
    x, y = frame.to_local([us[0], foreign[0]], [us[1], foreign[1]])
    assert list(b.side(x, y)) == [1, -1]


def test_nearest_segment_and_distance_match_brute_force(border: Border) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-25_000, 25_000, 2_000)
    y = rng.uniform(-8_000, 8_000, 2_000)
    idx = border.nearest_segment(x, y)
    pts = shapely.points(x, y)
    brute = np.array(
        [np.argmin([p.distance(s.line) for s in border.segments]) for p in pts], dtype=np.int64
    )
    d_idx = np.array([pts[i].distance(border.segments[idx[i]].line) for i in range(len(pts))])
    d_brute = np.array([pts[i].distance(border.segments[brute[i]].line) for i in range(len(pts))])
    assert np.allclose(d_idx, d_brute)  # ties may pick either of two equidistant segments
    assert np.allclose(border.distance(x, y), [p.distance(border.line) for p in pts])


def test_lookups_vectorised_for_a_million_points(border: Border) -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(-25_000, 25_000, 1_000_000)
    y = rng.uniform(-8_000, 8_000, 1_000_000)
    idx = border.nearest_segment(x, y)
    sd = border.signed_distance(x, y)
    assert idx.shape == (1_000_000,) and sd.shape == (1_000_000,)
    assert idx.min() >= 0 and idx.max() == len(border.segments) - 1
    # far north is US, far south is not
    north = y > 6_000
    assert np.all(sd[north] > 0)


def test_bbox_stretch_and_errors() -> None:
    b = Border("t", NOGALES, bbox=(-111.0, 31.0, -110.9, 31.6))
    assert 8_000 < b.length_m < 11_000
    with pytest.raises(BorderError, match="does not pass"):
        Border("t", NOGALES, bbox=(-100.0, 40.0, -99.0, 41.0))
    with pytest.raises(BorderError, match="segment_length_m"):
        Border("t", NOGALES, bbox=(-111.0, 31.0, -110.9, 31.6), segment_length_m=0)
    with pytest.raises(BorderError, match="either"):
        Border("t", NOGALES)


def test_segments_frame_is_wgs84(border: Border) -> None:
    gdf = border.segments_frame
    assert gdf.crs.to_epsg() == 4326
    assert list(gdf.segment_id) == border.segment_ids
    minx, miny, maxx, maxy = gdf.total_bounds
    assert -111.2 < minx < maxx < -110.7 and 31.2 < miny < maxy < 31.4


def test_a_site_builds_its_frame_and_border_once(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    class CountingFrame(LocalFrame):
        def __post_init__(self) -> None:
            built.append("frame")
            super().__post_init__()

    class CountingBorder(Border):
        def __init__(self, *args, **kwargs) -> None:
            built.append("border")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(site_module, "LocalFrame", CountingFrame)
    monkeypatch.setattr(site_module, "Border", CountingBorder)
    sector = {"name": "tucson", "centre": [31.33, -110.94], "start": [31.333, -111.15]}
    site = msgspec.convert({"sector": {**sector, "end": [31.333, -110.73]}}, Site)
    frame = site.frame()
    assert site.frame() is frame
    border = site.border()
    assert site.border() is border and site.border(frame) is border
    assert border.frame is frame
    assert built == ["frame", "border"]
    equal, elsewhere = CountingFrame(31.33, -110.94), CountingFrame(31.0, -111.0)
    built.clear()
    assert site.border(equal) is border  # an equal frame shares it
    # another frame gets a border of its own; a site with other contents, its own pair
    assert site.border(elsewhere) is not border
    other = msgspec.structs.replace(site, sector=msgspec.structs.replace(site.sector, name="x"))
    assert other.border() is not border and other.border().segment_ids[0] == "x-0000"
    assert built == ["border", "frame", "border"]
    # the cache is not part of the site's value: it neither encodes nor compares
    again = msgspec.convert(msgspec.to_builtins(site), Site)
    assert again == site and msgspec.json.encode(again) == msgspec.json.encode(site)
