"""The simulator's switches and rates, as one frozen struct a deployment file can carry."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

#: 2026-06-01T00:00:00Z: the default start of a simulation, UTC seconds since the epoch.
DEFAULT_START_TIME = 1_780_272_000.0

#: Relative weight of each local hour (0..23) in the crossing schedule: mostly at night.
NIGHT_HEAVY_HOURS: tuple[float, ...] = (
    9.0, 10.0, 10.0, 9.0, 7.0, 4.0, 2.0, 1.0, 0.5, 0.5, 0.5, 0.5,
    0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.5, 3.0, 5.0, 7.0, 8.0, 9.0,
)  # fmt: skip

Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Meta(ge=0.0)]


class SimSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the simulator makes and how: each nuisance has a switch and a size.

    Times are UTC seconds since the epoch; rates per hour unless named otherwise; image
    quantities in digital numbers (DN, 0-255) or pixels.
    """

    start_time: Annotated[float, Meta(ge=946_684_800.0, le=4_102_444_800.0)] = DEFAULT_START_TIME
    #: The place's climate (:mod:`vigil.sim.climate`): animal species, night thermal contrast;
    #: ``None`` takes the site's ``[sector] climate`` (the default, ``"sonoran"``, is the
    #: simulator as it was before climates).
    climate: Literal["sonoran", "northern"] | None = None
    # -- cameras ----------------------------------------------------------------------------
    cameras: Literal["render", "truth", "off"] = "render"
    towers: tuple[str, ...] = ()  # towers to simulate; empty means all
    frame_rate_hz: Annotated[float, Meta(gt=0.0, le=60.0)] | None = None
    frame_width: Annotated[int, Meta(ge=64, le=7680)] | None = None
    frame_height: Annotated[int, Meta(ge=48, le=4320)] | None = None
    sensor_noise: bool = True
    noise_dn: Annotated[float, Meta(ge=0.0, le=50.0)] = 0.7
    gain_drift: bool = True
    gain_drift_fraction: Annotated[float, Meta(ge=0.0, le=0.5)] = 0.08
    shimmer: bool = True
    shimmer_px: Annotated[float, Meta(ge=0.0, le=10.0)] = 0.8
    vegetation: bool = True
    vegetation_dn: Annotated[float, Meta(ge=0.0, le=60.0)] = 5.0
    shake: bool = True
    shake_per_hour: Annotated[float, Meta(ge=0.0, le=3600.0)] = 4.0
    shake_px: Annotated[float, Meta(ge=0.0, le=50.0)] = 2.0
    slew_deg_per_s: Annotated[float, Meta(gt=0.0, le=360.0)] = 30.0
    visible_contrast_dn: Annotated[float, Meta(ge=0.0, le=255.0)] = 2.0
    render_threads: Annotated[int, Meta(ge=1, le=64)] = 2
    # -- movers -----------------------------------------------------------------------------
    crossings: bool = True
    crossing_rate_scale: Annotated[float, Meta(ge=0.0, le=1000.0)] = 1.0
    crossing_hour_weights: Annotated[
        tuple[NonNegative, ...], Meta(min_length=24, max_length=24)
    ] = NIGHT_HEAVY_HOURS
    group_size_max: Annotated[int, Meta(ge=1, le=15)] = 15
    turn_back_before: Fraction = 0.08
    turn_back_after: Fraction = 0.05
    stop_probability: Fraction = 0.35
    animals: bool = True
    animals_per_km: Annotated[float, Meta(ge=0.0, le=100.0)] = 0.6
    road_traffic: bool = True
    traffic_scale: Annotated[float, Meta(ge=0.0, le=100.0)] = 1.0
    # -- ground sensors ---------------------------------------------------------------------
    ugs: bool = True
    ugs_tick_s: Annotated[float, Meta(ge=0.1, le=60.0)] = 1.0
    ugs_holdoff_s: Annotated[float, Meta(ge=0.0, le=600.0)] = 5.0
    ugs_status_interval_s: Annotated[float, Meta(ge=1.0, le=86_400.0)] = 60.0
    wind_nuisance_per_hour: Annotated[float, Meta(ge=0.0, le=3600.0)] = 0.5
    battery_drain_per_day: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.004
    malformed_rate: Fraction = 0.002
    skewed_rate: Fraction = 0.002
    clock_skew_s: Annotated[float, Meta(ge=-1e7, le=1e7)] = 3600.0
    # -- aircraft ---------------------------------------------------------------------------
    uas: bool = True
    uas_telemetry_hz: Annotated[float, Meta(gt=0.0, le=50.0)] = 2.0
    uas_detection_hz: Annotated[float, Meta(gt=0.0, le=50.0)] = 1.0
    # -- files ------------------------------------------------------------------------------
    truth_sample_s: Annotated[float, Meta(ge=0.1, le=3600.0)] = 1.0
