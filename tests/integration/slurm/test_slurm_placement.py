"""Placement belongs to Slurm: Labyard hands queued jobs over (at most a set number per
project waiting in Slurm) and shows Slurm's state, reason and queue position; a 200-job
sweep goes through with the limit holding at every step."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labyard.app import create_app
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.executors.slurm import SlurmExecutor
from labyard.jobs.models import Job
from labyard.jobs.scheduler import Scheduler
from tests.factories import access_token_for, auth, make_users_fast, session_client
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.jobs.test_local_jobs import submit


def _go(settings: Settings, ids: list[int]) -> None:
    for job_id in ids:
        (service.job_dir(settings, job_id) / "output" / "go").touch()


def _job_page_and_api_show_slurms_view(database: Database, settings: Settings, job_id: int) -> None:
    app = create_app(settings, database=database)
    with database.session() as db:
        ana = db.query(service.User).filter_by(username="ana").one()
    with TestClient(app) as client:
        token = access_token_for(app, database, ana)
        body = client.get(f"/api/v1/jobs/{job_id}", headers=auth(token)).json()
    assert (body["status"], body["engine_state"], body["engine_reason"]) == (
        "starting", "PENDING", "Resources",
    )  # fmt: skip
    assert (body["engine_queue_position"], body["node"], body["attempt"]) == (1, "", 1)
    with session_client(app, database, ana) as browser:
        page = browser.get(f"/jobs/{job_id}").text
    assert "PENDING · Resources · #1 in the cluster&#39;s queue" in page


@pytest.mark.usefixtures("slurm_flavors")
def test_waiting_jobs_show_slurms_reason_and_their_place_in_its_queue(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler
) -> None:
    lab = write_lab(tmp_path / "lab", params="  mode: [wait]\n  n: [1, 2, 3, 4]\n")
    ids = submit(database, slurm_settings, lab, flavor="s4", inventory=None)
    scheduler: Scheduler = make_slurm_scheduler()

    def two_wait(jobs: list[Job]) -> bool:
        return [j.status for j in jobs].count("running") == 2 and all(
            j.engine_state == "PENDING" for j in jobs if j.status == "starting"
        )

    jobs = run_until(scheduler, database, two_wait, timeout=120)
    waiting = sorted((j for j in jobs if j.status == "starting"), key=lambda j: j.id)
    assert [(j.engine_reason, j.queue_position) for j in waiting] == [
        ("Resources", 1),
        ("Priority", 2),
    ]
    _job_page_and_api_show_slurms_view(database, slurm_settings, waiting[0].id)
    _go(slurm_settings, ids)
    jobs = run_until(scheduler, database, all_final, timeout=180)
    assert [j.status for j in jobs] == ["succeeded"] * 4
    assert all(j.queue_position is None and j.engine_reason == "" for j in jobs)


@pytest.mark.usefixtures("slurm_flavors")
def test_at_most_the_pending_limit_of_a_project_waits_in_slurm_and_others_go_on(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler
) -> None:
    slurm_settings.slurm_max_pending_per_project = 2
    lab = write_lab(tmp_path / "lab", params="  mode: [wait]\n  n: [1, 2, 3, 4, 5, 6]\n")
    ids = submit(database, slurm_settings, lab, flavor="s4", inventory=None)
    bob = make_users_fast(database, "bob")["bob"]
    with database.session() as db:
        user = db.get(service.User, bob.id)
        assert user is not None
        other = service.create_sweep(
            db, user, settings=slurm_settings, project_id=user.default_project_id,
            lab_dir=write_lab(tmp_path / "bob", params="  mode: [ok]\n"), flavor="s0",
        )  # fmt: skip
        other_id = other.id
    scheduler: Scheduler = make_slurm_scheduler()

    def settled(jobs: list[Job]) -> bool:
        mine = [j for j in jobs if j.sweep_id != other_id]
        theirs = [j for j in jobs if j.sweep_id == other_id]
        return [j.status for j in mine].count("running") == 2 and theirs[0].status == "succeeded"

    jobs = run_until(scheduler, database, settled, timeout=120)
    statuses = [j.status for j in jobs if j.id in ids]
    assert statuses == ["running", "running", "starting", "starting", "queued", "queued"]
    for _ in range(5):  # the limit holds tick after tick
        scheduler.tick()
    with database.read_session() as db:
        assert [db.get(Job, i).status for i in ids] == statuses  # type: ignore[union-attr]
    _go(slurm_settings, ids)
    jobs = run_until(scheduler, database, all_final, timeout=240)
    assert [j.status for j in jobs] == ["succeeded"] * 7


@pytest.mark.slow
@pytest.mark.usefixtures("slurm_flavors")
def test_a_200_job_sweep_goes_through_slurm_within_the_pending_limit(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler
) -> None:
    slurm_settings.slurm_max_pending_per_project = 20
    values = ", ".join(str(i) for i in range(200))
    lab = write_lab(tmp_path / "lab", params=f"  mode: [ok]\n  n: [{values}]\n")
    ids = submit(database, slurm_settings, lab, flavor="s0", inventory=None)
    scheduler: Scheduler = make_slurm_scheduler()
    most_waiting = 0

    def done(jobs: list[Job]) -> bool:
        nonlocal most_waiting
        most_waiting = max(most_waiting, [j.status for j in jobs].count("starting"))
        return all_final(jobs)

    jobs = run_until(scheduler, database, done, timeout=540)
    assert [j.status for j in jobs] == ["succeeded"] * 200
    assert 0 < most_waiting <= 20
    executor = SlurmExecutor(slurm_settings)
    executor.refresh()
    names = [job.name for job in executor._jobs.values() if job.name.startswith("labyard-")]
    mine = {executor.job_name(job_id, 1) for job_id in ids}
    assert sorted(n for n in names if n in mine) == sorted(mine)  # each submitted once
