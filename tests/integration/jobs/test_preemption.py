"""Preemption with resume on a faked 4-GPU node with three projects, with real local jobs
that note each start (with MLSTEAM_ATTEMPT / MLSTEAM_RESUME) and each SIGTERM: exactly who
is preempted, that victims come back as their next attempt and finish, that nothing is
preempted with the setting off or for an equal priority or when it would not let the job
run, that a user's stop wins over a preemption, and the attempts on the job page and API."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs import service
from labyard.jobs.dispatch import Free
from labyard.jobs.models import FINAL_STATUSES, Job, JobAttempt
from labyard.jobs.preemption import choose_victims
from labyard.jobs.scheduler import Scheduler
from labyard.labs.models import Lab
from labyard.sessions.models import LabSession
from tests.factories import access_token_for, auth, make_users_fast, session_client
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.jobs.fairshare_helpers import finish, positions, queue, running, statuses
from tests.integration.jobs.test_local_jobs import FOUR_GPUS

NOTING_JOB = """\
import os, signal, sys, time
out = os.environ["MLSTEAM_OUTPUT_DIR"]
def note(text):
    with open(os.path.join(out, "notes.txt"), "a") as fh:
        fh.write(text + "\\n")
def term(*_):
    note("term")
    sys.exit(0 if os.path.exists(os.path.join(out, "done-on-term")) else 143)
signal.signal(signal.SIGTERM, term)
note(f"start {os.environ.get('MLSTEAM_ATTEMPT')} {os.environ.get('MLSTEAM_RESUME', '-')}")
while not os.path.exists(os.path.join(out, "go")):
    time.sleep(0.05)
note("done")
"""
HIGH = 1
LOW = -1


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A lab whose jobs note their starts and SIGTERMs and wait for their `go` file."""
    folder = tmp_path / "noting"
    folder.mkdir()
    (folder / "job.py").write_text(NOTING_JOB)
    (folder / "mlsteam.yml").write_text(
        f"command: {sys.executable} job.py\nparams:\n  mode: [wait]\n  copy: [1]\n"
    )
    return folder


@pytest.fixture
def people(database: Database, flavors: None) -> dict[str, User]:
    """Three users, each with a project."""
    return make_users_fast(database, "ana", "bob", "cy")


@pytest.fixture
def scheduler_with(settings: Settings, database: Database) -> Iterator[Callable[[bool], Scheduler]]:
    """A 4-GPU scheduler with preemption on or off; its live jobs are killed at the end."""
    made: list[Scheduler] = []

    def factory(preemption: bool) -> Scheduler:
        tuned = settings.model_copy(update={"preemption": preemption})
        made.append(Scheduler(tuned, database, inventory=FOUR_GPUS))
        return made[-1]

    yield factory
    with database.session() as db:
        for job in db.query(Job).filter(Job.external_id != ""):
            if job.status not in FINAL_STATUSES:
                made[0].executor.stop(job.id, job.external_id, force=True)


def notes(settings: Settings, job_id: int) -> list[str]:
    """What the job's attempts noted."""
    path = service.job_dir(settings, job_id) / "output" / "notes.txt"
    return path.read_text().splitlines() if path.exists() else []


def stopping(database: Database) -> dict[int, str]:
    """Live jobs asked to stop, with their reason."""
    with database.session() as db:
        query = db.query(Job).filter(Job.stop_requested_at.is_not(None))
        return {j.id: j.reason for j in query if j.status not in FINAL_STATUSES}


def attempts(database: Database, job_id: int) -> list[tuple[int, str, str]]:
    """(number, outcome, reason) of each ended attempt of the job."""
    with database.session() as db:
        rows = db.query(JobAttempt).filter_by(job_id=job_id).order_by(JobAttempt.number)
        return [(a.number, a.outcome, a.reason) for a in rows]


