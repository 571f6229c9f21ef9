"""Two commands writing one output folder take turns (vigil.cli.folder_lock).

Two ``vigil demo`` runs into one ``--out`` collided on ``events.gpkg`` in CI (GDAL: "Layer
alerts already exists"), the README test running them side by side.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from vigil.cli.folder_lock import LOCK_NAME, folder_lock

HOLD = """
import sys, time
from pathlib import Path
from vigil.cli.folder_lock import folder_lock
with folder_lock(Path(sys.argv[1]), "holder"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _take_in_thread(folder: Path, said: io.StringIO) -> tuple[threading.Thread, threading.Event]:
    got = threading.Event()

    def take() -> None:
        with folder_lock(folder, "vigil demo", say=said):
            got.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread, got


def test_a_second_writer_waits_says_why_and_goes_on_when_the_first_ends(tmp_path: Path) -> None:
    folder = tmp_path / "demo-out"
    proc = _holder(folder)
    said = io.StringIO()
    thread, got = _take_in_thread(folder, said)
    try:
        assert not got.wait(1.0), "the second writer did not wait"
        message = said.getvalue()
        assert "vigil demo: waiting for" in message and str(folder) in message, message
        assert f"pid {proc.pid}" in message and "--out" in message, message
    finally:
        proc.terminate()
        proc.wait(10)
    assert got.wait(10), "the second writer never went on"
    thread.join(10)


def test_the_lock_goes_with_a_killed_holder(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    proc = _holder(folder)
    said = io.StringIO()
    thread, got = _take_in_thread(folder, said)
    assert not got.wait(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert got.wait(10), "a SIGKILLed holder kept the folder"
    thread.join(10)


def test_an_uncontended_folder_is_taken_at_once_and_silently(tmp_path: Path) -> None:
    said = io.StringIO()
    t0 = time.monotonic()
    with folder_lock(tmp_path / "new" / "deeper", "vigil demo", say=said):
        assert (tmp_path / "new" / "deeper" / LOCK_NAME).read_text() == str(os.getpid())
    with folder_lock(tmp_path / "new" / "deeper", "vigil demo", say=said):
        pass
    assert said.getvalue() == ""
    assert time.monotonic() - t0 < 30  # not a timing claim: only that it did not block
