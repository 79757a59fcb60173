"""Preemption with resume (setting `preemption`, off by default) and the record of attempts.

After a dispatch round, the head of the queue (the first queued job not held by a GPU
quota, in `fairshare.in_queue_order`'s order) may preempt running jobs of strictly lower
priority, only when that really lets it run: the GPUs, CPUs and memory free now, plus those
of jobs already asked to stop, plus the victims', must fit it on this node. The victims are
the fewest such jobs that do (among equally few: lowest priority first, then most recently
started). If jobs already stopping free enough, nobody more is preempted; the head then
holds back the jobs behind it (labyard.jobs.dispatch), so the freed GPUs go to it.

A victim is asked to stop like any stop (`service.request_stop`: SIGTERM, then SIGKILL
after the grace period) with `stop_status` queued and the reason "preempted by job N
(priority high)". When it ends, its attempt is recorded and it goes back to the queue
(`requeue`): the same job (same id, output folder and `queued_at`), so it keeps its FIFO
place among its priority and project; its next attempt gets MLSTEAM_ATTEMPT=n and
MLSTEAM_RESUME=auto (labyard.jobs.executors.base.attempt_environment), with which the
built-in templates continue from their checkpoint. A victim that exits 0 anyway has
succeeded; a user's (or quota's) stop of a job being preempted wins: it ends stopped. The
log goes on across attempts (labyard.jobs.executors.docker.keep_earlier_attempts); metrics of the
interrupted epoch's steps are reported again by the next attempt. Priorities only go down
a preemption chain, so jobs never preempt each other back and forth. Jobs that are not
re-run (lab sessions, which refuse a retry) are never preempted.

Every ended attempt of a job is kept as a `JobAttempt` row (when it ran, how it ended and
why); the current attempt is the job row itself. Engines that place jobs (Slurm) preempt
by their own rules: this module only acts for the platform's own inventory.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import combinations

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.config import Settings
from labyard.db import utcnow
from labyard.jobs import fairshare
from labyard.jobs.dispatch import Free, free_now, walk_queue
from labyard.jobs.executors.base import JobState
from labyard.jobs.inventory import Inventory
from labyard.jobs.limits import QuotaState
from labyard.jobs.models import ATTEMPT_PREEMPTED, LIVE_STATUSES, Job, JobAttempt, JobStatus
from labyard.jobs.service import RETRY_REFUSALS, request_stop, transition
from labyard.projects.models import priority_name

S = JobStatus
PREEMPTED = ATTEMPT_PREEMPTED
MAX_EXACT = 12  # above this many candidates, victims are chosen greedily, then trimmed


def preempt(db: Session, settings: Settings, inventory: Inventory, now: datetime) -> list[int]:
    """Ask the victims that let the head of the queue run to stop (inside the caller's
    transaction, no I/O); return their ids ([] when none would help)."""
    live = list(db.scalars(select(Job).where(Job.status.in_(LIVE_STATUSES))))
    head = _head(db, settings, live, now)
    if head is None:
        return []
    free = free_now(inventory, live)
    for job in live:
        if job.stop_requested_at is not None:  # stopping already: its resources come back
            free = _plus(free, job)
    if free.fits(head.gpus, head.cpus, head.memory_mb):
        return []
    candidates = [
        j
        for j in live
        if j.stop_requested_at is None and j.priority < head.priority and _reruns(db, j.id)
    ]
    candidates.sort(key=_victim_order)
    victims = choose_victims(candidates, free, head)
    why = f"preempted by job {head.id} (priority {priority_name(head.priority)})"
    for victim in victims:
        request_stop(victim, reason=why, status=S.QUEUED)
    return [v.id for v in victims]


def _head(db: Session, settings: Settings, live: list[Job], now: datetime) -> Job | None:
    """The first queued job a quota does not hold (the one dispatch could not fit)."""
    quotas = QuotaState.load(db, live, now)
    columns = select(Job.id, Job.project_id, Job.created_by_id, Job.gpus)
    query = fairshare.in_queue_order(db, settings.fair_share_days, now, columns)
    for job_id, project_id, user_id, gpus in walk_queue(db, query):
        if not quotas.why_wait(project_id, user_id, gpus):
            return db.get(Job, job_id)
    return None


def _reruns(db: Session, job_id: int) -> bool:
    """May the job run again as a new attempt? Not a job a higher domain refuses to retry
    (a lab session: it is started again from its lab), so such jobs are never preempted."""
    refusals = RETRY_REFUSALS.handlers() if RETRY_REFUSALS.wired else []
    return not any(refuse(db, job_id) for refuse in refusals)


def _victim_order(job: Job) -> tuple[int, float, int]:
    """Lowest priority first, then the most recently started (a starting job: newest)."""
    started = job.started_at.timestamp() if job.started_at is not None else float("inf")
    return (job.priority, -started, -job.id)


def _plus(free: Free, job: Job) -> Free:
    """`free` with `job`'s GPUs, CPUs and memory given back."""
    gpus = [*free.gpus, *(job.assigned_gpus or [])]
    return Free(gpus, free.cpus + job.cpus, free.memory_mb + job.memory_mb)


