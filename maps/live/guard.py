"""Who is asking and may they: the Host, the body's size, the session cookie, the role, the
origin and the CSRF token.

Every route of :class:`~vigil.maps.live.app.LiveMapApp` asks the :class:`Guard` first; a refusal is
a JSON ``{"error": ...}`` that says what was missing, and refused actions are audited.
:class:`HostCheck` and :class:`BodyLimit` sit in front of every route as ASGI middleware.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from vigil.maps.live.audit import AuditLog
from vigil.maps.live.auth import Session, Sessions, UserStore
from vigil.maps.live.write_rate import WriteRate

COOKIE = "vigil_session"
#: The most any request body may hold, bytes (forms and small JSON objects only).
MAX_BODY = 64 * 1024
#: The most a form or JSON object read by a route may hold, bytes.
MAX_FORM = 16 * 1024
#: Host names every server answers to (besides the address a client connected to).
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


class BodyTooLargeError(Exception):
    """A request body passed its cap while it was being read."""


def same_origin(conn: Request | WebSocket) -> bool:
    """Whether a browser's request comes from this host's own page (no Origin: not a browser)."""
    origin = conn.headers.get("origin") or conn.headers.get("referer")
    if not origin:
        return True  # not a browser: the CSRF token is what protects actions
    try:
        return urlsplit(origin).netloc == conn.headers.get("host", "")
    except ValueError:  # a malformed Origin (bad IPv6 literal): not ours
        return False


def refuse(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A refusal: HTTP ``status`` with ``{"error": error}``."""
    return JSONResponse({"error": error}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int = MAX_FORM) -> bytes:
    """A request's body read as it streams in, refused (:class:`BodyTooLargeError`) past ``limit``
    bytes without buffering the rest."""
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > limit:
        raise BodyTooLargeError(f"request body of {size} bytes; at most {limit} accepted")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLargeError(f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, limit: int = MAX_FORM) -> dict[str, str]:
    """A POST's fields, from a form or a JSON object (``{}`` when unreadable; a body over
    ``limit`` bytes raises :class:`BodyTooLargeError`, answered 413 by :class:`BodyLimit`)."""
    body = (await read_body(request, limit)).decode("utf-8", errors="replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = msgspec.json.decode(body or "{}")
        except msgspec.DecodeError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(body).items()}