def start_one_by_one(
    database: Database,
    settings: Settings,
    lab: Path,
    scheduler: Scheduler,
    jobs: list[tuple[User, int]],
) -> list[int]:
    """One g1 job per (user, priority), each running (noted) before the next is queued:
    their start order is this order."""
    ids = []
    for user, prio in jobs:
        [job_id] = queue(database, settings, lab, user, 1, priority=prio)
        run_until(scheduler, database, lambda _, j=job_id: notes(settings, j) == ["start 1 -"])
        ids.append(job_id)
    return ids


def test_a_high_job_preempts_the_fewest_latest_low_jobs_which_resume_later(
    app: FastAPI, database: Database, settings: Settings, lab: Path, people: dict, scheduler_with
) -> None:
    ana, bob, cy = people["ana"], people["bob"], people["cy"]
    scheduler = scheduler_with(True)
    a1, c1, a2, b1 = start_one_by_one(
        database, settings, lab, scheduler, [(ana, LOW), (cy, LOW), (ana, LOW), (bob, 0)]
    )
    [high] = queue(database, settings, lab, cy, 1, flavor="g2", priority=HIGH)
    scheduler.tick()  # 2 GPUs needed: the two low jobs started last, not the normal one
    why = f"preempted by job {high} (priority high)"
    assert stopping(database) == {a2: why, c1: why}
    run_until(scheduler, database, lambda _: high in running(database))
    assert running(database) == {a1, b1, high}
    assert statuses(database, [a2, c1]) == ["queued", "queued"]
    assert notes(settings, a2) == notes(settings, c1) == ["start 1 -", "term"]
    assert attempts(database, a2) == [(1, "preempted", why)]
    with database.session() as db:
        requeued = db.get(Job, a2)
        assert requeued is not None and requeued.attempt == 1 and requeued.started_at is None
        assert requeued.reason == f"{why}; queued again for attempt 2"
    first, second = positions(database, settings)  # the order they really start in
    finish(settings, b1)
    run_until(scheduler, database, lambda _: len(notes(settings, first)) == 3)
    assert statuses(database, [second]) == ["queued"]
    assert notes(settings, first) == ["start 1 -", "term", "start 2 auto"]
    finish(settings, a1, a2, c1, high)
    jobs = run_until(scheduler, database, all_final)
    assert {j.id: (j.status, j.attempt) for j in jobs} == {
        a1: ("succeeded", 1), c1: ("succeeded", 2), a2: ("succeeded", 2),
        b1: ("succeeded", 1), high: ("succeeded", 1),
    }  # fmt: skip
    assert [a[:2] for a in attempts(database, a2)] == [(1, "preempted"), (2, "succeeded")]
    assert [a[:2] for a in attempts(database, high)] == [(1, "succeeded")]
    _page_and_api_show_attempts(app, database, ana, a2, why)


def _page_and_api_show_attempts(
    app: FastAPI, database: Database, owner: User, job_id: int, why: str
) -> None:
    headers = auth(access_token_for(app, database, owner))
    got = TestClient(app).get(f"/api/v1/jobs/{job_id}", headers=headers).json()
    assert [(a["number"], a["outcome"], a["reason"]) for a in got["attempts"]] == [
        (1, "preempted", why),
        (2, "succeeded", ""),
    ]
    assert got["attempts"][0]["exit_code"] == 143 and got["attempt"] == 2
    listed = TestClient(app).get("/api/v1/jobs", headers=headers).json()
    assert all(j["attempts"] is None for j in listed)  # lists do not read attempts
    with session_client(app, database, owner) as web:
        page = web.get(f"/jobs/{job_id}").text
    assert 'id="job-attempts"' in page and why in page and page.count('class="attempt') == 2


