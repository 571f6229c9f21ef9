"""The sector runner: a reorder buffer on message time in front of the sector core.

The service (:mod:`vigil.service`) feeds it the messages it takes from the broker, in
journal order, and sends on what the core publishes; tests and replays drive it directly.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vigil.alerts.rules import AlertRules
from vigil.core import SectorCore
from vigil.geo.site import Site
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import (
    DEFAULT_MAX_SKEW_S,
    KIND_OF,
    AlertAction,
    CameraDetection,
    MessageError,
    SensorEvent,
    Telemetry,
    Wire,
)
from vigil.ingest.sources import DEVICE_FIELD, Devices, check_source
from vigil.tracks.config import TrackerConfig

#: What the service takes in, below ``vigil/v1/{sector}/``.
INPUT_TOPICS = (
    "cam/+/detections",
    "cam/+/status",
    "ugs/+/events",
    "ugs/+/status",
    "uas/+/telemetry",
    "alerts/actions/+",
)
#: What the core publishes that goes out to the broker, below ``vigil/v1/{sector}/``.
OUTPUT_TOPICS = ("tracks", "crossings", "alerts", "cam/+/commands")

STATE_FILES = ("tracks.sqlite", "events.sqlite")

#: The device messages whose source check depends only on their type, topic and the id in
#: this field (see :meth:`SectorRunner._check_source`).
_DEVICE_FIELD: dict[type, str] = {
    t: DEVICE_FIELD[KIND_OF[t]] for t in (CameraDetection, SensorEvent, Telemetry)
}
#: Remembered passes at most (distinct topic and device pairs; beyond it they start over).
_PASSED_MAX = 4096


def input_patterns(sector: str) -> list[str]:
    """The subscription filters of a sector's service."""
    return [f"vigil/v1/{sector}/{p}" for p in INPUT_TOPICS]


@dataclass(frozen=True)
class Output:
    """One message the core published: its number from the start of the journal, the service
    clock when it was made (message time, UTC seconds), topic and message."""

    n: int
    clock: float
    topic: str
    message: Wire


