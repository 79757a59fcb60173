"""Scheduling decision time with 10,000 queued jobs across 50 projects (a script, not a
test): ms per dispatch decision of the fair-share order (priority, recent GPU-hours per
project, FIFO; labyard.jobs.dispatch) against plain FIFO within priority (the order before
fair share: `priority DESC, id`), measured in the same run on the same database.

    .venv/bin/python -m tests.bench.bench_scheduling

Cases: no free GPU (4 GPUs held by running jobs: the decision is "nothing starts"), one
free GPU (the decision claims a job; each claim is rolled back so every round is the same),
one free GPU with the least-used project over its quota (its 200 jobs are walked past),
and queue positions of a 50-job page. With the `preemption` setting a round where nothing
fits also chooses victims: that check is timed against the dispatch decision itself.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs import limits, preemption, views
from labyard.jobs.dispatch import claim_local
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import LIVE_STATUSES, Job, JobStatus
from tests.factories import make_users_fast

PROJECTS, QUEUED, ROUNDS = 50, 10_000, 30
FULL = Inventory(gpus=("0", "1", "2", "3"), cpus=64, memory_mb=1 << 20)
ONE_FREE = Inventory(gpus=("0", "1", "2", "3", "4"), cpus=64, memory_mb=1 << 20)


def setup(root: Path) -> tuple[Settings, Database, list[tuple[int, int]]]:
    """A database with 50 users/projects, their recent history, 4 running 1-GPU jobs and
    10,000 queued 1-GPU jobs submitted round-robin; (settings, database, [(user, project)])."""
    settings = Settings(data_dir=root / "data", secret_key="x" * 40, start_scheduler=False)
    migrate(settings)
    database = Database(settings.resolved_database_url)
    seed(settings, database)
    users = make_users_fast(database, *(f"u{i:02d}" for i in range(PROJECTS)))
    owners = [(u.id, u.default_project_id or 0) for u in users.values()]
    now = utcnow()
    base = {"params": {}, "command": ["true"], "flavor": "g1", "gpus": 1, "cpus": 1.0}
    rows = []
    for i, (user, project) in enumerate(owners):  # history: project i used i GPU-hours
        begin = now - timedelta(hours=i + 1)
        rows.append(
            base
            | {
                "project_id": project,
                "created_by_id": user,
                "name": "h",
                "status": "succeeded",
                "started_at": begin,
                "finished_at": begin + timedelta(hours=i),
            }
        )
    for gpu, (user, project) in enumerate(owners[:4]):
        rows.append(
            base
            | {
                "project_id": project,
                "created_by_id": user,
                "name": "r",
                "status": "running",
                "started_at": now - timedelta(minutes=30),
                "assigned_gpus": [str(gpu)],
            }
        )
    for n in range(QUEUED):
        user, project = owners[n % PROJECTS]
        rows.append(
            base
            | {
                "project_id": project,
                "created_by_id": user,
                "name": f"q{n}",
                "status": "queued",
                "priority": (n % 3) - 1 if n % 7 == 0 else 0,
                "assigned_gpus": [],
            }
        )
    with database.session() as db:
        db.execute(insert(Job), rows)
    return settings, database, owners


def fifo_claim(db: Session, inventory: Inventory) -> int | None:
    """The order before fair share (the baseline): the head of `priority DESC, id`, if it
    fits the free GPUs."""
    live = list(db.scalars(select(Job).where(Job.status.in_(LIVE_STATUSES))))
    used = {gpu for j in live for gpu in j.assigned_gpus}
    free = [g for g in inventory.gpus if g not in used]
    job = db.scalar(
        select(Job)
        .where(Job.status == JobStatus.QUEUED)
        .order_by(Job.priority.desc(), Job.id)
        .limit(1)
        .with_for_update()
    )
    if job is None or job.gpus > len(free):
        return None
    job.status = JobStatus.STARTING
    return job.id


def fifo_positions(db: Session, ids: list[int]) -> dict[int, int]:
    """Queue positions in the baseline order, in one query."""
    rank = func.row_number().over(order_by=(Job.priority.desc(), Job.id.asc())).label("p")
    ranked = select(Job.id, rank).where(Job.status == JobStatus.QUEUED).subquery()
    rows = db.execute(select(ranked.c.id, ranked.c.p).where(ranked.c.id.in_(ids)))
    return {job_id: int(p) for job_id, p in rows}


def timed(database: Database, decide: Callable[[Session], object]) -> float:
    """Median ms of `decide` in a transaction that is rolled back (so rounds are equal)."""
    took = []
    for _ in range(ROUNDS):
        with database.sessionmaker() as db:
            start = time.perf_counter()
            decide(db)
            took.append((time.perf_counter() - start) * 1000)
            db.rollback()
    return statistics.median(took)


def report(
    name: str, fair: float, fifo: float, labels: tuple[str, str] = ("fair share", "FIFO")
) -> None:
    """One line: the case, both medians and their ratio."""
    first, second = labels
    print(f"{name:<44} {first} {fair:8.2f} ms   {second} {fifo:8.2f} ms   ratio {fair / fifo:5.2f}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings, database, owners = setup(Path(tmp))
        print(f"{QUEUED} queued jobs across {PROJECTS} projects; median of {ROUNDS} rounds")

        def fair(inventory: Inventory) -> Callable[[Session], object]:
            return lambda db: claim_local(db, settings, inventory, "local", utcnow())

        got = []
        for inventory in (FULL, ONE_FREE):
            with database.sessionmaker() as db:
                got.append(claim_local(db, settings, inventory, "local", utcnow())[1])
                db.rollback()
        assert got[0] is None and got[1] is not None, got  # nothing fits / one job claimed
        report(
            "dispatch, no free GPU",
            timed(database, fair(FULL)),
            timed(database, lambda db: fifo_claim(db, FULL)),
        )
        report(
            "dispatch, one free GPU",
            timed(database, fair(ONE_FREE)),
            timed(database, lambda db: fifo_claim(db, ONE_FREE)),
        )
        # with preemption on, a round where nothing fits also looks for victims: the head
        # (a high job) would preempt one of the 4 normal running jobs; baseline: the
        # same round's dispatch decision alone
        with database.sessionmaker() as db:
            victims = preemption.preempt(db, settings, FULL, utcnow())
            db.rollback()
        assert len(victims) == 1, victims
        report(
            "no free GPU, with preemption",
            timed(database, lambda db: preemption.preempt(db, settings, FULL, utcnow())),
            timed(database, fair(FULL)),
            ("victims chosen", "dispatch alone"),
        )
        with database.session() as db:  # project 0 (the least used) may use no GPU
            limits.set_quota(db, project_id=owners[0][1], max_gpus=0, monthly_gpu_hours=None)
        report(
            "dispatch, one free GPU, 200 jobs over quota",
            timed(database, fair(ONE_FREE)),
            timed(database, lambda db: fifo_claim(db, ONE_FREE)),
        )
        with database.sessionmaker() as db:
            page = list(db.scalars(select(Job).where(Job.status == "queued").limit(50)))
        ids = [j.id for j in page]
        report(
            "queue positions of a 50-job page",
            timed(database, lambda db: views.queue_positions(db, page, 7)),
            timed(database, lambda db: fifo_positions(db, ids)),
        )


if __name__ == "__main__":
    main()
