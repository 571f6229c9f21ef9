"""Operators' labels from the map: ``POST /api/tracks/{id}/label`` and
``GET /api/tracks/{id}/labels``.

A label is checked like an alert action (:mod:`~vigil.maps.live.actions`): the session, the
same origin, the session's CSRF token and the role's ``tracks.label`` permission (the roles
that may acknowledge: commander and agent), then the track id (an identifier of at most 64
characters, of a track the map shows or holds in its history) and the label (one of
:data:`~vigil.maps.track_labels.LABELS`). It is stored with its audit entry in one
transaction (:class:`~vigil.maps.track_labels.TrackLabels`) and goes to every browser with
the next batch.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vigil.maps.live.guard import Guard, read_form, refuse
from vigil.maps.live.state import LiveState
from vigil.maps.track_labels import LabelError, TrackLabels, check_label, check_track_id

#: The permission a role needs to label tracks.
PERMISSION = "tracks.label"


class TrackLabelling:
    """The endpoints for operators' labels: checks, stores (with the audit entry) and shows them.

    Parameters
    ----------
    guard
        The session, origin, CSRF and role checks.
    live
        The map's state: which tracks may be labelled, and where labels go to browsers.
    labels
        The sector's label store (in the audit database).
    """

    def __init__(self, guard: Guard, live: LiveState, labels: TrackLabels) -> None:
        self.guard = guard
        self.live = live
        self.labels = labels

    async def label(self, request: Request) -> Response:
        """``POST /api/tracks/{track_id}/label`` with ``label``: label one track."""
        session = self.guard.checked_post(request, PERMISSION)
        if isinstance(session, Response):
            return session
        track_id = request.path_params["track_id"]
        try:
            check_track_id(track_id)
            form = await read_form(request)
            label = check_label(form.get("label", ""))
        except LabelError as exc:
            return refuse(400, str(exc))
        seen = self.live.track_seen(track_id)
        if seen is None:
            return refuse(
                404,
                f"no track {track_id!r} on the map; labels go on tracks the map shows or holds "
                "in its history",
            )
        track_class, track_time = seen
        made, changed = await run_in_threadpool(
            self.labels.label,
            track_id,
            label,
            session.user.name,
            track_class=track_class,
            track_time=track_time,
        )
        if changed:
            self.live.set_label(made.view())
        return JSONResponse({"ok": True, "changed": changed, **made.view()})

    async def history(self, request: Request) -> Response:
        """``GET /api/tracks/{track_id}/labels``: every label the track was given, oldest
        first, with the time in UTC seconds and as local time with its offset."""
        session = self.guard.api_session(request, "map")
        if isinstance(session, Response):
            return session
        track_id = request.path_params["track_id"]
        try:
            check_track_id(track_id)
        except LabelError as exc:
            return refuse(400, str(exc))
        rows = await run_in_threadpool(self.labels.history, track_id)
        return JSONResponse(
            {
                "track": track_id,
                "labels": [dict(x.view(), local_time=x.local_time()) for x in rows],
            }
        )