class SectorRunner:
    """A reorder buffer on message time in front of a :class:`SectorCore`, ticked on message time.

    The same input messages in any arrival order that keeps each topic's own order give the
    same outputs, as long as none arrives later than ``hold_s`` behind the newest
    (:attr:`late` counts those that did).

    Parameters
    ----------
    site
        The sector's layout.
    publish
        Called with ``(topic, message)`` for every output past the first ``skip_outputs``.
    store_dir
        Folder of the core's stores (``None``: in memory).
    tracker, rules
        Stage settings.
    hold_s
        How long a message waits for older ones, seconds of message time (``inf``: until
        :meth:`advance_to`).
    tick_s
        Tick period, seconds of message time.
    skip_outputs
        How many outputs were already published by an earlier run over the same journal.
    max_ahead_s
        A message further ahead than this of the sector's clock (the newest message time, or
        the clock's idle advance) is not applied but handed to ``on_ahead``, seconds.
    on_ahead
        Called with ``(topic, message, error)`` for each such message.
    on_refused
        Called with ``(topic, message, error)`` for each message whose topic does not fit its
        source or whose device the deployment does not have
        (:func:`~vigil.ingest.sources.check_source`, reasons ``wrong_source`` and
        ``unknown_device``); such a message reaches neither fusion nor the alert rules.
        Defaults to ``on_ahead`` (both mean: quarantine it).
    keep_log
        Keep every output in :attr:`log` (for tests and comparisons).
    """

    def __init__(
        self,
        site: Site,
        publish: Callable[[str, Wire], None] | None = None,
        *,
        store_dir: Path | None = None,
        tracker: TrackerConfig | None = None,
        rules: AlertRules | None = None,
        hold_s: float = 1.0,
        tick_s: float = 1.0,
        skip_outputs: int = 0,
        max_ahead_s: float = DEFAULT_MAX_SKEW_S,
        on_ahead: Callable[[str, Wire, MessageError], None] | None = None,
        on_refused: Callable[[str, Wire, MessageError], None] | None = None,
        keep_log: bool = False,
    ) -> None:
        if not hold_s >= 0:
            raise ValueError(f"hold_s = {hold_s!r}: expected seconds >= 0 (or inf)")
        if not (tick_s > 0 and math.isfinite(tick_s)):
            raise ValueError(f"tick_s = {tick_s!r}: expected a positive number of seconds")
        self.sector = site.sector.name
        self.hold_s = float(hold_s)
        self.tick_s = float(tick_s)
        self.publish = publish
        self.skip_outputs = int(skip_outputs)
        self.max_ahead_s = float(max_ahead_s)
        self.on_ahead = on_ahead
        self.on_refused = on_refused if on_refused is not None else on_ahead
        #: The deployment's devices: who may speak on the input topics.
        self.devices = Devices.of_site(site)
        self.clock = -math.inf
        self.watermark = -math.inf
        self.max_time = -math.inf
        self.next_tick: float | None = None
        self.counts: Counter[str] = Counter()
        self.log: list[Output] | None = [] if keep_log else None
        #: Inputs were decoded (so checked) by an MQTT bus with a skew at most this runner's
        #: bus's (infinite): the in-process bus does not check them again. Set by the service
        #: for live input; a setting, not state (not in snapshots).
        self.checked_inputs = False
        self._heap: list[tuple[float, str, int, Wire]] = []
        # (type, topic, device id) of device messages check_source passed, for devices
        self._passed: set[tuple[type, str, str]] = set()
        self._passed_devices: Devices | None = None
        self._arrival = 0
        # times ahead are judged above (max_ahead_s, on the sector clock, which is -inf
        # before the first release); the bus checks kinds and values
        self.bus = InProcessBus(self.sector, clock=lambda: self.clock, max_skew_s=math.inf)
        # handle() refuses wrong sources before anything reaches the bus: the core need not
        self.core = SectorCore(
            site, self.bus, store_dir=store_dir, tracker=tracker, rules=rules, check_sources=False
        )
        base = f"vigil/v1/{self.sector}"
        for pattern in OUTPUT_TOPICS:
            self.bus.subscribe(f"{base}/{pattern}", self._output)

    # -- input --------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Messages waiting in the reorder buffer."""
        return len(self._heap)

    @property
    def outputs(self) -> int:
        """Outputs made so far (published or skipped)."""
        return self.counts["outputs"]

    def handle(self, topic: str, msg: Wire) -> None:
        """Take one input message (as :class:`~vigil.ingest.bus.Bus` handlers are called)."""
        self.counts["received"] += 1
        try:
            self._check_source(topic, msg)
        except MessageError as err:
            self.counts["refused"] += 1
            self.counts[f"refused_{err.reason}"] += 1
            if self.on_refused is not None:
                self.on_refused(topic, msg, err)
            return
        if isinstance(msg, AlertAction):
            self.counts["actions"] += 1
            self.bus.publish(topic, msg, checked=self.checked_inputs)
            return
        t = float(msg.time)  # type: ignore[attr-defined]
        now = self.sector_clock
        if t > now + self.max_ahead_s:
            self.counts["ahead"] += 1
            if self.on_ahead is not None:
                err = MessageError(
                    "time",
                    t,
                    f"a time at most {self.max_ahead_s:g} s ahead of the sector's clock "
                    f"({now:.3f})",
                    "time_future",
                )
                self.on_ahead(topic, msg, err)
            return
        if t <= self.watermark:
            self.counts["late"] += 1
            self.bus.publish(topic, msg, checked=self.checked_inputs)
            return
        self._arrival += 1
        heapq.heappush(self._heap, (t, topic, self._arrival, msg))
        if t > self.max_time:
            self.max_time = t
            self.advance_to(t - self.hold_s)

    def _check_source(self, topic: str, msg: Wire) -> None:
        """:func:`~vigil.ingest.sources.check_source` against the deployment's devices. A
        detection's, sensor event's or telemetry's outcome depends only on its type, topic and
        device id: the ones that passed are remembered (a few per device), so the thousands a
        second a sector's towers send are checked once per topic."""
        device_field = _DEVICE_FIELD.get(type(msg))
        if device_field is None:
            check_source(topic, msg, self.devices)
            return
        if self._passed_devices is not self.devices:  # a new device table: judge afresh
            self._passed.clear()
            self._passed_devices = self.devices
        key = (type(msg), topic, getattr(msg, device_field))
        if key in self._passed:
            return
        check_source(topic, msg, self.devices)
        if len(self._passed) >= _PASSED_MAX:
            self._passed.clear()
        self._passed.add(key)

    @property
    def sector_clock(self) -> float:
        """The newest message time, or the idle clock when it has gone further (UTC s)."""
        now = self.max_time
        if math.isfinite(self.watermark) and math.isfinite(self.hold_s):
            now = max(now, self.watermark + self.hold_s)
        return now if math.isfinite(now) else math.inf

    def advance_to(self, watermark: float) -> None:
        """Release every buffered message up to ``watermark`` (message time) and tick to it."""
        if watermark <= self.watermark:
            return
        self.watermark = watermark
        heap = self._heap
        while heap and heap[0][0] <= watermark:
            t, topic, _, msg = heapq.heappop(heap)
            if self.next_tick is None:
                self.next_tick = (math.floor(t / self.tick_s) + 1) * self.tick_s
            self._tick_through(t)
            self.clock = max(self.clock, t)
            self.counts["released"] += 1
            self.bus.publish(topic, msg, checked=self.checked_inputs)
        if self.next_tick is not None and math.isfinite(watermark):
            self._tick_through(watermark)

    def finish(self) -> None:
        """Release everything buffered and tick to the newest message time."""
        self.advance_to(self.max_time)

    def _tick_through(self, t: float) -> None:
        while self.next_tick is not None and self.next_tick <= t:
            self.clock = self.next_tick
            self.core.tick(self.next_tick)
            self.counts["ticks"] += 1
            self.next_tick += self.tick_s

    # -- output -------------------------------------------------------------------------------

    def _output(self, topic: str, msg: Wire) -> None:
        self.counts["outputs"] += 1
        n = self.counts["outputs"]
        if self.log is not None:
            self.log.append(Output(n, self.clock, topic, msg))
        if n <= self.skip_outputs:
            self.counts["skipped"] += 1
            return
        if self.publish is not None:
            self.publish(topic, msg)
            self.counts["published"] += 1

    def close(self) -> None:
        """Flush and close the core's stores."""
        self.core.close()
