"""Issue 18, M5 and item 5 against the real server (uvicorn on 127.0.0.1) and the real command
line: ``vigil users add|remove|passwd|list`` are audited and end the changed user's live
sessions (requests and WebSocket); the password policy; the users file and the audit log are
created 0600."""

from __future__ import annotations

import getpass
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")
pytest.importorskip("websockets")

from live_client import PASSWORDS, Client, World, client, running_world  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from vigil.maps.live.auth import AuthError, UserStore  # noqa: E402
from vigil.maps.live.passwords import password_problem  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("users")) as w:
        yield w


def vigil_users(world: World | None, *args: str, password: str | None = None, files=None):
    """Run ``vigil users ARGS`` on the world's users file and audit log."""
    users, audit = files or (world.users.path, world.audit.path)
    env = {k: v for k, v in os.environ.items() if k != "VIGIL_PASSWORD"}
    if password is not None:
        env["VIGIL_PASSWORD"] = password
    extra = [] if args[0] == "list" else ["--audit", str(audit)]
    return subprocess.run(
        [sys.executable, "-m", "vigil.cli", "users", *args, "--users", str(users), *extra],
        env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _closed_within(ws, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.05, deadline - time.monotonic()))
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False
    return False


def test_command_line_changes_end_live_sessions_and_are_audited(world) -> None:
    first, second, third = "Border-watch-one", "Border-watch-two", "Border-watch-three"
    done = vigil_users(world, "add", "cmd2", "--role", "commander", password=first)
    assert done.returncode == 0, done.stderr
    c = Client(world.server.url)
    assert c.login("cmd2", first).status == 303
    with connect(
        f"ws://127.0.0.1:{world.server.port}/ws",
        additional_headers={"Cookie": f"vigil_session={c.cookie}"},
    ) as ws:
        ws.recv(timeout=5)  # the snapshot
        # demoted to planner (and a new password) from the command line, while logged in
        done = vigil_users(world, "add", "cmd2", "--role", "planner", "--replace", password=second)
        assert done.returncode == 0, done.stderr
        n = len(world.actions)
        assert c.act("A-p01", "acknowledge").status == 401
        assert c.request("GET", "/api/me").status == 401
        assert len(world.actions) == n
        assert _closed_within(ws, 4.0), "the WebSocket of a demoted user stayed open"
    assert Client(world.server.url).login("cmd2", first).status == 401
    # a new password ends the session as well
    assert c.login("cmd2", second).status == 303
    assert c.request("GET", "/api/me").json()["role"] == "planner"
    done = vigil_users(world, "passwd", "cmd2", password=third)
    assert done.returncode == 0, done.stderr
    assert c.request("GET", "/api/me").status == 401
    assert Client(world.server.url).login("cmd2", second).status == 401
    # and so does a removal
    assert c.login("cmd2", third).status == 303
    done = vigil_users(world, "remove", "cmd2")
    assert done.returncode == 0, done.stderr
    assert c.request("GET", "/api/me").status == 401
    assert Client(world.server.url).login("cmd2", third).status == 401
    listed = vigil_users(world, "list")
    assert listed.returncode == 0 and "cmd2" not in listed.stdout and "adm" in listed.stdout
    audit = [(e.user, e.action, e.target) for e in world.audit.entries(limit=10_000)]
    actor = _actor()
    for action in ("user_add", "user_replace", "user_passwd", "user_remove"):
        assert (actor, action, "cmd2") in audit, action
    assert vigil_users(world, "remove", "cmd2").returncode != 0
    assert "no user 'cmd2'" in vigil_users(world, "passwd", "cmd2", password=third).stderr


def test_a_user_added_again_does_not_revive_old_sessions(world) -> None:
    world.users.add("cmd3", "commander", "Border-watch-one")
    c = Client(world.server.url)
    assert c.login("cmd3", "Border-watch-one").status == 303
    world.users.remove("cmd3")
    world.users.add("cmd3", "commander", "Border-watch-one")
    assert c.request("GET", "/api/me").status == 401


