"""UAS adapter on the logs an operator has: DataFlash ``.bin``/``.log``, tlogs, and mistakes.

Was: a DataFlash log crashed (``recv_match() got an unexpected keyword argument 'timeout'``),
a picture passed as a log gave "0 telemetry messages" and exit 0, and a missing file gave
``No module named 'serial'`` (pymavlink takes an unknown path for a serial port).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from dataflash_files import att, gps, pos, write_dataflash

from vigil.cli import main
from vigil.hardware.uas import MavlinkSourceError, UasCounts, read_telemetry, run_uas_edge
from vigil.ingest.bus import InProcessBus

T0 = 1_780_272_000.25  # UTC of the first position, seconds
BOOT_US = 95_000_000  # the autopilot's clock then, microseconds since boot


def flight(n: int = 20, *, gps_time: bool = True) -> list[tuple[str, list]]:
    """A 10 Hz log of an aircraft flying north at 20 m/s, 120 m above home, GPS at 5 Hz."""
    records = []
    for i in range(n):
        us = BOOT_US + i * 100_000
        lat = 31.36 + i * 20.0 * 0.1 / 111_000
        if i % 2 == 0:
            when = T0 + i * 0.1 if gps_time else None
            records.append(gps(us, when, lat, -110.95, 1320.0, 20.0, 0.0))
        records.append(att(us, 2.5, -4.0, 359.5 if i == 0 else 1.0))
        records.append(pos(us, lat, -110.95, 1320.0, 120.0))
    return records


@pytest.mark.parametrize("text", [False, True], ids=["bin", "text-log"])
def test_dataflash_log_gives_a_telemetry_message_per_position(tmp_path: Path, text: bool) -> None:
    path = tmp_path / ("flight.log" if text else "flight.bin")
    write_dataflash(path, flight(), text=text)
    counts = UasCounts()
    tels = list(read_telemetry(str(path), "uas1", counts=counts))
    assert counts.telemetry == len(tels) == 20 and counts.skipped == {}
    assert [t.time for t in tels] == pytest.approx([T0 + i * 0.1 for i in range(20)], abs=1e-3)
    for i, tel in enumerate(tels):
        assert tel.lat == pytest.approx(31.36 + i * 2.0 / 111_000, abs=1e-7)
        assert (tel.lon, tel.alt_m, tel.agl_m) == pytest.approx((-110.95, 1320.0, 120.0), abs=1e-6)
        assert (tel.roll_deg, tel.pitch_deg) == pytest.approx((2.5, -4.0))
        assert tel.ground_speed_mps == pytest.approx(20.0)
        assert tel.footprint == [] and tel.hfov_deg is None  # a DataFlash log has no FOV
    assert tels[0].yaw_deg == pytest.approx(359.5) and tels[1].yaw_deg == pytest.approx(1.0)


def test_dataflash_log_through_the_cli(tmp_path: Path, capsys) -> None:
    path = tmp_path / "00000042.BIN"
    write_dataflash(path, flight())
    assert main(["edge", "uas", str(path)]) == 0
    out = capsys.readouterr()
    assert "20 telemetry messages published" in out.out, out


def test_a_log_without_gps_time_publishes_nothing_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "bench.bin"
    write_dataflash(path, flight(gps_time=False))
    counts = UasCounts()
    assert list(read_telemetry(str(path), "uas1", counts=counts)) == []
    assert counts.skipped == {"no_utc_time": 20}


def test_logs_are_told_apart_by_content_not_name(tmp_path: Path) -> None:
    from test_edge_adapters import _write_tlog

    tlog = tmp_path / "flight.bin"  # a tlog under a DataFlash name
    _write_tlog(tlog, T0, 3)
    assert len(list(read_telemetry(str(tlog), "uas1"))) == 3
    df = tmp_path / "flight.tlog"  # and the other way round
    write_dataflash(df, flight(4))
    assert len(list(read_telemetry(str(df), "uas1"))) == 4


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40)


@pytest.mark.parametrize(
    ("name", "content", "detail"),
    [
        ("photo.tlog", PNG, "not a MAVLink log"),
        ("photo.bin", PNG, "not a MAVLink log"),
        ("empty.tlog", b"", "it is empty"),
        ("none.tlog", None, "no such file"),
        ("none.bin", None, "no such file"),
        ("folder", "dir", "is a folder"),
    ],
    ids=["png-tlog", "png-bin", "empty", "missing-tlog", "missing-bin", "folder"],
)
def test_what_is_not_a_log_is_refused_naming_it(
    tmp_path: Path, name: str, content: bytes | str | None, detail: str, capsys
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(MavlinkSourceError, match=detail) as info:
        list(read_telemetry(str(path), "uas1"))
    assert str(info.value).startswith(str(path))
    rc = main(["edge", "uas", str(path)])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "Traceback" not in err and len(err.splitlines()) == 1
    assert str(path) in err or name in err


def test_real_flight_as_a_dataflash_log(shared_data: Path, tmp_path: Path) -> None:
    """The real VTOL flight's positions, attitude and GPS, logged as the autopilot logs them."""
    from pymavlink import mavutil

    tlog = shared_data / "uas" / "vtol.tlog"
    if not tlog.exists():
        pytest.skip(f"real flight log not present at {tlog}")
    conn = mavutil.mavlink_connection(str(tlog))
    want = ["GLOBAL_POSITION_INT", "ATTITUDE", "GPS_RAW_INT"]
    records, truth = [], []
    boot = None
    while (m := conn.recv_match(type=want)) is not None:
        boot = boot if boot is not None else m._timestamp - 60.0
        us = round((m._timestamp - boot) * 1e6)
        if m.get_type() == "GLOBAL_POSITION_INT":
            records.append(pos(us, m.lat, m.lon, m.alt / 1000, m.relative_alt / 1000))
            truth.append((m._timestamp, m.lat / 1e7, m.lon / 1e7))
        elif m.get_type() == "ATTITUDE":
            r, p, y = (math.degrees(a) for a in (m.roll, m.pitch, m.yaw))
            records.append(att(us, round(r, 2), round(p, 2), round(y % 360, 2)))
        elif m.fix_type >= 3:
            crs = m.cog / 100 if m.cog != 65535 else 0.0
            records.append(gps(us, m._timestamp, m.lat, m.lon, m.alt / 1000, m.vel / 100, crs))
    path = tmp_path / "vtol.bin"
    write_dataflash(path, records)
    bus = InProcessBus("test", clock=lambda: 1_533_800_000.0)
    got = []
    bus.subscribe("vigil/v1/test/uas/+/telemetry", lambda t, m: got.append(m))
    counts = run_uas_edge(str(path), bus, "test", "vtol")
    assert counts.telemetry == len(got) == len(truth) == 807
    assert bus.quarantine_counts == {}
    for tel, (t, lat, lon) in zip(got, truth, strict=True):
        assert (tel.lat, tel.lon) == (lat, lon)
        assert tel.time == pytest.approx(t, abs=2e-3)  # GPS time is logged in milliseconds
