"""The watch commander's live map: a Starlette app fed by the bus, behind a login.

- :class:`LiveMapApp`: the ASGI app (page, API, WebSocket, static assets).
- :func:`serve`, :class:`ServerThread`, :func:`run_live`: serving it with uvicorn.
- :class:`UserStore`, :func:`add_user`, :data:`ROLES`: users and roles (argon2 hashes).
- :class:`AuditLog`: logins, acknowledgements, assignments and refusals.
- :func:`live_relief`: the sector's ground from ``[terrain]``, for coverage on the relief.

Starlette, uvicorn and argon2-cffi are the ``serve`` extra; importing this package needs them.
"""

from vigil.maps.live.app import LiveMapApp
from vigil.maps.live.audit import AuditEntry, AuditLog
from vigil.maps.live.auth import PERMISSIONS, ROLES, AuthError, User, UserStore, add_user
from vigil.maps.live.coverage import live_relief
from vigil.maps.live.feed import visible_alert
from vigil.maps.live.server import ServerThread, run_live, serve
from vigil.maps.live.state import LiveState

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "AuditEntry",
    "AuditLog",
    "AuthError",
    "LiveMapApp",
    "LiveState",
    "ServerThread",
    "User",
    "UserStore",
    "add_user",
    "live_relief",
    "run_live",
    "serve",
    "visible_alert",
]
