"""``vigil demo`` sends its alerts and tracks as Cursor-on-Target when the deployment's
``[cot]`` says so: a short demo through a real TAK server (taky) to a subscribed TAK client."""

from __future__ import annotations

import json

import pytest
from tak_server import Taky, deployment_with_cot, taky_path

from vigil.alerts.cot import EMERGENCY_TYPES, schema_errors
from vigil.cli import main

pytestmark = pytest.mark.slow

#: The types a demo's events may have (alerts/cot.py), written out.
KIND_TYPES = {"b-a-g", "b-d", "b-m-p-s-m", "b-l-o-tbl-s-a", "t-x-d-d"}
CLASS_TYPES = {"a-u-G-U-C-I", "a-u-G-E-V", "a-n-G", "a-u-G"}


def test_demo_sends_alerts_and_tracks_through_taky(tmp_path, capsys):
    exe = taky_path()
    if exe is None:
        pytest.skip("taky (make test installs it in .tak/) is not installed")
    taky = Taky(exe, tmp_path / "taky")
    try:
        cot = {"enabled": True, "port": taky.port, "tracks": True, "uid_prefix": "demo"}
        deployment = deployment_with_cot(tmp_path, cot)
        out = tmp_path / "out"
        args = ["demo", "--deployment", str(deployment), "--hours", "0.03", "--seed", "3",
                "--rate-scale", "200", "--fps", "1", "--quiet", "--out", str(out)]  # fmt: skip
        assert main(args) == 0
        assert f"Cursor-on-Target to {taky.url}" in capsys.readouterr().out
        counts = json.loads((out / "summary.json").read_text())["cot"][taky.url]
        assert counts["sent"] == counts["queued"] > 0 and counts.get("dropped", 0) == 0
        # every event sent is in once the client has as many as were sent
        taky.wait(lambda e: len(taky.reader.events) >= counts["sent"], timeout=30)
    finally:
        taky.close()
    ours = [
        (e, raw)
        for e, raw in zip(taky.reader.events, taky.reader.raw, strict=True)
        if e.get("uid", "").startswith("demo.tucson.")
    ]
    assert len(ours) == counts["sent"]
    alerts = [e for e, _ in ours if ".alert." in e.get("uid")]
    tracks = [e for e, _ in ours if ".track." in e.get("uid")]
    assert alerts and tracks
    assert {e.get("type") for e in alerts} <= KIND_TYPES
    assert {e.get("type") for e in tracks} <= CLASS_TYPES
    assert not {e.get("type") for e, _ in ours} & EMERGENCY_TYPES
    for _, raw in ours:
        assert schema_errors(raw) == [], raw[:300]
