"""One writer per output folder: a second command writing the same folder waits its turn.

Two ``vigil demo`` runs pointed at the same ``--out`` would otherwise remove each other's
stores and collide on ``events.gpkg`` (GDAL refuses a layer another writer just made). The
lock is an advisory ``flock`` on a file in the folder, so it is released when the process
ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

LOCK_NAME = ".vigil-writing.lock"


@contextmanager
def folder_lock(folder: Path, what: str, *, say: TextIO | None = None) -> Iterator[None]:
    """Hold the output ``folder`` (created if missing) for the block, waiting while another
    process holds it; while waiting, say so once on ``say`` (stderr by default), naming the
    folder, ``what`` waits and the holder's process id."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            print(
                f"{what}: waiting for {folder}: another vigil process (pid {holder}) is "
                "writing there; use --out to write elsewhere",
                file=say or sys.stderr,
                flush=True,
            )
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
