"""Climates and seasons: which animals live along the line and how bodies stand out at night.

A deployment's ``[sector] climate`` names the place's climate; the simulator takes the season
from its start date (UTC month). Each season sets

- the animal species and their shares (:data:`vigil.sim.animals.SPECIES` gives each one's
  speed, home range and pauses);
- ``body_contrast``: a factor on every warm body's thermal contrast against the ground at
  night. On the Sonoran desert's summer nights the ground stays at 25-30 °C, a few degrees
  below a person's surface, which is what the movers' night contrasts (``BODY``) are set
  for (factor 1). On snow at -10 to -20 °C a clothed person's or an animal's surface is 15-25
  degrees warmer than the ground, roughly twice the desert's difference: an assumed factor of
  1.6 (not fitted to any camera);
- ``day_washout``: the share of that contrast lost at mid-afternoon, when the sun heats the
  ground (0.55 in the desert; 0.2 on snow, which reflects most of a low winter sun).

The ``"sonoran"`` climate reproduces the simulator as it was before climates existed, bit for
bit: the same species in the same order and shares, factor 1 and washout 0.55, in every month.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

from .settings import SimSettings


@dataclass(frozen=True)
class Season:
    """One season of a climate: animal shares, night contrast factor, daytime washout."""

    name: str
    #: species name -> share of the animal population (shares need not sum to 1)
    species: Mapping[str, float]
    #: factor on each body's night thermal contrast (1: the desert summer the movers assume)
    body_contrast: float = 1.0
    #: share of the contrast lost at mid-afternoon (0..1)
    day_washout: float = 0.55


@dataclass(frozen=True)
class Climate:
    """A place's climate: its summer and winter seasons and the demo's start."""

    name: str
    summer: Season
    winter: Season
    #: UTC months (1-12) that take the winter season
    winter_months: frozenset[int] = field(default_factory=frozenset)
    #: the demo's default start: (year, month, day, local hour), a busy night of the season
    demo_start: tuple[int, int, int, int] = (2026, 6, 1, 2)

    def season_at(self, t_utc: float) -> Season:
        """The season in force at UTC time ``t_utc`` (seconds since the epoch)."""
        month = datetime.fromtimestamp(t_utc, tz=UTC).month
        return self.winter if month in self.winter_months else self.summer

    def demo_start_utc(self, timezone: str) -> float:
        """The demo's default start in UTC seconds, at local ``demo_start`` in ``timezone``."""
        y, m, d, h = self.demo_start
        return datetime(y, m, d, h, tzinfo=ZoneInfo(timezone)).timestamp()


_DESERT = Season(
    "desert", MappingProxyType({"cattle": 0.5, "deer": 0.25, "coyote": 0.25}), 1.0, 0.55
)
#: Northern forest and farmland edge (Lake Champlain lowlands, Quebec border): white-tailed
#: deer most of all, coyotes, and now and then a moose; cattle stay in barns in winter.
_NORTH_ANIMALS = MappingProxyType({"deer": 0.6, "coyote": 0.25, "moose": 0.15})

CLIMATES: Mapping[str, Climate] = MappingProxyType(
    {
        "sonoran": Climate("sonoran", _DESERT, _DESERT),
        "northern": Climate(
            "northern",
            summer=Season("northern summer", _NORTH_ANIMALS, 1.0, 0.55),
            winter=Season("snow", _NORTH_ANIMALS, 1.6, 0.2),
            winter_months=frozenset({12, 1, 2, 3}),
            demo_start=(2027, 1, 15, 2),
        ),
    }
)
#: The climate a site or settings that name none get.
DEFAULT_CLIMATE = "sonoran"


def climate_named(name: str | None) -> Climate:
    """The climate called ``name`` (the default one for ``None``); ``KeyError`` names the rest."""
    key = DEFAULT_CLIMATE if name is None else name
    if key not in CLIMATES:
        raise KeyError(f"climate {key!r} is not known; expected one of {sorted(CLIMATES)}")
    return CLIMATES[key]


def season_for(settings: SimSettings) -> Season:
    """The season a simulation runs in: its climate's season at its start time."""
    return climate_named(settings.climate).season_at(settings.start_time)
