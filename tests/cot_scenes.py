"""A scripted sector for the CoT tests: inputs that make the alert engine raise every kind of
alert (and close one), and tracks of every class."""

from __future__ import annotations

import numpy as np
from alert_scenes import ANIMAL, T0, Scene

from vigil.alerts.engine import AlertEngine
from vigil.alerts.rules import AlertRules
from vigil.geo.site import Site
from vigil.ingest.schema import AlertAction, SensorEvent, SensorStatus, Wire

#: Rules for the scene: a person lost near the border counts without a crossing, so that one
#: walker can raise ``track_lost`` beside the crossing alert of another.
RULES = AlertRules(track_lost_needs_crossing=False)
VEHICLE = {"person": 0.05, "animal": 0.05, "vehicle": 0.9}
UNKNOWN = {"unknown": 0.7, "person": 0.1, "animal": 0.1, "vehicle": 0.1}


def every_kind(site: Site, t0: float = T0) -> list[Wire]:
    """What the alert engine (with :data:`RULES`) hears, in time order from ``t0`` (UTC s), for
    it to raise one alert of each kind (crossing, zone entry, sensor cue, track lost, sensor
    health), and track updates of every class."""
    s = Scene(AlertEngine(site, RULES))
    out: list[Wire] = list(s.walk_messages("walker", 14_500.0, t0))
    for i in range(30):  # walking on north: the crossing alert is updated
        out.append(s.track_message("walker", *s.border_point(14_500.0, 40.0 + 2 * i), t0 + 10 + i))
    zone = site.zones[0]
    lat, lon = np.mean(np.asarray(zone.polygon), axis=0)
    x, y = s.frame.to_local([lat], [lon])
    out += [s.track_message("zoned", float(x[0]), float(y[0]) + i, t0 + 1000 + i) for i in range(4)]
    out.append(
        SensorEvent(sensor=site.sensors[0].id, time=t0 + 2000, modality="seismic", strength=1.0)
    )
    for i in range(4):
        x, y = s.border_point(5_000.0, 300.0 + i)
        out.append(s.track_message("lost", x, y, t0 + 3000 + i))
    out.append(s.track_message("lost", x, y, t0 + 3010, state="ended"))
    out.append(SensorStatus(sensor="u010", time=t0 + 4000, battery=0.5, tamper=True, last_heard=t0))
    for i, (tid, probs) in enumerate((("truck", VEHICLE), ("deer", ANIMAL), ("blob", UNKNOWN))):
        x, y = s.border_point(9_000.0 + 500 * i, 800.0)
        out.append(s.track_message(tid, x, y, t0 + 5000 + i, probs=probs))
    return out


def close_of(alert_id: str, t: float) -> AlertAction:
    """An operator closing an alert."""
    return AlertAction(alert_id=alert_id, time=t, action="close", by="ops")
