"""The live map's response headers (issue 18): scripts and styles only from the app's own
files, no inline script in any page, and HSTS when served over TLS (not over plain HTTP)."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

from live_client import PASSWORDS, Client, World, commander_only_app, running_world  # noqa: E402
from test_live_serving import _self_signed  # noqa: E402

from vigil.maps.live import ServerThread  # noqa: E402
from vigil.maps.live.page import json_for_script  # noqa: E402

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("headers")) as w:
        yield w


def directives(csp: str) -> dict[str, str]:
    return {d.split()[0]: d.strip() for d in csp.split(";") if d.strip()}


def test_policy_allows_no_inline_script_or_style_and_pages_carry_none(world) -> None:
    for path, user in (("/login", None), ("/", "cmd"), ("/admin", "adm")):
        c = Client(world.server.url)
        if user:
            c.login(user, PASSWORDS[user])
        reply = c.request("GET", path)
        assert reply.status == 200, path
        csp = directives(reply.headers["content-security-policy"])
        assert csp["script-src"] == "script-src 'self'", csp
        assert csp["style-src"] == "style-src 'self'", csp
        page = reply.body.decode()
        assert INLINE_SCRIPT.findall(page) == [], path
        assert re.search(r"\son[a-z]+\s*=", page) is None, path  # no event-handler attribute
        assert "<style" not in page and "style=" not in page, path
        assert "strict-transport-security" not in reply.headers  # plain HTTP: no HSTS


def test_hsts_over_tls(world, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    app = commander_only_app(world, tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with ServerThread(app, certfile=cert, keyfile=key) as srv:
        reply = Client(srv.url, context=context).request("GET", "/login")
    assert reply.headers["strict-transport-security"].startswith("max-age=")
    assert int(reply.headers["strict-transport-security"].split("=")[1]) >= 180 * 86400


def test_json_for_a_script_block_cannot_close_it() -> None:
    text = json_for_script({"name": "</script><script>alert(1)</script><!-- & -->"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": "</script><script>alert(1)</script><!-- & -->"}
