"""The live feed to browsers: a WebSocket per browser, a snapshot first, then one batch of
changes per tick, each filtered to the alerts its user may see.

A ticker on the event loop takes what changed in the :class:`~vigil.maps.live.state.LiveState` every
``tick_s`` and queues one JSON batch per browser (encoded once per audience however many
browsers share it); a browser whose queue is full gets a fresh snapshot instead of a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from vigil.maps.live.auth import Session, User
from vigil.maps.live.guard import Guard, same_origin
from vigil.maps.live.state import LiveState

log = logging.getLogger("vigil.live")

#: Batches a slow browser may have waiting before it is resynchronised with a snapshot.
CLIENT_QUEUE = 32

_json = msgspec.json.Encoder()


def visible_alert(user: User, alert: dict[str, Any]) -> bool:
    """Whether ``user`` may see an alert: all of them, or (agents) their unit's."""
    if user.can("alerts.all"):
        return True
    if not user.can("alerts.own") or user.unit is None:
        return False
    if alert.get("assigned"):
        return alert["assigned"] == user.unit
    return user.unit in (alert.get("units") or ())


def for_user(user: User, payload: dict[str, Any]) -> dict[str, Any]:
    """A snapshot or batch with only the alerts ``user`` may see (closed ones pass)."""
    if "alerts" not in payload or user.can("alerts.all"):
        return payload
    out = dict(payload)
    # another unit's alert, once closed, passes as its id and state only, so a queue entry
    # can leave a page that had it without telling the agent what it was
    out["alerts"] = [
        a if visible_alert(user, a) else {"id": a.get("id"), "state": "closed"}
        for a in payload["alerts"]
        if visible_alert(user, a) or a.get("state") == "closed"
    ]
    return out


@dataclass(eq=False)
class _Client:
    """One connected browser."""

    session: Session
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    resync: bool = False


class LiveFeed:
    """The WebSocket endpoint and the ticker that feeds every connected browser.

    Parameters
    ----------
    live
        The map's state, updated from the bus.
    guard
        Whose session a WebSocket carries, checked at the handshake and before every send.
    tick_s
        How often changes go out to browsers, seconds.
    """

    def __init__(
        self,
        live: LiveState,
        guard: Guard,
        tick_s: float,
        link: Callable[[], bool] | None = None,
    ) -> None:
        self.live = live
        self.guard = guard
        self.tick_s = tick_s
        #: Whether the map's bus reaches the broker (``None``: an in-process bus, always).
        self.link = link
        self._link_said: str | None = None
        self._clients: set[_Client] = set()
        self._checked = time.monotonic()

    def broker_state(self) -> str | None:
        """``"connected"`` or ``"lost"`` for a map fed by a broker; ``None`` for one that is not."""
        if self.link is None:
            return None
        return "connected" if self.link() else "lost"

    async def run(self) -> None:
        """Send what changed every ``tick_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self.tick()
            except Exception:  # keep ticking; a bad batch must not stop the map
                log.exception("live map tick failed")
                self.live.counts["tick_errors"] += 1

    def tick(self) -> None:
        """Queue the changes since the last tick for every browser, encoded per audience."""
        now = time.monotonic()
        if now - self._checked >= 1.0:
            # a user changed or removed (or logged out) meanwhile: end their live sessions
            # even when nothing moves on the map
            self._checked = now
            for client in list(self._clients):
                if not self.guard.still_valid(client.session):
                    with contextlib.suppress(asyncio.QueueFull):
                        client.queue.put_nowait(None)
        batch = self.live.take_changes()
        link = self.broker_state()
        if link != self._link_said:
            # the page says when the picture stops being fed, even if nothing else changes
            batch = batch or {"type": "batch"}
            batch["broker"] = link
        if batch is None or not self._clients:
            return
        self._link_said = link
        batch["sent"] = time.time()
        encoded: dict[Any, str] = {}
        for client in list(self._clients):
            user = client.session.user
            key = "all" if user.can("alerts.all") else ("unit", user.unit)
            text = encoded.get(key)
            if text is None:
                text = encoded[key] = _json.encode(for_user(user, batch)).decode()
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                # a browser that cannot keep up gets the whole picture again, not a gap
                while not client.queue.empty():
                    client.queue.get_nowait()
                client.resync = True
                client.queue.put_nowait(None)
                self.live.counts["client_resyncs"] += 1

    async def websocket(self, websocket: WebSocket) -> None:
        """``WS /ws``: a logged-in map user's browser, from this host's own page."""
        session = self.guard.session(websocket)
        if session is None or not session.user.can("map") or not same_origin(websocket):
            # refused before the handshake completes: the browser sees HTTP 403
            await websocket.close(code=4401)
            return
        await websocket.accept()
        client = _Client(session)
        self._clients.add(client)
        sender = asyncio.create_task(self._send_loop(websocket, client))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        except WebSocketDisconnect:
            pass
        finally:
            self._clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    def _snapshot(self, user: User) -> str:
        snap = for_user(user, self.live.snapshot())
        snap["sent"] = time.time()
        link = self.broker_state()
        if link is not None:
            snap["broker"] = link
        return _json.encode(snap).decode()

    async def _send_loop(self, websocket: WebSocket, client: _Client) -> None:
        await websocket.send_text(self._snapshot(client.session.user))
        while True:
            text = await client.queue.get()
            if self.guard.session(websocket) is None:
                await websocket.close(code=4401)  # logged out or expired meanwhile
                return
            if text is None or client.resync:
                client.resync = False
                text = self._snapshot(client.session.user)
            await websocket.send_text(text)
