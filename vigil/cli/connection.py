"""The broker connection's state, said on screen: connecting, connected, lost and retrying.

A console or a server that waits on a broker says so, rather than looking like a quiet
sector: ``connecting to the broker HOST:PORT ...`` at once, ``not connected to ... yet
(REASON); retrying`` every ``notice_s`` seconds while it is not reached, ``connected to ...``
when it is, and ``connection to ... lost (REASON); retrying`` when it drops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

#: Seconds between the "not connected yet" notices.
NOTICE_S = 5.0


class ConnectionWatch:
    """Watch a bus's connection in a thread and say each change of state.

    Parameters
    ----------
    bus
        An :class:`~vigil.ingest.mqtt.MqttBus` (``connected``, ``last_error``, ``settings``).
    say
        Writes one line.
    notice_s
        Seconds between notices while the broker is not reached.
    poll_s
        Seconds between looks at the connection.
    """

    def __init__(
        self,
        bus: Any,
        say: Callable[[str], None],
        *,
        notice_s: float = NOTICE_S,
        poll_s: float = 0.2,
    ) -> None:
        self.bus = bus
        self.say = say
        self.notice_s = notice_s
        self.poll_s = poll_s
        s = bus.settings
        self.address = f"{s.host}:{s.port}"
        #: "connecting", "connected" or "lost": the state last said.
        self.state = "connecting"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_notice = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="connection-watch", daemon=True)

    def start(self) -> ConnectionWatch:
        """Say that the connection is being made and start watching."""
        self.say(f"connecting to the broker {self.address} ...")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)

    def _reason(self) -> str:
        return self.bus.last_error or "no answer"

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check()

    def check(self) -> None:
        """Look at the connection now and say what changed (also called by the watcher)."""
        with self._lock:
            up = bool(self.bus.connected)
            now = time.monotonic()
            if up and self.state != "connected":
                self.state = "connected"
                self.say(f"connected to the broker {self.address}")
            elif not up and self.state == "connected":
                self.state = "lost"
                self._last_notice = now
                self.say(f"connection to the broker {self.address} lost ({self._reason()}); "
                         "retrying")  # fmt: skip
            elif not up and now - self._last_notice >= self.notice_s:
                self._last_notice = now
                if self.state == "connecting":
                    head = f"not connected to the broker {self.address} yet"
                else:
                    head = f"still no connection to the broker {self.address}"
                self.say(f"{head} ({self._reason()}); retrying")
