"""A real Mosquitto broker for tests: a free localhost port, a password file, an ACL, persistence.

:class:`Broker` writes its own configuration into a private folder, starts ``mosquitto`` on
127.0.0.1, and can be stopped (SIGTERM, which saves the persistence file), killed (SIGKILL,
which loses whatever was not autosaved yet) and started again on the same port with the same
persistence file, so queued QoS 1 messages survive a restart.

Mosquitto run as root drops to the ``mosquitto`` user, so the folder is made under ``/tmp``
(whose parents anyone may traverse) and handed to that user.

>>> broker = Broker(users={"svc": "pw"}, acl=["user svc", "topic readwrite #"])  # doctest: +SKIP
>>> broker.start(); broker.kill(); broker.start(); broker.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_path() -> str | None:
    """The ``mosquitto`` executable, or ``None`` when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for path in MOSQUITTO_PATHS:
        if os.access(path, os.X_OK):
            return path
    return None


def mosquitto_passwd_path() -> str | None:
    """The ``mosquitto_passwd`` executable (Debian ships it with the broker)."""
    return shutil.which("mosquitto_passwd") or (
        "/usr/bin/mosquitto_passwd" if os.access("/usr/bin/mosquitto_passwd", os.X_OK) else None
    )


def missing_reason() -> str | None:
    """Why broker tests cannot run here, or ``None`` when they can."""
    if mosquitto_path() is None:
        return "mosquitto is not installed (make test installs it with apt-get as root)"
    if mosquitto_passwd_path() is None:
        return "mosquitto_passwd is not installed (it comes with Debian's mosquitto package)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def device_acl(sector: str, kind: str, device: str) -> list[str]:
    """ACL lines letting one device publish only on its own topics (``kind`` is ugs, cam, uas).

    It may also read its own commands (a camera's pointing orders).
    """
    return [
        f"user {device}",
        f"topic write vigil/v1/{sector}/{kind}/{device}/#",
        f"topic read vigil/v1/{sector}/{kind}/{device}/commands",
    ]


def service_acl(sector: str, user: str) -> list[str]:
    """ACL lines for a sector service: read and write everything in its sector."""
    return [f"user {user}", f"topic readwrite vigil/v1/{sector}/#"]


