"""Issue 18, M2-M4, against a live map server in a process of its own (uvicorn on 127.0.0.1):
a huge login body is refused while it streams, and a spray of logins with made-up names from
one address or many neither exhausts the server nor keeps a real user out.

The server's memory is read from ``/proc/PID/status`` (``VmHWM``, the peak resident size), so
these tests need Linux; other client addresses are other loopback addresses (127.0.0.0/8).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

from live_client import PASSWORDS, Client  # noqa: E402

if not Path("/proc/self/status").exists():
    pytest.skip("needs /proc to read the server's memory", allow_module_level=True)

HERE = Path(__file__).parent


class ServerProcess:
    """The test live map in its own Python process."""

    def __init__(self, tmp: Path, production_hash: bool) -> None:
        args = [sys.executable, str(HERE / "live_process.py"), str(tmp)]
        if production_hash:
            args.append("--production-hash")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.proc.kill()
            raise RuntimeError(f"live map process did not start: {self.url!r}")
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname, parts.port

    def memory_mib(self, field: str) -> float:
        """``VmRSS`` (now) or ``VmHWM`` (peak) of the server process, MiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
        raise KeyError(field)

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def fast_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, production_hash=False)
    yield server
    server.stop()


@pytest.fixture
def real_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """Users hashed with argon2's production parameters (64 MiB, about 0.3 s a check here)."""
    server = ServerProcess(tmp_path, production_hash=True)
    yield server
    server.stop()


def stream_post(server: ServerProcess, path: str, total: int, chunked: bool) -> tuple[int, int]:
    """POST ``total`` bytes to ``path`` a MiB at a time while reading the answer; returns the
    HTTP status (0: none came) and how many bytes went out before the server stopped us."""
    import socket

    sock = socket.create_connection((server.host, server.port), timeout=60)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
    )
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n"
    answer = bytearray()

    def read() -> None:
        try:
            while data := sock.recv(65536):
                answer.extend(data)
        except OSError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent = 0
    block = b"username=cmd&password=" + b"x" * ((1 << 20) - 22)
    try:
        sock.sendall((head + "\r\n").encode())
        while sent < total:
            frame = f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
            sock.sendall(frame)
            sent += len(block)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError:  # the server answered and closed: the rest is not read
        pass
    reader.join(30)
    sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_200_mb_login_body_is_refused_while_it_streams(fast_server, chunked) -> None:
    before = fast_server.memory_mib("VmHWM")
    status, sent = stream_post(fast_server, "/login", 200 << 20, chunked)
    grown = fast_server.memory_mib("VmHWM") - before
    assert grown < 100, f"server peak memory grew {grown:.0f} MiB for a 200 MiB body"
    assert status == 413
    assert sent < 100 << 20, f"the server read {sent >> 20} MiB before refusing"
    # other body-reading routes are capped the same way, and the server still serves
    status, _ = stream_post(fast_server, "/api/users", 50 << 20, chunked)
    assert status in (401, 413)  # refused before or while its body streams in
    assert fast_server.memory_mib("VmHWM") - before < 100
    c = Client(fast_server.url)
    assert c.login("cmd", PASSWORDS["cmd"]).status == 303


def _timed_login(url: str, name: str, password: str, source: str, device: str | None = None):
    c = Client(url, source=source)
    c.device = device
    t0 = time.monotonic()
    status = c.login(name, password).status
    return status, time.monotonic() - t0


def _spray(url: str, sources: list[str], n: int = 60) -> list[int]:
    """``n`` logins at once with made-up names, from ``sources`` in turn; their statuses."""
    with ThreadPoolExecutor(n) as pool:
        futures = [
            pool.submit(
                _timed_login, url, f"made-up-{i}", "not-a-password-1", sources[i % len(sources)]
            )
            for i in range(n)
        ]
        return [f.result()[0] for f in futures]


def test_a_real_user_logs_in_within_3_s_during_a_spray_from_one_address(real_server) -> None:
    url = real_server.url
    known = Client(url, source="127.0.0.1")
    assert known.login("cmd", PASSWORDS["cmd"]).status == 303 and known.device
    before = real_server.memory_mib("VmHWM")
    with ThreadPoolExecutor(3) as pool:
        spray = pool.submit(_spray, url, ["127.0.0.1"])
        time.sleep(0.3)  # the spray is under way
        elsewhere = pool.submit(_timed_login, url, "cmd", PASSWORDS["cmd"], "127.0.0.2")
        # the same address as the spray, from the browser that logged in before
        same_address = pool.submit(
            _timed_login, url, "cmd", PASSWORDS["cmd"], "127.0.0.1", known.device
        )
        statuses = spray.result()
        (s1, t1), (s2, t2) = elsewhere.result(), same_address.result()
    assert (s1, s2) == (303, 303)
    assert t1 < 3.0 and t2 < 3.0, f"real logins took {t1:.1f} s and {t2:.1f} s"
    assert set(statuses) <= {401, 429, 503} and statuses.count(429) >= 40, statuses
    grown = real_server.memory_mib("VmHWM") - before
    assert grown < 400, f"server peak memory grew {grown:.0f} MiB during the spray"


def test_a_known_browser_logs_in_within_3_s_during_a_spray_from_many_addresses(
    real_server,
) -> None:
    url = real_server.url
    known = Client(url, source="127.0.0.9")
    assert known.login("cmd", PASSWORDS["cmd"]).status == 303 and known.device
    sources = [f"127.0.1.{i}" for i in range(1, 61)]
    with ThreadPoolExecutor(2) as pool:
        spray = pool.submit(_spray, url, sources)
        time.sleep(0.3)
        mine = pool.submit(_timed_login, url, "cmd", PASSWORDS["cmd"], "127.0.0.9", known.device)
        statuses = spray.result()
        status, took = mine.result()
    assert status == 303 and took < 3.0, f"login took {took:.1f} s ({status})"
    assert set(statuses) <= {401, 429, 503}, statuses
