"""Live camera plumbing without a camera: the stream clock, stream health, the PTZ mapping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.hardware.camera_health import HealthSettings, StreamHealth, camera_status_topic
from vigil.hardware.ptz import Pointing, PtzError, PtzMapping
from vigil.ingest.bus import InProcessBus
from vigil.ingest.frames import StreamClock

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_stream_clock_follows_the_stream_never_ahead_of_arrival() -> None:
    clock = Clock(T0)
    sc = StreamClock(clock, max_lag_s=2.0)
    stamps, arrivals = [], []
    # 27 buffered frames arrive together at connect (stream times 0..2.6 s), then one per 0.1 s
    for i in range(27):
        stamps.append(sc.stamp(i * 100.0))
        arrivals.append(clock.t)
    for i in range(27, 60):
        clock.t += 0.1 + (0.03 if i % 3 == 0 else 0.0)  # network jitter
        stamps.append(sc.stamp(i * 100.0))
        arrivals.append(clock.t)
    assert all(s <= a + 1e-9 for s, a in zip(stamps, arrivals, strict=True))
    assert stamps == sorted(stamps)
    # in the steady part the spacing is the camera's 0.1 s, not the jittery arrivals'
    steady = np.diff(stamps[40:])
    assert steady == pytest.approx(0.1, abs=1e-6)
    assert sc.reanchors == 0 and sc.unstamped == 0


def test_stream_clock_reanchors_a_slow_or_restarted_stream_and_stamps_frames_without_time():
    clock = Clock(T0)
    sc = StreamClock(clock, max_lag_s=2.0)
    assert sc.stamp(0.0) == T0
    clock.t += 5.0
    assert sc.stamp(100.0) == T0 + 5.0  # 4.9 s behind the wall clock: anchored afresh
    assert sc.reanchors == 1
    clock.t += 0.1
    assert sc.stamp(50.0) == pytest.approx(T0 + 5.1)  # went backwards: its arrival
    clock.t += 0.1
    assert sc.stamp(float("nan")) == pytest.approx(T0 + 5.2)
    assert sc.unstamped == 2


def test_health_reports_dropped_and_frozen_streams_on_the_cameras_status_topic() -> None:
    clock = Clock(T0)
    bus = InProcessBus("tucson", clock=clock)
    got = []
    bus.subscribe("vigil/v1/tucson/#", lambda topic, msg: got.append((topic, msg)))
    settings = HealthSettings(dropped_after_s=2.0, frozen_after_s=3.0, interval_s=10.0)
    watch = StreamHealth(bus, "tucson", "t03", settings, clock=clock)
    rng = np.random.default_rng(1)

    def frames(n: int, same: bool = False) -> None:
        still = rng.integers(0, 250, (240, 320, 3), np.uint8)
        for _ in range(n):
            clock.t += 0.1
            if same:  # as an encoder refines a repeated picture: a level or three, here and there
                f = still.copy()
                f[rng.integers(0, 240, 30), rng.integers(0, 320, 30)] += 3
            else:  # a live picture: sensor noise everywhere
                f = np.clip(still + rng.normal(0, 2.0, still.shape), 0, 255).astype(np.uint8)
            watch.frame(f)
            watch.check()

    frames(10)
    frames(40, same=True)  # 4 s of one picture
    clock.t += 2.5  # then nothing
    watch.check()
    frames(5)
    states = [m.state for _, m in got]
    assert states == ["ok", "degraded", "offline", "ok"]
    assert {t for t, _ in got} == {camera_status_topic("tucson", "t03")}
    degraded = next(m for _, m in got if m.state == "degraded")
    assert degraded.sensor == "t03" and degraded.time == pytest.approx(T0 + 1.1 + 3.0, abs=0.11)
    offline = next(m for _, m in got if m.state == "offline")
    assert offline.last_heard == pytest.approx(T0 + 5.0)  # the last frame's arrival
    assert not bus.quarantine_counts
    clock.t += 10.0  # nothing new for the interval: a frame keeps it ok, and ok is repeated
    frames(1)
    assert [m.state for _, m in got][-1] == "ok" and len(got) == 5


def test_ptz_mapping_between_onvif_spaces_and_degrees() -> None:
    m = PtzMapping(
        pan_zero_deg=156.3, pan_deg_per_unit=180.0, tilt_zero_deg=0.82, tilt_deg_per_unit=30.0,
        hfov_wide_deg=24.0, hfov_tele_deg=6.0,
    )  # fmt: skip
    assert m.pointing(0.0, 0.0) == Pointing(156.3, 0.82, pytest.approx(24.0))
    p = m.pointing(0.5, -0.1, 1.0)
    assert p.pan_deg == pytest.approx(246.3) and p.tilt_deg == pytest.approx(3.82)
    assert p.hfov_deg == pytest.approx(6.0)
    # focal length linear in zoom: halfway, the tangent of the half-angle is the harmonic mean
    half = m.pointing(0, 0, 0.5).hfov_deg
    w, t = math.tan(math.radians(12)), math.tan(math.radians(3))
    assert math.tan(math.radians(half / 2)) == pytest.approx(2 / (1 / w + 1 / t))
    x, y = m.position(246.3, 3.82)
    assert (x, y) == (pytest.approx(0.5), pytest.approx(-0.1))
    assert m.position(156.3 - 170.0, 0.82)[0] == pytest.approx(-170 / 180)  # across north
    assert m.position(156.3, 80.0) == (0.0, -1.0)  # beyond its reach: clamped
    with pytest.raises(ValueError, match="hfov_tele_deg"):
        PtzMapping(pan_zero_deg=0.0, hfov_wide_deg=10.0, hfov_tele_deg=20.0)
    with pytest.raises(ValueError, match="pan_zero_deg"):
        PtzMapping(pan_zero_deg=float("nan"))
    with pytest.raises(PtzError, match="x"):
        m.pointing(float("inf"), 0.0)
    # a camera's status is data: outside the generic space it is refused, rounding is clamped
    assert m.pointing(1.004, 0.0).pan_deg == pytest.approx((156.3 + 180.0) % 360.0)
    with pytest.raises(PtzError, match=r"y = 7.0: .*\[-1, 1\]"):
        m.pointing(0.0, 7.0)
    with pytest.raises(PtzError, match="zoom"):
        m.pointing(0.0, 0.0, -0.5)


def test_tower_detector_refuses_a_pointing_its_camera_model_cannot_take() -> None:
    from vigil.config import load_default
    from vigil.edge import tower_detector

    detect = tower_detector(load_default().site, "t03")
    before = detect.base
    with pytest.raises(ValueError, match="tilt_deg"):
        detect.repoint(Pointing(100.0, -60.0, 24.0))  # 60 degrees up: not a tower camera's
    assert detect.base == before
    detect.repoint(Pointing(100.0, 3.0, 12.0))
    assert (detect.base.pan_deg, detect.base.tilt_deg, detect.base.hfov_deg) == (100.0, 3.0, 12.0)


def test_cli_wants_onvif_for_the_cameras_own_stream(capsys) -> None:
    from vigil.cli import main

    assert main(["edge", "camera", "onvif", "--id", "t03"]) == 2
    assert "--onvif" in capsys.readouterr().err
