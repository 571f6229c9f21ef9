"""Alert rules as configured in the deployment file's ``[alerts]`` table."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

Seconds = Annotated[float, Meta(ge=0.0, le=7 * 86400.0)]
Metres = Annotated[float, Meta(ge=0.0, le=100_000.0)]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
Priority = Annotated[int, Meta(ge=1, le=5)]


class AlertRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which alerts fire, how they are grouped and limited, and their priorities.

    Distances in metres, times in seconds, probabilities 0 to 1; priority 1 is the highest.
    """

    crossing: bool = True
    crossing_priority: Priority = 1
    #: A crossing alert needs the track's person probability at least this high.
    min_person_probability: Probability = 0.8
    #: ... and at least this many fused detections behind the track.
    min_track_updates: Annotated[int, Meta(ge=1, le=1000)] = 8
    #: ... and a speed people keep up, m/s (walkers 0.8-1.8, a jog 3).
    max_person_speed_mps: Annotated[float, Meta(gt=0.0, le=100.0)] = 3.5
    #: Crossings within this distance and time of an open alert join it (one group, one alert).
    group_radius_m: Metres = 250.0
    group_window_s: Seconds = 180.0
    #: ... and a crossing the monitor inferred rather than saw (``confidence`` < 1: a group
    #: lost near the line and found again in the US by a new track) joins within these: its
    #: time and place are estimates (on calibration seeds 1 and 2 fragment crossings were
    #: dated a median 150 s late, entries within +-200 s) and the group's own tracks, which
    #: kept the alert's place and time fresh, were lost before it.
    inferred_group_radius_m: Metres = 500.0
    inferred_group_window_s: Seconds = 600.0
    #: At most this many new crossing alerts per segment per window; more are merged.
    max_alerts_per_segment: Annotated[int, Meta(ge=1, le=1000)] = 3
    rate_window_s: Seconds = 1800.0

    zone_entry: bool = True

    sensor_cue: bool = True
    sensor_cue_priority: Priority = 3
    #: A ground-sensor hit counts as seen by a camera if a camera-fed track was this close.
    cue_seen_radius_m: Metres = 150.0
    cue_seen_window_s: Seconds = 30.0
    #: One cue alert per sensor line in this window; later hits update it.
    cue_window_s: Seconds = 600.0
    #: A cued tower looks this long, then turns back to its watch (its configured pointing).
    cue_dwell_s: Seconds = 120.0

    #: A northbound crossing whose track is not yet a corroborated person waits this long
    #: for the evidence (later updates of the track) before it is dropped.
    pending_crossing_s: Seconds = 600.0

    track_lost: bool = True
    track_lost_priority: Priority = 2
    track_lost_border_m: Metres = 2000.0
    #: Only tracks that crossed northbound (or have an open alert) raise ``track_lost``:
    #: losing a track that never crossed is not news.
    track_lost_needs_crossing: bool = True

    sensor_health: bool = True
    sensor_health_priority: Priority = 4
    tamper_priority: Priority = 2
    silent_after_s: Seconds = 900.0
    low_battery: Probability = 0.1

    #: Position updates of an open alert are published at most this often.
    update_interval_s: Seconds = 20.0
    #: How far ahead the intercept search looks, seconds.
    intercept_horizon_s: Seconds = 3600.0
