"""Who may use the live map: users with roles, argon2 password hashes, signed sessions.

Users live in a small SQLite file (``name``, ``role``, argon2id hash, optional patrol unit).
A login opens a server-side session whose id travels in a cookie signed with HMAC-SHA256 under
the server's secret, so a forged or altered cookie is refused before any lookup; the CSRF
token for that session is an HMAC of its id under the same secret.

Roles
-----
``commander``
    the map, every alert, acknowledge / assign / close, history, the audit log.
``agent``
    the map and the alerts of their own unit (assigned to it, or recommended and not yet
    assigned elsewhere), which they may acknowledge.
``planner``
    the map, the alert queue read-only, history and analyses; no alert actions.
``admin``
    users and the audit log; not the map.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROLES: tuple[str, ...] = ("commander", "agent", "planner", "admin")
Role = Literal["commander", "agent", "planner", "admin"]

#: What each role may do. The server checks these on every request; the page only hides
#: the controls a role lacks.
PERMISSIONS: dict[str, frozenset[str]] = {
    "commander": frozenset(
        {
            "map",
            "alerts.all",
            "alerts.acknowledge",
            "alerts.assign",
            "alerts.close",
            "history",
            "analyses",
            "audit",
        }
    ),
    "agent": frozenset({"map", "alerts.own", "alerts.acknowledge"}),
    "planner": frozenset({"map", "alerts.all", "history", "analyses"}),
    "admin": frozenset({"users", "audit"}),
}

USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LENGTH = 8
#: A session lasts one long shift at most, seconds.
DEFAULT_SESSION_S = 12 * 3600.0


class AuthError(ValueError):
    """A user, role or password that cannot be accepted."""


@dataclass(frozen=True)
class User:
    """A user as stored (without the hash)."""

    name: str
    role: str
    unit: str | None = None

    def can(self, permission: str) -> bool:
        """Whether the user's role grants ``permission`` (see :data:`PERMISSIONS`)."""
        return permission in PERMISSIONS.get(self.role, frozenset())


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_role(role: str) -> str:
    """Return ``role`` if it is one of :data:`ROLES`, else raise :class:`AuthError`."""
    if role not in ROLES:
        raise AuthError(f"role {role!r} is not a role; expected one of {', '.join(ROLES)}")
    return role


