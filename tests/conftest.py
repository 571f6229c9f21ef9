"""Shared fixtures: paths to real data, and a headless Chromium that cannot leave the machine."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder."""
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that use it skip with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA} (a plain clone does not have it)")
    return SHARED_DATA


def chromium_path() -> str | None:
    """Debian's Chromium, installed by `make test` when missing."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return os.environ.get("VIGIL_CHROMIUM") or None


def is_local(url: str) -> bool:
    """Whether a request stays on this machine (file, data, blob, or a loopback host)."""
    parsed = urlparse(url)
    if parsed.scheme in ("file", "data", "blob", "about", "chrome-error"):
        return True
    return (parsed.hostname or "") in LOCAL_HOSTS


@dataclass
class OfflinePage:
    """A Playwright page whose every non-local request is blocked and counted."""

    page: object
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A headless Chromium (Debian's, through Playwright) for the session."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium is not installed (make test installs it with apt-get as root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=exe,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def offline_page(chromium) -> Iterator[OfflinePage]:
    """A fresh page in its own context; requests leaving the machine are aborted and counted."""
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    result = OfflinePage(page=None)

    def route(r) -> None:
        url = r.request.url
        if is_local(url):
            r.continue_()
        else:
            result.blocked.append(url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on(
        "console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None
    )
    result.page = page
    yield result
    context.close()


# The Mosquitto fixture for broker tests (tests/broker.py).
from broker import broker  # noqa: E402, F401
