"""Alert actions from the map: ``POST /api/alerts/{id}/{acknowledge|assign|close}``.

Each action is checked (session, origin, CSRF token, the role's permission, and for agents
that the alert is their unit's), written to the audit log, and only then published on the bus
as an :class:`~vigil.ingest.schema.AlertAction` for the sector service to apply.

The action goes on the map's own broker identity's topic, ``alerts/actions/{identity}`` (the
broker lets each identity write only its own), with ``by`` = ``{web user}@{identity}``: the
broker vouches for the map, the map for its logged-in user, and receivers refuse an action
whose ``by`` names another identity than its topic's. With an in-process bus (no broker) the
``by`` is the web user's name alone.
"""

from __future__ import annotations

import re
from collections.abc import Set

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vigil.ingest.bus import Bus
from vigil.ingest.limits import ACTOR_PATTERN
from vigil.ingest.schema import AlertAction, topic_for
from vigil.ingest.sources import bus_identity
from vigil.maps.live.audit import AuditLog
from vigil.maps.live.feed import visible_alert
from vigil.maps.live.guard import Guard, read_form, refuse
from vigil.maps.live.state import LiveState

ACTIONS = ("acknowledge", "assign", "close")


class AlertActions:
    """The endpoint for alert actions: checks, audits and publishes them.

    Parameters
    ----------
    guard
        The session, origin, CSRF and role checks.
    live
        The map's state, whose open alerts may be acted on.
    bus
        Where the actions go.
    audit
        Where actions and refusals are written.
    sector
        The sector's name (the topic of the actions).
    unit_ids
        The sector's units, to which an alert may be assigned.
    """

    def __init__(
        self,
        guard: Guard,
        live: LiveState,
        bus: Bus,
        audit: AuditLog,
        sector: str,
        unit_ids: Set[str],
    ) -> None:
        self.guard = guard
        self.live = live
        self.bus = bus
        self.audit = audit
        self.sector = sector
        self.unit_ids = unit_ids
        #: The broker user the map publishes as (``None``: an in-process bus).
        self.identity = bus_identity(bus)

    async def handle(self, request: Request) -> Response:
        """``POST /api/alerts/{alert_id}/{action}``: check, audit and publish one action."""
        action = request.path_params["action"]
        alert_id = request.path_params["alert_id"]
        if action not in ACTIONS:
            return refuse(404, f"no alert action {action!r}; expected one of {ACTIONS}")
        session = self.guard.checked_post(request, f"alerts.{action}")
        if isinstance(session, Response):
            return session
        user = session.user
        alert = self.live.alerts.get(alert_id)
        if alert is None:
            return refuse(404, f"no open alert {alert_id!r}")
        if not visible_alert(user, alert):
            self.audit.record(user.name, "denied", alert_id, f"{action}: not the user's alert")
            return refuse(403, f"alert {alert_id!r} is not for unit {user.unit!r}")
        form = await read_form(request)
        unit = form.get("unit") or None
        if action == "assign" and unit not in self.unit_ids:
            return refuse(
                400,
                f"unit {unit!r} is not a unit of this sector; expected one of "
                f"{', '.join(sorted(self.unit_ids))}",
            )
        by = f"{user.name}@{self.identity}" if self.identity else user.name
        if not re.fullmatch(ACTOR_PATTERN, by):
            return refuse(
                400,
                f"user name {user.name!r} is too long to act through map identity "
                f"{self.identity!r} (by {by!r} must match {ACTOR_PATTERN})",
            )
        msg = AlertAction(
            alert_id=alert_id,
            # the sector's clock as the map knows it, not the wall's: in a demo the two differ,
            # and the service orders an alert's history on the sector's clock
            time=max(self.live.now, float(alert.get("time") or 0.0)),
            action=action,
            by=by,
            unit=unit if action == "assign" else None,
            note=form.get("note", "")[:500],
        )
        # the audit entry is written before the action leaves, so no action goes unrecorded
        self.audit.record(user.name, action, alert_id, f"unit {unit}" if action == "assign" else "")
        await run_in_threadpool(self.bus.publish, topic_for(self.sector, msg), msg)
        return JSONResponse(
            {"ok": True, "alert_id": alert_id, "action": action, "by": user.name, "unit": msg.unit}
        )
