"""The demo's crossings.csv is for people too (issue 17 item 8): beside ``time`` (UTC seconds,
the machine column ``vigil analyze`` reads) a ``local_time`` column gives it in the sector's
time zone as ISO 8601 with its offset."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from vigil.cli import main
from vigil.config import load_default


def test_demo_crossings_csv_has_local_iso_times(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--hours", "0.05", "--out", str(out), "--quiet", "--fps", "1"]
    assert main(args) == 0
    zone = load_default().site.sector.timezone
    table = pd.read_csv(out / "crossings.csv", dtype={"local_time": str})
    assert list(table.columns)[-1] == "local_time" and "time" in table.columns
    for t, local in zip(table["time"], table["local_time"], strict=True):
        d = datetime.fromisoformat(local)
        assert abs(d.timestamp() - t) < 1e-3, (t, local)
        assert d.utcoffset() == pd.Timestamp(t, unit="s", tz=zone).utcoffset(), (t, local)
