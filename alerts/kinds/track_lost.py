"""Track-lost alerts: a person track that crossed ends close north of the border."""

from __future__ import annotations

from vigil.alerts.book import TrackInfo
from vigil.alerts.kinds.base import AlertRule, RuleContext, local_xy, move_entry
from vigil.geo.border import US_SIDE
from vigil.ingest.schema import Crossing, Wire


class TrackLostRule(AlertRule):
    """Raises an alert when a person track ends on the US side within
    ``track_lost_border_m`` of the border; a track with an open alert updates it instead.

    With ``track_lost_needs_crossing``, only tracks that crossed northbound (or have an open
    alert) count: losing a track that never crossed is no news.
    """

    kind = "track_lost"

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: Northbound crossings by live tracks.
        self.crossed: dict[str, Crossing] = {}

    def on_crossing(self, crossing: Crossing) -> list[Wire]:
        c = crossing  # into the US (northbound on the southern border, southbound up north)
        entry = self.context.border.entry_direction(*local_xy(self.context.frame, c.lat, c.lon))
        if c.direction == entry[0] and c.track_id in self.context.tracks:
            self.crossed[crossing.track_id] = crossing
        return []

    def on_track(self, info: TrackInfo) -> list[Wire]:
        if info.last.state != "ended":
            return []
        out = self._lost(info)
        self.crossed.pop(info.last.track_id, None)
        return out

    def merge_tracks(self, merged: str, into: str) -> None:
        move_entry(self.crossed, merged, into)

    def _lost(self, info: TrackInfo) -> list[Wire]:
        s = self.settings
        if not s.track_lost:
            return []
        tid = info.last.track_id
        oa = self.book.alert_for_track(tid)
        if oa is None and s.track_lost_needs_crossing and tid not in self.crossed:
            return []
        if not self.is_person(info.last):
            return []
        border = self.context.border
        side = border.side([info.x], [info.y])[0]
        dist = float(border.distance([info.x], [info.y])[0])
        if side != US_SIDE or dist > s.track_lost_border_m:
            return []
        if oa is not None:
            return self.book.update(oa, info, note="track lost")
        if info.updates < s.min_track_updates:
            return []
        alert = self.book.new(
            "track_lost",
            s.track_lost_priority,
            info.x,
            info.y,
            track=info,
            summary=f"track {tid} lost {dist:.0f} m north of the border",
        )
        return [alert]
