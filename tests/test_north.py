"""The northern deployment (Swanton sector, US-Canada): the file, water boundaries, the climate.

The US-Canada line that Vigil ships (Natural Earth) runs through the Great Lakes, the rivers
and Missisquoi Bay as well as over land: a point on the water is on the side the line puts it,
and someone crossing by boat or on the ice is on the US side once past it.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest
from alert_scenes import T0, Scene, alerts_of

from vigil.alerts.engine import AlertEngine
from vigil.config import check, load
from vigil.geo.border import FOREIGN_SIDE, US_SIDE, Border
from vigil.geo.frames import LocalFrame
from vigil.sim import SimSettings
from vigil.sim.animals import DEFAULT_MIX, SPECIES, Animals
from vigil.sim.climate import CLIMATES, climate_named, season_for
from vigil.sim.movers import BODY, CLASS_OF
from vigil.sim.world import World

DATA = Path(__file__).resolve().parent.parent / "vigil" / "data"
SWANTON = DATA / "swanton.toml"
#: 2027-01-15 07:00 UTC, 02:00 in Vermont: the demo's winter night.
WINTER_NIGHT = 1_799_996_400.0
#: 2026-07-15 06:00 UTC, 02:00 in Vermont.
SUMMER_NIGHT = 1_784_095_200.0


@pytest.fixture(scope="module")
def swanton():
    return load(SWANTON)


def _side(border: Border, points: list[tuple[float, float]]) -> list[int]:
    lat, lon = np.array(points).T
    x, y = border.frame.to_local(lat, lon)
    return border.side(x, y).tolist()


def test_the_swanton_file_passes_the_checks(swanton) -> None:
    check(swanton)  # raises ConfigError on any problem
    s = swanton.site.sector
    assert (s.name, s.boundary, s.climate, s.timezone) == (
        "swanton",
        "us_ca",
        "northern",
        "America/New_York",
    )
    border = swanton.site.border()
    assert 38_000 < border.length_m < 41_000
    assert border.segment_ids[0] == "swanton-0000"
    # every tower, sensor and unit is south of the line (the US side) and within 6 km of it
    for group in ("towers", "sensors", "units"):
        items = getattr(swanton.site, group)
        pts = [(t.lat, t.lon) for t in items]
        assert set(_side(border, pts)) == {US_SIDE}, group
        lat, lon = np.array(pts).T
        assert border.distance(*border.frame.to_local(lat, lon)).max() < 6_000.0


# Points on the water, a few hundred metres either side of the line, and their country.
# Missisquoi Bay and the Richelieu outlet of Lake Champlain lie on the stretch itself.
SWANTON_WATER = [
    ((45.0100, -73.150), FOREIGN_SIDE),  # Missisquoi Bay, Quebec part (about 470 m north)
    ((45.0030, -73.150), US_SIDE),  # Missisquoi Bay, Vermont part (about 300 m south)
    ((45.0061, -73.120), FOREIGN_SIDE),  # 35 m past the line northward: Canada
    ((45.0054, -73.120), US_SIDE),  # 40 m past it southward: the US
    ((45.0200, -73.352), FOREIGN_SIDE),  # the Richelieu below Lacolle
    ((44.9990, -73.352), US_SIDE),  # the lake's outlet off Rouses Point
]


@pytest.mark.parametrize(("point", "side"), SWANTON_WATER)
def test_water_on_the_swanton_stretch_is_on_the_side_the_line_puts_it(
    swanton, point: tuple[float, float], side: int
) -> None:
    assert _side(swanton.site.border(), [point]) == [side]


# The Great Lakes and the Detroit River: the same line, farther west, far out on the water.
GREAT_LAKES = [
    # (name, bbox of the stretch, point on the water, side)
    ("Lake Erie, east of Pelee Island", (-83.2, 41.5, -82.3, 42.0), (41.72, -82.56), FOREIGN_SIDE),
    ("Lake Erie, north of Kelleys Island", (-83.2, 41.5, -82.3, 42.0), (41.64, -82.60), US_SIDE),
    ("Lake Ontario, north half", (-78.0, 43.4, -77.0, 43.9), (43.75, -77.50), FOREIGN_SIDE),
    ("Lake Ontario, south half", (-78.0, 43.4, -77.0, 43.9), (43.45, -77.50), US_SIDE),
    ("Lake St. Clair, east", (-82.9, 42.35, -82.5, 42.7), (42.42, -82.62), FOREIGN_SIDE),
    ("Lake St. Clair, west", (-82.9, 42.35, -82.5, 42.7), (42.50, -82.78), US_SIDE),
]


@pytest.mark.parametrize(("name", "bbox", "point", "side"), GREAT_LAKES)
def test_points_in_the_great_lakes_fall_on_the_right_side(
    name: str, bbox: tuple[float, float, float, float], point: tuple[float, float], side: int
) -> None:
    frame = LocalFrame((bbox[1] + bbox[3]) / 2, (bbox[0] + bbox[2]) / 2)
    border = Border("lakes", frame, "us_ca", bbox=bbox)
    assert _side(border, [point]) == [side], name


def test_crossings_over_the_water_are_counted_on_the_us_side(swanton) -> None:
    """People who cross the Richelieu and Missisquoi Bay (corridors c3, c5) are counted at
    the line and are on the US side afterwards, as on land."""
    st = SimSettings(cameras="off", start_time=WINTER_NIGHT, crossing_rate_scale=20.0, uas=False)
    world = World(swanton.site, st, seed=3)
    border = world.border
    pop = world.population
    pop.advance(st.start_time + 3 * 3600.0)  # plans the crossings of the first hours
    water = [c for c in pop.crossings if c.origin in ("c3", "c5") and c.cls == "person"]
    assert len(water) >= 5
    northbound_into_us = 0
    for c in water:
        assert float(border.distance([c.x], [c.y])[0]) < 1.0
        if c.direction != "northbound":  # "northbound" means into the US, here southward
            continue
        northbound_into_us += 1
        plan = pop.movers[f"{c.group_id}.0"].plan
        # half a minute before, the group is on the water on the Canadian side; half a
        # minute after, on the US side (unless it turned back across the line meanwhile)
        x0, y0, _, _ = plan.at(c.time - 30.0)
        assert border.side([x0], [y0])[0] == FOREIGN_SIDE
        back = [b for b in water if b.group_id == c.group_id and c.time < b.time <= c.time + 30]
        if not back:
            x, y, _, _ = plan.at(c.time + 30.0)
            assert border.side([x], [y])[0] == US_SIDE
    assert northbound_into_us >= 3


def test_the_northern_world_has_deer_and_moose_and_snow(swanton) -> None:
    st = SimSettings(cameras="off", start_time=WINTER_NIGHT, uas=False, ugs=False)
    world = World(swanton.site, st, seed=1)
    assert world.settings.climate == "northern"  # taken from the site
    season = season_for(world.settings)
    assert season.name == "snow" and season.body_contrast > 1.0
    kinds = {m.kind for m in world.population.movers.values() if m.origin == "home"}
    assert "moose" in kinds and "deer" in kinds
    assert "cattle" not in kinds
    # in July the same place has no snow
    summer = SimSettings(cameras="off", start_time=SUMMER_NIGHT, climate="northern")
    assert season_for(summer).body_contrast == 1.0


def test_tucson_keeps_its_desert_and_its_herd() -> None:
    tucson = load(DATA / "tucson.toml")
    assert tucson.site.sector.climate == "sonoran"
    world = World(tucson.site, SimSettings(cameras="off", uas=False, ugs=False), seed=1)
    assert world.settings.climate == "sonoran"
    season = season_for(world.settings)
    assert (season.body_contrast, season.day_washout) == (1.0, 0.55)
    # the default mix is the species' own shares, in the same order as before climates
    assert list(season.species.items()) == list(DEFAULT_MIX.items())
    assert DEFAULT_MIX == {"cattle": 0.5, "deer": 0.25, "coyote": 0.25}
    assert season_for(SimSettings()) is climate_named(None).summer


def test_every_species_of_every_climate_can_be_drawn() -> None:
    for climate in CLIMATES.values():
        for season in (climate.summer, climate.winter):
            for name in season.species:
                assert name in SPECIES and name in BODY and CLASS_OF[name] == "animal"
    with pytest.raises(ValueError, match="unicorn"):
        Animals(1, None, {"unicorn": 1.0})  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="tundra"):
        climate_named("tundra")


def test_entering_the_us_is_southbound_in_swanton_and_northbound_in_tucson(swanton) -> None:
    """A crossing's direction is a compass direction; entering the US is southbound here."""
    border = swanton.site.border()
    pts = [(45.0030, -73.150), (45.010, -73.45), (45.000, -73.05)]  # water and land
    lat, lon = np.array(pts).T
    assert set(border.entry_direction(*border.frame.to_local(lat, lon)).tolist()) == {"southbound"}
    tucson = load(DATA / "tucson.toml").site.border()
    x, y = np.asarray(tucson.line.coords).T
    assert set(tucson.entry_direction(x, y).tolist()) == {"northbound"}


@pytest.mark.parametrize(("direction", "alerts"), [("southbound", 1), ("northbound", 0)])
def test_a_person_crossing_missisquoi_bay_southbound_raises_the_crossing_alert(
    swanton, direction: str, alerts: int
) -> None:
    """On the ice of Missisquoi Bay (chainage about 28 km), walking south into Vermont is the
    entry that raises an alert; the same walk reported northbound (into Quebec) raises none."""
    engine = AlertEngine(swanton.site)
    scene = Scene(engine)
    chainage = 28_500.0
    x, y = scene.border_point(chainage, 0.0)
    lat, lon = engine.frame.to_wgs84([x], [y])
    assert 45.0 < lat[0] < 45.01 and -73.19 < lon[0] < -73.10  # on the bay
    *tracks, crossing = scene.walk_messages("ice1", chainage, T0, start_m=-20.0)
    out = []
    for msg in [*tracks, msgspec.structs.replace(crossing, direction=direction)]:
        out += engine.handle(msg)
    new = alerts_of(out, "crossing")
    assert len(new) == alerts
    if alerts:
        assert new[0].summary.startswith("southbound crossing on swanton-0028")
