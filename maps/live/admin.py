"""User administration and the audit log: ``GET /admin``, ``GET|POST /api/users``,
``DELETE /api/users/{name}`` and ``GET /api/audit``.

Adding, replacing or removing a user raises that user's generation, which ends their sessions
(also in other server processes sharing the users file), so a changed role or password takes
effect at once; every change is audited.
"""

from __future__ import annotations

import math

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from vigil.maps.live.audit import AuditLog
from vigil.maps.live.auth import USER_NAME, AuthError, Sessions, UserStore
from vigil.maps.live.guard import Guard, read_form, refuse
from vigil.maps.live.page import admin_page

#: The most audit entries one ``/api/audit`` answer holds.
MAX_AUDIT_ROWS = 10_000


class UserAdmin:
    """The admin page and the users and audit APIs.

    Parameters
    ----------
    guard
        The session, origin, CSRF and role checks.
    users
        Who may log in.
    sessions
        The open sessions (closed for a user who is replaced or removed).
    audit
        The audit log, read by ``/api/audit`` and written on every change.
    """

    def __init__(self, guard: Guard, users: UserStore, sessions: Sessions, audit: AuditLog) -> None:
        self.guard = guard
        self.users = users
        self.sessions = sessions
        self.audit = audit

    async def page(self, request: Request) -> Response:
        """``GET /admin``: the users and audit page (admins only)."""
        session = self.guard.session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not session.user.can("users"):
            return refuse(403, f"role {session.user.role!r} may not manage users")
        return HTMLResponse(admin_page())

    async def audit_api(self, request: Request) -> Response:
        """``GET /api/audit?since=&limit=``: audit entries, newest first."""
        session = self.guard.api_session(request, "audit")
        if isinstance(session, Response):
            return session
        q = request.query_params
        try:
            since = float(q["since"]) if "since" in q else None
            limit = int(q.get("limit", "200"))
        except ValueError as exc:
            return refuse(400, f"since is UTC seconds, limit an integer: {exc}")
        if since is not None and not math.isfinite(since):
            return refuse(400, f"since={q['since']!r}: expected finite UTC seconds")
        if not 1 <= limit <= MAX_AUDIT_ROWS:
            return refuse(400, f"limit={limit}: expected 1 to {MAX_AUDIT_ROWS}")
        rows = self.audit.entries(since=since, limit=limit)
        return JSONResponse(
            [
                {
                    "time": e.time,
                    "user": e.user,
                    "action": e.action,
                    "target": e.target,
                    "detail": e.detail,
                }
                for e in rows
            ]
        )

    async def users_api(self, request: Request) -> Response:
        """``GET /api/users``: the users; ``POST``: add (or replace) one."""
        if request.method == "GET":
            session = self.guard.api_session(request, "users")
            if isinstance(session, Response):
                return session
            return JSONResponse(
                [{"name": u.name, "role": u.role, "unit": u.unit} for u in self.users.users()]
            )
        session = self.guard.checked_post(request, "users")
        if isinstance(session, Response):
            return session
        form = await read_form(request)
        try:
            user = await run_in_threadpool(
                lambda: self.users.add(
                    form.get("name", ""),
                    form.get("role", ""),
                    form.get("password", ""),
                    unit=form.get("unit") or None,
                    replace=form.get("replace") == "true",
                )
            )
        except AuthError as exc:
            return refuse(400, str(exc))
        self.sessions.close_user(user.name)
        self.audit.record(session.user.name, "user_add", user.name, f"role {user.role}")
        return JSONResponse({"name": user.name, "role": user.role, "unit": user.unit}, 201)

    async def user_delete(self, request: Request) -> Response:
        """``DELETE /api/users/{name}``: remove a user and end their sessions."""
        session = self.guard.checked_post(request, "users")
        if isinstance(session, Response):
            return session
        name = request.path_params["name"]
        if not USER_NAME.match(name):
            return refuse(400, f"user name {name!r} is not allowed")
        if not self.users.remove(name):
            return refuse(404, f"no user {name!r}")
        self.sessions.close_user(name)
        self.audit.record(session.user.name, "user_remove", name)
        return JSONResponse({"removed": name})
