"""The alert rule's interface: what every rule sees, and the messages it may react to.

One rule per alert kind (:data:`vigil.ingest.schema.AlertKind`) decides when its kind of
alert is raised or updated; the alert book (:class:`vigil.alerts.book.AlertBook`) builds,
publishes and keeps the alerts. :class:`vigil.alerts.engine.AlertEngine` feeds every rule
every message in a fixed order, so a rule reacts only to what concerns it and returns the
messages to publish (alerts, camera commands).
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass, field
from typing import ClassVar

from shapely.geometry import Polygon

from vigil.alerts.book import AlertBook, TrackInfo
from vigil.alerts.rules import AlertRules
from vigil.geo.border import Border
from vigil.geo.camera import PinholeCamera
from vigil.geo.frames import LocalFrame
from vigil.ingest.schema import (
    AlertKind,
    Crossing,
    SensorEvent,
    SensorStatus,
    Track,
    Wire,
)


@dataclass(frozen=True)
class RuleContext:
    """What every alert rule sees: the settings, the sector's layout in its local frame
    (metres), the tracks alive now, and the alert book.

    ``zones`` are ``(zone id, priority, polygon)`` and ``zone_names`` their names by id (what
    a person reads in an alert's summary); ``sensor_xy`` gives each ground sensor's
    ``(x, y, detection radius, sensor line or None)`` in metres; ``cameras`` are the towers'
    cameras as configured (their watch); ``tracks`` is shared with the engine, which keeps it.
    """

    settings: AlertRules
    frame: LocalFrame
    border: Border
    zones: list[tuple[str, int, Polygon]]
    sensor_xy: dict[str, tuple[float, float, float, str | None]]
    cameras: dict[str, PinholeCamera]
    tracks: dict[str, TrackInfo]
    book: AlertBook
    zone_names: dict[str, str] = field(default_factory=dict)


class AlertRule(ABC):  # noqa: B024 - every hook has a default; a rule overrides what it needs
    """Decides when one kind of alert is raised or updated.

    Every hook returns the messages to publish, in order; the defaults react to nothing.

    Parameters
    ----------
    context
        The settings, the sector's layout, the live tracks and the alert book.
    """

    #: The kind of alert this rule raises.
    kind: ClassVar[AlertKind]

    def __init__(self, context: RuleContext) -> None:
        self.context = context
        self.settings = context.settings
        self.book = context.book
        self.counts = context.book.counts

    def on_track(self, info: TrackInfo) -> list[Wire]:
        """A track's update (``info.last``, already remembered), ended tracks included."""
        return []

    def on_crossing(self, crossing: Crossing) -> list[Wire]:
        """The crossing monitor reports a track crossing the border."""
        return []

    def on_sensor_event(self, event: SensorEvent) -> list[Wire]:
        """A ground sensor's hit."""
        return []

    def on_sensor_status(self, status: SensorStatus) -> list[Wire]:
        """A ground sensor's health report."""
        return []

    def on_tick(self, now: float) -> list[Wire]:
        """Time passes (UTC seconds) with no message."""
        return []

    def merge_tracks(self, merged: str, into: str) -> None:  # noqa: B027 - most hold nothing
        """Fusion folded track ``merged`` into ``into``: what the rule holds for the one goes
        to the other (the alert book has moved its alert already)."""

    def is_person(self, trk: Track) -> bool:
        """Whether a track counts as a person: its most likely class is not ``animal`` and
        its person probability reaches the rule's threshold (its class guess without
        probabilities)."""
        probs = trk.class_probs
        if not probs:
            return trk.class_guess == "person"
        best = max(probs, key=probs.get)  # type: ignore[arg-type]
        return best != "animal" and probs.get("person", 0.0) >= self.settings.min_person_probability


def move_entry(table: dict[str, Crossing], merged: str, into: str) -> None:
    """Move a track's entry in ``table`` to the track it was merged into, unless that has one."""
    c = table.pop(merged, None)
    if c is not None and into not in table:
        table[into] = c


def local_xy(frame: LocalFrame, lat: float, lon: float) -> tuple[float, float]:
    """One WGS84 position (degrees) in the sector's local frame (metres)."""
    x, y = frame.to_local([lat], [lon])
    return float(x[0]), float(y[0])
