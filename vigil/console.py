"""``vigil alerts``: an agent's terminal console for dispatch alerts, over MQTT.

It subscribes to ``vigil/v1/{sector}/alerts`` and prints, as they arrive, the alerts for one
patrol unit (recommended for it, or assigned to it; once shown, an alert's later versions are
shown too) or every alert with ``--all``. Typed commands, one per line, act on them and are
published as :class:`~vigil.ingest.schema.AlertAction` on
``vigil/v1/{sector}/alerts/actions/{identity}``, the console's broker identity's own topic, with
``by`` = ``{unit}@{identity}`` (receivers refuse an action whose ``by`` names another identity):

========================  ===========================================================
``a [REF]``, ``ack``      acknowledge
``s [REF] [UNIT]``        assign to UNIT (this console's unit when omitted)
``c [REF]``, ``close``    close
``l``, ``list``           list the open alerts shown here
``h``, ``help``           this table
``q``, ``quit``           leave
========================  ===========================================================

``REF`` is ``#n`` (the number the console gave the alert), the alert id, or the end of the
id (``12`` for ``tucson-A000012``); without it the command acts on the newest alert shown.
A key and Enter is enough: ``a`` acknowledges the newest alert.
"""

from __future__ import annotations

import sys
import threading
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigil.ingest.bus import Bus
from vigil.ingest.schema import Alert, AlertAction, Wire, topic_for

STATE_TAGS = {"new": "NEW", "updated": "UPD", "acknowledged": "ACK", "closed": "CLS"}

HELP = """commands: a [REF] acknowledge | s [REF] [UNIT] assign | c [REF] close | l list | q quit
REF: #n, the alert id or its end; none: the newest alert"""


def _serial(text: str) -> int | None:
    """The number at the end of an alert id (``tucson-A000012`` -> 12), or of a typed ``12``."""
    digits = ""
    for ch in reversed(text):
        if not ch.isdigit():
            break
        digits = ch + digits
    return int(digits) if digits else None


# bidirectional overrides and isolates: they reorder what the terminal shows
_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}


def printable(text: str) -> str:
    """``text`` safe to print on a terminal as part of one line.

    Alert text comes from devices and users: a C0 or C1 control character (ESC, CSI, BEL,
    carriage return, newline ...), DEL or a bidirectional override could move the cursor,
    recolour, retitle or rewrite the agent's screen. Each is shown as its escape (``\\x1b``,
    ``\\n``, ``\\u202e``) instead; every other character is kept.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) == "Cc" or ch in _BIDI:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def time_zone(name: str | None) -> tzinfo:
    """The time zone an IANA name gives (``America/Phoenix``); UTC for ``None``.

    Raises ``ValueError`` naming the zone when it is unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"time zone {name!r}: unknown (expected an IANA name)") from err


def local_time(epoch_s: float, zone: tzinfo = UTC) -> str:
    """``epoch_s`` (UTC seconds) as a person reads it: local date and time in ``zone`` with
    its UTC offset, ``2026-06-01 02:14:07 -07:00``."""
    t = datetime.fromtimestamp(epoch_s, tz=UTC).astimezone(zone)
    return t.strftime("%Y-%m-%d %H:%M:%S ") + t.isoformat()[-6:]


def format_alert(alert: Alert, number: int, zone: tzinfo = UTC) -> str:
    """One line for an alert: time (local in ``zone``, with its offset), number, id, state,
    priority, kind, place, units.

    The time is the alert's own (when it was raised, or its latest position), not that of an
    action on it. Every string from the alert goes through :func:`printable`: no control
    character of the alert's reaches the terminal.
    """
    when = local_time(alert.time, zone)
    where = alert.segment_id or alert.zone or "-"
    units = ",".join(alert.units) or "-"
    assigned = f" assigned {alert.assigned_unit}" if alert.assigned_unit else ""
    state = STATE_TAGS.get(alert.state, alert.state)
    return printable(
        f"{when} #{number} {alert.alert_id} {state} "
        f"P{alert.priority} {alert.kind} {where} {alert.lat:.5f},{alert.lon:.5f} "
        f"units {units}{assigned} | {alert.summary}"
    )


