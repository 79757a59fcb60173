"""Browser tests: a real uvicorn server on the test's database, Debian's Chromium (Playwright)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from tests import services
from tests.serving import serve_in_thread

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The base URL of a real HTTP server running this test's app (lifespan included)."""
    with serve_in_thread(app) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = services.require(services.chromium_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=services.CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


# Chromium's own line for every 4xx answer: a test marked `refused_requests` sends requests
# the server must refuse, and only these lines are forgiven there.
REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d ")


# Set once a test's body has run: what a page logs after that comes from teardown (a poll
# or a page's first request racing the server's shutdown), not from what the test did.
BODY_DONE = pytest.StashKey[bool]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield
    item.stash[BODY_DONE] = True


@pytest.fixture
def page(_browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page (own cookies); console errors while the test runs fail it."""
    context = _browser.new_context(viewport={"width": 1366, "height": 850})
    page = context.new_page()
    errors: list[str] = []
    refusals = request.node.get_closest_marker("refused_requests") is not None

    def record(text: str) -> None:
        if not request.node.stash.get(BODY_DONE, False):
            errors.append(text)

    def on_console(msg: Any) -> None:
        if msg.type == "error" and not (refusals and REFUSED.match(msg.text)):
            record(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: record(str(exc)))
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert not errors, f"browser console errors: {errors}"


def login(page: Any, base_url: str, username: str, password: str) -> None:
    """Log in through the login form and wait for the home page."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
