"""Crossing alerts: a corroborated person crossing the border northbound."""

from __future__ import annotations

import math

from vigil.alerts.book import TrackInfo, add_crossing
from vigil.alerts.kinds.base import AlertRule, RuleContext, local_xy, move_entry
from vigil.ingest.schema import Crossing, Track, Wire


class CrossingRule(AlertRule):
    """Raises an alert when a track that is a corroborated person crosses northbound.

    A crossing whose track is not yet a corroborated person waits (pending) for the evidence
    of the track's later updates, up to ``pending_crossing_s``. Crossings near an open
    crossing alert in place and time (where it is now, or where one of its crossings was)
    join it: one group, one alert. An inferred crossing, whose time and place are estimates,
    joins within the wider inferred radius and window; a track already in an open crossing
    alert that crosses again updates it. A segment that has had its share of new alerts
    within the rate window merges further ones into its latest.
    """

    kind = "crossing"

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: Northbound crossings still waiting for evidence, by track.
        self.pending: dict[str, Crossing] = {}

    def on_track(self, info: TrackInfo) -> list[Wire]:
        trk = info.last
        if trk.state == "ended":
            self.pending.pop(trk.track_id, None)
            return []
        pending = self.pending.get(trk.track_id)
        if pending is None:
            return []
        if trk.time - pending.time > self.settings.pending_crossing_s:
            self.pending.pop(trk.track_id)
            self.counts["crossing_pending_expired"] += 1
        elif self.corroborated(trk, info):
            self.pending.pop(trk.track_id)
            self.counts["crossing_late_evidence"] += 1
            return self._raise(pending, info)
        return []

    def on_crossing(self, crossing: Crossing) -> list[Wire]:
        c = crossing
        # into the US: northbound on the southern border, southbound on the northern one
        entry = self.context.border.entry_direction(*local_xy(self.context.frame, c.lat, c.lon))
        if not self.settings.crossing or c.direction != entry[0]:
            self.counts["crossing_not_northbound"] += c.direction != entry[0]
            return []
        info = self.context.tracks.get(c.track_id)
        if info is None:
            self.counts["crossing_unknown_track"] += 1
            return []
        trk = info.last
        if not self.is_person(trk):
            # the evidence may still come (a far-off group looks like an animal at first)
            self.counts["crossing_not_person"] += 1
            self.pending[c.track_id] = c
            return []
        if not self.corroborated(trk, info):
            self.counts["crossing_uncorroborated"] += 1
            self.pending[c.track_id] = c
            return []
        return self._raise(c, info)

    def merge_tracks(self, merged: str, into: str) -> None:
        move_entry(self.pending, merged, into)
        if self.book.alert_for_track(into) is not None:
            self.pending.pop(into, None)  # already alerted on

    def corroborated(self, trk: Track, info: TrackInfo) -> bool:
        """A person track with enough fused detections behind it, moving at a pace people
        keep up (a faster one is a track hopping between false detections far apart along
        a tower's line of sight, or a vehicle)."""
        s = self.settings
        speed = math.hypot(trk.vx, trk.vy)
        return (
            self.is_person(trk)
            and info.updates >= s.min_track_updates
            and speed <= s.max_person_speed_mps
        )

    def _raise(self, c: Crossing, info: TrackInfo) -> list[Wire]:
        """A crossing whose track is a corroborated person: a new alert, or join one."""
        x, y = local_xy(self.context.frame, c.lat, c.lon)
        own = self.book.alert_for_track(c.track_id)
        if own is not None and own.alert.kind == "crossing" and own.alert.state != "closed":
            # the track's group is alerted already (it crossed before, or joined): one alert
            self.counts["crossing_track_alerted"] += 1
            add_crossing(own, x, y, c.time)
            return self.book.update(own, info, note=f"track {c.track_id} crosses again")
        group = self.book.find_group(x, y, c.time, ("crossing",), nearest=False)
        if group is None and c.confidence < 1.0:
            s = self.settings
            group = self.book.find_group(
                x,
                y,
                c.time,
                ("crossing",),
                nearest=True,
                radius_m=s.inferred_group_radius_m,
                window_s=s.inferred_group_window_s,
            )
            self.counts["crossing_inferred_grouped"] += group is not None
        if group is not None:
            self.counts["crossing_grouped"] += 1
            self.book.join(group, c.track_id)
            add_crossing(group, x, y, c.time)
            return self.book.update(group, info, note=f"track {c.track_id} joins the group")
        latest = self.book.rate_limit(c.segment_id, c.time)
        if latest is not None:
            self.counts["crossing_rate_limited"] += 1
            self.book.join(latest, c.track_id)
            add_crossing(latest, x, y, c.time)
            return self.book.update(latest, info, note=f"rate limit: track {c.track_id} merged")
        alert = self.book.new(
            "crossing",
            self.settings.crossing_priority,
            x,
            y,
            segment_id=c.segment_id,
            track=info,
            joined_by=c.track_id,
            summary=f"{c.direction} crossing on {c.segment_id}",
            when=c.time,
        )
        add_crossing(self.book.open[alert.alert_id], x, y, c.time)
        return [alert]
