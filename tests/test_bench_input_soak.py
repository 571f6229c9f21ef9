"""The input-process soak benchmark (``benchmarks/bench_input_soak.py``) on a few simulated
minutes: a real Mosquitto, ``vigil run`` and its MQTT input child; every message sent is
handled, and the table has resident-memory samples of both processes."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from broker import missing_reason  # noqa: E402


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_input_soak_samples_both_processes(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.bench_input_soak import main

    res = main(["--hours", "0.02", "--sample-s", "24"])  # 72 simulated s, 3,600 messages
    out = capsys.readouterr().out
    rows = res["rows"]
    assert [round(r["sim_h"] * 3600) for r in rows] == [0, 24, 48, 72]
    assert res["messages"] == rows[-1]["messages"] > 3000
    assert res["status"]["handled"] == res["messages"]  # the chain lost nothing
    assert len(res["input_pids"]) == 1
    for r in rows:
        assert r["input_pid"] == res["input_pids"][0]
        for key in ("input_mb", "core_mb", "broker_mb"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r)
        assert r["core_mb"] > r["input_mb"]  # the core holds the sector's state
    assert "input MB" in out and "core process:" in out and "input process:" in out
    for key in ("input_mb", "core_mb"):
        assert math.isfinite(res["excess"][key]["excess_mb"])
