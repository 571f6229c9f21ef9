"""Each alert rule through the one interface (``AlertRule``), alone: on its own scenario it
raises one alert of its kind; on any scenario it raises no other kind; switched off, nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import msgspec
import pytest
from alert_scenes import T0, Scene, alerts_of

from vigil.alerts.engine import AlertEngine
from vigil.alerts.kinds import RULE_CLASSES, AlertRule
from vigil.alerts.rules import AlertRules
from vigil.config import load_default
from vigil.ingest.schema import (
    Alert,
    AlertKind,
    CameraCommand,
    Crossing,
    SensorEvent,
    SensorStatus,
    Track,
    Wire,
)

ZONE = "z1"
ZONE_CHAINAGE_M = 14_500.0  # z1 lies about 1350 m north of the border here


@pytest.fixture(scope="module")
def site():
    return load_default().site


@dataclass(frozen=True)
class Case:
    """A scenario that should raise one alert of ``kind``, and what to check on it."""

    kind: AlertKind
    messages: Callable[[Scene], list[Wire]]
    check: Callable[[Alert, list[Wire]], bool]


def _crossing(s: Scene) -> list[Wire]:
    return list(s.walk_messages("k1", 20_000.0, T0))


def _zone_entry(s: Scene) -> list[Wire]:
    x, y = s.border_point(ZONE_CHAINAGE_M, 1350.0)
    return [s.track_message("z", x, y, T0, count=10)]


def _sensor_cue(s: Scene) -> list[Wire]:
    sensor = s.e.site.sensors[0].id
    return [SensorEvent(sensor=sensor, time=T0, modality="seismic", strength=1.0)]


def _track_lost(s: Scene) -> list[Wire]:
    x, y = s.border_point(20_000.0, 100.0)
    walk = s.walk_messages("k2", 20_000.0, T0)
    return [*walk, s.track_message("k2", x, y, T0 + 10, state="ended")]


def _sensor_health(s: Scene) -> list[Wire]:
    return [SensorStatus(sensor="u010", time=T0, battery=0.9, tamper=True, last_heard=T0)]


CASES = {
    "crossing": Case(
        "crossing", _crossing, lambda a, out: a.segment_id == "tucson-0020" and a.track_id == "k1"
    ),
    "zone_entry": Case("zone_entry", _zone_entry, lambda a, out: a.zone == ZONE),
    "sensor_cue": Case(
        "sensor_cue",
        _sensor_cue,
        lambda a, out: (
            a.evidence.sensors == ["u001"] and any(isinstance(m, CameraCommand) for m in out)
        ),
    ),
    "track_lost": Case("track_lost", _track_lost, lambda a, out: a.track_id == "k2"),
    "sensor_health": Case(
        "sensor_health", _sensor_health, lambda a, out: a.priority == AlertRules().tamper_priority
    ),
}


def fresh_rule(site, cls: type[AlertRule], settings: AlertRules | None = None):
    """A rule of ``cls`` on a fresh sector context, alone (no other rule sees the messages)."""
    engine = AlertEngine(site, settings)
    return engine, cls(engine.context)


def feed(engine: AlertEngine, rule: AlertRule, messages: list[Wire]) -> list[Wire]:
    """Hand messages to one rule through the interface's hooks, remembering tracks as the
    engine does; return what the rule raised, in order."""
    out: list[Wire] = []
    for m in messages:
        engine.book.advance(m.time)
        match m:
            case Track():
                out += rule.on_track(engine.remember(m))
                if m.state == "ended":
                    engine.tracks.pop(m.track_id)
            case Crossing():
                out += rule.on_crossing(m)
            case SensorEvent():
                out += rule.on_sensor_event(m)
            case SensorStatus():
                out += rule.on_sensor_status(m)
    return out


def test_every_alert_kind_has_one_rule() -> None:
    assert sorted(cls.kind for cls in RULE_CLASSES) == sorted(get_args(AlertKind))


@pytest.mark.parametrize("cls", RULE_CLASSES, ids=lambda c: c.kind)
def test_a_rule_raises_its_kind_on_its_scenario(site, cls: type[AlertRule]) -> None:
    engine, rule = fresh_rule(site, cls)
    case = CASES[cls.kind]
    out = feed(engine, rule, case.messages(Scene(engine)))
    alerts = alerts_of(out)
    assert [a.kind for a in alerts] == [rule.kind]
    assert alerts[0].state == "new" and case.check(alerts[0], out)
    assert engine.counts[f"alert_{rule.kind}"] == 1
    assert engine.book.open[alerts[0].alert_id].alert == alerts[0]


@pytest.mark.parametrize("scenario", sorted(CASES))
@pytest.mark.parametrize("cls", RULE_CLASSES, ids=lambda c: c.kind)
def test_a_rule_raises_no_other_kind(site, cls: type[AlertRule], scenario: str) -> None:
    engine, rule = fresh_rule(site, cls)
    out = feed(engine, rule, CASES[scenario].messages(Scene(engine)))
    assert {a.kind for a in alerts_of(out)} <= {rule.kind}


@pytest.mark.parametrize("cls", RULE_CLASSES, ids=lambda c: c.kind)
def test_a_rule_switched_off_raises_nothing(site, cls: type[AlertRule]) -> None:
    # each kind has a switch of its own name in the [alerts] table
    settings = msgspec.structs.replace(AlertRules(), **{cls.kind: False})
    engine, rule = fresh_rule(site, cls, settings)
    assert feed(engine, rule, CASES[cls.kind].messages(Scene(engine))) == []
    assert rule.on_tick(T0 + 10 * settings.silent_after_s) == []