def test_with_the_setting_off_nothing_is_preempted(
    database: Database, settings: Settings, lab: Path, people: dict, scheduler_with
) -> None:
    scheduler = scheduler_with(False)  # the default
    assert Settings.model_fields["preemption"].default is False
    lows = queue(database, settings, lab, people["ana"], 4, priority=LOW)
    run_until(scheduler, database, lambda _: all(notes(settings, j) for j in lows))
    [high] = queue(database, settings, lab, people["cy"], 1, priority=HIGH)
    scheduler.tick()
    scheduler.tick()
    assert stopping(database) == {} and running(database) == set(lows)
    finish(settings, lows[0])
    run_until(scheduler, database, lambda _: high in running(database))
    finish(settings, *lows, high)
    jobs = run_until(scheduler, database, all_final)
    assert all(j.status == "succeeded" and j.attempt == 1 for j in jobs)
    assert all(notes(settings, j.id)[:1] == ["start 1 -"] for j in jobs)


def test_equal_priority_never_preempts(
    database: Database, settings: Settings, lab: Path, people: dict, scheduler_with
) -> None:
    scheduler = scheduler_with(True)
    normals = queue(database, settings, lab, people["ana"], 4, priority=0)
    run_until(scheduler, database, lambda _: len(running(database)) == 4)
    [equal] = queue(database, settings, lab, people["cy"], 1, priority=0)
    scheduler.tick()
    assert stopping(database) == {} and statuses(database, [equal]) == ["queued"]
    finish(settings, normals[0])
    run_until(scheduler, database, lambda _: equal in running(database))
    finish(settings, *normals, equal)
    jobs = run_until(scheduler, database, all_final)
    assert all(j.status == "succeeded" and j.attempt == 1 for j in jobs)


def test_a_high_job_does_not_preempt_a_low_one_that_would_not_free_enough(
    database: Database, settings: Settings, lab: Path, people: dict, scheduler_with
) -> None:
    scheduler = scheduler_with(True)
    highs = queue(database, settings, lab, people["ana"], 3, priority=HIGH)
    [low] = queue(database, settings, lab, people["bob"], 1, priority=LOW)
    run_until(scheduler, database, lambda _: len(running(database)) == 4)
    [big] = queue(database, settings, lab, people["cy"], 1, flavor="g2", priority=HIGH)
    scheduler.tick()
    assert stopping(database) == {} and statuses(database, [low, big]) == ["running", "queued"]
    finish(settings, *highs, low, big)
    run_until(scheduler, database, all_final)


def test_a_users_stop_of_a_job_being_preempted_wins(
    database: Database, settings: Settings, lab: Path, people: dict, scheduler_with
) -> None:
    scheduler = scheduler_with(True)
    lows = queue(database, settings, lab, people["ana"], 4, priority=LOW)
    run_until(scheduler, database, lambda _: all(notes(settings, j) for j in lows))
    [high] = queue(database, settings, lab, people["cy"], 1, priority=HIGH)
    scheduler.tick()
    [victim] = stopping(database)
    with database.session() as db:  # before the next tick delivers the SIGTERM
        owner = db.get(User, people["ana"].id)
        assert owner is not None
        service.stop_job(db, owner, victim)
    run_until(scheduler, database, lambda _: high in running(database))
    assert statuses(database, [victim]) == ["stopped"]
    assert attempts(database, victim) == [(1, "stopped", "stopped by user")]
    finish(settings, *lows, high)
    run_until(scheduler, database, all_final)


def test_lab_sessions_are_never_preempted(
    app: FastAPI, database: Database, settings: Settings, lab: Path, people: dict, scheduler_with
) -> None:
    """Three of the four low jobs are lab sessions (started again from their lab, never
    re-run): the high job preempts the fourth although it started first."""
    scheduler = scheduler_with(True)
    ana = people["ana"]
    lows = queue(database, settings, lab, ana, 4, priority=LOW)
    run_until(scheduler, database, lambda _: all(notes(settings, j) for j in lows))
    with database.session() as db:
        for job_id in lows[1:]:
            row = Lab(project_id=ana.default_project_id, name=f"lab{job_id}", flavor="g1")
            db.add(row)
            db.flush()
            db.add(LabSession(project_id=row.project_id, lab_id=row.id, job_id=job_id))
    [high] = queue(database, settings, lab, people["cy"], 1, priority=HIGH)
    scheduler.tick()
    assert list(stopping(database)) == [lows[0]]
    run_until(scheduler, database, lambda _: high in running(database))
    finish(settings, *lows, high)
    run_until(scheduler, database, all_final)


