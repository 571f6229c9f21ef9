"""Perturbations of the simulated world that make it as hard as the field, each with a switch
and a size (issue 22).

:class:`Perturbations` holds one small struct per family; each family has ``on`` and the sizes
of its effect. ``Perturbations.none()`` switches every family off and is the simulator exactly
as it was before perturbations (the default of :class:`vigil.sim.World`);
``Perturbations.field()`` (equal to ``Perturbations()``) has every family on at the field's
sizes, justified in each field's comment. Units: pixels (px) of the tower camera, digital
numbers (DN, 0-255) of its 8-bit frames, seconds, metres, local hours.

The rendering of the camera families is in :mod:`vigil.sim.perturbations_render`; the bodies
in :mod:`vigil.sim.perturbations_bodies`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]

#: Random stream tags of the perturbations (the simulator's others are below 40).
STREAM_FPN, STREAM_COLUMN, STREAM_FFC, STREAM_BODIES = 40, 41, 42, 43
STREAM_UAS_CONFUSION, STREAM_UAS_FALSE, STREAM_UGS_NUISANCE, STREAM_GROUPS = 44, 45, 46, 47
STREAM_DUST, STREAM_OFFROAD, STREAM_BIRDS, STREAM_SMALL_ANIMALS = 48, 49, 50, 51

#: The aircraft classifier's P(guess | true class) in the field (rows sum to 1): small-UAS
#: EO/IR classifiers at 100-300 m above ground confuse people and animals one time in six to
#: eight and give up ("unknown") about as often; vehicles they rarely miss.
UAS_CONFUSION: dict[str, dict[str, float]] = {
    "person": {"person": 0.75, "animal": 0.12, "vehicle": 0.01, "unknown": 0.12},
    "animal": {"person": 0.15, "animal": 0.65, "vehicle": 0.01, "unknown": 0.19},
    "vehicle": {"person": 0.02, "animal": 0.02, "vehicle": 0.88, "unknown": 0.08},
}
#: What the aircraft calls a false alarm (a warm rock, a shrub, a water trough).
UAS_FALSE_GUESS: dict[str, float] = {"person": 0.4, "animal": 0.4, "vehicle": 0.05, "unknown": 0.15}


class _Family(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One family of perturbations: ``on`` switches it; the other fields size it."""

    on: bool = True


class Blur(_Family, frozen=True, kw_only=True):
    """Optical blur: a Gaussian point-spread function over the whole scene (bodies and ground).

    ``sigma_px``: the PSF's standard deviation, pixels. 0.8 px is the blur of an uncooled
    640x480 LWIR camera with an f/1.0-1.2 lens on 17 µm pixels: the diffraction spot at 10 µm
    (Airy core ≈ 2.44 λ N ≈ 27 µm, σ ≈ 0.42 λ N ≈ 5 µm ≈ 0.3 px) widened by defocus, lens
    aberrations and pixel crosstalk to an MTF of ~0.3 at Nyquist, which a Gaussian of σ ≈ 0.8 px
    gives (MTF(0.5 cyc/px) = exp(-2 π² σ² 0.25) = 0.28).
    """

    sigma_px: Annotated[float, Meta(ge=0.0, le=10.0)] = 0.8


class FixedPattern(_Family, frozen=True, kw_only=True):
    """Fixed-pattern noise that stays after the camera's correction, in DN.

    ``pixel_dn``: per-pixel offset (residual non-uniformity), fixed for the run. ``column_dn``:
    per-column offset, fixed (the readout's column amplifiers). ``column_temporal_dn``: a new
    per-column offset each frame. Microbolometer cores after factory NUC leave ~0.5-1 DN of
    spatial noise at a 0.7 DN temporal noise (the ratio ~1 of published FPN/temporal
    figures); column offsets are the most visible part, about as large.
    """

    pixel_dn: Annotated[float, Meta(ge=0.0, le=50.0)] = 0.5
    column_dn: Annotated[float, Meta(ge=0.0, le=50.0)] = 0.8
    column_temporal_dn: Annotated[float, Meta(ge=0.0, le=50.0)] = 0.3


class FlatField(_Family, frozen=True, kw_only=True):
    """Flat-field corrections: the shutter closes, the picture freezes, then the level jumps.

    ``mean_interval_s``: mean time between corrections (Poisson; cores correct on a timer of a
    few minutes and on core-temperature change, more often while warming). ``freeze_s``: how
    long the output repeats the last frame (shutter travel, ~0.3-0.5 s). ``jump_dn``: standard
    deviation of the whole frame's level after each correction, DN (a few DN on 8-bit AGC'd
    output).
    """

    mean_interval_s: Annotated[float, Meta(ge=1.0, le=86_400.0)] = 180.0
    freeze_s: Annotated[float, Meta(ge=0.0, le=10.0)] = 0.4
    jump_dn: Annotated[float, Meta(ge=0.0, le=50.0)] = 2.0


