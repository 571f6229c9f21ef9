"""Who is asking and may they: the session cookie, the role, the origin and the CSRF token.

Every route of :class:`~vigil.maps.live.app.LiveMapApp` asks the :class:`Guard` first; a refusal is
a JSON ``{"error": ...}`` that says what was missing, and refused actions are audited.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from vigil.maps.live.audit import AuditLog
from vigil.maps.live.auth import Session, Sessions

COOKIE = "vigil_session"


def same_origin(conn: Request | WebSocket) -> bool:
    """Whether a browser's request comes from this host's own page (no Origin: not a browser)."""
    origin = conn.headers.get("origin") or conn.headers.get("referer")
    if not origin:
        return True  # not a browser: the CSRF token is what protects actions
    return urlsplit(origin).netloc == conn.headers.get("host", "")


def refuse(status: int, error: str) -> JSONResponse:
    """A refusal: HTTP ``status`` with ``{"error": error}``."""
    return JSONResponse({"error": error}, status_code=status)


async def read_form(request: Request) -> dict[str, str]:
    """A POST's fields, from a form or a JSON object (first 10 kB; ``{}`` when unreadable)."""
    body = (await request.body())[:10_000].decode("utf-8", errors="replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = msgspec.json.decode(body or "{}")
        except msgspec.DecodeError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(body).items()}


class Guard:
    """The checks in front of the routes: a valid session, the role's permission, and for a
    POST the same origin and the session's CSRF token.

    Parameters
    ----------
    sessions
        The signed sessions (cookie ``vigil_session``) and their CSRF tokens.
    audit
        Where refused actions are written.
    """

    def __init__(self, sessions: Sessions, audit: AuditLog) -> None:
        self.sessions = sessions
        self.audit = audit

    def session(self, conn: Request | WebSocket) -> Session | None:
        """The live session of the request's cookie, or None."""
        return self.sessions.lookup(conn.cookies.get(COOKIE))

    def api_session(self, request: Request, permission: str) -> Session | JSONResponse:
        """A GET's session if its role has ``permission``, or the refusal (401, 403)."""
        session = self.session(request)
        if session is None:
            return refuse(401, "not logged in: no valid session")
        if not session.user.can(permission):
            return refuse(
                403, f"role {session.user.role!r} may not use {request.url.path} ({permission})"
            )
        return session

    def checked_post(self, request: Request, permission: str) -> Session | JSONResponse:
        """A POST's session, role, origin and CSRF token, or the refusal."""
        session = self.session(request)
        if session is None:
            return refuse(401, "not logged in: no valid session")
        if not same_origin(request):
            self.audit.record(session.user.name, "csrf_refused", request.url.path, "cross-origin")
            return refuse(403, "cross-origin request refused")
        if not self.sessions.check_csrf(session, request.headers.get("x-csrf-token")):
            self.audit.record(session.user.name, "csrf_refused", request.url.path, "bad token")
            return refuse(403, "missing or wrong CSRF token (X-CSRF-Token header)")
        if not session.user.can(permission):
            self.audit.record(
                session.user.name, "denied", request.url.path, f"role {session.user.role}"
            )
            return refuse(403, f"role {session.user.role!r} may not {permission}")
        return session
