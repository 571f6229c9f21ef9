"""Serving the live map with uvicorn: in the foreground (``vigil serve``, ``vigil demo
--serve``) or on a background thread (tests, benchmarks, an embedded demo)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from vigil.geo.dem import ElevationModel
from vigil.geo.site import Site
from vigil.ingest.bus import Bus
from vigil.maps.live.app import HistorySource, LiveMapApp
from vigil.maps.live.audit import AuditLog
from vigil.maps.live.auth import UserStore
from vigil.maps.live.guard import certificate_names


def _config(
    app, host: str, port: int, certfile: str | Path | None, keyfile: str | Path | None, **kw
):
    import uvicorn

    if (certfile is None) != (keyfile is None):
        raise ValueError(
            f"TLS needs both a certificate and a key; got certfile={certfile!r}, "
            f"keyfile={keyfile!r}"
        )
    for label, path in (("certfile", certfile), ("keyfile", keyfile)):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{label} {str(path)!r} does not exist")
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        **kw,
    )


def serve(
    app: LiveMapApp,
    host: str = "127.0.0.1",
    port: int = 8080,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    *,
    log_level: str = "info",
) -> None:
    """Serve ``app`` until interrupted; HTTPS (and Secure cookies) when given a certificate."""
    import uvicorn

    uvicorn.Server(_config(app, host, port, certfile, keyfile, log_level=log_level)).run()


class ServerThread:
    """Serve an app on a background thread, on a free port unless one is given.

    Use as a context manager; :attr:`url` is ``http(s)://127.0.0.1:{port}``.
    """

    def __init__(
        self,
        app: LiveMapApp,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
        *,
        log_level: str = "warning",
    ) -> None:
        import uvicorn

        self.app = app
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        self.scheme = "https" if certfile else "http"
        self.server = uvicorn.Server(
            _config(app, host, self.port, certfile, keyfile, log_level=log_level)
        )
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> ServerThread:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"live map server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and wait for the thread."""
        self.server.should_exit = True
        self._thread.join(timeout_s)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_live(
    site: Site,
    bus: Bus,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    users_path: str | Path,
    audit_path: str | Path,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    tiles_url: str | None = None,
    tiles_attribution: str = "",
    history: HistorySource | None = None,
    secret: bytes | None = None,
    log_level: str = "info",
    allowed_hosts: list[str] | tuple[str, ...] = (),
    dem: ElevationModel | None = None,
) -> None:
    """Serve the live map of ``site`` fed by ``bus`` until interrupted.

    ``users_path`` is the users file (``vigil users add``); ``audit_path`` the SQLite file the
    audit table goes in (the sector's store will do). The bus is typically fed by the
    simulator or the sector service on other threads. ``dem``: the sector's ground, for the
    towers' coverage on the relief (:class:`~vigil.maps.live.app.LiveMapApp`).
    """
    users = UserStore(users_path)
    if not users.users():
        raise RuntimeError(
            f"no users in {users_path}; add one first: vigil users add NAME --role commander"
        )
    audit = AuditLog(audit_path)
    app = LiveMapApp(
        site,
        bus,
        users,
        audit,
        history=history,
        tiles_url=tiles_url,
        tiles_attribution=tiles_attribution,
        secret=secret,
        # answer to the bound address, the certificate's names and the ones given
        allowed_hosts=[host, *certificate_names(certfile), *allowed_hosts],
        dem=dem,
    )
    try:
        serve(app, host, port, certfile, keyfile, log_level=log_level)
    finally:
        app.close()
        audit.close()
        users.close()