class Agc(_Family, frozen=True, kw_only=True):
    """Automatic gain control that steps when a hot object enters the view.

    A visible body of contrast at least ``trigger_dn`` covering at least ``trigger_px`` pixels
    stretches the histogram: the frame's gain about its mean level falls by ``step`` (the
    new gain is ``1 / (1 + step)``), approached with time constant ``tau_s``. 68 DN is above
    every walker and animal (people 60 DN) and at cars and up (70-85 DN); a 25 % step is what a
    hot engine does to a plateau-equalised histogram; real AGC filters over ~0.5-1 s.
    """

    trigger_dn: Annotated[float, Meta(ge=0.0, le=255.0)] = 68.0
    trigger_px: Annotated[float, Meta(ge=0.0)] = 20.0
    step: Annotated[float, Meta(ge=0.0, le=10.0)] = 0.25
    tau_s: Annotated[float, Meta(ge=0.0, le=60.0)] = 0.7


class Crossover(_Family, frozen=True, kw_only=True):
    """Thermal crossover: bodies lose their contrast in the morning and turn colder than the
    sun-heated ground through the day, by season (northern hemisphere).

    ``morning_hour``: local hour when a body's contrast crosses zero in mid-summer (sand heats
    past skin/clothing temperature ~2.5 h after sunrise). ``winter_delay_h``: how much later the
    crossover comes in mid-winter (lower sun). ``negative_summer`` / ``negative_winter``: the
    contrast at the afternoon peak as a fraction of the night contrast, negative (desert sand at
    50-60 °C against clothing at 35-40 °C). The evening crossover mirrors the morning one
    about 13:30. Replaces the season's day washout while on.
    """

    morning_hour: Annotated[float, Meta(ge=6.6, le=12.0)] = 9.0
    winter_delay_h: Annotated[float, Meta(ge=0.0, le=3.0)] = 1.5
    negative_summer: Fraction = 0.4
    negative_winter: Fraction = 0.1


class Attenuation(_Family, frozen=True, kw_only=True):
    """Atmospheric attenuation of bodies' contrast by range.

    ``extinction_per_km``: the 8-14 µm extinction coefficient; contrast falls by
    ``exp(-extinction_per_km * range_km)``. 0.2/km is a dry desert night (transmission ~0.8 per
    km); humid or dusty air reaches 0.5-1/km.
    """

    extinction_per_km: Annotated[float, Meta(ge=0.0, le=10.0)] = 0.2


class Brush(_Family, frozen=True, kw_only=True):
    """Occlusion by brush: a bush between a body and the camera hides the body's lower part.

    A body whose ground cell, or one within ``look_m`` toward the camera, is bush (the same
    4 m bush cells the ground texture draws, 18 % of the ground) loses its bottom
    ``height_m`` (creosote and mesquite scrub 0.5-1.5 m); a body lower than that is hidden.
    """

    height_m: Annotated[float, Meta(ge=0.0, le=5.0)] = 0.8
    look_m: Annotated[float, Meta(ge=0.0, le=20.0)] = 2.0


class Dust(_Family, frozen=True, kw_only=True):
    """Dust devils: warm diffuse columns drifting over the ground by day; no body, no truth.

    ``per_hour``: dust devils per tower-hour in the camera's field of view at the afternoon's
    peak heating (scaled by the daylight heating; none at night). Each lasts
    ``min_s``-``max_s``, is ``width_m`` wide and ``height_m`` tall (a Gaussian column), drifts
    at 1-6 m/s and is ``contrast_dn`` warmer than the ground at its peak (dust carries heat up
    from a ground at 50-60 °C; a few DN at 8-bit AGC). Placed 300 m to the camera's rated
    range, across its field of view.
    """

    per_hour: Annotated[float, Meta(ge=0.0, le=3600.0)] = 3.0
    min_s: Annotated[float, Meta(ge=1.0, le=3600.0)] = 60.0
    max_s: Annotated[float, Meta(ge=1.0, le=3600.0)] = 300.0
    width_m: Annotated[float, Meta(gt=0.0, le=200.0)] = 10.0
    height_m: Annotated[float, Meta(gt=0.0, le=2000.0)] = 60.0
    contrast_dn: Annotated[float, Meta(ge=-50.0, le=50.0)] = 6.0