def test_a_preempted_job_that_exits_0_has_succeeded(
    database: Database, settings: Settings, lab: Path, people: dict, scheduler_with
) -> None:
    scheduler = scheduler_with(True)
    lows = queue(database, settings, lab, people["ana"], 4, priority=LOW)
    run_until(scheduler, database, lambda _: all(notes(settings, j) for j in lows))
    for job_id in lows:  # each says it finished its work when told to stop
        (service.job_dir(settings, job_id) / "output" / "done-on-term").touch()
    [high] = queue(database, settings, lab, people["cy"], 1, priority=HIGH)
    scheduler.tick()
    [victim] = stopping(database)
    run_until(scheduler, database, lambda _: high in running(database))
    assert statuses(database, [victim]) == ["succeeded"]
    assert attempts(database, victim) == [(1, "succeeded", "")]
    finish(settings, *lows, high)
    run_until(scheduler, database, all_final)


def _job(job_id: int, priority: int, gpus: int, minutes_ago: int) -> Job:
    started = utcnow() - timedelta(minutes=minutes_ago)
    gpu_ids = [f"{job_id}-{i}" for i in range(gpus)]
    return Job(
        id=job_id, priority=priority, gpus=gpus, cpus=1.0, memory_mb=1024,
        assigned_gpus=gpu_ids, started_at=started,
    )  # fmt: skip


def test_the_fewest_victims_go_before_lower_priority_ones() -> None:
    """Two low 1-GPU jobs or one normal 2-GPU job free a high 2-GPU job's place: the one."""
    none_free = Free([], 0.0, 0)
    head = Job(id=9, priority=HIGH, gpus=2, cpus=1.0, memory_mb=1024)
    low_old, low_new, normal = _job(1, LOW, 1, 30), _job(2, LOW, 1, 5), _job(3, 0, 2, 60)
    ordered = [low_new, low_old, normal]  # lowest priority, then latest start first
    assert [j.id for j in choose_victims(ordered, none_free, head)] == [3]
    head.gpus = 1
    assert [j.id for j in choose_victims(ordered, none_free, head)] == [2]
    head.gpus = 5
    assert choose_victims(ordered, none_free, head) == []


@pytest.mark.parametrize("outcome", ["preempted", "requeued"])
def test_a_preempted_attempts_gpu_hours_count_for_fair_share(
    database: Database, settings: Settings, lab: Path, people: dict, outcome: str
) -> None:
    """An attempt that was preempted (or that Slurm requeued) used its GPUs while it ran: its
    project's usage counts it (2 GPUs x 1 hour), though the job row itself is queued again
    with no start time; an attempt that ended before the window counts only its part inside it."""
    from labyard.jobs.fairshare import gpu_seconds_by

    [job_id] = queue(database, settings, lab, people["ana"], 1, flavor="g2")
    now = utcnow()
    with database.session() as db:
        db.add(JobAttempt(job_id=job_id, number=1, started_at=now - timedelta(hours=2),
                          ended_at=now - timedelta(hours=1), outcome=outcome))  # fmt: skip
        db.add(JobAttempt(job_id=job_id, number=2, started_at=now - timedelta(days=9),
                          ended_at=now - timedelta(days=8), outcome=outcome))  # fmt: skip
    with database.read_session() as db:
        used = gpu_seconds_by(db, Job.project_id, now - timedelta(hours=1.5), now)
        assert used[people["ana"].default_project_id] == pytest.approx(2 * 1800, rel=1e-3)
        assert people["bob"].default_project_id not in used
        week = gpu_seconds_by(db, Job.project_id, now - timedelta(days=7), now)
        assert week[people["ana"].default_project_id] == pytest.approx(2 * 3600, rel=1e-3)
