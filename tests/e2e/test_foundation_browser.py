"""The foundation in a real browser: log in, create a project, log out; the API docs render."""

from __future__ import annotations

from typing import Any

import pytest

from labyard.db import Database
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_users_fast

pytestmark = pytest.mark.browser


def test_login_create_project_logout(live_server: str, page: Any, database: Database) -> None:
    make_users_fast(database, "ana")
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/projects")
    page.fill("input[name=name]", "browser <b>project</b>")
    page.fill("input[name=description]", "made by Chromium")
    page.click("button:has-text('Create project')")
    row = page.locator("#project-list a", has_text="browser <b>project</b>")
    row.wait_for()
    assert page.url == f"{live_server}/projects"  # htmx swapped the list, no reload
    assert page.locator("#project-list b").count() == 0  # shown as text, not markup
    assert page.input_value("input[name=name]") == ""  # the form was reset
    row.click()
    page.wait_for_url(f"{live_server}/projects/*")
    assert page.locator("h1").inner_text() == "browser <b>project</b>"
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{live_server}/login")
    page.goto(f"{live_server}/projects")
    assert page.url.startswith(f"{live_server}/login?next=/projects")


def test_api_docs_render_offline_under_the_csp(live_server: str, page: Any) -> None:
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith(live_server) or request.url.startswith("data:")
            else outside.append(request.url)
        ),
    )
    page.goto(f"{live_server}/docs")
    page.locator(".swagger-ui .opblock").first.wait_for()
    summaries = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/auth/token" in " ".join(summaries)
    assert "/api/v1/projects/{project_id}/members" in " ".join(summaries)
    assert not outside, f"the docs page reached outside: {outside}"