class Birds(_Family, frozen=True, kw_only=True):
    """Birds flying through the view: small warm bodies, fast across the image; no truth (the
    world's movers are on the ground), so every detection of one is a false one.

    ``per_hour``: birds per tower-hour crossing the field of view (ravens, doves, nighthawks;
    more at dawn and dusk, here even), ``range_min_m``-``range_max_m`` out, 5-40 m up, at
    8-15 m/s, ``size_m`` across, ``contrast_dn`` warmer than the scene behind.
    """

    per_hour: Annotated[float, Meta(ge=0.0, le=3600.0)] = 6.0
    range_min_m: Annotated[float, Meta(gt=0.0, le=20_000.0)] = 40.0
    range_max_m: Annotated[float, Meta(gt=0.0, le=20_000.0)] = 600.0
    size_m: Annotated[float, Meta(gt=0.0, le=5.0)] = 0.35
    contrast_dn: Annotated[float, Meta(ge=0.0, le=255.0)] = 40.0


class Bodies(_Family, frozen=True, kw_only=True):
    """Bodies of varying size and pose.

    ``size_sd``: standard deviation of a log-normal size factor per mover (adult stature
    varies ~5 %, animals more). People: ``crouch_probability`` of each person crouches while
    stopped (height ×0.6, width ×1.3); ``load_probability`` carry a load (width +0.3 m,
    height +0.15 m: a 20-25 kg pack or bundle). Cattle: ``lying_probability`` lie down while
    stopped (height 0.8 m, width ×1.1); ``calf_probability`` are calves (size ×0.6).
    """

    size_sd: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.07
    crouch_probability: Fraction = 0.3
    load_probability: Fraction = 0.4
    lying_probability: Fraction = 0.4
    calf_probability: Fraction = 0.2


class Groups(_Family, frozen=True, kw_only=True):
    """Groups that string out in file while walking, bunch up at rests, split and re-form.

    Walking, a group's members follow its route one behind the other over a file of
    ``string_min_m``-``string_max_m`` (uniform per group; guides keep groups strung out over
    50-200 m on the trails) and close up where the group rests. ``split_probability`` of the
    groups of three or more split: their rear half walks apart, up to ``split_m`` to the side
    of the route, for ``split_share`` of the group's walk, then rejoins.
    """

    string_min_m: Annotated[float, Meta(ge=0.0, le=2000.0)] = 50.0
    string_max_m: Annotated[float, Meta(ge=0.0, le=2000.0)] = 200.0
    split_probability: Fraction = 0.2
    split_m: Annotated[float, Meta(ge=0.0, le=5000.0)] = 150.0
    split_share: Fraction = 0.3

    def __post_init__(self) -> None:
        if self.string_max_m < self.string_min_m:
            raise ValueError(f"string_max_m {self.string_max_m} < string_min_m {self.string_min_m}")


class Runners(_Family, frozen=True, kw_only=True):
    """Groups that run across the line.

    ``probability`` of the groups run ``run_s`` seconds either side of their crossing at
    ``speed_min_mps``-``speed_max_mps`` (a jog to a sprint with a load); the crossing time is
    kept, the walk before and after shifts.
    """

    probability: Fraction = 0.05
    run_s: Annotated[float, Meta(ge=0.0, le=3600.0)] = 120.0
    speed_min_mps: Annotated[float, Meta(gt=0.0, le=12.0)] = 2.5
    speed_max_mps: Annotated[float, Meta(gt=0.0, le=12.0)] = 4.0


class LayUps(_Family, frozen=True, kw_only=True):
    """Lay-ups: groups that hide up for hours, before the line (waiting for dark or for the
    patrol to move) or after it (waiting for a pickup).

    ``probability`` of the groups lay up once, ``min_h``-``max_h`` hours (uniform), at a knot
    of their route before or after the line (even odds); the crossing time is kept, the walk
    before it starts earlier (or the walk after it ends later).
    """

    probability: Fraction = 0.1
    min_h: Annotated[float, Meta(ge=0.0, le=48.0)] = 1.0
    max_h: Annotated[float, Meta(ge=0.0, le=48.0)] = 6.0

    def __post_init__(self) -> None:
        if self.max_h < self.min_h:
            raise ValueError(f"max_h {self.max_h} < min_h {self.min_h}")


class OffRoad(_Family, frozen=True, kw_only=True):
    """Vehicles off the roads: ranch pickups and ATVs on dirt tracks on the US side.

    ``per_hour``: vehicles per sector-hour (a few a day: ranchers, hunters, recreation), each
    driving 3-6 km at 4-12 m/s on a track wandering 150-2,500 m from the line.
    """

    per_hour: Annotated[float, Meta(ge=0.0, le=100.0)] = 0.2


