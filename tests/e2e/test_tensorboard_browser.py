"""TensorBoard in the browser: open it for a job from the TensorBoards page; the spinner
gives way to TensorBoard, served through the proxy in a sandboxed frame, showing the job's
scalar tags; a script in that frame cannot read the platform's cookies or pages, nor call
its API with the viewer's session (the browser sends the frame's requests no cookie)."""

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
        # the run is named by the job's display name (not "<id>-<name>/.")
        assert frame.get_by_text("digits", exact=True).first.is_visible()
        # the scalars dashboard drew the curve (its data came through the link, not a cookie)
        frame.locator("tf-scalar-card, scalar-card").first.wait_for(timeout=60_000)

        assert page.get_attribute("#tb-frame", "sandbox") == (
            "allow-scripts allow-popups allow-downloads"
        )
        _prove_the_frame_holds_no_session(page, live_server)
    finally:
        page.goto("about:blank")  # TensorBoard's page polls; leave it before stopping
        with database.session() as db:
            service.stop_children(db)


PROBE = """async () => {
  const tryIt = (f) => { try { return String(f()); } catch (e) { return "threw " + e.name; } };
  const jar = Object.getOwnPropertyDescriptor(Document.prototype, "cookie").get;
  let api;
  try {
    const r = await fetch("/api/v1/projects", {credentials: "include"});
    api = "status " + r.status;
  } catch (e) { api = "blocked " + e.name; }
  return {
    origin: String(self.origin),
    cookie: tryIt(() => document.cookie),
    realCookie: tryIt(() => jar.call(document)),
    parentCookie: tryIt(() => parent.document.cookie),
    api,
  };
}"""


def _prove_the_frame_holds_no_session(page: Any, base_url: str) -> None:
    """Run a hostile script in TensorBoard's frame (on a second tab of the same login, whose
    expected CORS refusals are not this test's console errors); then the same fetch from the
    platform's own page, which succeeds (so the frame's failure is the sandbox, not the API)."""
    probe = page.context.new_page()
    probe.goto(page.url)
    probe.frame_locator("#tb-frame").get_by_text("Train/loss").first.wait_for(timeout=60_000)
    element = probe.query_selector("#tb-frame")
    inside = element.content_frame() if element else None
    assert inside is not None
    with probe.expect_request(f"{base_url}/api/v1/projects") as sent:
        seen = inside.evaluate(PROBE)
    assert seen["origin"] == "null"  # opaque: nothing of the platform's origin
    assert seen["cookie"] == ""  # what TensorBoard's own code sees
    assert seen["realCookie"].startswith("threw")  # the browser's jar: SecurityError
    assert seen["parentCookie"].startswith("threw")  # the platform page is out of reach
    assert seen["api"] in ("blocked TypeError", "status 401"), seen["api"]
    request = sent.value
    assert "cookie" not in request.all_headers()  # the viewer's session never left
    response = request.response()
    assert response is None or response.status == 401

    with probe.expect_request(f"{base_url}/api/v1/projects") as own:
        status = probe.evaluate("async () => (await fetch('/api/v1/projects')).status")
    assert status == 200 and "labyard_session=" in own.value.all_headers()["cookie"]

    # "Open in a new tab": the same link as a top-level page, sandboxed by its header alone
    link = probe.get_attribute("#tb-frame", "src")
    probe.goto(f"{base_url}{link}")
    probe.get_by_text("Train/loss").first.wait_for(timeout=60_000)
    assert probe.evaluate("String(self.origin)") == "null"
    probe.close()