class Broker:
    """One Mosquitto process with its configuration, password file, ACL and persistence.

    Parameters
    ----------
    users
        User name to password; written with ``mosquitto_passwd``. Anonymous clients are refused.
    acl
        Lines of the ACL file (``user NAME`` then ``topic read|write|readwrite FILTER``).
    port
        The port to listen on; a free one when omitted. It stays the same across restarts.
    autosave_interval_s
        Seconds between saves of the in-memory state to the persistence file.
    extra
        More configuration lines.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        acl: Iterable[str],
        *,
        port: int | None = None,
        autosave_interval_s: int = 1,
        tls: bool = False,
        extra: Iterable[str] = (),
    ) -> None:
        exe = mosquitto_path()
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed; expected it on PATH or /usr/sbin")
        self.exe = exe
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.users = dict(users)
        self.dir = Path(tempfile.mkdtemp(prefix="vigil-broker-"))
        self.log_path = self.dir / "mosquitto.log"
        self.persistence_path = self.dir / "mosquitto.db"
        self._proc: subprocess.Popen[bytes] | None = None
        #: The CA certificate clients should trust, when the listener speaks TLS.
        self.ca_file: Path | None = self._make_certificates() if tls else None
        self._write_files(acl, autosave_interval_s, extra)

    @classmethod
    def from_folder(cls, folder: str | Path, port: int, host: str = "127.0.0.1") -> Broker:
        """A broker run from a folder that ``vigil broker init`` wrote (its ``mosquitto.conf``,
        which names the port), rather than from files of its own."""
        exe = mosquitto_path()
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed; expected it on PATH or /usr/sbin")
        b = cls.__new__(cls)
        b.exe, b.port, b.host, b.users = exe, port, host, {}
        b.dir = Path(folder)
        b.log_path = b.dir / "mosquitto.log"
        b.persistence_path = b.dir / "mosquitto.db"
        b._proc = None
        b.ca_file = b.dir / "ca.crt" if (b.dir / "ca.crt").exists() else None
        return b

    # -- files ------------------------------------------------------------------------------

    def _write_files(
        self, acl: Iterable[str], autosave_interval_s: int, extra: Iterable[str]
    ) -> None:
        passwd = self.dir / "passwd"
        tool = mosquitto_passwd_path()
        if tool is None:
            raise FileNotFoundError("mosquitto_passwd is not installed")
        passwd.touch(mode=0o600)
        for user, password in self.users.items():
            subprocess.run(
                [tool, "-b", str(passwd), user, password], check=True, capture_output=True
            )
        (self.dir / "acl").write_text("\n".join(acl) + "\n")
        config = [
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {passwd}",
            f"acl_file {self.dir / 'acl'}",
            "persistence true",
            f"persistence_location {self.dir}/",
            "persistence_file mosquitto.db",
            f"autosave_interval {autosave_interval_s}",
            # Mosquitto's default of 1000 queued messages per client drops the rest silently.
            "max_queued_messages 0",
            "max_inflight_messages 0",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            f"listener {self.port} 127.0.0.1",
            "socket_domain ipv4",
            *(
                [
                    f"cafile {self.ca_file}",
                    f"certfile {self.dir / 'server.crt'}",
                    f"keyfile {self.dir / 'server.key'}",
                ]
                if self.ca_file
                else []
            ),
            *extra,
        ]
        (self.dir / "mosquitto.conf").write_text("\n".join(config) + "\n")
        if os.geteuid() == 0:
            try:
                who = pwd.getpwnam("mosquitto")
            except KeyError:
                return
            for path in [self.dir, *self.dir.iterdir()]:
                os.chown(path, who.pw_uid, who.pw_gid)

    def _make_certificates(self) -> Path:
        """A throwaway CA and a server certificate for 127.0.0.1, made with ``openssl``."""
        tool = shutil.which("openssl")
        if tool is None:
            raise FileNotFoundError("openssl is not installed; it is needed for a TLS broker")
        d = self.dir
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
        for cmd in (
            [tool, "req", "-x509", *key, "-keyout", d / "ca.key", "-out", d / "ca.crt"]
            + ["-days", "2", "-subj", "/CN=vigil-test-ca"],
            [tool, "req", *key, "-keyout", d / "server.key", "-out", d / "server.csr"]
            + ["-subj", "/CN=127.0.0.1"],
            [tool, "x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.crt"]
            + ["-CAkey", d / "ca.key", "-CAcreateserial", "-out", d / "server.crt"]
            + ["-days", "2", "-extfile", d / "san.cnf"],
        ):
            subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
        return d / "ca.crt"

    # -- life cycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> Broker:
        """Start the broker and wait until it accepts connections on its port."""
        if self.running:
            return self
        self._proc = subprocess.Popen(
            [self.exe, "-c", str(self.dir / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(
                    f"mosquitto exited with status {self._proc.returncode} on port {self.port}: "
                    f"{err.strip()} {self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise TimeoutError(f"mosquitto did not listen on {self.host}:{self.port} in {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM): Mosquitto saves its state to the persistence file."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._close_pipes()

    def kill(self) -> None:
        """Kill with SIGKILL: whatever was not autosaved is gone, as in a crash."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._close_pipes()

    def wait_saved(self, saves: int = 2, timeout: float = 15.0) -> None:
        """Wait until Mosquitto has written its persistence file ``saves`` more times (the
        first may have begun before the caller's last change; the second cannot have).
        Mosquitto 2.0 autosaves every ``autosave_interval`` s at the earliest (every 2 s
        measured here at an interval of 1), so a fixed sleep may end before any save."""

        def mtime() -> int:
            try:
                return self.persistence_path.stat().st_mtime_ns
            except FileNotFoundError:
                return 0

        last, seen = mtime(), 0
        deadline = time.monotonic() + timeout
        while seen < saves:
            if time.monotonic() > deadline:
                raise TimeoutError(f"mosquitto saved {seen} of {saves} times in {timeout} s")
            time.sleep(0.02)
            now = mtime()
            if now != last:
                last, seen = now, seen + 1

    def restart(self, *, hard: bool = False, pause_s: float = 0.0) -> Broker:
        """Stop (or kill, with ``hard``) and start again on the same port and persistence."""
        if hard:
            self.kill()
        else:
            self.stop()
        if pause_s:
            time.sleep(pause_s)
        return self.start()

    def cleanup(self) -> None:
        """Stop the broker and remove its folder."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _close_pipes(self) -> None:
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()

    def log_tail(self, n: int = 20) -> str:
        """The last lines of the broker's log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


# -- pytest fixtures (import them into a test module: ``from broker import broker``) ---------

SECTOR = "tucson"
SERVICE_USER = "vigil-tucson"
DEVICES = {"u117": "ugs", "u118": "ugs", "t03": "cam", "a1": "uas"}


def sector_broker(autosave_interval_s: int = 1) -> Broker:
    """A Mosquitto (not started) with the sector service user, four devices and their ACL.

    Passwords are ``pw-{user}``; the service's output user ``{service}-out`` has the service's.
    """
    users = {SERVICE_USER: f"pw-{SERVICE_USER}"}
    # the service's output session logs in as {user}-out with the service's password
    users[f"{SERVICE_USER}-out"] = users[SERVICE_USER]
    acl = service_acl(SECTOR, SERVICE_USER) + service_acl(SECTOR, f"{SERVICE_USER}-out")
    for device, kind in DEVICES.items():
        users[device] = f"pw-{device}"
        acl += device_acl(SECTOR, kind, device)
    return Broker(users, acl, autosave_interval_s=autosave_interval_s)


@contextlib.contextmanager
def started(b: Broker | None = None, **kw) -> Iterator[Broker]:
    """``b`` (else ``Broker(**kw)``) started, and cleaned up after; skips the test when
    Mosquitto is absent."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    b = Broker(**kw) if b is None else b
    try:
        b.start()
        yield b
    finally:
        b.cleanup()


def service_users(**extra: str) -> tuple[dict[str, str], list[str]]:
    """Users and ACL for the sector service alone (and its output session), password ``pw``."""
    users = {SERVICE_USER: "pw", f"{SERVICE_USER}-out": "pw", **extra}
    acl = service_acl(SECTOR, SERVICE_USER) + service_acl(SECTOR, f"{SERVICE_USER}-out")
    return users, acl


@contextlib.contextmanager
def service_broker() -> Iterator[Broker]:
    """A started broker that knows only the sector service (:func:`service_users`)."""
    users, acl = service_users()
    with started(users=users, acl=acl) as b:
        yield b


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A fresh, started :func:`sector_broker` for one test; skips when Mosquitto is absent."""
    with started(sector_broker()) as b:
        yield b
