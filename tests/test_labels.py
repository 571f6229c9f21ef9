"""What a person reads (issue 17 item 8): an alert keeps the time it was raised, zones are
named, times are local with their offset."""

from __future__ import annotations

import numpy as np
import pytest
from alert_scenes import T0, Scene, alerts_of

from vigil.alerts.engine import AlertEngine
from vigil.alerts.kinds.zone_entry import ZONE_NAME_CHARS, zone_label
from vigil.config import load_default
from vigil.ingest.schema import AlertAction


@pytest.fixture(scope="module")
def site():
    return load_default().site


def test_an_action_keeps_the_alerts_time_and_records_its_own(site) -> None:
    engine = AlertEngine(site)
    a = alerts_of(Scene(engine).walk_across("k", 14_500.0, T0), "crossing")[0]
    raised = a.time
    later = raised + 3600.0  # acknowledged an hour later (or on another clock)
    for action, t in (("acknowledge", later), ("assign", later + 5), ("close", later + 9)):
        unit = a.units[0] if action == "assign" else None
        out = engine.handle(
            AlertAction(alert_id=a.alert_id, time=t, action=action, by="cmdr", unit=unit)
        )
        assert out[0].time == raised, action
        assert out[0].history[-1].time == t and out[0].history[-1].by == "cmdr"
    assert out[0].history[0].time == raised and out[0].history[0].state == "new"


def test_zone_alert_names_the_zone(site) -> None:
    engine = AlertEngine(site)
    s = Scene(engine)
    zone = site.zones[1]
    assert zone.name and zone.name != zone.id
    lat, lon = np.mean(np.asarray(zone.polygon), axis=0)
    x, y = s.frame.to_local([lat], [lon])
    out = []
    for i in range(4):
        out += s.track("z", float(x[0]), float(y[0]) + i, T0 + i)
    (alert,) = alerts_of(out, "zone_entry")
    assert alert.summary.startswith(f"track entered zone {zone.name} ({zone.id})")


def test_zone_label_bounds_and_falls_back() -> None:
    assert zone_label("z9", {}) == "z9"
    assert zone_label("z9", {"z9": "z9"}) == "z9"
    assert zone_label("z1", {"z1": "  Mariposa\n approach "}) == "Mariposa approach (z1)"
    long = zone_label("z1", {"z1": "x" * 500})
    assert long.endswith("… (z1)") and len(long) == ZONE_NAME_CHARS + len(" (z1)")
