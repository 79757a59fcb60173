"""Helpers of the fair-share tests: three users with a project each, queued sweeps of
waiting jobs, GPU-hours of past jobs, and the jobs' states."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs import service, views
from labyard.jobs.models import Job
from tests.integration.jobs.test_local_jobs import FOUR_GPUS


def queue(
    database: Database,
    settings: Settings,
    lab: Path,
    user: User,
    count: int,
    *,
    flavor: str = "g1",
    priority: int | None = None,
) -> list[int]:
    """`count` jobs of `user`'s project that wait until their `go` file appears."""
    with database.session() as db:
        me = db.get(User, user.id)
        assert me is not None and me.default_project_id is not None
        sweep = service.create_sweep(
            db,
            me,
            settings=settings,
            project_id=me.default_project_id,
            lab_dir=lab,
            flavor=flavor,
            grid={"mode": ["wait"], "copy": list(range(1, count + 1))},
            priority=priority,
            inventory=FOUR_GPUS,
        )
        return [j.id for j in db.query(Job).filter_by(sweep_id=sweep.id).order_by(Job.id)]


def used_before(
    database: Database, user: User, gpu_hours: float, *, start: datetime | None = None
) -> None:
    """A finished 1-GPU job of `user`'s project that ran `gpu_hours` hours, ending now
    (starting at `start` when given, with as many GPUs as make `gpu_hours`)."""
    now = utcnow()
    begin = start or now - timedelta(hours=gpu_hours)
    hours = max((now - begin).total_seconds() / 3600, 1e-9)
    with database.session() as db:
        db.add(
            Job(
                project_id=user.default_project_id,
                created_by_id=user.id,
                name="history",
                status="succeeded",
                params={},
                command=["true"],
                flavor="g1",
                gpus=max(1, round(gpu_hours / hours)),
                started_at=begin,
                finished_at=now,
            )
        )


def statuses(database: Database, ids: list[int]) -> list[str]:
    """The status of each job."""
    with database.session() as db:
        return [db.get(Job, i).status for i in ids]  # type: ignore[union-attr]


def running(database: Database) -> set[int]:
    """Ids of the jobs holding GPUs now (starting or running)."""
    with database.session() as db:
        return {j.id for j in db.query(Job).filter(Job.status.in_(("starting", "running")))}


def reason(database: Database, job_id: int) -> str:
    """The job's reason."""
    with database.session() as db:
        return db.get(Job, job_id).reason  # type: ignore[union-attr]


def positions(database: Database, settings: Settings) -> list[int]:
    """The queued jobs' ids by their shown queue position."""
    with database.session() as db:
        jobs = list(db.query(Job).filter(Job.status == "queued"))
        ranks = views.queue_positions(db, jobs, settings.fair_share_days)
    assert sorted(ranks.values()) == list(range(1, len(jobs) + 1))
    return sorted(ranks, key=lambda i: ranks[i])


def finish(settings: Settings, *ids: int) -> None:
    """Let these waiting jobs end."""
    for job_id in ids:
        (service.job_dir(settings, job_id) / "output" / "go").touch()
