"""TensorBoard in the browser: open it for a job from the TensorBoards page; the spinner
gives way to TensorBoard, served through the proxy, showing the job's scalar tags."""

from __future__ import annotations

from typing import Any

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.tensorboard import service
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_job_with_scalars, make_users_fast

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_tensorboard_opens_through_the_proxy(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    owner = make_users_fast(database, "owner")["owner"]
    assert owner.default_project_id is not None
    job_id = make_job_with_scalars(
        database, settings, owner.default_project_id, name="digits", tag="Train/loss"
    )
    try:
        # the app serves no /favicon.ico yet: answer the browser's own request for it
        page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
        login(page, live_server, "owner", PASSWORD)
        page.goto(f"{live_server}/tensorboards")
        page.fill("#open-jobs-form input[name=job_ids]", str(job_id))
        page.click("#open-jobs-form button[type=submit]")
        page.wait_for_url(f"{live_server}/tensorboards/*")

        frame = page.frame_locator("#tb-frame")
        page.wait_for_selector("#tb-frame", timeout=60_000)
        src = page.get_attribute("#tb-frame", "src")
        assert src is not None and src.startswith("/tensorboard/")
        frame.get_by_text("Train/loss").first.wait_for(timeout=60_000)
        assert frame.get_by_text(f"{job_id}-digits").first.is_visible()
    finally:
        page.goto("about:blank")  # TensorBoard's page polls; leave it before stopping
        with database.session() as db:
            service.stop_children(db)
