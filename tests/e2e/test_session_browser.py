"""A lab session in the browser, at 1280 and 1920 px: Start on the lab page, wait for the
session to run, open JupyterLab (a sandboxed frame, served through the proxy), open a
terminal and run a command there that writes into the lab's folder."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.models import FINAL_STATUSES, Job
from labyard.jobs.scheduler import Scheduler
from labyard.labs import service as labs_service
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_job_flavors, make_users_fast

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def scheduler(settings: Settings, database: Database) -> Iterator[Scheduler]:
    """The jobs scheduler running in a thread, as `labyard serve` runs it; live jobs killed
    at the end."""
    settings.scheduler_interval_seconds = 0.2
    made = Scheduler(settings, database)
    stop = threading.Event()
    thread = threading.Thread(target=made.run, args=(stop,), daemon=True)
    thread.start()
    yield made
    stop.set()
    thread.join(timeout=30)
    with database.session() as db:
        live = [(j.id, j.external_id) for j in db.query(Job) if j.status not in FINAL_STATUSES]
    for job_id, external in live:
        deadline = time.monotonic() + 30
        while external and time.monotonic() < deadline:
            made.executor.stop(job_id, external, force=True)
            if not made.executor.poll(job_id, external).running:
                break
            time.sleep(0.1)


@pytest.mark.parametrize("width", [1280, 1920])
def test_start_a_session_and_open_a_terminal(
    live_server: str,
    page: Any,
    database: Database,
    settings: Settings,
    scheduler: Scheduler,
    width: int,
) -> None:
    make_job_flavors(database)
    owner = make_users_fast(database, "owner")["owner"]
    with database.session() as db:
        user = db.get(User, owner.id)
        assert user is not None and user.default_project_id is not None
        lab = labs_service.create_lab(
            db, settings, user, project_id=user.default_project_id, name="nb", flavor="tiny"
        )
        lab_id = lab.id
    page.set_viewport_size({"width": width, "height": 900})
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    login(page, live_server, "owner", PASSWORD)
    page.goto(f"{live_server}/labs/{lab_id}/files")
    page.locator("#lab-session button", has_text="Start").click()
    page.locator("#lab-session .session-state:not([data-state=stopped])").wait_for()
    page.get_by_role("link", name="Open JupyterLab").click(timeout=120_000)
    page.wait_for_url(f"{live_server}/labs/{lab_id}/jupyter")
    assert page.get_attribute("#session-frame", "sandbox") == (
        "allow-scripts allow-popups allow-downloads allow-forms allow-modals"
    )
    frame = page.frame_locator("#session-frame")
    frame.locator(".jp-LauncherCard", has_text="Terminal").first.click(timeout=120_000)
    terminal = frame.locator(".jp-Terminal").first
    terminal.wait_for(timeout=60_000)
    terminal.click()
    page.keyboard.type("echo typed-in-the-browser > from_terminal.txt\n")
    written = settings.data_dir / "labs" / str(lab_id) / "from_terminal.txt"
    deadline = time.monotonic() + 60
    while not written.exists():
        assert time.monotonic() < deadline, "the terminal's command never ran"
        time.sleep(0.2)
    assert written.read_text().strip() == "typed-in-the-browser"
    # JupyterLab's scripts run in an opaque origin: no cookie of the platform to act with
    element = page.query_selector("#session-frame")
    inside = element.content_frame() if element else None
    assert inside is not None
    assert inside.evaluate("String(self.origin)") == "null"
    cookie = "(() => { try { return parent.document.cookie; } catch (e) { return 'threw'; } })()"
    assert inside.evaluate(cookie) == "threw"
    page.goto("about:blank")  # JupyterLab's page polls; leave it before the session stops