class AlertConsole:
    """The console's state: alerts shown, their numbers, and the commands that act on them.

    Parameters
    ----------
    sector
        The sector whose alerts to show.
    unit
        The patrol unit at this console (who its actions are ``by``).
    bus
        Where alerts come from and actions go.
    show_all
        Show every alert, not only this unit's.
    out
        Where lines are written (flushed after each).
    clock
        Time of actions, UTC seconds.
    timezone
        The sector's time zone (IANA name, the deployment's ``sector.timezone``): times are
        shown in it with their offset. UTC when ``None``.
    identity
        The broker user this console publishes as (its actions go on
        ``alerts/actions/{identity}``, ``by`` = ``{unit}@{identity}``); ``None`` (an in-process
        bus, no broker): ``by`` = ``unit``.
    """

    def __init__(
        self,
        sector: str,
        unit: str,
        bus: Bus,
        *,
        show_all: bool = False,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        timezone: str | None = None,
        identity: str | None = None,
    ) -> None:
        if not unit:
            raise ValueError("unit is empty: expected the patrol unit's id, e.g. p01")
        self.zone = time_zone(timezone)
        self.sector = sector
        self.unit = unit
        self.by = f"{unit}@{identity}" if identity else unit
        self.bus = bus
        self.show_all = show_all
        self.out = out or sys.stdout
        self.clock = clock
        self.alerts: dict[str, Alert] = {}
        self.numbers: dict[str, int] = {}
        self.newest: str | None = None
        self.hidden = 0
        self.actions_sent = 0
        self._lock = threading.Lock()
        self._sub = bus.subscribe(f"vigil/v1/{sector}/alerts", self.on_alert)

    def say(self, line: str) -> None:
        """Write one line."""
        self.out.write(line + "\n")
        self.out.flush()

    def is_mine(self, alert: Alert) -> bool:
        """Whether the alert recommends or is assigned to this console's unit."""
        return self.unit in alert.units or alert.assigned_unit == self.unit

    def on_alert(self, topic: str, msg: Wire) -> None:
        """Show an alert if it is for this unit (or every alert with ``show_all``)."""
        if not isinstance(msg, Alert):
            return
        with self._lock:
            known = msg.alert_id in self.numbers
            if not (self.show_all or known or self.is_mine(msg)):
                self.hidden += 1
                return
            old = self.alerts.get(msg.alert_id)
            if old is not None and (old.time, len(old.history)) > (msg.time, len(msg.history)):
                return  # an older version arriving late
            if not known:
                self.numbers[msg.alert_id] = len(self.numbers) + 1
            self.alerts[msg.alert_id] = msg
            if msg.state != "closed":
                self.newest = msg.alert_id
            line = format_alert(msg, self.numbers[msg.alert_id], self.zone)
        self.say(line)

    def resolve(self, ref: str | None) -> str | None:
        """The alert id a reference names (see the module docstring), or ``None``."""
        with self._lock:
            if not ref:
                return self.newest
            if ref.startswith("#"):
                try:
                    n = int(ref[1:])
                except ValueError:
                    return None
                return next((a for a, k in self.numbers.items() if k == n), None)
            if ref in self.alerts:
                return ref
            n = _serial(ref)
            found = [
                a for a in self.alerts if a.endswith(ref) or (n is not None and _serial(a) == n)
            ]
            return found[0] if len(found) == 1 else None

    def act(self, action: str, ref: str | None, unit: str | None = None, note: str = "") -> bool:
        """Publish an action on an alert; False (and a line saying why) when it cannot."""
        alert_id = self.resolve(ref)
        if alert_id is None:
            self.say(f"no alert {ref!r} here" if ref else "no alert to act on yet")
            return False
        msg = AlertAction(
            alert_id=alert_id,
            time=self.clock(),
            action=action,  # type: ignore[arg-type]
            by=self.by,
            unit=(unit or self.unit) if action == "assign" else None,
            note=note,
        )
        self.bus.publish(topic_for(self.sector, msg), msg)
        self.actions_sent += 1
        what = f"assign to {msg.unit}" if action == "assign" else action
        self.say(printable(f"sent: {what} {alert_id}"))
        return True

    def list_open(self) -> None:
        """Print every open alert shown here, oldest first."""
        with self._lock:
            rows = sorted(
                (a for a in self.alerts.values() if a.state != "closed"), key=lambda a: a.time
            )
            lines = [format_alert(a, self.numbers[a.alert_id], self.zone) for a in rows]
        if not lines:
            self.say("no open alerts")
        for line in lines:
            self.say(line)

    def command(self, line: str) -> bool:
        """Carry out one typed command; False when the console should end."""
        words = line.split()
        if not words:
            return True
        verb, args = words[0].lower(), words[1:]
        if verb in ("q", "quit", "exit"):
            return False
        if verb in ("h", "help", "?"):
            self.say(HELP)
        elif verb in ("l", "list"):
            self.list_open()
        elif verb in ("a", "ack", "acknowledge"):
            self.act("acknowledge", args[0] if args else None, note=" ".join(args[1:]))
        elif verb in ("c", "close"):
            self.act("close", args[0] if args else None, note=" ".join(args[1:]))
        elif verb in ("s", "assign"):
            self.act("assign", args[0] if args else None, args[1] if len(args) > 1 else None)
        else:
            self.say(f"unknown command {verb!r}; {HELP}")
        return True

    def close(self) -> None:
        """Stop listening."""
        self.bus.unsubscribe(self._sub)


def run_console(
    console: AlertConsole, lines: TextIO | None = None, stop: threading.Event | None = None
) -> None:
    """Read commands from ``lines`` (standard input) until ``quit``, end of input or ``stop``."""
    lines = lines or sys.stdin
    stop = stop or threading.Event()
    done = threading.Event()

    def read() -> None:
        try:
            for line in lines:
                if not console.command(line):
                    break
        finally:
            done.set()

    threading.Thread(target=read, name="console-input", daemon=True).start()
    while not (done.wait(0.2) or stop.is_set()):
        pass


__all__ = ["AlertConsole", "format_alert", "local_time", "printable", "run_console", "time_zone"]
