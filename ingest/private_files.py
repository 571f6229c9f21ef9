"""State files only their owner may read: created mode 0600 (folders 0700), whatever the umask.

The journal, the outboxes, the quarantine file and the service's own state hold what devices
sent and what the sector made of it; another local user has no business reading them. SQLite
gives a database's ``-wal`` and ``-shm`` files the mode of the database file, so creating the
database file 0600 first covers them too.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def private_file(path: str | Path) -> Path:
    """Make sure ``path`` exists with mode 0600 (an existing file is tightened, not emptied).

    Returns the path. The mode is set with ``fchmod`` after creating, so a umask cannot widen
    or narrow it.
    """
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return p


def private_dir(path: str | Path) -> Path:
    """Make a folder (and its parents) if missing; a folder made here gets mode 0700."""
    p = Path(path)
    if not p.is_dir():
        p.mkdir(parents=True, exist_ok=True)
        os.chmod(p, PRIVATE_DIR_MODE)
    return p


def write_private_text(path: str | Path, text: str) -> None:
    """Replace ``path``'s content with ``text`` atomically, the new file mode 0600."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    tmp.replace(p)


__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "private_dir",
    "private_file",
    "write_private_text",
]