async def _answer(send, status: int, error: str) -> None:
    """Send a JSON refusal that closes the connection (the rest of a body is not read)."""
    body = msgspec.json.encode({"error": error})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 as soon as its
    ``Content-Length`` or the running count of what arrived passes the cap; the rest is never
    read or buffered, and the connection is closed."""

    def __init__(self, app, max_bytes: int = MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = Headers(scope=scope).get("content-length")
        if size is not None and (not size.isdigit() or int(size) > self.max_bytes):
            status = 400 if not size.isdigit() else 413
            await _answer(send, status, f"request body of {size!r} bytes; at most "
                          f"{self.max_bytes} accepted")  # fmt: skip
            return
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(f"request body over {self.max_bytes} bytes")
            return message

        async def watched_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLargeError as exc:
            if not started:
                await _answer(send, 413, str(exc))


def host_name(host: str) -> str:
    """The name in a ``Host`` header without the port (``[::1]:8080`` gives ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def certificate_names(certfile: str | Path | None) -> list[str]:
    """The DNS names and addresses a PEM certificate is for (subject alternative names and
    common name); ``[]`` without a certificate or when it cannot be read."""
    if certfile is None:
        return []
    import ssl

    try:
        decoded = ssl._ssl._test_decode_cert(str(certfile))  # noqa: SLF001 (stdlib, no dep)
    except (OSError, ValueError, AttributeError):
        return []
    names = [
        value for kind, value in decoded.get("subjectAltName", ()) if kind in ("DNS", "IP Address")
    ]
    for rdn in decoded.get("subject", ()):
        names += [value for key, value in rdn if key == "commonName"]
    return [n.strip().lower() for n in names]


def allowed_hosts(bind_host: str = "127.0.0.1", extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names a server bound to ``bind_host`` answers to: the local names, the bound
    address (for a wildcard, this machine's names) and ``extra`` (the certificate's names,
    ``--allowed-host``)."""
    names = set(LOCAL_NAMES) | {host_name(h) for h in extra if h}
    names.add(socket.gethostname().lower())
    if bind_host in _WILDCARDS:
        names.add(socket.getfqdn().lower())
    else:
        names.add(host_name(bind_host))
    return frozenset(names)


class HostCheck:
    """ASGI middleware: a request (HTTP or WebSocket) whose ``Host`` is not one of ``allowed``
    nor the address the client connected to is refused (400), so a page served from another
    name that resolves here (DNS rebinding) cannot talk to the map. ``"*"`` allows any."""

    def __init__(self, app, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(host_name(h) for h in allowed)

    def _ok(self, scope) -> bool:
        if "*" in self.allowed:
            return True
        raw = Headers(scope=scope).get("host")
        if raw is None:
            return False
        name = host_name(raw)
        server = scope.get("server")
        return name in self.allowed or bool(server and name == str(server[0]).lower())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket") and not self._ok(scope):
            if scope["type"] == "http":
                await _answer(send, 400, "Host header is not a name this server answers to")
            else:
                await send({"type": "websocket.close", "code": 4400})
            return
        await self.app(scope, receive, send)


class Guard:
    """The checks in front of the routes: a valid session of a user whose generation has not
    changed since the login, the role's permission, and for a POST the same origin and the
    session's CSRF token.

    Parameters
    ----------
    sessions
        The signed sessions (cookie ``vigil_session``) and their CSRF tokens.
    audit
        Where refused actions are written.
    users
        Who may log in; each request's session is checked against the user's current
        generation (a role or password change or a removal ends the session). ``None``: no
        check (tests of the guard alone).
    write_rate
        How often one user may POST (:class:`~vigil.maps.live.write_rate.WriteRate`; its
        defaults when omitted). Checked before anything else a POST does, refusals included,
        so no client can grow the audit database faster than it allows.
    """

    def __init__(
        self,
        sessions: Sessions,
        audit: AuditLog,
        users: UserStore | None = None,
        write_rate: WriteRate | None = None,
    ) -> None:
        self.sessions = sessions
        self.audit = audit
        self.users = users
        self.write_rate = write_rate or WriteRate()

    def session(self, conn: Request | WebSocket) -> Session | None:
        """The live session of the request's cookie, or None (also when the user was changed
        or removed since the login: that session is ended)."""
        session = self.sessions.lookup(conn.cookies.get(COOKIE))
        if session is None or self.users is None:
            return session
        if self.users.generation(session.user.name) != session.user.generation:
            self.sessions.close(session)
            return None
        return session

    def still_valid(self, session: Session) -> bool:
        """Whether ``session`` is open, unexpired and of its user's current generation."""
        if not self.sessions.alive(session):
            return False
        return self.users is None or (
            self.users.generation(session.user.name) == session.user.generation
        )

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
        """A POST's session, its user's write rate, origin, CSRF token and role, or the
        refusal (401, 429 with ``Retry-After``, 403)."""
        session = self.session(request)
        if session is None:
            return refuse(401, "not logged in: no valid session")
        limited = self.write_rate.admit(session.user.name)
        if limited is not None:
            wait = max(1, math.ceil(limited.retry_after_s))
            if limited.first:  # one audit entry per run of refusals, so the log stays bounded
                self.audit.record(
                    session.user.name, "rate_limited", request.url.path,
                    f"over {self.write_rate.burst} writes at once or "
                    f"{self.write_rate.per_s:g} a second",
                )  # fmt: skip
            return refuse(
                429,
                f"too many changes from user {session.user.name!r}: at most "
                f"{self.write_rate.burst} at once, then {self.write_rate.per_s:g} a second; "
                f"retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
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
