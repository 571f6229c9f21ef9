"""``vigil alerts`` prints alert text from devices and users: no control character of it may
reach the agent's terminal (an escape sequence could clear the screen, retitle the window,
hide text or rewrite earlier lines)."""

from __future__ import annotations

import io
import time

from vigil.console import AlertConsole, format_alert, printable
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import Alert, topic_for

HOSTILE = "group of 3\x1b[2J\x1b]0;owned\x07 crossed\rFAKE\nline\x9b31m\x7f \u202eesrever\u202c end"


def hostile_alert(alert_id: str = "tucson-A000007") -> Alert:
    return Alert(
        alert_id=alert_id,
        time=time.time(),
        kind="crossing",
        priority=1,
        segment_id="tucson-0012",
        lat=31.334,
        lon=-110.9,
        units=["p01"],
        summary=HOSTILE,
    )


def controls(text: str) -> list[str]:
    return [c for c in text if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u202e\u202c"]


def test_printable_escapes_every_control_and_keeps_the_rest() -> None:
    shown = printable(HOSTILE)
    assert controls(shown) == []
    assert shown == (
        "group of 3\\x1b[2J\\x1b]0;owned\\x07 crossed\\rFAKE\\nline\\x9b31m\\x7f "
        "\\u202eesrever\\u202c end"
    )
    assert printable("Grenzübergang, 3 Personen – ok") == "Grenzübergang, 3 Personen – ok"


def test_console_line_of_a_hostile_alert_carries_no_control_character() -> None:
    line = format_alert(hostile_alert(), 1)
    assert controls(line) == [] and "\n" not in line
    assert "crossed\\rFAKE\\nline" in line


def test_console_on_the_bus_prints_hostile_alert_text_escaped() -> None:
    bus = InProcessBus("tucson")
    out = io.StringIO()
    console = AlertConsole("tucson", "p01", bus, out=out)
    try:
        a = hostile_alert()
        bus.publish(topic_for("tucson", a), a)
        console.command("a")
    finally:
        console.close()
        bus.close()
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) == 2, lines  # the alert's line and "sent: ...", nothing split off
    assert controls(text.replace("\n", "")) == []
    assert "\\x1b[2J" in lines[0] and lines[1] == "sent: acknowledge tucson-A000007"
