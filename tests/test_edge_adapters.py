"""Device adapters: MAVLink telemetry (real and written) and the ground-sensor gateway."""

from __future__ import annotations

import json
import math
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import shapely

from vigil.hardware.uas import read_telemetry, run_uas_edge
from vigil.hardware.ugs import GatewaySourceError, route, run_ugs_edge
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import SensorEvent, SensorStatus, encode

NOW = 1_780_272_000.0


def test_real_vtol_log_gives_807_telemetry_messages_with_its_positions(shared_data: Path) -> None:
    from pymavlink import mavutil

    tlog = shared_data / "uas" / "vtol.tlog"
    conn = mavutil.mavlink_connection(str(tlog))
    truth = []
    while (m := conn.recv_match(type="GLOBAL_POSITION_INT")) is not None:
        truth.append((m._timestamp, m.lat / 1e7, m.lon / 1e7, m.alt / 1000.0))
    bus = InProcessBus("test", clock=lambda: 1_533_800_000.0)
    got = []
    bus.subscribe("vigil/v1/test/uas/+/telemetry", lambda t, m: got.append(m))
    counts = run_uas_edge(str(tlog), bus, "test", "vtol")
    assert counts.telemetry == len(got) == 807 == len(truth)
    assert counts.messages == 23_894
    for tel, (t, lat, lon, alt) in zip(got, truth, strict=True):
        assert (tel.time, tel.lat, tel.lon, tel.alt_m) == (t, lat, lon, alt)
    assert bus.quarantine_counts == {}


def _write_tlog(path: Path, t0: float, n: int) -> tuple[float, float]:
    """A short tlog as an aircraft with a gimballed camera writes it (pymavlink-packed)."""
    from pymavlink.dialects.v20 import ardupilotmega as mavlink

    mav = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    lat, lon, agl = 31.36, -110.95, 1200.0
    centre = (31.33, -110.95)  # where the gimbal looks: about 3.3 km south, 20 degrees down
    with path.open("wb") as fh:
        for i in range(n):
            t = t0 + i
            msgs = [
                mav.attitude_encode(i * 1000, 0.1, 0.02, 3.1, 0, 0, 0),
                mav.mount_status_encode(1, 1, -2000, 0, 18000, 2),
                mav.camera_fov_status_encode(
                    i * 1000, int(lat * 1e7), int(lon * 1e7), 2_400_000,
                    int(centre[0] * 1e7), int(centre[1] * 1e7), 1_200_000, [1, 0, 0, 0], 20.0, 15.0,
                ),
                mav.global_position_int_encode(
                    i * 1000, int(lat * 1e7), int(lon * 1e7), 2_400_000, int(agl * 1000),
                    -3000, 0, 0, 18000,
                ),
                mav.global_position_int_encode(i * 1000, 0, 0, 0, 0, 0, 0, 0, 0),  # no fix yet
            ]  # fmt: skip
            for m in msgs:
                fh.write(struct.pack(">Q", int(t * 1e6)) + bytes(m.pack(mav)))
    return centre


def test_written_tlog_gives_footprint_around_the_gimbal_aim(tmp_path: Path) -> None:
    path = tmp_path / "uas.tlog"
    centre = _write_tlog(path, NOW, 5)
    from vigil.hardware.uas import UasCounts

    counts = UasCounts()
    tels = list(read_telemetry(str(path), "uas1", counts=counts))
    assert len(tels) == 5 and counts.skipped["no_fix"] == 5
    tel = tels[0]
    assert tel.gimbal_tilt_deg == pytest.approx(20.0) and tel.gimbal_pan_deg == pytest.approx(180.0)
    assert tel.hfov_deg == pytest.approx(20.0) and tel.ground_speed_mps == pytest.approx(30.0)
    poly = shapely.Polygon([(lo, la) for la, lo in tel.footprint])
    assert poly.is_valid and poly.contains(shapely.Point(centre[1], centre[0]))
    assert tel.roll_deg == pytest.approx(math.degrees(0.1))


def _lines() -> list[bytes]:
    good = SensorEvent(
        sensor="u001", time=NOW, modality="seismic", strength=2.0, class_guess="person"
    )
    status = SensorStatus(sensor="u002", time=NOW, battery=0.7, last_heard=NOW)
    skewed = SensorEvent(sensor="u003", time=NOW + 7200, modality="pir", strength=1.0)
    return [
        encode(good),
        encode(status),
        encode(skewed),
        b'{"type": "sensor_event", "sensor": "u004", "time": "soon"}',
        b"\x00\xff\xfe garbage from a noisy radio",
        b"",
        json.dumps({"type": "sensor_event", "sensor": "a/b/#"}).encode(),
    ]


def test_gateway_file_publishes_valid_lines_and_quarantines_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "ugs.jsonl"
    path.write_bytes(b"\n".join(_lines()) + b"\n")
    bus = InProcessBus("tucson", clock=lambda: NOW)
    got = []
    bus.subscribe("vigil/v1/tucson/ugs/#", lambda t, m: got.append((t, m)))
    counts = run_ugs_edge(str(path), bus, "tucson")
    assert counts.lines == counts.published == 6
    assert [t for t, _ in got] == [
        "vigil/v1/tucson/ugs/u001/events",
        "vigil/v1/tucson/ugs/u002/status",
    ]
    assert bus.quarantine_counts == {
        "time_future": 1,
        "wrong_type": 1,
        "not_json": 1,
        "bad_id": 1,  # "a/b/#" is no identifier (checked before the missing fields, 76e6af2)
    }
    assert counts.unroutable == 2
    assert sum(bus.quarantine_counts.values()) + len(got) == counts.published


def test_route_never_builds_a_wildcard_topic() -> None:
    for line in _lines():
        topic, _ = route("tucson", line)
        assert "+" not in topic and "#" not in topic and topic.count("/") == 5


def test_gateway_over_tcp(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            for line in _lines()[:3]:
                conn.sendall(line + b"\n")
                time.sleep(0.01)

    threading.Thread(target=serve, daemon=True).start()
    bus = InProcessBus("tucson", clock=lambda: NOW)
    got = []
    bus.subscribe("#", lambda t, m: got.append(m))
    counts = run_ugs_edge(f"tcp://127.0.0.1:{port}", bus, "tucson")
    server.close()
    assert counts.published == 3 and len(got) == 2 and bus.quarantine_counts == {"time_future": 1}


def test_missing_gateway_source_is_named() -> None:
    bus = InProcessBus("tucson")
    with pytest.raises(GatewaySourceError, match="no such file"):
        run_ugs_edge("/nonexistent/ugs.jsonl", bus, "tucson")
    with pytest.raises(GatewaySourceError, match="tcp://127.0.0.1:1"):
        run_ugs_edge("tcp://127.0.0.1:1", bus, "tucson")


def test_footprint_helper_is_symmetric_at_nadir() -> None:
    from vigil.hardware.uas import footprint

    fp = np.array(footprint(31.3, -110.9, 1000.0, 0.0, 90.0, 30.0))
    assert abs(fp[:, 0].mean() - 31.3) < 1e-3 and abs(fp[:, 1].mean() + 110.9) < 1e-3
