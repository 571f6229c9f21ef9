"""TAK ends for the CoT tests: a real TAK server (taky) with a subscribed TAK client, and plain
TCP, TLS and UDP endpoints that take CoT as a TAK client's inputs do.

taky (a Python TAK server and CoT router, https://pypi.org/project/taky/) is installed by
``make test`` in ``.tak/``; it is also looked for on PATH and in ``$VIGIL_TAKY``.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from broker import free_port

from vigil.alerts.cot import cot_time

REPO = Path(__file__).resolve().parents[1]


def taky_path() -> str | None:
    made = str(REPO / ".tak" / "bin" / "taky")  # make test installs it there
    for p in (os.environ.get("VIGIL_TAKY"), shutil.which("taky"), made):
        if p and os.access(p, os.X_OK):
            return p
    return None


class EventReader:
    """Reads CoT events from a TCP stream in a thread (events end with ``</event>``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.events: list[ET.Element] = []
        self.raw: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"</event>" in buf:
                one, buf = buf.split(b"</event>", 1)
                one = one[one.find(b"<event") :] + b"</event>"
                with self._lock:
                    self.raw.append(one)
                    self.events.append(ET.fromstring(one))

    def wait(self, pred, timeout: float = 30.0) -> tuple[ET.Element, bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for e, raw in zip(self.events, self.raw, strict=True):
                    if pred(e):
                        return e, raw
            time.sleep(0.05)
        with self._lock:
            seen = [(e.get("uid"), e.get("type")) for e in self.events]
        raise AssertionError(
            f"no matching CoT event in {timeout} s; saw {len(seen)}, the last: {seen[-20:]}"
        )


class Listener:
    """A plain TCP endpoint that takes CoT (what a TAK client's TCP input is)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.reader: EventReader | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        conn, _ = self.server.accept()
        self.reader = EventReader(conn)

    def wait(self, pred, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while self.reader is None:
            assert time.monotonic() < deadline, "vigil run never connected to the CoT listener"
            time.sleep(0.05)
        return self.reader.wait(pred, deadline - time.monotonic())

    def close(self) -> None:
        self.server.close()


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (openssl)."""
    folder.mkdir(parents=True, exist_ok=True)
    f = {n: folder / n for n in ("ca.key", "ca.crt", "srv.key", "srv.crt", "cli.key", "cli.crt")}

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", str(f["ca.key"]), "-out", str(f["ca.crt"]))  # fmt: skip
    for name, cn, ext in (("srv", "127.0.0.1", "subjectAltName=IP:127.0.0.1"),
                          ("cli", "vigil-tucson", "extendedKeyUsage=clientAuth")):  # fmt: skip
        csr = folder / f"{name}.csr"
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", str(f[f"{name}.key"]), "-out", str(csr))  # fmt: skip
        (folder / f"{name}.ext").write_text(ext + "\n")
        run("x509", "-req", "-in", str(csr), "-CA", str(f["ca.crt"]), "-CAkey", str(f["ca.key"]),
            "-CAcreateserial", "-days", "2", "-extfile", str(folder / f"{name}.ext"),
            "-out", str(f[f"{name}.crt"]))  # fmt: skip
    return f


class TlsListener(Listener):
    """A TLS endpoint that, like a TAK server's streaming port, requires a client certificate
    signed by its CA."""

    def __init__(self, folder: Path) -> None:
        self.certs = make_certificates(folder)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certs["srv.crt"], self.certs["srv.key"])
        ctx.load_verify_locations(self.certs["ca.crt"])
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx = ctx
        super().__init__()
        self.url = f"tls://127.0.0.1:{self.port}"
        self.args = ["--cot-cert", str(self.certs["cli.crt"]), "--cot-key",
                     str(self.certs["cli.key"]), "--cot-ca", str(self.certs["ca.crt"])]  # fmt: skip

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            try:
                tls = self.ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()  # a client without a good certificate
                continue
            self.peer = tls.getpeercert()
            self.reader = EventReader(tls)
            return


class UdpListener:
    """A UDP endpoint that takes CoT datagrams (one event each)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"udp://127.0.0.1:{self.port}"
        self.events: list[tuple[ET.Element, bytes]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            self.events.append((ET.fromstring(data), data))

    def wait(self, pred, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e, raw in list(self.events):
                if pred(e):
                    return e, raw
            time.sleep(0.05)
        raise AssertionError(f"no matching CoT datagram; saw {len(self.events)}")

    def close(self) -> None:
        self.sock.close()


class Taky:
    """A taky TAK server on a free port, and a TAK client connected to it that reads events."""

    def __init__(self, exe: str, folder: Path) -> None:
        self.port = free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "taky.conf"
        conf.write_text(
            f"[taky]\nhostname = localhost\nnode_id = TEST\nbind_ip = 127.0.0.1\n"
            f"root_dir = {folder}\n\n[cot_server]\nport = {self.port}\n\n[ssl]\nenabled = false\n"
        )
        self.log = folder / "taky.log"
        self.proc = subprocess.Popen(
            [exe, "-c", str(conf)], cwd=folder, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                break
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "taky did not listen"
                time.sleep(0.2)
        sock.settimeout(None)
        now = time.time()
        # a TAK client announces itself (ATAK's position report) before it is routed to
        sock.sendall(
            f'<?xml version="1.0"?><event version="2.0" uid="test-watcher" type="a-f-G-U-C" '
            f'how="h-e" time="{cot_time(now)}" start="{cot_time(now)}" '
            f'stale="{cot_time(now + 3600)}"><point lat="31.3" lon="-110.9" hae="0" ce="10" '
            f'le="10"/><detail><contact callsign="watcher"/>'
            f'<__group name="Cyan" role="Team Member"/></detail></event>'.encode()
        )
        self.reader = EventReader(sock)

    def wait(self, pred, timeout: float = 30.0):
        return self.reader.wait(pred, timeout)

    def close(self) -> None:
        self.reader.sock.close()
        self.proc.terminate()
        self.proc.wait(10)


def deployment_with_cot(folder: Path, cot: dict[str, object]) -> Path:
    """The shipped deployment (and its calibration file) copied into ``folder`` with its
    ``[cot]`` section replaced by ``cot``'s keys; the copy's path."""
    import json
    import re

    data = REPO / "vigil" / "data"
    shutil.copytree(data / "calibration", folder / "calibration", dirs_exist_ok=True)
    text = (data / "tucson.toml").read_text(encoding="utf-8")
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in cot.items())
    text, n = re.subn(r"(?ms)^\[cot\]\n.*?(?=^\[)", f"[cot]\n{lines}\n\n", text)
    assert n == 1, "the shipped deployment has no [cot] section to replace"
    path = folder / "tucson.toml"
    path.write_text(text, encoding="utf-8")
    return path
