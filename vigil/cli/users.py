"""``vigil users add|remove|passwd|list``: the live map's users, every change audited.

A change made here takes effect on a running ``vigil serve`` at once: it raises the user's
generation in the users file, and the server ends every session opened under an older one on
its next request or WebSocket tick. The audit entry names the operating-system user who ran
the command (``cli:NAME``, or ``cli`` when that cannot be told).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vigil.cli.common import EXIT_OK, EXIT_USAGE, CommandError, Subparsers, missing_action

ROLE_CHOICES = ("commander", "agent", "planner", "admin")
DEFAULT_USERS = "vigil-users.sqlite"
DEFAULT_AUDIT = "vigil-audit.sqlite"


def _actor() -> str:
    """Who runs the command, as the audit log names them."""
    import getpass
    import re

    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, no LOGNAME
        return "cli"
    return f"cli:{name}" if re.fullmatch(r"[A-Za-z0-9_.@-]{1,56}", name) else "cli"


def _password(name: str) -> str | None:
    """The new password from ``VIGIL_PASSWORD`` or typed twice; ``None`` after an error."""
    import getpass
    import os

    password = os.environ.get("VIGIL_PASSWORD")
    if password is not None:
        return password
    if not sys.stdin.isatty():
        print(
            "error: set VIGIL_PASSWORD or run in a terminal to type the password", file=sys.stderr
        )
        return None
    password = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != password:
        print("error: the two passwords differ", file=sys.stderr)
        return None
    return password


def audit_path(users: str | Path, audit: str | Path | None) -> Path:
    """The audit log: ``audit`` when given, else :data:`DEFAULT_AUDIT` beside the users file
    (one folder holds a map's users and what they did, wherever it is)."""
    return Path(audit) if audit is not None else Path(users).with_name(DEFAULT_AUDIT)


def _stores(args: argparse.Namespace):
    from vigil.maps.live.audit import AuditLog
    from vigil.maps.live.auth import UserStore

    return UserStore(args.users), AuditLog(audit_path(args.users, args.audit))


def cmd_users_add(args: argparse.Namespace) -> int:
    """Add (or with ``--replace`` replace) a user of the live map."""
    from vigil.maps.live.auth import AuthError

    password = _password(args.name)
    if password is None:
        return EXIT_USAGE
    users, audit = _stores(args)
    try:
        user = users.add(args.name, args.role, password, unit=args.unit, replace=args.replace)
        action = "user_replace" if args.replace else "user_add"
        audit.record(_actor(), action, user.name, f"role {user.role}, unit {user.unit}")
    except AuthError as exc:
        raise CommandError(str(exc)) from None
    finally:
        users.close()
        audit.close()
    print(f"user {user.name!r} ({user.role}) added to {Path(args.users).resolve()}")
    return EXIT_OK


def cmd_users_passwd(args: argparse.Namespace) -> int:
    """Give a user a new password (their open sessions end)."""
    from vigil.maps.live.auth import AuthError

    password = _password(args.name)
    if password is None:
        return EXIT_USAGE
    users, audit = _stores(args)
    try:
        users.set_password(args.name, password)
        audit.record(_actor(), "user_passwd", args.name)
    except AuthError as exc:
        raise CommandError(str(exc)) from None
    finally:
        users.close()
        audit.close()
    print(f"password of {args.name!r} changed; their sessions end")
    return EXIT_OK


def cmd_users_remove(args: argparse.Namespace) -> int:
    """Remove a user (their open sessions end)."""
    users, audit = _stores(args)
    try:
        if not users.remove(args.name):
            raise CommandError(f"no user {args.name!r} in {Path(args.users).resolve()}")
        audit.record(_actor(), "user_remove", args.name)
    finally:
        users.close()
        audit.close()
    print(f"user {args.name!r} removed; their sessions end")
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace) -> int:
    """List the users: name, role, unit, generation."""
    from vigil.maps.live.auth import UserStore

    if not Path(args.users).exists():
        raise CommandError(f"no users file {str(args.users)!r}; add a user first")
    users = UserStore(args.users)
    try:
        rows = users.users()
    finally:
        users.close()
    print(f"{'name':<24} {'role':<10} {'unit':<10} generation")
    for u in rows:
        print(f"{u.name:<24} {u.role:<10} {u.unit or '-':<10} {u.generation}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``users`` with its actions to the top-level subcommands."""
    p = sub.add_parser(
        "users",
        help="manage the live map's users",
        description=(
            "Manage the live map's users (roles: commander, agent, planner, admin). Every "
            "change is written to the audit log and ends the user's open sessions."
        ),
    )
    usub = p.add_subparsers(dest="users_command", metavar="ACTION")

    def files(q: argparse.ArgumentParser) -> None:
        q.add_argument("--users", default=DEFAULT_USERS, help="users file (SQLite, mode 0600)")
        q.add_argument(
            "--audit",
            default=None,
            help=f"audit log (SQLite; default {DEFAULT_AUDIT} beside --users)",
        )

    pa = usub.add_parser(
        "add",
        help="add a user",
        description=(
            "Add a user. The password is read from VIGIL_PASSWORD or typed twice at a prompt; "
            "it needs at least 12 characters, not all blank, and not a common password; it is "
            "stored as an argon2 hash. Agents need --unit: they see their unit's alerts."
        ),
    )
    pa.add_argument("name")
    pa.add_argument("--role", required=True, choices=ROLE_CHOICES)
    pa.add_argument("--unit", help="agent's patrol unit id")
    pa.add_argument("--replace", action="store_true", help="replace an existing user")
    files(pa)
    pa.set_defaults(func=cmd_users_add)
    pp = usub.add_parser(
        "passwd", help="change a user's password", description=cmd_users_passwd.__doc__
    )
    pp.add_argument("name")
    files(pp)
    pp.set_defaults(func=cmd_users_passwd)
    pr = usub.add_parser("remove", help="remove a user", description=cmd_users_remove.__doc__)
    pr.add_argument("name")
    files(pr)
    pr.set_defaults(func=cmd_users_remove)
    pl = usub.add_parser("list", help="list the users", description=cmd_users_list.__doc__)
    pl.add_argument("--users", default=DEFAULT_USERS, help="users file")
    pl.set_defaults(func=cmd_users_list)
    p.set_defaults(func=lambda a: missing_action(p))
