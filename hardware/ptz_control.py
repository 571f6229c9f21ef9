"""One camera's PTZ control: the latest pointing order carried out, the reported pointing kept.

See "Control" in :mod:`vigil.hardware.ptz`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from dataclasses import dataclass

from vigil.hardware.ptz import OnvifPtz, Pointing, PtzError, PtzMapping

log = logging.getLogger(__name__)


@dataclass
class PtzCounts:
    """What the PTZ control did."""

    moves: int = 0
    move_failures: int = 0
    polls: int = 0
    poll_failures: int = 0
    #: Statuses whose position was outside ONVIF's generic space (not taken).
    status_refused: int = 0
    reconnects: int = 0
    pointing_changes: int = 0


class PtzControl:
    """Points one camera and follows where it reports it looks (see the module docstring).

    Parameters
    ----------
    client
        The camera's PTZ service (an :class:`OnvifPtz`).
    mapping
        Generic space -> degrees for this camera.
    poll_s
        How often to ask the camera where it points, seconds.
    reconnect_s, max_reconnect_s
        First and longest wait between attempts to reach a camera that does not answer.
    """

    def __init__(
        self,
        client: OnvifPtz,
        mapping: PtzMapping,
        *,
        poll_s: float = 0.5,
        reconnect_s: float = 0.5,
        max_reconnect_s: float = 30.0,
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.poll_s = float(poll_s)
        self.reconnect_s = float(reconnect_s)
        self.max_reconnect_s = float(max_reconnect_s)
        self.counts = PtzCounts()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._order: tuple[float, float] | None = None  # pan, tilt not yet sent
        self._last_order: tuple[float, float] | None = None  # the last one carried out
        self._reported: Pointing | None = None
        self._thread: threading.Thread | None = None

    @property
    def reported(self) -> Pointing | None:
        """The pointing the camera last reported (``None`` before it answered)."""
        with self._lock:
            return self._reported

    def point(self, pan_deg: float, tilt_deg: float) -> None:
        """Order the camera to ``(pan_deg, tilt_deg)``; carried out by the control's thread."""
        if not (math.isfinite(pan_deg) and math.isfinite(tilt_deg)):
            raise ValueError(f"pointing ({pan_deg!r}, {tilt_deg!r}): expected finite degrees")
        with self._lock:
            self._order = (float(pan_deg), float(tilt_deg))
        self._wake.set()

    def start(self) -> PtzControl:
        """Start the control's thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ptz-control", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the client."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.client.timeout_s * 3 + 2.0)
        self.client.close()

    def wait_reported(self, timeout_s: float) -> Pointing | None:
        """Wait until the camera has reported a pointing (or ``timeout_s`` passes)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and self.reported is None:
            time.sleep(0.05)
        return self.reported

    # -- the thread ---------------------------------------------------------------------------
    def _loop(self) -> None:
        delay = self.reconnect_s
        lost = False
        while not self._stop.is_set():
            try:
                if lost:
                    self.client.connect()
                    self.counts.reconnects += 1
                    log.info("PTZ camera %s answers again", self.client.host)
                    with self._lock:  # point it again where it was last told
                        if self._order is None and self._last_order is not None:
                            self._order = self._last_order
                    lost = False
                    delay = self.reconnect_s
                self._carry_out()
                self._poll()
            except PtzError as exc:
                if not lost:
                    log.warning("PTZ camera lost: %s; reconnecting", exc)
                lost = True
                with contextlib.suppress(PtzError):
                    self.client.reset()
                self._stop.wait(delay)
                delay = min(delay * 2.0, self.max_reconnect_s)
                continue
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _carry_out(self) -> None:
        with self._lock:
            order, self._order = self._order, None
        if order is None:
            return
        x, y = self.mapping.position(*order)
        try:
            self.client.absolute_move(x, y)
        except PtzError:
            self.counts.move_failures += 1
            with self._lock:  # not carried out: keep it for when the camera answers
                if self._order is None:
                    self._order = order
            raise
        self.counts.moves += 1
        self._last_order = order
        log.info("PTZ: pointed to pan %.2f, tilt %.2f (x %.4f, y %.4f)", *order, x, y)

    def _poll(self) -> None:
        try:
            st = self.client.status()
        except PtzError:
            self.counts.poll_failures += 1
            raise
        self.counts.polls += 1
        try:
            pointing = self.mapping.pointing(st.x, st.y, st.zoom)
        except PtzError as exc:  # the camera answers, with a position that makes no sense
            self.counts.status_refused += 1
            log.warning("PTZ status refused: %s", exc)
            return
        with self._lock:
            if pointing.differs(self._reported):
                self.counts.pointing_changes += 1
                self._reported = pointing


__all__ = ["PtzControl", "PtzCounts"]
