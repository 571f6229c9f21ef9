"""A command that waits on the broker says so (issue 17, silent waits): ``vigil alerts`` shows
connecting, not connected yet (retrying), connected, and lost (retrying) as they happen, so that
a console without a broker does not look like a quiet sector; ``vigil serve`` says what it waits
for and takes ``--broker`` as ``vigil run`` does."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from broker import SERVICE_USER, free_port, sector_broker

REPO = Path(__file__).resolve().parents[1]


class Lines:
    """A ``vigil`` child process whose output lines are read as they come."""

    def __init__(self, *argv: str, cwd: Path = REPO) -> None:
        env = dict(os.environ)
        env.update(
            VIGIL_MQTT_USER=SERVICE_USER,
            VIGIL_MQTT_PASSWORD=f"pw-{SERVICE_USER}",
            PYTHONUNBUFFERED="1",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vigil.cli", *argv],
            cwd=cwd, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {timeout} s; saw {self.seen}")

    def close(self) -> int:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("q\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def test_alerts_without_a_broker_says_it_is_not_connected() -> None:
    address = f"127.0.0.1:{free_port()}"
    console = Lines("alerts", "--unit", "p03", "--broker", address, "--notice", "0.5",
                    "--connect-timeout", "2")  # fmt: skip
    try:
        assert console.expect("connecting to the broker") == (
            f"connecting to the broker {address} ..."
        )
        line = console.expect("not connected to the broker")
        assert address in line and "refused" in line.lower() and line.endswith("retrying")
        console.expect("opening the console unconnected after 2 s")
        console.expect("alerts of sector tucson for p03")
        # it goes on saying so while the console is open
        console.expect(f"not connected to the broker {address} yet")
    finally:
        assert console.close() == 0
    assert not any("connected to the broker" in s and "not" not in s for s in console.seen)


@pytest.mark.broker
def test_alerts_says_connected_lost_and_connected_again() -> None:
    b = sector_broker()
    b.start()
    try:
        console = Lines("alerts", "--unit", "p03", "--broker", f"{b.host}:{b.port}",
                        "--notice", "0.5")  # fmt: skip
        try:
            console.expect(f"connected to the broker {b.host}:{b.port}")
            console.expect("alerts of sector tucson for p03")
            b.stop()
            assert console.expect("lost").startswith(
                f"connection to the broker {b.host}:{b.port} lost ("
            )
            console.expect("still no connection to the broker")
            b.start()
            console.expect(f"connected to the broker {b.host}:{b.port}", timeout=30)
        finally:
            assert console.close() == 0
    finally:
        b.cleanup()


def test_serve_says_what_it_waits_for_and_takes_broker(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    serve = Lines("serve", "--broker", address, "--connect-timeout", "1.5", cwd=tmp_path)
    serve.expect("the live map serves once the sector's broker is reached")
    serve.expect(f"connecting to the broker {address} ...")
    last = serve.expect("give the broker with --broker HOST:PORT")
    assert last.startswith(f"error: MQTT broker {address} not reached")
    assert serve.close() == 3
    assert not any("Traceback" in s for s in serve.seen)
