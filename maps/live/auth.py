"""Who may use the live map: users with roles, argon2 password hashes, signed sessions.

Users live in a small SQLite file (``name``, ``role``, argon2id hash, optional patrol unit).
A login opens a server-side session whose id travels in a cookie signed with HMAC-SHA256 under
the server's secret, so a forged or altered cookie is refused before any lookup; the CSRF
token for that session is an HMAC of its id under the same secret.

Roles
-----
``commander``
    the map, every alert, acknowledge / assign / close, labelling tracks (person, animal,
    vehicle, unknown), history, the audit log.
``agent``
    the map and the alerts of their own unit (assigned to it, or recommended and not yet
    assigned elsewhere), which they may acknowledge; labelling tracks.
``planner``
    the map, the alert queue read-only, history and analyses; no alert actions.
``admin``
    users and the audit log; not the map.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vigil.maps.live.passwords import MAX_PASSWORD_LENGTH, password_problem

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
            "tracks.label",
            "history",
            "analyses",
            "audit",
        }
    ),
    "agent": frozenset({"map", "alerts.own", "alerts.acknowledge", "tracks.label"}),
    "planner": frozenset({"map", "alerts.all", "history", "analyses"}),
    "admin": frozenset({"users", "audit"}),
}

USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$(?!\n)")
#: A session lasts one long shift at most, seconds.
DEFAULT_SESSION_S = 12 * 3600.0


class AuthError(ValueError):
    """A user, role or password that cannot be accepted."""


@dataclass(frozen=True)
class User:
    """A user as stored (without the hash).

    ``generation`` grows with every change of the user's role, unit or password and with
    their removal; a session remembers the generation it was opened under and ends when it
    differs from the stored one.
    """

    name: str
    role: str
    unit: str | None = None
    generation: int = 1

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


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid user name, else raise :class:`AuthError`."""
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise AuthError(
            f"user name {name!r} is not allowed; expected 1 to 64 of A-Z a-z 0-9 _ . @ -"
        )
    return name


def check_password(name: str, password: str) -> str:
    """Return ``password`` if the policy (:mod:`~vigil.maps.live.passwords`) accepts it for
    ``name``, else raise :class:`AuthError` saying why."""
    problem = password_problem(password, name)
    if problem is not None:
        raise AuthError(f"password for {name!r} {problem}")
    return password


