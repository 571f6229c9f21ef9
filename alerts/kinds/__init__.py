"""The alert rules, one class per alert kind, behind one interface (:class:`AlertRule`)."""

from vigil.alerts.kinds.base import AlertRule, RuleContext
from vigil.alerts.kinds.crossing import CrossingRule
from vigil.alerts.kinds.sensor_cue import SensorCueRule
from vigil.alerts.kinds.sensor_health import SensorHealthRule
from vigil.alerts.kinds.track_lost import TrackLostRule
from vigil.alerts.kinds.zone_entry import ZoneEntryRule

#: Every rule, in the order the engine consults them: a message's alerts come out in it.
RULE_CLASSES: tuple[type[AlertRule], ...] = (
    CrossingRule,
    ZoneEntryRule,
    SensorCueRule,
    TrackLostRule,
    SensorHealthRule,
)

__all__ = [
    "RULE_CLASSES",
    "AlertRule",
    "CrossingRule",
    "RuleContext",
    "SensorCueRule",
    "SensorHealthRule",
    "TrackLostRule",
    "ZoneEntryRule",
]
