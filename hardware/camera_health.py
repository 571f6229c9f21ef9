"""A live camera's health: a stream that stops (dropped) or shows the same picture (frozen).

Reported as the device status every device uses, a
:class:`~vigil.ingest.schema.SensorStatus` whose ``sensor`` is the camera's id, on the
camera's own status topic ``vigil/v1/{sector}/cam/{camera}/status``:

- ``offline``: no frame for ``dropped_after_s`` (the stream went away, or is being reopened);
- ``degraded``: frames arrive but each is the same picture as the one before, for
  ``frozen_after_s`` (an encoder or camera that hangs on its last image). "The same" allows
  for the encoder: a camera that sends one picture over and over through H.264 decodes to
  frames that differ by a grey level or two where the encoder refines it (measured on the
  virtual camera of ``tests/virtual_onvif_camera.py``: at most 3 levels, on under 0.1 % of
  the pixels, where live thermal frames differ by more than 2 levels on 2-5 %). So a frame
  is the same picture when at most ``still_share`` of its pixels (every other row and
  column, one channel) differ from the last by more than ``still_dn`` grey levels (a
  picture with neither noise nor motion at all looks frozen too: give such a camera a
  longer ``frozen_after_s``);
- ``ok``: frames arrive and change.

A status goes out when the state changes and every ``interval_s`` while it holds;
``last_heard`` is the wall time of the last frame (of the watch's start before any) and
``battery`` is 1 (a tower camera is on the mast's power); ``detection`` carries the detection
settings in effect (:meth:`StreamHealth.set_detection`; a change goes out at once). A
watchdog thread checks every quarter of the shorter limit, so an outage is reported while the
adapter waits on the stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from vigil.ingest.bus import Bus
from vigil.ingest.schema import SensorState, SensorStatus

log = logging.getLogger(__name__)


def camera_status_topic(sector: str, camera_id: str) -> str:
    """The topic of a camera's health: ``vigil/v1/{sector}/cam/{camera}/status``."""
    return f"vigil/v1/{sector}/cam/{camera_id}/status"