def private_file(path: Path) -> None:
    """Create ``path`` readable and writable by its owner only (0600), or make it so; the
    file is created with that mode, never briefly readable by others."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)


_COLUMNS = "name, role, unit, generation"


class UserStore:
    """Users in a SQLite file (mode 0600); passwords hashed with argon2id (argon2-cffi).

    Every change (add, replace, new password, removal) raises the user's generation, kept in
    ``generations`` also after a removal, so a name added again does not revive old sessions.

    Parameters
    ----------
    path
        The SQLite file; created with its tables when missing.
    hasher
        An ``argon2.PasswordHasher``; the library's defaults (RFC 9106 low-memory profile)
        when omitted.
    """

    def __init__(self, path: str | Path, hasher=None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        private_file(self.path)
        self._hasher = hasher or _hasher()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS users ("
            " name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,"
            " unit TEXT, created REAL NOT NULL, generation INTEGER NOT NULL DEFAULT 1)"
        )
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(users)")}
        if "generation" not in columns:  # a users file from before generations
            self._db.execute("ALTER TABLE users ADD COLUMN generation INTEGER NOT NULL DEFAULT 1")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS generations (name TEXT PRIMARY KEY,"
            " generation INTEGER NOT NULL)"
        )
        # an unknown name is verified against this hash, so both cases take as long
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))

    def _next_generation(self, name: str) -> int:
        row = self._db.execute(
            "SELECT max(coalesce((SELECT generation FROM generations WHERE name=?), 0),"
            " coalesce((SELECT generation FROM users WHERE name=?), 0))",
            (name, name),
        ).fetchone()
        generation = int(row[0]) + 1
        self._db.execute(
            "INSERT OR REPLACE INTO generations (name, generation) VALUES (?, ?)",
            (name, generation),
        )
        return generation

    def add(
        self,
        name: str,
        role: str,
        password: str,
        *,
        unit: str | None = None,
        replace: bool = False,
    ) -> User:
        """Add a user (or replace one when ``replace``, ending their sessions); raises
        :class:`AuthError` naming the bad name, role or password."""
        check_name(name)
        check_role(role)
        if unit is not None and not USER_NAME.match(unit):
            raise AuthError(
                f"unit {unit!r} is not allowed; expected 1 to 64 of A-Z a-z 0-9 _ . @ -"
            )
        check_password(name, password)
        digest = self._hasher.hash(password)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                exists = self._db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone()
                if exists and not replace:
                    raise AuthError(f"user {name!r} already exists in {self.path}")
                generation = self._next_generation(name)
                self._db.execute(
                    "INSERT OR REPLACE INTO users"
                    " (name, role, password_hash, unit, created, generation)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (name, role, digest, unit, time.time(), generation),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return User(name, role, unit, generation)

    def set_password(self, name: str, password: str) -> User:
        """Give ``name`` a new password (ending their sessions); raises :class:`AuthError`
        for an unknown user or a password the policy refuses."""
        check_name(name)
        check_password(name, password)
        digest = self._hasher.hash(password)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone() is None:
                    raise AuthError(f"no user {name!r} in {self.path}")
                generation = self._next_generation(name)
                self._db.execute(
                    "UPDATE users SET password_hash=?, generation=? WHERE name=?",
                    (digest, generation, name),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        user = self.get(name)
        assert user is not None
        return user

    def get(self, name: str) -> User | None:
        """The user called ``name``, or ``None``."""
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM users WHERE name=?", (name,)).fetchone()
        return User(*row) if row else None

    def generation(self, name: str) -> int | None:
        """The user's current generation, or ``None`` when there is no such user."""
        with self._lock:
            row = self._db.execute("SELECT generation FROM users WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else None

    def users(self) -> list[User]:
        """Every user, by name."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall()
        return [User(*r) for r in rows]

    def remove(self, name: str) -> bool:
        """Delete a user (ending their sessions); whether one was deleted."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("DELETE FROM users WHERE name=?", (name,))
            if cur.rowcount > 0:
                self._next_generation(name)
            self._db.execute("COMMIT")
        return cur.rowcount > 0

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else ``None`` (slow by design: argon2; an
        unknown name costs a check against a dummy hash all the same)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS}, password_hash FROM users WHERE name=?", (name,)
            ).fetchone()
        digest = row[4] if row else self._dummy_hash
        try:
            self._hasher.verify(digest, password[:MAX_PASSWORD_LENGTH])
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(digest):
            with self._lock:
                self._db.execute(
                    "UPDATE users SET password_hash=? WHERE name=? AND password_hash=?",
                    (self._hasher.hash(password), name, digest),
                )
        return User(*row[:4])

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

    Raises :class:`AuthError` naming the bad name, role or password, or an existing user when
    ``replace`` is false.
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
            if len(self._sessions) >= 1024 and len(self._sessions) & 255 == 0:
                # expired sessions are otherwise dropped only when their cookie comes back
                for old in [k for k, s in self._sessions.items() if s.expires <= now]:
                    del self._sessions[old]
            self._sessions[sid] = session
        return session, f"{sid}.{self._sign('session', sid)}"

    def lookup(self, cookie: str | None) -> Session | None:
        """The live session a cookie value names, or ``None`` (missing, forged, expired)."""
        if not cookie or cookie.count(".") != 1 or not cookie.isascii():
            return None  # compare_digest refuses non-ASCII text with a TypeError
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

    def alive(self, session: Session) -> bool:
        """Whether ``session`` is still open and unexpired."""
        with self._lock:
            return self._sessions.get(session.sid) is session and session.expires > self.clock()

    def csrf_token(self, session: Session) -> str:
        """The CSRF token of a session (sent back in the ``X-CSRF-Token`` header)."""
        return self._sign("csrf", session.sid)

    def check_csrf(self, session: Session, token: str | None) -> bool:
        """Whether ``token`` is the session's CSRF token."""
        if not token or not token.isascii():
            return False
        return hmac.compare_digest(token, self.csrf_token(session))

    def device_cookie(self, name: str) -> str:
        """A value for the ``vigil_device`` cookie: this browser has logged in as ``name``
        before (see :class:`~vigil.maps.live.throttle.LoginThrottle`)."""
        device = secrets.token_urlsafe(12)
        return f"{device}.{self._sign('device', f'{name}:{device}')}"

    def device(self, cookie: str | None, name: str) -> str | None:
        """The device id of a ``vigil_device`` cookie issued for ``name``, or ``None``."""
        if not cookie or cookie.count(".") != 1 or not cookie.isascii():
            return None
        device, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign("device", f"{name}:{device}")):
            return None
        return device

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
