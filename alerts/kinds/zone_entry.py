"""Zone-entry alerts: a person track entering a configured zone."""

from __future__ import annotations

import shapely

from vigil.alerts.book import TrackInfo
from vigil.alerts.kinds.base import AlertRule, RuleContext
from vigil.ingest.schema import Wire


class ZoneEntryRule(AlertRule):
    """Raises an alert, at the zone's priority, the first time a person track with enough
    fused detections behind it is inside a zone.

    A track that already has an open alert updates it instead; a track near an open crossing
    or zone alert (within the group radius and window) joins the nearest (one group, one
    alert).
    """

    kind = "zone_entry"

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: ``(zone id, track id)`` of the entries already acted on.
        self.zone_seen: set[tuple[str, str]] = set()

    def on_track(self, info: TrackInfo) -> list[Wire]:
        trk = info.last
        inside = info.inside  # found for the whole tick at once, the same predicate
        if inside is not None and True not in inside:
            return []  # in no zone
        if trk.state == "ended" or not self.settings.zone_entry or not self.is_person(trk):
            return []
        out: list[Wire] = []
        for i, (zone_id, priority, poly) in enumerate(self.context.zones):
            key = (zone_id, trk.track_id)
            if key in self.zone_seen:
                continue
            if not (
                inside[i] if inside is not None else poly.contains(shapely.Point(info.x, info.y))
            ):
                continue
            self.zone_seen.add(key)
            if info.updates < self.settings.min_track_updates:
                self.zone_seen.discard(key)
                continue
            note = f"entered zone {zone_label(zone_id, self.context.zone_names)}"
            oa = self.book.alert_for_track(trk.track_id)
            if oa is not None:
                out += self.book.update(oa, info, note=note)
                continue
            near = self.book.find_group(
                info.x, info.y, trk.time, ("crossing", "zone_entry"), nearest=True
            )
            if near is not None:
                # one group, one alert: a part of a group already alerted on joins it
                self.counts["zone_entry_grouped"] += 1
                self.book.join(near, trk.track_id)
                out += self.book.update(near, info, note=note)
                continue
            alert = self.book.new(
                "zone_entry",
                priority,
                info.x,
                info.y,
                zone=zone_id,
                track=info,
                joined_by=trk.track_id,
                summary=f"track entered zone {zone_label(zone_id, self.context.zone_names)}",
            )
            out.append(alert)
        return out


#: A zone name longer than this is cut (with "…") in alert text, characters.
ZONE_NAME_CHARS = 60


def zone_label(zone_id: str, names: dict[str, str]) -> str:
    """How alert text names a zone: its name and id (``West ranch lands (z2)``), or the id
    alone when it has no name; a name is cut to :data:`ZONE_NAME_CHARS` characters."""
    name = " ".join((names.get(zone_id) or "").split())
    if not name or name == zone_id:
        return zone_id
    if len(name) > ZONE_NAME_CHARS:
        name = name[: ZONE_NAME_CHARS - 1] + "…"
    return f"{name} ({zone_id})"
