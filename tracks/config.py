"""The tracker's settings, one frozen struct that the deployment file can carry.

Units: metres, seconds, metres per second. Bounds are checked when the struct is built with
:func:`msgspec.convert` (as the deployment loader does) and by :meth:`TrackerConfig.check`
when built in code.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

#: The classes a track can be; the column order of every class-probability array.
CLASSES: tuple[str, str, str] = ("person", "vehicle", "animal")


class TrackerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How tracks are filtered, gated, associated, confirmed, coasted and deleted.

    Attributes
    ----------
    process_noise
        Nearly-constant-velocity acceleration noise spectral density, m^2/s^3 per axis.
    initial_speed_sigma_mps
        Standard deviation of each velocity component of a new track, m/s.
    detection_probability
        Probability that a sensor in view reports a target (Pd), used in association costs.
    clutter_density_per_m2
        Spatial density of false and new-target detections (lambda), per m^2 per batch.
    gate_probability
        Chi-square (2 dof) gate probability; the gate is ``d^2 <= -2 ln(1 - p)``.
    confirm_m, confirm_n
        A tentative track is confirmed with ``m`` hits in its last ``n`` batches in view,
        and deleted when its first ``n`` batches cannot give ``m`` hits.
    tentative_max_gap_s
        A tentative track not updated for this long is deleted, seconds.
    max_coast_s
        A confirmed track not updated for this long is deleted, seconds; until then it
        coasts on its prediction and keeps its id.
    max_position_sigma_m
        A track whose larger position standard deviation exceeds this is deleted, metres.
    default_sigma_m
        Measurement standard deviation per axis when a detection brings none, metres.
    out_of_sequence_lag_s
        How far behind the newest batch a batch may arrive and still be applied in time
        order (the tracker replays from a snapshot), seconds.
    class_floor
        Mixing toward uniform after each class update, so that no class is ever ruled out.
    ugs_can_initiate
        Whether ground-sensor events start tentative tracks.
    camera_angular_sigma_rad, camera_sigma_floor_m
        Camera ground error used when a detection's covariance is degenerate:
        ``sigma = floor + range * angular``, metres.
    uas_footprint_error_fraction
        Aircraft detections get their covariance inflated by this fraction of the camera
        footprint's span (pointing and altitude error), as a standard deviation.
    """

    process_noise: Annotated[float, Meta(gt=0.0, le=1e4)] = 0.1
    initial_speed_sigma_mps: Annotated[float, Meta(gt=0.0, le=100.0)] = 5.0
    detection_probability: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.9
    clutter_density_per_m2: Annotated[float, Meta(gt=0.0, le=1.0)] = 1e-6
    gate_probability: Annotated[float, Meta(gt=0.5, lt=1.0)] = 0.999
    confirm_m: Annotated[int, Meta(ge=1, le=31)] = 3
    confirm_n: Annotated[int, Meta(ge=1, le=31)] = 4
    tentative_max_gap_s: Annotated[float, Meta(gt=0.0, le=600.0)] = 2.5
    max_coast_s: Annotated[float, Meta(gt=0.0, le=3600.0)] = 5.0
    max_position_sigma_m: Annotated[float, Meta(gt=0.0, le=1e5)] = 200.0
    default_sigma_m: Annotated[float, Meta(gt=0.0, le=1e4)] = 5.0
    out_of_sequence_lag_s: Annotated[float, Meta(ge=0.0, le=600.0)] = 5.0
    class_floor: Annotated[float, Meta(ge=0.0, lt=0.5)] = 0.01
    ugs_can_initiate: bool = True
    camera_angular_sigma_rad: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.002
    camera_sigma_floor_m: Annotated[float, Meta(ge=0.0, le=1e3)] = 1.0
    uas_footprint_error_fraction: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.02

    def check(self) -> TrackerConfig:
        """Validate bounds and cross-field rules; return self or raise ``ValueError``."""
        try:
            checked = msgspec.convert(msgspec.to_builtins(self), type(self))
        except msgspec.ValidationError as exc:
            raise ValueError(f"tracker config: {exc}") from None
        if checked.confirm_m > checked.confirm_n:
            raise ValueError(
                f"tracker config: confirm_m = {self.confirm_m} > confirm_n = {self.confirm_n}; "
                "expected m <= n (m hits out of n batches)"
            )
        return self