def test_an_admin_demoting_a_user_ends_their_session(world) -> None:
    adm = client(world, "adm")
    world.users.add("cmd4", "commander", "Border-watch-one")
    c = Client(world.server.url)
    assert c.login("cmd4", "Border-watch-one").status == 303
    body = {"name": "cmd4", "role": "planner", "password": "Border-watch-two", "replace": "true"}
    assert adm.request("POST", "/api/users", body, {"X-CSRF-Token": adm.csrf}).status == 201
    assert c.act("A-p01", "acknowledge").status == 401


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("12345678", "has 8 characters; expected at least 12"),
        (" " * 8, "has 8 characters"),
        (" " * 14, "only whitespace"),
        ("\t \n" * 5, "only whitespace"),
        ("aaaaaaaaaaaaaa", "different characters"),
        ("123456789012", "common password"),
        ("Password1234!", "common password"),
        ("qwertyuiop123", "common password"),
        ("!!letmein2024!!", "common password"),
        ("cmd5-Watch-42", None),
    ],
    ids=["eight-digits", "eight-spaces", "spaces", "blanks", "one-letter", "digits",
         "password1234", "keyboard", "letmein", "fine"],
)  # fmt: skip
def test_the_password_policy(world, password, problem) -> None:
    got = password_problem(password, "cmd5")
    assert got is None if problem is None else problem in got
    adm = client(world, "adm")
    body = {"name": "cmd5", "role": "commander", "password": password, "replace": "true"}
    reply = adm.request("POST", "/api/users", body, {"X-CSRF-Token": adm.csrf})
    if problem is None:
        assert reply.status == 201
    else:
        assert reply.status == 400 and problem in reply.json()["error"]
        assert "password for 'cmd5'" in reply.json()["error"]


def test_the_command_line_refuses_weak_passwords_with_a_clear_error(world, tmp_path) -> None:
    files = (tmp_path / "u.sqlite", tmp_path / "a.sqlite")
    done = vigil_users(None, "add", "boss", "--role", "commander", password="12345678", files=files)
    assert done.returncode != 0
    assert "password for 'boss' has 8 characters; expected at least 12" in done.stderr
    assert "Traceback" not in done.stderr
    done = vigil_users(None, "add", "boss", "--role", "commander", password=" " * 8, files=files)
    assert done.returncode != 0 and "expected at least 12" in done.stderr


def test_the_users_file_and_audit_log_are_private(tmp_path) -> None:
    files = (tmp_path / "users.sqlite", tmp_path / "audit.sqlite")
    old = os.umask(0o022)
    try:
        done = vigil_users(
            None, "add", "boss", "--role", "commander", password="Border-watch-one", files=files
        )
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    for path in tmp_path.iterdir():  # the databases and their -wal / -shm companions
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    # a file left readable by an older version is made private when opened
    legacy = tmp_path / "legacy.sqlite"
    legacy.touch(mode=0o644)
    os.chmod(legacy, 0o644)
    UserStore(legacy).close()
    assert stat.S_IMODE(legacy.stat().st_mode) == 0o600


def test_generations_grow_with_every_change(tmp_path: Path) -> None:
    from live_client import FAST_HASH

    store = UserStore(tmp_path / "u.sqlite", hasher=FAST_HASH)
    assert store.add("ana", "agent", "Border-watch-one", unit="p01").generation == 1
    assert store.set_password("ana", "Border-watch-two").generation == 2
    assert store.add("ana", "planner", "Border-watch-two", replace=True).generation == 3
    assert store.remove("ana") and store.generation("ana") is None
    assert store.add("ana", "agent", "Border-watch-one", unit="p01").generation == 5
    with pytest.raises(AuthError, match="no user 'bob'"):
        store.set_password("bob", "Border-watch-one")
    store.close()
    assert PASSWORDS  # the shared users keep working with the policy
