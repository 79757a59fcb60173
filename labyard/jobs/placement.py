"""Jobs an engine places (Slurm): handing queued jobs over, and what its reports mean for
a job row.

The scheduler hands queued jobs to an executor with `places_jobs` in the queue's order
(labyard.jobs.fairshare; GPU quotas are the cluster's own there),
without its own inventory, at most `slurm_max_pending_per_project` of one project waiting
in the engine at once (a project at its limit does not hold the others back). A handed-over
job is `starting` while the engine keeps it waiting, with the engine's state, reason and
queue position on the row; it is `running` once the engine started it, on the node and GPUs
the engine chose. `apply_live` is the one place a live job's report lands on its row, for
every executor: at adoption and at every poll; an attempt the engine ran again by itself
(a requeue) is recorded as a `JobAttempt` row ("requeued") as a preempted one is. A job
claimed but never submitted (the server died in between) goes back to the queue
(`unclaim`, at adoption).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from labyard.config import Settings
from labyard.db import utcnow
from labyard.flavors.models import Flavor
from labyard.jobs import fairshare
from labyard.jobs.dispatch import launch_spec
from labyard.jobs.executors.base import JobState, LaunchSpec, Placement
from labyard.jobs.models import ATTEMPT_REQUEUED, LIVE_STATUSES, Job, JobAttempt, JobStatus
from labyard.jobs.service import transition

S = JobStatus
REQUEUED = ATTEMPT_REQUEUED


def keep_process_times(job: Job, state: JobState) -> None:
    """Keep the process's own start and end times (when the executor knows them) instead
    of the ticks at which the scheduler noticed: elapsed is the process's run time, and a
    job that ended while the server was down keeps its real end, not the restart time."""
    if state.started_at is not None:
        job.started_at = state.started_at
    if state.finished_at is not None and job.status not in LIVE_STATUSES:
        job.finished_at = max(state.finished_at, job.started_at or state.finished_at)


def _placement_values(where: Placement | None) -> dict[str, object]:
    """The row's columns an engine's placement report sets."""
    if where is None:
        return {}
    values: dict[str, object] = {
        "engine_state": where.state[:32],
        "engine_reason": where.reason[:200],
        "queue_position": where.position,
    }
    if where.node:
        values["node"] = where.node[:200]
    if where.gpus:
        values["assigned_gpus"] = list(where.gpus)
    return values


def apply_live(job: Job, state: JobState) -> None:
    """A live job's report on its row: a new attempt the engine started by itself (a requeue
    after a node failure), waiting or running, where, and since when."""
    if state.attempt is not None and state.attempt > job.attempt:
        _end_requeued_attempt(job)
        job.attempt = state.attempt
        job.node, job.assigned_gpus, job.started_at = "", [], None
        if job.status == S.RUNNING and state.waiting:
            transition(job, S.STARTING, reason=f"requeued by the cluster: attempt {state.attempt}")
    if job.status == S.STARTING and not state.waiting:
        transition(job, S.RUNNING)
    for key, value in _placement_values(state.placement).items():
        if getattr(job, key) != value:
            setattr(job, key, value)
    if not state.waiting:
        keep_process_times(job, state)


def _end_requeued_attempt(job: Job) -> None:
    """Record the attempt the engine ended and ran again by itself (a requeue after a node
    failure) as a `JobAttempt` row, as a preempted attempt is (labyard.jobs.preemption)."""
    db = object_session(job)
    if db is None:
        return
    where = f" on {job.node}" if job.node else ""
    db.add(
        JobAttempt(
            job_id=job.id,
            number=max(job.attempt, 1),
            started_at=job.started_at,
            ended_at=utcnow(),
            outcome=REQUEUED,
            reason=f"requeued by the cluster{where} (its node failed or it was preempted)",
        )
    )


def apply_final(job: Job, where: Placement | None) -> None:
    """Where an ended job ran, as the engine last said (its final state, no reason or
    queue position any more)."""
    if where is None:
        return
    values = {**_placement_values(where), "engine_reason": "", "queue_position": None}
    for key, value in values.items():
        setattr(job, key, value)


def changes(job: Job, state: JobState) -> bool:
    """Would `apply_live` change the row? (a waiting job's report is mostly the same as the
    last one: no write transaction then)."""
    if state.attempt is not None and state.attempt > job.attempt:
        return True
    if job.status == S.STARTING and not state.waiting:
        return True
    if not state.waiting and state.started_at not in (None, job.started_at):
        return True
    values = _placement_values(state.placement)
    return any(getattr(job, key) != value for key, value in values.items())


def unclaim(job: Job) -> None:
    """A job claimed for the engine but never handed to it (the server died between the
    claim and the submission, and the engine has no job of that name): back to the queue,
    its attempt unused, to be submitted once by the next dispatch."""
    transition(job, S.QUEUED, reason="")
    job.attempt = max(job.attempt - 1, 0)
    job.executor, job.external_id = "", ""
    job.engine_state, job.engine_reason, job.queue_position = "", "", None


def waiting_per_project(db: Session, executor: str) -> dict[int, int]:
    """How many jobs of each project wait in the engine (handed over, not started)."""
    rows = db.execute(
        select(Job.project_id, func.count())
        .where(Job.status == S.STARTING, Job.executor == executor)
        .group_by(Job.project_id)
    )
    return {project_id: count for project_id, count in rows}


def claim_for_engine(
    db: Session, settings: Settings, executor: str, now: datetime | None = None
) -> tuple[bool, LaunchSpec | None]:
    """Mark the head of the queue (of projects below their pending limit) `starting` for
    the engine; (look again?, its launch spec)."""
    limit = settings.slurm_max_pending_per_project
    full = [p for p, n in waiting_per_project(db, executor).items() if n >= limit]
    query = fairshare.in_queue_order(db, settings.fair_share_days, now or utcnow(), select(Job))
    if full:
        query = query.where(Job.project_id.not_in(full))
    job = db.scalar(query.limit(1).with_for_update(of=Job))
    if job is None:
        return False, None
    flavor = db.scalar(select(Flavor).where(Flavor.name == job.flavor))
    transition(job, S.STARTING)
    job.attempt += 1
    job.assigned_gpus, job.executor, job.external_id = [], executor, ""
    job.node, job.engine_state, job.engine_reason, job.queue_position = "", "", "", None
    return True, replace(
        launch_spec(settings, job, [], job.gpus),
        partition=flavor.partition if flavor else "",
        account=flavor.account if flavor else "",
        qos=flavor.qos if flavor else "",
    )
