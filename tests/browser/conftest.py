"""Headless Chromium (Debian's ``chromium``) driven by Playwright for Python.

Playwright's own browser download cannot work offline, so it is pointed at the
system binary. Its sync API runs an event loop in the test thread, which makes
Django's async-safety check refuse ORM calls made by the test itself; those
calls are ordinary synchronous test code, so the check is lifted here only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is missing: apt-get install chromium")
    return path


# Module scope: Playwright's sync API keeps an event loop running in this
# thread while it is open, which would break asyncio.run() in later tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page_factory(browser: Any, live_server: Any) -> Iterator[Any]:
    contexts = []

    def make(locale: str = "en-US") -> Any:
        context = browser.new_context(locale=locale, base_url=live_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
