"""GPU quotas on a faked 4-GPU node: GPUs at once per project and per user, GPU-hours per
month; a job over a quota waits with the reason (job page and API) and starts when the
quota allows, without holding back the jobs behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs import limits
from labyard.jobs.models import Job
from tests.factories import access_token_for, auth, make_users_fast, session_client
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.jobs.fairshare_helpers import (
    finish,
    queue,
    reason,
    running,
    statuses,
    used_before,
)
from tests.integration.jobs.test_local_jobs import FOUR_GPUS

PROJECT_FULL = "waiting: project quota of 2 GPUs at once reached (2 in use, the job needs 1)"


@pytest.fixture
def waiting_lab(tmp_path: Path) -> Path:
    """A lab whose jobs wait for their `go` file."""
    return write_lab(tmp_path / "wait", params="  mode: [wait]\n  copy: [1]\n")


@pytest.mark.usefixtures("flavors")
def test_project_gpus_at_once_wait_with_the_reason_and_start_when_allowed(
    app: FastAPI, database: Database, settings: Settings, waiting_lab: Path, make_scheduler
) -> None:
    people = make_users_fast(database, "ana", "bob", "cy")
    used_before(database, people["bob"], 1.0)  # so ana's jobs come first by fair share
    with database.session() as db:
        limits.set_quota(
            db, project_id=people["ana"].default_project_id, max_gpus=2, monthly_gpu_hours=None
        )
    ana = queue(database, settings, waiting_lab, people["ana"], 4)
    bob = queue(database, settings, waiting_lab, people["bob"], 3)
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    scheduler.tick()
    # ana's third and fourth wait for her quota; bob's jobs behind them are not held back
    assert running(database) == {*ana[:2], *bob[:2]}
    assert [reason(database, i) for i in ana[2:]] == [PROJECT_FULL, PROJECT_FULL]
    assert reason(database, bob[2]) == ""
    client = TestClient(app)
    headers = auth(access_token_for(app, database, people["ana"]))
    shown = client.get(f"/api/v1/jobs/{ana[2]}", headers=headers).json()
    assert (shown["status"], shown["reason"]) == ("queued", PROJECT_FULL)
    with session_client(app, database, people["ana"]) as browser:
        assert PROJECT_FULL in browser.get(f"/jobs/{ana[2]}").text
    finish(settings, ana[0])  # ana's quota allows one more: her next job, not bob's
    run_until(scheduler, database, lambda _: ana[2] in running(database))
    assert reason(database, ana[2]) == "" and statuses(database, [bob[2]]) == ["queued"]
    finish(settings, *ana, *bob)
    run_until(scheduler, database, all_final)


@pytest.mark.usefixtures("flavors")
def test_user_gpus_at_once_count_over_all_their_projects(
    database: Database, settings: Settings, waiting_lab: Path, make_scheduler
) -> None:
    people = make_users_fast(database, "ana", "bob")
    with database.session() as db:
        limits.set_quota(db, user_id=people["bob"].id, max_gpus=1, monthly_gpu_hours=None)
    bob = queue(database, settings, waiting_lab, people["bob"], 2)
    ana = queue(database, settings, waiting_lab, people["ana"], 1)
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    scheduler.tick()
    assert running(database) == {bob[0], ana[0]}
    assert reason(database, bob[1]) == (
        "waiting: user quota of 1 GPUs at once reached (1 in use, the job needs 1)"
    )
    finish(settings, bob[0])
    run_until(scheduler, database, lambda _: bob[1] in running(database))
    finish(settings, *bob, *ana)
    run_until(scheduler, database, all_final)


@pytest.mark.usefixtures("flavors")
def test_monthly_gpu_hours_used_up_holds_gpu_jobs_but_not_cpu_jobs(
    database: Database, settings: Settings, waiting_lab: Path, make_scheduler
) -> None:
    people = make_users_fast(database, "ana", "cy")
    used_before(database, people["cy"], 0.0, start=limits.month_start(utcnow()))
    with database.session() as db:
        quota = limits.set_quota(
            db, project_id=people["cy"].default_project_id, max_gpus=None, monthly_gpu_hours=0
        )
        assert quota is not None
    [gpu_job] = queue(database, settings, waiting_lab, people["cy"], 1)
    [cpu_job] = queue(database, settings, waiting_lab, people["cy"], 1, flavor="tiny")
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    scheduler.tick()
    assert running(database) == {cpu_job}
    assert reason(database, gpu_job).startswith(
        "waiting: project quota of 0 GPU-hours this month used ("
    )
    with database.session() as db:  # the admin raises the quota: the job starts
        limits.set_quota(
            db, project_id=people["cy"].default_project_id, max_gpus=None, monthly_gpu_hours=1e6
        )
    run_until(scheduler, database, lambda _: gpu_job in running(database))
    finish(settings, gpu_job, cpu_job)
    run_until(scheduler, database, all_final)
    with database.session() as db:
        assert db.get(Job, gpu_job).reason == ""  # type: ignore[union-attr]
