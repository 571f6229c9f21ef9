"""A browser page for tests that fails the test on any JavaScript error.

``checked_page`` wraps conftest's ``offline_page`` (non-local requests blocked and counted) and
collects every console message of type ``error`` (failed loads, CSP refusals, logged errors)
and every uncaught exception (``pageerror``); at the end of the test it asserts there were none
and that nothing tried to leave the machine. A test that provokes an error on purpose (a
refused WebSocket, say) names it with :meth:`CheckedPage.allow`.

Use it in a test module: ``checked_page = browser_checks.checked_page``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class CheckedPage:
    """A Playwright page and the JavaScript errors it produced."""

    page: object
    blocked: list[str]
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Accept error messages matching the regular expression ``pattern`` from now on."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        """The errors no :meth:`allow` pattern accepts."""
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def assert_clean(self) -> None:
        """No unexpected JavaScript error and no blocked request so far."""
        assert self.unexpected() == [], f"JavaScript errors on the page: {self.unexpected()}"
        assert self.blocked == [], f"requests that tried to leave the machine: {self.blocked}"


@pytest.fixture
def checked_page(offline_page) -> Iterator[CheckedPage]:
    """``offline_page`` that fails the test on any console error or uncaught exception."""
    checked = CheckedPage(page=offline_page.page, blocked=offline_page.blocked)

    def on_console(msg) -> None:
        if msg.type == "error":
            checked.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    checked.page.on("console", on_console)
    checked.page.on("pageerror", lambda exc: checked.errors.append(f"pageerror: {exc}"))
    yield checked
    checked.assert_clean()
