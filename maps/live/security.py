"""Security headers on every HTTP response of the live map: the page may talk only to its own
host (and the local tile server, when there is one), may not be framed, and API answers and
pages are not cached.

Scripts and style sheets come only from the app's own files (``script-src 'self'``,
``style-src 'self'``, no ``'unsafe-inline'``): the pages carry no inline script, no event-handler
attribute and no ``<style>``/``style=`` markup, so markup that ever slipped into a page could
neither run nor restyle it. Leaflet positions markers and tooltips through the CSSOM
(``element.style``), which the policy does not restrict, so it needs no exception. Over TLS
the answers also carry ``Strict-Transport-Security``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

HSTS = b"max-age=31536000"


class SecurityHeaders:
    """ASGI middleware that adds CSP and friends to every HTTP response.

    Parameters
    ----------
    app
        The ASGI app to wrap.
    tiles_url
        The local tile server's URL template, whose host images may come from (None: none).
    """

    def __init__(self, app, tiles_url: str | None) -> None:
        self.app = app
        img = "'self' data: blob:"
        if tiles_url:
            parts = urlsplit(tiles_url.replace("{", "").replace("}", ""))
            if parts.scheme and parts.netloc:
                img += f" {parts.scheme}://{parts.netloc}"
        self.headers = [
            (
                b"content-security-policy",
                (
                    "default-src 'self'; script-src 'self'; "
                    f"style-src 'self'; img-src {img}; "
                    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
                    "form-action 'self'; base-uri 'none'"
                ).encode(),
            ),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on form
            # posts, which the origin check must refuse
            (b"referrer-policy", b"same-origin"),
        ]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(self.headers)
                # the path below the app's mount point (a sector map of the national view)
                path = scope["path"][len(scope.get("root_path", "")) :] or "/"
                if path.startswith("/api/") or path in ("/", "/login"):
                    headers.append((b"cache-control", b"no-store"))
                if scope.get("scheme") == "https":
                    headers.append((b"strict-transport-security", HSTS))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)
