"""Failed actions in a real browser: the human message appears next to the control that
sent the request (static/js/app.js), never a bare status code, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.labs.models import Lab
from labyard.labs.service import create_lab
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_dataset, make_users_fast

pytestmark = pytest.mark.browser


def _lab_with_dataset(database: Database, settings: Settings) -> int:
    users = make_users_fast(database, "ana")
    project_id = users["ana"].default_project_id
    assert project_id is not None
    make_dataset(database, settings, users["ana"], project_id, "digits-real")
    with database.session() as db:
        ana = db.get(User, users["ana"].id)
        assert ana is not None
        return create_lab(db, settings, ana, project_id=project_id, name="errs").id


def _attached(database: Database, lab_id: int) -> list[int]:
    with database.session() as db:
        lab = db.get(Lab, lab_id)
        assert lab is not None
        return [a.dataset_id for a in lab.attachments]


@pytest.mark.refused_requests
def test_unknown_dataset_message_next_to_the_attach_field(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    lab_id = _lab_with_dataset(database, settings)
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/labs/{lab_id}/datasets")
    form = page.locator("#attached form")
    form.locator("input[name=name]").fill("digits-reel")
    form.locator("button[type=submit]").click()
    error = form.locator("[data-request-error]")
    expect(error).to_have_text("No dataset named 'digits-reel' in this project or public.")
    assert error.get_attribute("role") == "alert"
    # next to the field it names, inside the form, and the top of the page stays empty
    assert error.evaluate("e => !!e.previousElementSibling.querySelector('input[name=name]')")
    assert page.locator("#flash").inner_text().strip() == ""
    for code in ("404", "422"):
        assert code not in form.inner_text()
    assert _attached(database, lab_id) == []
    # a crafted name past the limit gets a sentence, not pydantic's jargon
    form.locator("input[name=name]").evaluate("e => e.removeAttribute('maxlength')")
    form.locator("input[name=name]").fill("x" * 150)
    form.locator("button[type=submit]").click()
    expect(error).to_have_text("Name should have at most 100 characters.")
    expect(form.locator("[data-request-error]")).to_have_count(1)
    # the right name attaches and the message goes away
    form.locator("input[name=name]").fill("digits-real")
    form.locator("button[type=submit]").click()
    expect(page.locator("#attached")).to_contain_text("/mlsteam/input/digits-real")
    expect(page.locator("#attached [data-request-error]")).to_have_count(0)
    assert len(_attached(database, lab_id)) == 1


def test_unreachable_server_is_said_next_to_the_control(
    live_server: str, _browser: Any, database: Database, settings: Settings
) -> None:
    """Own page: the aborted request is a console error, which the `page` fixture refuses."""
    lab_id = _lab_with_dataset(database, settings)
    context = _browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/labs/{lab_id}/datasets")
    page.route("**/labs/*/datasets", lambda route: route.abort())
    form = page.locator("#attached form")
    form.locator("input[name=name]").fill("digits-real")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-request-error]")).to_contain_text("cannot be reached")
    assert _attached(database, lab_id) == []
    context.close()
