"""What a person reads (issue 17 item 8): an alert keeps the time it was raised, zones are
named, times are local with their offset."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from alert_scenes import T0, Scene, alerts_of

from vigil.alerts.engine import AlertEngine
from vigil.alerts.kinds.zone_entry import ZONE_NAME_CHARS, zone_label
from vigil.config import load_default
from vigil.console import AlertConsole, format_alert, local_time, time_zone
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import Alert, AlertAction, topic_for
from vigil.tracks.csvfile import iso_time


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


# -- the agent console: local time with its offset ------------------------------------------


def console_alert(t: float) -> Alert:
    return Alert(
        alert_id="tucson-A000012",
        time=t,
        kind="zone_entry",
        priority=2,
        zone="z2",
        lat=31.334,
        lon=-110.9,
        units=["p01"],
        summary="track entered zone West ranch lands (z2)",
    )


def test_console_times_are_local_with_offset() -> None:
    summer, winter = 1_780_281_247.0, 1_796_000_000.0  # 2026-06-01 02:34:07Z, 2026-11-30 00:53:20Z
    assert local_time(summer) == "2026-06-01 02:34:07 +00:00"
    assert local_time(summer, time_zone("America/Phoenix")) == "2026-05-31 19:34:07 -07:00"
    la = time_zone("America/Los_Angeles")
    assert local_time(summer, la) == "2026-05-31 19:34:07 -07:00"
    assert local_time(winter, la) == "2026-11-29 16:53:20 -08:00"
    line = format_alert(console_alert(summer), 3, time_zone("America/Phoenix"))
    assert line.startswith("2026-05-31 19:34:07 -07:00 #3 tucson-A000012 NEW P2 zone_entry")
    assert "West ranch lands" in line
    with pytest.raises(ValueError, match="'Mars/Olympus'"):
        time_zone("Mars/Olympus")


def test_console_shows_the_sectors_time(site) -> None:
    out = io.StringIO()
    bus = InProcessBus("tucson")
    console = AlertConsole(
        "tucson", "p01", bus, out=out, timezone=site.sector.timezone, clock=lambda: 0.0
    )
    a = console_alert(1_780_281_247.0)
    bus.publish(topic_for("tucson", a), a)
    console.list_open()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(x.startswith("2026-05-31 19:34:07 -07:00 #1 ") for x in lines)
    console.close()


# -- CSVs for people: an ISO 8601 time column with its offset beside epoch seconds -----------


def test_iso_time() -> None:
    phoenix = ZoneInfo("America/Phoenix")
    assert iso_time(1_780_281_247.0) == "2026-06-01T02:34:07+00:00"
    assert iso_time(1_780_281_247.0, phoenix) == "2026-05-31T19:34:07-07:00"
    assert iso_time(1_780_281_247.25, phoenix) == "2026-05-31T19:34:07.250-07:00"
    assert iso_time(1e300) == ""


def test_vigil_track_writes_local_iso_times(tmp_path) -> None:
    src = tmp_path / "d.csv"
    rows = ["t,x,y"] + [f"{1_780_281_240 + i},{0.0},{1.2 * i:.1f}" for i in range(12)]
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "tracks.csv"
    cli = [sys.executable, "-m", "vigil.cli", "track", str(src), "--out", str(out)]
    run = subprocess.run([*cli, "--timezone", "America/Phoenix"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with out.open() as fh:
        got = list(csv.DictReader(fh))
    assert got and list(got[0]) == ["t", "track_id", "x", "y", "vx", "vy", "time", "status"]
    for r in got:
        t = datetime.fromisoformat(r["time"])
        assert r["time"].endswith("-07:00") and t.timestamp() == float(r["t"])
    # an unknown zone: one line naming the argument and the value, status 2, nothing written
    out.unlink()
    bad = subprocess.run([*cli, "--timezone", "Mars/Olympus"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--timezone" in bad.stderr and "'Mars/Olympus'" in bad.stderr
    assert not out.exists()
