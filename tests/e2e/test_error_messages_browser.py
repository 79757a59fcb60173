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
from tests.factories import PASSWORD, make_dataset, make_job_row, make_users_fast

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


@pytest.fixture
def small_uploads(settings: Settings) -> Settings:
    """Lab uploads past 2,000 bytes are refused (the app fixture reads these settings)."""
    settings.lab_max_upload_bytes = 2_000
    return settings


@pytest.mark.refused_requests
def test_script_driven_failures_say_why_in_words(
    small_uploads: Settings, live_server: str, page: Any, database: Database
) -> None:
    """Requests sent by our scripts (not htmx) word the server's refusal too: a lab upload
    past the limit, a log search past its length; no status code, nothing written."""
    lab_id = _lab_with_dataset(database, small_uploads)
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/labs/{lab_id}/files")
    picker = page.locator("input[data-upload-files]:not([webkitdirectory])")
    picker.set_input_files(
        files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 5_000}]
    )
    status = page.locator("[data-upload-status]")
    expect(status).to_contain_text("big.bin: ")
    text = status.inner_text()
    assert "413" not in text and "object Object" not in text and len(text) > len("big.bin: ") + 10
    assert page.locator("#file-list").inner_text().count("big.bin") == 0
    labs_dir = small_uploads.data_dir / "labs"
    assert not list(labs_dir.rglob("big.bin"))

    # a log search past its length (the field's maxlength removed, as a script could)
    with database.session() as db:
        lab = db.get(Lab, lab_id)
        assert lab is not None
        project_id = lab.project_id
    job_id = make_job_row(database, small_uploads, project_id, log_lines=["hello"])
    page.goto(f"{live_server}/jobs/{job_id}")
    page.click("nav.job-tabs a[data-tab=log]")
    field = page.locator("#log-filter")
    field.evaluate("e => e.removeAttribute('maxlength')")
    field.fill("y" * 300)
    page.click("#log-search")
    problem = page.locator("#log-results .form-error")
    expect(problem).to_contain_text("at most 200 characters")
    assert "422" not in problem.inner_text()
