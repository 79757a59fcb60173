"""Browser test of the home overview on a faked 4-GPU node (LABYARD_GPUS=0,1,2,3): the GPU
table says which job holds which GPU, a running job shows its progress, and the rows refresh
by themselves (htmx polling) when the job reports more progress. No console error."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from labyard.app import create_app
from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.models import Job
from tests.e2e.conftest import login
from tests.factories import ADMIN_PASSWORD, make_job_row


@pytest.fixture
def app(settings: Settings, database: Database) -> FastAPI:
    """This module's server runs on a node with four GPUs."""
    return create_app(settings.model_copy(update={"gpus": "0,1,2,3"}), database=database)


def test_home_shows_gpus_and_a_running_jobs_progress_live(
    page: Any, live_server: str, database: Database, settings: Settings
) -> None:
    with database.session() as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
        assert admin is not None and admin.default_project_id is not None
        project_id = admin.default_project_id
    job_id = make_job_row(
        database, settings, project_id, status="running", name="resnet-run",
        gpus=2, assigned_gpus=["1", "2"], progress_fraction=0.4, eta_seconds=90,
    )  # fmt: skip
    login(page, live_server, "admin", ADMIN_PASSWORD)
    page.goto(f"{live_server}/")
    rows = page.locator("#overview-gpus tbody tr")
    assert rows.count() == 4
    holders = [rows.nth(i).locator("td[data-col=holder]").inner_text() for i in range(4)]
    assert holders == ["free", f"resnet-run #{job_id}", f"resnet-run #{job_id}", "free"]
    bar = page.get_by_role("progressbar", name=f"Progress of job {job_id}")
    assert bar.get_attribute("value") == "40.0"
    assert "0:01:30" in page.locator(f"#overview-running tr[data-job='{job_id}']").inner_text()
    with database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        job.progress_fraction = 0.8
    page.wait_for_function(
        "id => document.querySelector(`progress[aria-label='Progress of job ${id}']`)"
        "?.getAttribute('value') === '80.0'",
        arg=job_id,
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"]