class SmallAnimals(_Family, frozen=True, kw_only=True):
    """Small fast animals: jackrabbits dashing and stopping near the line (class animal).

    ``per_km_hour``: animals appearing per km of border per hour, each within 1.5 km of the
    line on either side, making 3-10 dashes of 10-60 m at 4-10 m/s with pauses of 5-120 s.
    Too small to count as crossings (the truth has them as movers, not crossings), so an
    alert for one is a false one.
    """

    per_km_hour: Annotated[float, Meta(ge=0.0, le=100.0)] = 0.3


def _check_rows(name: str, rows: dict[str, dict[str, float]]) -> None:
    for cls, row in rows.items():
        if any(v < 0 for v in row.values()) or abs(sum(row.values()) - 1.0) > 1e-6:
            raise ValueError(f"{name}[{cls!r}] must be probabilities summing to 1; got {row}")


class UasClassifier(_Family, frozen=True, kw_only=True):
    """The aircraft's classifier: a confusion matrix and false alarms.

    ``confusion``: P(class guess | true class), rows summing to 1 (default
    :data:`UAS_CONFUSION`). ``false_per_hour``: detections of nothing inside the footprint per
    aircraft-hour (2/h: warm rocks and troughs an IR detector at 0.99 specificity per frame
    still passes now and then), guessed by ``false_guess``.
    """

    confusion: dict[str, dict[str, float]] = msgspec.field(
        default_factory=lambda: {k: dict(v) for k, v in UAS_CONFUSION.items()}
    )
    false_per_hour: Annotated[float, Meta(ge=0.0, le=3600.0)] = 2.0
    false_guess: dict[str, float] = msgspec.field(default_factory=lambda: dict(UAS_FALSE_GUESS))

    def __post_init__(self) -> None:
        _check_rows("confusion", self.confusion)
        _check_rows("false_guess", {"false alarm": self.false_guess})
        missing = {"person", "animal", "vehicle"} - set(self.confusion)
        if missing:
            raise ValueError(f"confusion has no rows for {sorted(missing)}")


class UgsNuisance(_Family, frozen=True, kw_only=True):
    """Ground-sensor alarms from things the world does not otherwise simulate, beside wind.

    ``small_animal_per_hour``: alarms per sensor-hour from rabbits, rodents, birds and
    javelinas passing close (mostly at night, ×2 then, ×0.5 by day), felt by seismic and
    infrared sensors and guessed animal or person. ``far_vehicle_per_hour``: alarms per
    sensor-hour from vehicles beyond the sensor's rated radius (ranch trucks, a distant road),
    felt by seismic, acoustic and magnetic sensors and guessed vehicle or unknown. Field logs
    of border UGS put nuisance alarms at one to a few per sensor-day beside wind.
    """

    small_animal_per_hour: Annotated[float, Meta(ge=0.0, le=3600.0)] = 0.08
    far_vehicle_per_hour: Annotated[float, Meta(ge=0.0, le=3600.0)] = 0.04


class Perturbations(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every perturbation family, each with its switch and sizes; the defaults are the field's."""

    blur: Blur = Blur()
    fixed_pattern: FixedPattern = FixedPattern()
    flat_field: FlatField = FlatField()
    agc: Agc = Agc()
    crossover: Crossover = Crossover()
    attenuation: Attenuation = Attenuation()
    brush: Brush = Brush()
    dust: Dust = Dust()
    birds: Birds = Birds()
    bodies: Bodies = Bodies()
    groups: Groups = Groups()
    runners: Runners = Runners()
    lay_ups: LayUps = LayUps()
    off_road: OffRoad = OffRoad()
    small_animals: SmallAnimals = SmallAnimals()
    uas_classifier: UasClassifier = msgspec.field(default_factory=UasClassifier)
    ugs_nuisance: UgsNuisance = UgsNuisance()

    @classmethod
    def field(cls) -> Perturbations:
        """Every family on at the field's sizes."""
        return cls()

    @classmethod
    def none(cls) -> Perturbations:
        """Every family off: the simulated world exactly as before perturbations."""
        fam = {}
        for name in cls.__struct_fields__:
            default = getattr(cls(), name)
            fam[name] = msgspec.structs.replace(default, on=False)
        return cls(**fam)

    def only(self, *names: str) -> Perturbations:
        """These families as they are here, every other family off (to measure one alone)."""
        unknown = [n for n in names if n not in self.__struct_fields__]
        if unknown:
            raise ValueError(f"unknown perturbation families {unknown}; expected some of "
                             f"{list(self.__struct_fields__)}")  # fmt: skip
        off = Perturbations.none()
        return Perturbations(
            **{n: getattr(self if n in names else off, n) for n in self.__struct_fields__}
        )

    @property
    def any_on(self) -> bool:
        """Whether any family is on."""
        return any(getattr(self, n).on for n in self.__struct_fields__)