@dataclass(frozen=True)
class HealthSettings:
    """When a live stream counts as dropped or frozen, and how often health is reported.

    Parameters
    ----------
    dropped_after_s
        No frame for this long: ``offline``, seconds.
    frozen_after_s
        The same picture for this long: ``degraded``, seconds.
    interval_s
        A status at least this often while the state holds, seconds.
    still_dn, still_share
        A frame is the last one's picture again when at most ``still_share`` (a fraction)
        of its pixels differ by more than ``still_dn`` grey levels.
    """

    dropped_after_s: float = 5.0
    frozen_after_s: float = 10.0
    interval_s: float = 30.0
    still_dn: float = 2.0
    still_share: float = 0.002

    def __post_init__(self) -> None:
        for name in ("dropped_after_s", "frozen_after_s", "interval_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 < value <= 86_400.0):
                raise ValueError(f"camera health {name} = {value!r}: expected (0, 86400] s")
        if not (isinstance(self.still_dn, int | float) and 0.0 <= self.still_dn < 255.0):
            raise ValueError(f"camera health still_dn = {self.still_dn!r}: expected [0, 255)")
        if not (isinstance(self.still_share, int | float) and 0.0 <= self.still_share < 1.0):
            raise ValueError(f"camera health still_share = {self.still_share!r}: expected [0, 1)")


def picture_sample(frame: NDArray) -> NDArray:
    """What is compared of a frame: every other row and column of one channel (BGR's green)."""
    view = frame[::2, ::2]
    if view.ndim == 3:
        view = view[:, :, 1 if view.shape[2] >= 3 else 0]
    return np.ascontiguousarray(view)


def same_picture(a: NDArray, b: NDArray, still_dn: float, still_share: float) -> bool:
    """Whether two :func:`picture_sample` s show the same picture (see the module docstring)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    changed = int(np.count_nonzero(cv2.absdiff(a, b) > still_dn))
    return changed <= still_share * a.size


def settings_status(
    camera_id: str,
    time_s: float,
    last_heard: float,
    detection: Mapping[str, Any],
    state: SensorState = "ok",
) -> SensorStatus:
    """A camera's status carrying its detection settings (times UTC seconds; a camera on
    the mast's power: ``battery`` 1)."""
    return SensorStatus(
        sensor=camera_id,
        time=time_s,
        battery=1.0,
        state=state,
        last_heard=last_heard,
        detection=dict(detection),
    )


class StreamHealth:
    """Watches one live camera's frames and publishes its health (module docstring).

    Parameters
    ----------
    bus, sector, camera_id
        Where the status goes.
    settings
        Limits and reporting interval.
    clock
        Wall clock, UTC seconds.
    detection
        The camera's detection settings in effect (plain JSON values, e.g.
        ``vigil.detection.settings.DetectionSettings.effective()`` and the detector's
        start-up ``calibration_report``): logged when the watch starts and whenever
        :meth:`set_detection` changes them, and returned by :meth:`report`.
    """

    def __init__(
        self,
        bus: Bus,
        sector: str,
        camera_id: str,
        settings: HealthSettings | None = None,
        clock: Callable[[], float] = time.time,
        detection: Mapping[str, Any] | None = None,
    ) -> None:
        self.bus = bus
        self.topic = camera_status_topic(sector, camera_id)
        self.camera_id = camera_id
        self.settings = settings or HealthSettings()
        self.clock = clock
        self.started = clock()
        self.last_frame: float | None = None
        self.last_change: float | None = None  # when the picture last differed
        self._sample: NDArray | None = None
        self.state: SensorState | None = None
        self._reported_at = -float("inf")
        #: Statuses published, per state.
        self.reports: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()  # the reader's and the watchdog's checks
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.detection: dict[str, Any] = dict(detection or {})
        self._settings_due = False  # settings changed since the last status

    def set_detection(self, detection: Mapping[str, Any]) -> None:
        """Merge settings the detector chose (its start-up calibration) and log them; while
        the watch runs, a status carrying them goes out at once."""
        with self._lock:
            self.detection.update(detection)
            self._settings_due = True
        log.info("camera %s: detection settings %s", self.camera_id, self.detection)
        if self._thread is not None:
            self.check()

    def report(self) -> dict[str, Any]:
        """The camera's health for an operator: state, last frame, detection settings."""
        with self._lock:
            heard = self.last_frame
        return {
            "camera": self.camera_id,
            "state": self.state,
            "last_frame": heard,
            "detection": dict(self.detection),
        }

    def frame(self, frame: NDArray) -> None:
        """Note a frame that has just arrived."""
        now = self.clock()
        sample = picture_sample(frame)
        s = self.settings
        same = self._sample is not None and same_picture(
            self._sample, sample, s.still_dn, s.still_share
        )
        self._sample = sample
        with self._lock:
            self.last_frame = now
            if not same:
                self.last_change = now
        if self.state != "ok" and self._judge(now) == "ok":
            self.check()  # report a recovery at once, not at the next watchdog tick

    def _judge(self, now: float) -> SensorState:
        s = self.settings
        with self._lock:
            heard = self.last_frame if self.last_frame is not None else self.started
            changed = self.last_change if self.last_change is not None else heard
        if now - heard >= s.dropped_after_s:
            return "offline"
        if now - changed >= s.frozen_after_s:
            return "degraded"
        return "ok"

    def check(self) -> SensorState:
        """Judge the stream now; publish a status on a change or when one is due."""
        with self._check_lock:
            return self._check()

    def _check(self) -> SensorState:
        now = self.clock()
        state = self._judge(now)
        due = now - self._reported_at >= self.settings.interval_s or self._settings_due
        if state != self.state or due:
            if state != self.state:
                log.log(
                    logging.INFO if state == "ok" else logging.WARNING,
                    "camera %s: stream %s",
                    self.camera_id,
                    {"ok": "ok", "offline": "dropped (no frames)", "degraded": "frozen"}[state],
                )
            heard = self.last_frame if self.last_frame is not None else self.started
            with self._lock:
                detection = dict(self.detection)
                self._settings_due = False
            msg = settings_status(self.camera_id, now, heard, detection, state)
            self.state = state
            self._reported_at = now
            self.reports[state] += 1
            self.bus.publish(self.topic, msg)
        return state

    def start(self) -> StreamHealth:
        """Start the watchdog thread; returns self."""
        if self._thread is None:
            if self.detection:
                log.info("camera %s: detection settings %s", self.camera_id, self.detection)
            period = min(self.settings.dropped_after_s, self.settings.frozen_after_s) / 4.0
            self._thread = threading.Thread(
                target=self._watch, args=(period,), name=f"health-{self.camera_id}", daemon=True
            )
            self._thread.start()
        return self

    def _watch(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.check()
            except Exception:  # a bus that fails must not end the watch
                log.exception("camera %s: publishing health failed", self.camera_id)

    def stop(self) -> None:
        """Stop the watchdog."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)


__all__ = [
    "HealthSettings",
    "StreamHealth",
    "camera_status_topic",
    "picture_sample",
    "same_picture",
    "settings_status",
]