class UserStore:
    """Users in a SQLite file; passwords hashed with argon2id (argon2-cffi).

    Parameters
    ----------
    path
        The SQLite file; created with its table when missing.
    hasher
        An ``argon2.PasswordHasher``; the library's defaults (RFC 9106 low-memory profile)
        when omitted.
    """

    def __init__(self, path: str | Path, hasher=None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._hasher = hasher or _hasher()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS users ("
            " name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,"
            " unit TEXT, created REAL NOT NULL)"
        )
        self._dummy_hash: str | None = None

    def add(
        self,
        name: str,
        role: str,
        password: str,
        *,
        unit: str | None = None,
        replace: bool = False,
    ) -> User:
        """Add a user (or replace one when ``replace``); raises :class:`AuthError`."""
        if not USER_NAME.match(name or ""):
            raise AuthError(
                f"user name {name!r} is not allowed; expected 1 to 64 of A-Z a-z 0-9 _ . @ -"
            )
        check_role(role)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AuthError(
                f"password for {name!r} has {len(password)} characters; "
                f"expected at least {MIN_PASSWORD_LENGTH}"
            )
        digest = self._hasher.hash(password)
        with self._lock:
            exists = self._db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone()
            if exists and not replace:
                raise AuthError(f"user {name!r} already exists in {self.path}")
            self._db.execute(
                "INSERT OR REPLACE INTO users (name, role, password_hash, unit, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, role, digest, unit, time.time()),
            )
        return User(name, role, unit)

    def get(self, name: str) -> User | None:
        """The user called ``name``, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT name, role, unit FROM users WHERE name=?", (name,)
            ).fetchone()
        return User(*row) if row else None

    def users(self) -> list[User]:
        """Every user, by name."""
        with self._lock:
            rows = self._db.execute("SELECT name, role, unit FROM users ORDER BY name").fetchall()
        return [User(*r) for r in rows]

    def remove(self, name: str) -> bool:
        """Delete a user; whether one was deleted."""
        with self._lock:
            cur = self._db.execute("DELETE FROM users WHERE name=?", (name,))
        return cur.rowcount > 0

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else ``None`` (slow by design: argon2)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        with self._lock:
            row = self._db.execute(
                "SELECT name, role, unit, password_hash FROM users WHERE name=?", (name,)
            ).fetchone()
        if row is None and self._dummy_hash is None:
            # verify an unknown name against some hash, so that both cases take as long
            self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        digest = row[3] if row else self._dummy_hash
        try:
            self._hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(digest):
            with self._lock:
                self._db.execute(
                    "UPDATE users SET password_hash=? WHERE name=?",
                    (self._hasher.hash(password), name),
                )
        return User(row[0], row[1], row[2])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def add_user(
    path: str | Path,
    name: str,
    role: str,
    password: str,
    *,
    unit: str | None = None,
    replace: bool = False,
) -> User:
    """Add a user to the users file at ``path`` (``vigil users add NAME --role ROLE``).

    Raises :class:`AuthError` naming the bad name, role or password length, or an existing
    user when ``replace`` is false.
    """
    store = UserStore(path)
    try:
        return store.add(name, role, password, unit=unit, replace=replace)
    finally:
        store.close()


# -- sessions ---------------------------------------------------------------------------------


@dataclass
class Session:
    """A logged-in user's session."""

    sid: str
    user: User
    created: float
    expires: float


class Sessions:
    """Server-side sessions named by signed cookie values.

    A cookie value is ``{sid}.{signature}`` with the signature an HMAC-SHA256 of the id under
    ``secret``; a value that does not verify is refused without looking anything up.
    """

    def __init__(
        self,
        secret: bytes | None = None,
        *,
        lifetime_s: float = DEFAULT_SESSION_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret or secrets.token_bytes(32)
        if len(self.secret) < 16:
            raise AuthError(f"session secret has {len(self.secret)} bytes; expected at least 16")
        self.lifetime_s = lifetime_s
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _sign(self, purpose: str, sid: str) -> str:
        return hmac.new(self.secret, f"{purpose}:{sid}".encode(), hashlib.sha256).hexdigest()

    def open(self, user: User) -> tuple[Session, str]:
        """Start a session; returns it and the cookie value."""
        sid = secrets.token_urlsafe(24)
        now = self.clock()
        session = Session(sid, user, now, now + self.lifetime_s)
        with self._lock:
            self._sessions[sid] = session
        return session, f"{sid}.{self._sign('session', sid)}"

    def lookup(self, cookie: str | None) -> Session | None:
        """The live session a cookie value names, or ``None`` (missing, forged, expired)."""
        if not cookie or cookie.count(".") != 1:
            return None
        sid, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign("session", sid)):
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if session.expires <= self.clock():
                del self._sessions[sid]
                return None
        return session

    def csrf_token(self, session: Session) -> str:
        """The CSRF token of a session (sent back in the ``X-CSRF-Token`` header)."""
        return self._sign("csrf", session.sid)

    def check_csrf(self, session: Session, token: str | None) -> bool:
        """Whether ``token`` is the session's CSRF token."""
        return bool(token) and hmac.compare_digest(token, self.csrf_token(session))

    def close(self, session: Session) -> None:
        """End a session (logout)."""
        with self._lock:
            self._sessions.pop(session.sid, None)

    def close_user(self, name: str) -> int:
        """End every session of a user (role changed, user removed); how many."""
        with self._lock:
            gone = [sid for sid, s in self._sessions.items() if s.user.name == name]
            for sid in gone:
                del self._sessions[sid]
        return len(gone)


class LoginThrottle:
    """Refuse a name for a while after repeated failed logins (guessing is slow anyway)."""

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300.0,
        lockout_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def locked(self, name: str) -> bool:
        """Whether ``name`` is locked out now."""
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(name, []) if now - t < self.window_s]
            self._failures[name] = recent
            return len(recent) >= self.max_failures and now - recent[-1] < self.lockout_s

    def failed(self, name: str) -> None:
        """Count a failed login for ``name``."""
        with self._lock:
            self._failures.setdefault(name, []).append(self.clock())

    def succeeded(self, name: str) -> None:
        """Forget the failures of ``name``."""
        with self._lock:
            self._failures.pop(name, None)
