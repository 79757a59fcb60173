"""Claiming the next queued job for the platform's own inventory (local and Docker jobs).

The scheduler walks the queue in `fairshare.in_queue_order`: a job over a quota
waits with its reason and the walk goes on (labyard.jobs.limits); a job that can never run
on this node fails with the reason; the first other job that does not fit the free GPUs,
CPUs and memory holds back the ones behind it (so large jobs do not starve). Only light
columns are read while walking, in growing pages, and the walk stops at the first job it
claims.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from labyard.config import Settings
from labyard.jobs import fairshare
from labyard.jobs.executors.base import DatasetMount, LaunchSpec
from labyard.jobs.fairshare import AnySelect
from labyard.jobs.inventory import Inventory
from labyard.jobs.limits import WAITING, QuotaState
from labyard.jobs.models import LIVE_STATUSES, Job, JobStatus
from labyard.jobs.service import job_dir, transition

S = JobStatus
FIRST_PAGE = 16  # the walk reads the queue in pages of 16, 64, 256 ... rows


@dataclass
class Free:
    """What the node has free now."""

    gpus: list[str]
    cpus: float
    memory_mb: int

    def fits(self, gpus: int, cpus: float, memory_mb: int) -> bool:
        """Does a job of this size fit now?"""
        return gpus <= len(self.gpus) and cpus <= self.cpus + 1e-9 and memory_mb <= self.memory_mb


def launch_spec(settings: Settings, job: Job, gpus: list[str], gpu_count: int) -> LaunchSpec:
    """What an executor needs to start `job`'s current attempt."""
    return LaunchSpec(
        job_id=job.id,
        attempt=job.attempt,
        argv=list(job.command),
        job_dir=job_dir(settings, job.id),
        image=job.image,
        gpus=gpus,
        gpu_count=gpu_count,
        cpus=job.cpus,
        memory_mb=job.memory_mb,
        datasets=[
            DatasetMount(d["name"], Path(d["host_path"]), d.get("kind", "input"))
            for d in job.datasets
        ],
    )


def claim_local(
    db: Session, settings: Settings, inventory: Inventory, executor: str, now: datetime
) -> tuple[bool, LaunchSpec | None]:
    """Mark the next job that may start `starting` with its GPUs (inside the caller's
    transaction); (look again?, its launch spec). `now` is the dispatch round's time, the
    same for each of its claims, so the order stays put within a round."""
    live = list(db.scalars(select(Job).where(Job.status.in_(LIVE_STATUSES))))
    free = free_now(inventory, live)
    quotas = QuotaState.load(db, live, now)
    reasons: dict[str, list[int]] = {}
    pick: int | None = None
    never: tuple[int, str] | None = None
    columns = select(
        Job.id, Job.project_id, Job.created_by_id, Job.gpus, Job.cpus, Job.memory_mb, Job.reason
    )
    query = fairshare.in_queue_order(db, settings.fair_share_days, now, columns)
    for job_id, project_id, user_id, gpus, cpus, memory_mb, reason in walk_queue(db, query):
        why_never = inventory.why_never_fits(gpus=gpus, cpus=cpus, memory_mb=memory_mb)
        if why_never:
            never = (job_id, why_never)
            break
        why = quotas.why_wait(project_id, user_id, gpus)
        if why or reason.startswith(WAITING):
            reasons.setdefault(why, []).append(job_id)
        if why:
            continue
        if free.fits(gpus, cpus, memory_mb):
            pick = job_id
        break
    _write_reasons(db, reasons)
    if never is not None:
        _fail_never(db, *never)
        return True, None
    if pick is None:
        return False, None
    job = db.get(Job, pick, with_for_update=True)  # a stop or delete waits for this claim
    if job is None or job.status != S.QUEUED:
        return True, None
    gpus_taken = free.gpus[: job.gpus]
    transition(job, S.STARTING, reason="")
    job.attempt += 1
    job.assigned_gpus, job.executor, job.external_id = gpus_taken, executor, ""
    return True, launch_spec(settings, job, gpus_taken, len(gpus_taken))


def free_now(inventory: Inventory, live: list[Job]) -> Free:
    """What the node has free besides the live jobs' GPUs, CPUs and memory."""
    used = {gpu for j in live for gpu in j.assigned_gpus}
    return Free(
        [g for g in inventory.gpus if g not in used],
        inventory.cpus - sum(j.cpus for j in live),
        inventory.memory_mb - sum(j.memory_mb for j in live),
    )


def walk_queue(db: Session, query: AnySelect) -> Iterator[Any]:
    """The rows of `query` page by page: a page with LIMIT lets the database keep only the
    top rows of its sort, where reading the whole ordered queue would sort all of it."""
    offset, size = 0, FIRST_PAGE
    while True:
        rows = db.execute(query.offset(offset).limit(size)).all()
        yield from rows
        if len(rows) < size:
            return
        offset, size = offset + size, size * 4


def _fail_never(db: Session, job_id: int, why: str) -> None:
    job = db.get(Job, job_id, with_for_update=True)
    if job is not None and job.status == S.QUEUED:
        transition(job, S.FAILED, reason=f"can never run on this node: {why}")


def _write_reasons(db: Session, reasons: dict[str, list[int]]) -> None:
    """Set each waiting job's quota reason (or clear one that no longer holds)."""
    for why, ids in reasons.items():
        for start in range(0, len(ids), 900):
            db.execute(
                update(Job)
                .where(Job.id.in_(ids[start : start + 900]), Job.status == S.QUEUED)
                .where(Job.reason != why)
                .values(reason=why)
                .execution_options(synchronize_session=False)
            )
