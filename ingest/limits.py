"""What the wire allows in strings and lists: the identifier pattern, the free-text and list
caps, as msgspec types (enforced on decode) and as one check for structs built in-process.

Identifiers (devices, tracks, alerts, segments, zones, units) follow the deployment's own
identifier pattern (``vigil.geo.site.Ident``): no markup, no topic separators or wildcards, at
most 64 characters. Free text (alert summaries, notes, a camera command's reason) is capped at
:data:`MAX_TEXT` characters; lists at :data:`MAX_ITEMS` items.
"""

from __future__ import annotations

import re
from typing import Annotated

from msgspec import Meta

#: Identifiers on the wire: the deployment's identifier pattern.
IDENT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$(?!\n)"
#: Who acted on an alert: a user name (``vigil.maps.live.auth.USER_NAME``) or a unit id.
ACTOR_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$(?!\n)"
#: Longest free text (alert summaries, notes, a camera command's reason), characters.
MAX_TEXT = 500
#: Longest list in a message (sensors, units, predicted positions, history, footprint).
MAX_ITEMS = 256

Ident = Annotated[str, Meta(pattern=IDENT_PATTERN)]
Actor = Annotated[str, Meta(pattern=ACTOR_PATTERN)]
Text = Annotated[str, Meta(max_length=MAX_TEXT)]
Idents = Annotated[list[Ident], Meta(max_length=MAX_ITEMS)]
Probs = Annotated[dict[Annotated[str, Meta(max_length=32)], float], Meta(max_length=16)]
_Name = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$(?!\n)")]
_Value = bool | int | float | Text | None
_Values = Annotated[dict[_Name, _Value], Meta(max_length=16)]
#: A camera's detection settings (``SensorStatus.detection``): at most 16 names
#: ``[a-z][a-z0-9_]`` a table, each a value or a table of values or of such tables.
Settings = Annotated[
    dict[_Name, _Value | Annotated[dict[_Name, _Value | _Values], Meta(max_length=16)]],
    Meta(max_length=16),
]

#: Field names (``name[]`` for a list's items) that hold identifiers, and free text.
IDENT_FIELDS = frozenset(
    {
        "camera", "sensor", "aircraft", "track_id", "crossing_id", "segment_id", "alert_id",
        "zone", "assigned_unit", "unit", "sensors[]", "units[]",
    }
)  # fmt: skip
TEXT_FIELDS = frozenset({"summary", "note", "reason"})
_IDENT_RE = re.compile(IDENT_PATTERN)
_ACTOR_RE = re.compile(ACTOR_PATTERN)


def text_problem(name: str, value: str) -> tuple[str, str] | None:
    """``(expected, reason)`` when a string field's value breaks its rule, else ``None``.

    ``name`` is the field's name (``sensors[]`` for an item of ``sensors``); reasons are
    ``bad_id`` and ``too_long``.

    >>> text_problem("sensor", "<img src=x>")[1]
    'bad_id'
    >>> text_problem("summary", "northbound crossing on tucson-0012") is None
    True
    """
    if name in IDENT_FIELDS:
        if not _IDENT_RE.match(value):
            return f"an identifier matching {IDENT_PATTERN}", "bad_id"
    elif name == "by":
        if not _ACTOR_RE.match(value):
            return f"a name matching {ACTOR_PATTERN}", "bad_id"
    elif name in TEXT_FIELDS and len(value) > MAX_TEXT:
        return f"text of at most {MAX_TEXT} characters", "too_long"
    return None


__all__ = [
    "ACTOR_PATTERN",
    "IDENT_PATTERN",
    "MAX_ITEMS",
    "MAX_TEXT",
    "Actor",
    "Ident",
    "Idents",
    "Probs",
    "Text",
    "text_problem",
]
