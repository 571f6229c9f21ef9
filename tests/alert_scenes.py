"""Scene builders for the alert tests: tracks and crossings in a sector's frame."""

from __future__ import annotations

import math

from vigil.alerts.engine import AlertEngine
from vigil.ingest.schema import Alert, Crossing, Track, Wire

T0 = 1_780_272_000.0  # 2026-06-01T00:00:00Z
PERSON = {"person": 0.85, "animal": 0.1, "vehicle": 0.05}
ANIMAL = {"person": 0.15, "animal": 0.8, "vehicle": 0.05}


class Scene:
    """Builds tracks and crossings in the sector frame for one engine."""

    def __init__(self, engine: AlertEngine) -> None:
        self.e = engine
        self.frame = engine.frame
        self.border = engine.border
        #: fused detections behind each track so far (two a second unless told)
        self.counts: dict[str, int] = {}

    def border_point(self, chainage_m: float, offset_m: float) -> tuple[float, float]:
        """A point ``offset_m`` north (US side, positive) of the border at a chainage."""
        line = self.border.line
        p = line.interpolate(chainage_m)
        q = line.interpolate(chainage_m + 5.0)
        tx, ty = q.x - p.x, q.y - p.y
        n = math.hypot(tx, ty)
        rx, ry = ty / n, -tx / n  # right of the line's direction is the US
        return p.x + offset_m * rx, p.y + offset_m * ry

    def track_message(
        self,
        tid,
        x,
        y,
        t,
        *,
        probs=PERSON,
        vx=0.0,
        vy=1.2,
        state="confirmed",
        sensors=("t03",),
        count=None,
    ) -> Track:
        """Track ``tid`` at ``(x, y)`` (local metres) at ``t``."""
        lat, lon = self.frame.to_wgs84([x], [y])
        msg = Track(
            track_id=tid,
            time=t,
            lat=float(lat[0]),
            lon=float(lon[0]),
            vx=vx,
            vy=vy,
            cov=(25.0, 0.0, 0.0, 25.0),
            state=state,
            class_guess=max(probs, key=probs.get),
            class_probs=probs,
            sensors=list(sensors),
            count=self.counts.get(tid, 0) + 2 if count is None else count,
        )
        self.counts[tid] = msg.count
        return msg

    def track(self, tid, x, y, t, **track_kw) -> list[Wire]:
        """The engine's answer to :meth:`track_message`."""
        return self.e.handle(self.track_message(tid, x, y, t, **track_kw))

    def walk_messages(
        self, tid, chainage_m, t, *, updates=5, start_m=-20.0, step_m=10.0, **track_kw
    ) -> list[Track | Crossing]:
        """``updates`` positions a second apart from ``start_m`` (north of the line is
        positive) in steps of ``step_m``, then the crossing report."""
        out: list[Track | Crossing] = []
        for i in range(updates):
            x, y = self.border_point(chainage_m, start_m + step_m * i)
            out.append(self.track_message(tid, x, y, t + i, **track_kw))
        return [*out, self.crossing_message(tid, chainage_m, t + 2)]

    def walk_across(self, tid, chainage_m, t, **walk_kw) -> list[Wire]:
        """The engine's answers to :meth:`walk_messages`, in order."""
        out: list[Wire] = []
        for msg in self.walk_messages(tid, chainage_m, t, **walk_kw):
            out += self.e.handle(msg)
        return out

    def crossing_message(self, tid, chainage_m, t) -> Crossing:
        """The crossing monitor's report: track ``tid`` crossed northbound at a chainage."""
        x, y = self.border_point(chainage_m, 0.0)
        lat, lon = self.frame.to_wgs84([x], [y])
        seg = self.border.segments[int(self.border.segment_at([chainage_m])[0])].segment_id
        return Crossing(
            crossing_id=f"x-{tid}",
            track_id=tid,
            time=t,
            segment_id=seg,
            direction="northbound",
            lat=float(lat[0]),
            lon=float(lon[0]),
        )

    def cross(self, tid, chainage_m, t) -> list[Wire]:
        """The engine's answer to :meth:`crossing_message`."""
        return self.e.handle(self.crossing_message(tid, chainage_m, t))


def alerts_of(out, kind=None) -> list[Alert]:
    """The alerts in a list of messages, of one kind if given."""
    return [m for m in out if isinstance(m, Alert) and (kind is None or m.kind == kind)]
