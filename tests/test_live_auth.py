"""Users, roles, sessions, CSRF tokens, login throttling and the audit log of the live map."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("argon2")
from argon2 import PasswordHasher  # noqa: E402

from vigil.maps.live.audit import AuditLog  # noqa: E402
from vigil.maps.live.auth import (  # noqa: E402
    PERMISSIONS,
    ROLES,
    AuthError,
    Sessions,
    User,
    UserStore,
    add_user,
)

#: argon2id with the library's code but cheap parameters, so the tests stay fast; the
#: production parameters are checked once in test_add_user_stores_an_argon2id_hash_and_verifies
FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class FakeClock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    s = UserStore(tmp_path / "users.sqlite", hasher=FAST_HASH)
    yield s
    s.close()


def test_add_user_stores_an_argon2id_hash_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "users.sqlite"
    user = add_user(path, "alice", "commander", "s3cret-passphrase", unit=None)
    assert user == User("alice", "commander", None, generation=1)
    rows = sqlite3.connect(path).execute("SELECT name, role, password_hash FROM users").fetchall()
    assert len(rows) == 1
    name, role, digest = rows[0]
    assert (name, role) == ("alice", "commander")
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # RFC 9106 low-memory profile
    assert "s3cret-passphrase" not in digest
    store = UserStore(path)
    assert store.verify("alice", "s3cret-passphrase") == user
    store.close()
    store = UserStore(path, hasher=FAST_HASH)  # verifies the stored (default) hash all the same
    assert store.verify("alice", "s3cret-passphrasE") is None
    assert store.verify("bob", "s3cret-passphrase") is None
    store.close()


def test_existing_user_is_refused_unless_replaced(store: UserStore) -> None:
    store.add("ana", "agent", "first-password", unit="p01")
    with pytest.raises(AuthError, match="'ana' already exists"):
        store.add("ana", "planner", "second-password")
    store.add("ana", "planner", "second-password", replace=True)
    assert store.get("ana") == User("ana", "planner", None, generation=2)
    assert store.verify("ana", "first-password") is None
    assert store.verify("ana", "second-password") is not None
    assert store.remove("ana") and store.get("ana") is None


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("bob", "captain", "long-enough", "role 'captain' is not a role"),
        ("bob", "agent", "short", "has 5 characters; expected at least 12"),
        ("bob smith", "agent", "long-enough", "user name 'bob smith' is not allowed"),
        ("", "agent", "long-enough", "user name '' is not allowed"),
    ],
    ids=["unknown-role", "short-password", "space-in-name", "empty-name"],
)
def test_bad_users_are_refused_naming_the_value(
    store: UserStore, name: str, role: str, password: str, message: str
) -> None:
    with pytest.raises(AuthError, match=message):
        store.add(name, role, password)
    assert store.users() == []


def test_role_permissions() -> None:
    assert set(ROLES) == set(PERMISSIONS)
    commander, agent, planner, admin = (User("u", r) for r in ROLES)
    for action in ("alerts.acknowledge", "alerts.assign", "alerts.close"):
        assert commander.can(action)
        assert not planner.can(action)
        assert not admin.can(action)
    assert agent.can("alerts.acknowledge") and not agent.can("alerts.assign")
    assert agent.can("alerts.own") and not agent.can("alerts.all")
    assert planner.can("history") and planner.can("analyses") and not agent.can("history")
    assert admin.can("users") and not admin.can("map")
    assert all(not User("u", r).can("users") for r in ("commander", "agent", "planner"))


def test_sessions_refuse_forged_altered_expired_and_closed_cookies() -> None:
    clock = FakeClock()
    sessions = Sessions(b"k" * 32, lifetime_s=3600.0, clock=clock)
    user = User("alice", "commander")
    session, cookie = sessions.open(user)
    assert sessions.lookup(cookie) is session
    sid, sig = cookie.split(".")
    assert sessions.lookup(None) is None
    assert sessions.lookup("") is None
    assert sessions.lookup(sid) is None  # unsigned
    assert sessions.lookup(f"{sid}.{'0' * len(sig)}") is None  # forged signature
    other = "y" if sid.endswith("x") else "x"  # a random id may already end in "x"
    assert sessions.lookup(f"{sid[:-1]}{other}.{sig}") is None  # altered id
    other = Sessions(b"q" * 32, clock=clock)
    forged_sid, forged = other.open(user)[1].split(".")
    assert sessions.lookup(f"{forged_sid}.{forged}") is None  # signed with another secret
    clock.t += 3599.0
    assert sessions.lookup(cookie) is session
    clock.t += 2.0
    assert sessions.lookup(cookie) is None  # expired
    session2, cookie2 = sessions.open(user)
    sessions.close(session2)
    assert sessions.lookup(cookie2) is None
    _s3, cookie3 = sessions.open(user)
    _s4, cookie4 = sessions.open(User("bob", "agent", "p01"))
    assert sessions.close_user("alice") == 1
    assert sessions.lookup(cookie3) is None and sessions.lookup(cookie4) is not None


def test_csrf_token_belongs_to_its_session() -> None:
    sessions = Sessions(b"k" * 32)
    a, _ = sessions.open(User("alice", "commander"))
    b, _ = sessions.open(User("bob", "commander"))
    token = sessions.csrf_token(a)
    assert len(token) == 64
    assert sessions.check_csrf(a, token)
    assert not sessions.check_csrf(b, token)
    assert not sessions.check_csrf(a, None)
    assert not sessions.check_csrf(a, "")
    assert not sessions.check_csrf(a, token[:-1] + ("0" if token[-1] != "0" else "1"))


def test_short_secret_is_refused() -> None:
    with pytest.raises(AuthError, match="secret has 4 bytes"):
        Sessions(b"abcd")


def test_audit_log_appends_filters_and_persists(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000.0)
    path = tmp_path / "store.sqlite"
    log = AuditLog(path, clock=clock)
    log.record("alice", "login", "", "role commander")
    clock.t += 10
    log.record("alice", "acknowledge", "A-1")
    clock.t += 10
    log.record("bob", "denied", "/api/alerts/A-1/acknowledge", "role planner")
    log.close()
    log = AuditLog(path)
    everything = log.entries()
    assert [(e.user, e.action, e.target) for e in everything] == [
        ("alice", "login", ""),
        ("alice", "acknowledge", "A-1"),
        ("bob", "denied", "/api/alerts/A-1/acknowledge"),
    ]
    assert [e.time for e in everything] == [1_700_000_000.0, 1_700_000_010.0, 1_700_000_020.0]
    assert [e.action for e in log.entries(user="alice")] == ["login", "acknowledge"]
    assert [e.user for e in log.entries(since=1_700_000_005.0)] == ["alice", "bob"]
    assert [e.target for e in log.entries(action="acknowledge")] == ["A-1"]
    assert [e.action for e in log.entries(limit=1)] == ["denied"]
    log.close()
