"""A throwaway local PostgreSQL cluster (initdb + pg_ctl in a temporary folder, a free port).

For the history store's tests and benchmarks: :class:`LocalCluster` runs Debian's
PostgreSQL 15 binaries (``/usr/lib/postgresql/15/bin``, or whatever ``pg_config --bindir``
names) on 127.0.0.1 with trust authentication, and removes everything on :meth:`stop`.
PostgreSQL refuses to run as root; as root the server runs as an existing unprivileged user
(``postgres`` from the Debian package, else ``nobody``) through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

#: Where Debian's server binaries live (``postgresql-15``).
DEBIAN_BINDIR = Path("/usr/lib/postgresql/15/bin")


class ClusterUnavailableError(RuntimeError):
    """The PostgreSQL server binaries (or PostGIS) are not installed here."""


def server_bindir() -> Path:
    """The folder of initdb, pg_ctl and postgres (else :class:`ClusterUnavailableError`)."""
    candidates = [DEBIAN_BINDIR]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file() and (d / "postgres").is_file():
            return d
    raise ClusterUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql-15 "
        "(make system-packages)"
    )


def postgis_available(bindir: Path) -> bool:
    """Whether the PostGIS extension is installed for the server in ``bindir``."""
    share = subprocess.run(
        [str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
    ).stdout.strip() if (bindir / "pg_config").is_file() else ""  # fmt: skip
    dirs = [Path(share)] if share else []
    dirs.append(Path("/usr/share/postgresql") / bindir.parent.name)
    return any((d / "extension" / "postgis.control").is_file() for d in dirs)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """The user the server runs as: None (this one) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ClusterUnavailableError("running as root and no unprivileged user (postgres, nobody)")


class LocalCluster:
    """A PostgreSQL cluster of its own, on 127.0.0.1, deleted on :meth:`stop`.

    Parameters
    ----------
    settings
        Extra server settings (``postgresql.conf`` names), e.g. ``{"work_mem": "64MB"}``.

    Examples
    --------
    ``with LocalCluster() as pg: psycopg.connect(pg.dsn)``
    """

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.bindir = server_bindir()
        if not postgis_available(self.bindir):
            raise ClusterUnavailableError(
                "PostGIS is not installed for this PostgreSQL; install postgresql-15-postgis-3 "
                "(make system-packages)"
            )
        self.user = _server_user()
        self.settings = dict(settings or {})
        self.port = 0
        self.root: Path | None = None

    @property
    def dsn(self) -> str:
        """The connection string of the ``postgres`` database as the superuser ``vigil``."""
        return f"postgresql://vigil@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120.0) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({out.returncode}): {out.stderr[-2000:]}")

    def start(self) -> LocalCluster:
        """initdb, then start the server and wait until it accepts connections."""
        self.root = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
        if self.user is not None:
            info = pwd.getpwnam(self.user)
            os.chown(self.root, info.pw_uid, info.pw_gid)
        data = self.root / "data"
        self._run(
            "initdb", "-D", str(data), "-U", "vigil", "--auth=trust", "--encoding=UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        self.port = free_port()
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            **{
                k: v if v.replace(".", "").isdigit() else f"'{v}'" for k, v in self.settings.items()
            },
        }
        with open(data / "postgresql.conf", "a", encoding="utf-8") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        self._run(
            "pg_ctl", "-D", str(data), "-l", str(self.root / "log"), "-w", "-t", "60", "start"
        )
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if self.root is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