def _fits_with(free: Free, victims: Sequence[Job], head: Job) -> bool:
    for victim in victims:
        free = _plus(free, victim)
    return free.fits(head.gpus, head.cpus, head.memory_mb)


def choose_victims(candidates: list[Job], free: Free, head: Job) -> list[Job]:
    """The fewest of `candidates` (in their preference order) whose resources, added to
    `free`, fit `head`; among equally few the earliest in that order; [] if none do."""
    if not _fits_with(free, candidates, head):
        return []
    if len(candidates) <= MAX_EXACT:
        for size in range(1, len(candidates) + 1):
            for picked in combinations(candidates, size):
                if _fits_with(free, picked, head):
                    return list(picked)
    greedy: list[Job] = []
    for job in candidates:
        greedy.append(job)
        if _fits_with(free, greedy, head):
            break
    for job in reversed(greedy[:-1]):  # drop any that the others make unnecessary
        rest = [j for j in greedy if j is not job]
        if _fits_with(free, rest, head):
            greedy = rest
    return greedy


# --------------------------------------------------------------------------- attempts


def is_preempted(job: Job) -> bool:
    """Was the live job asked to stop for a preemption (and nobody stopped it since)?"""
    return job.stop_requested_at is not None and job.stop_status == S.QUEUED


def end_attempt(db: Session, job: Job, state: JobState, *, requeue: bool) -> JobAttempt:
    """Record the job's attempt that just ended (inside the scheduler's finishing
    transaction, after the job's final transition unless `requeue`); with `requeue` the
    preempted job goes back to the queue for its next attempt (its log goes on)."""
    row = JobAttempt(
        job_id=job.id,
        number=max(job.attempt, 1),
        started_at=job.started_at,
        ended_at=(None if requeue else job.finished_at) or state.finished_at or utcnow(),
        outcome=PREEMPTED if requeue else job.status,
        reason=job.reason or "",
        exit_code=state.exit_code,
    )
    db.add(row)
    if requeue:
        _requeue(job)
    return row


def _requeue(job: Job) -> None:
    """Back to the queue as it was submitted (same id and queued_at: its FIFO place), with
    what the ended attempt left on the row cleared; its log and output stay."""
    transition(job, S.QUEUED, reason=f"{job.reason}; queued again for attempt {job.attempt + 1}")
    job.stop_requested_at, job.stop_status = None, S.STOPPED
    job.started_at, job.finished_at, job.exit_code = None, None, None
    job.assigned_gpus, job.external_id, job.node = [], "", ""
    job.engine_state, job.engine_reason, job.queue_position = "", "", None
    job.progress_fraction = job.progress_start_fraction = job.progress_started_at = None
    job.eta_seconds, job.progress_line = None, ""


def attempts_of(db: Session, job_id: int) -> list[JobAttempt]:
    """The job's ended attempts, first first."""
    query = select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.number)
    return list(db.scalars(query))
