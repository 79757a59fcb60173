"""The jobs JSON API: jobs (list, get, logs, metrics, stop, retry, delete) and sweeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from labyard.db import utcnow
from labyard.jobs import metrics, preemption, priority, quota_api, service, views
from labyard.jobs.logs import LOG_NAME, MAX_LOG_OFFSET, read_log
from labyard.jobs.models import FINAL_STATUSES, Job, JobStatus, Sweep
from labyard.jobs.priority import PriorityName, priority_name
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep, get_database

router = APIRouter(prefix="/api/v1", tags=["jobs"])
FOLLOW_POLL_SECONDS = 0.5


class AttemptOut(BaseModel):
    """One ended attempt of a job: when it ran and how it ended."""

    model_config = ConfigDict(from_attributes=True)

    number: int
    started_at: datetime | None
    ended_at: datetime
    outcome: str = Field(
        description=(
            "preempted (the job went back to the queue), requeued (Slurm ran it again after a "
            "node failure), or the job's final status"
        )
    )
    reason: str = Field(description='Why, e.g. "preempted by job 12 (priority high)"')
    exit_code: int | None


class JobOut(BaseModel):
    """A job as the API shows it."""

    id: int
    project_id: int
    sweep_id: int | None
    lab_id: int | None
    name: str
    display_name: str = Field(description='"QuickStart · sweep 3 · #2 · network=resnet18"')
    number: int | None = Field(description="The job's number within its sweep")
    status: JobStatus
    reason: str
    exit_code: int | None
    params: dict[str, Any]
    command: list[str]
    image: str
    flavor: str
    gpus: int
    cpus: float
    memory_mb: int
    assigned_gpus: list[str]
    priority: int = Field(description="-1 low, 0 normal, 1 high")
    priority_name: Literal["low", "normal", "high"]
    executor: str
    attempt: int = Field(description="Runs of the job so far (a cluster's requeue is one more)")
    node: str = Field(description="The node(s) a cluster placed the job on")
    engine_state: str = Field(
        description="The cluster's state of a job it places (Slurm: PENDING, RUNNING, "
        "COMPLETED, TIMEOUT, OUT_OF_MEMORY ...); empty for jobs the platform places"
    )
    engine_reason: str = Field(
        description="Why the cluster keeps it waiting (Slurm: Resources, Priority, "
        "QOSMaxGRESPerUser ...)"
    )
    engine_queue_position: int | None = Field(
        description="Its place among the cluster's pending jobs (1 = next)"
    )
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    elapsed_seconds: float | None
    progress: float | None
    progress_line: str
    eta_seconds: float | None
    queue_position: int | None
    log_size: int
    stop_requested: bool
    attempts: list[AttemptOut] | None = Field(
        default=None,
        description="The job's ended attempts, first first (a preempted one went back to the "
        "queue; the current attempt is the job itself); only in GET /jobs/{id}, null in lists",
    )


class SweepOut(BaseModel):
    """A sweep with its jobs' states counted."""

    id: int
    project_id: int
    lab_id: int | None
    name: str
    number: int | None = Field(description="The sweep's number within its lab (1, 2, ...)")
    display_name: str = Field(description='"QuickStart · sweep 3"')
    flavor: str
    grid: dict[str, list[Any]]
    created_at: datetime
    jobs: dict[str, int]


class JobPatch(BaseModel):
    """Change a queued job: its priority."""

    priority: PriorityName


def jobs_out(db: Session, jobs: list[Job], fair_share_days: float) -> list[JobOut]:
    """The API shape of jobs, their queue positions read in one query."""
    positions = views.queue_positions(db, jobs, fair_share_days)
    return [job_out(job, positions.get(job.id)) for job in jobs]


def job_out(job: Job, queue_position: int | None) -> JobOut:
    """The API shape of a job (elapsed and ETA computed now)."""
    eta = job.eta_seconds if job.status == JobStatus.RUNNING else None
    return JobOut(
        id=job.id,
        project_id=job.project_id,
        sweep_id=job.sweep_id,
        lab_id=job.lab_id,
        name=job.name,
        display_name=job.display_name,
        number=job.number,
        status=JobStatus(job.status),
        reason=job.reason,
        exit_code=job.exit_code,
        params=job.params,
        command=job.command,
        image=job.image,
        flavor=job.flavor,
        gpus=job.gpus,
        cpus=job.cpus,
        memory_mb=job.memory_mb,
        assigned_gpus=job.assigned_gpus,
        priority=job.priority,
        priority_name=priority_name(job.priority),  # type: ignore[arg-type]
        executor=job.executor,
        attempt=job.attempt,
        node=job.node,
        engine_state=job.engine_state,
        engine_reason=job.engine_reason,
        engine_queue_position=job.queue_position,
        queued_at=job.queued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        elapsed_seconds=service.elapsed_seconds(job),
        progress=job.progress_fraction,
        progress_line=job.progress_line,
        eta_seconds=eta,
        queue_position=queue_position,
        log_size=job.log_size,
        stop_requested=job.stop_requested_at is not None,
    )


def sweep_out(db: Session, sweep: Sweep) -> SweepOut:
    """The API shape of a sweep."""
    return SweepOut(
        id=sweep.id,
        project_id=sweep.project_id,
        lab_id=sweep.lab_id,
        name=sweep.name,
        number=sweep.number,
        display_name=sweep.display_name,
        flavor=sweep.flavor,
        grid=sweep.grid,
        created_at=sweep.created_at,
        jobs=service.sweep_counts(db, sweep.id),
    )


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    project_id: int | None = None,
    lab_id: int | None = None,
    sweep_id: int | None = None,
    search_id: Annotated[
        int | None, Query(description="A search's trials (a search's id is its sweep's id)")
    ] = None,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[JobOut]:
    """Jobs I can see, newest first, filtered by project, lab, sweep (or search) and status."""
    if search_id is not None:
        if sweep_id is not None and sweep_id != search_id:
            return []
        sweep_id = search_id
    jobs = service.list_jobs(
        db,
        user,
        project_id=project_id,
        lab_id=lab_id,
        sweep_id=sweep_id,
        status=status,
        limit=limit,
    )
    return jobs_out(db, jobs, settings.fair_share_days)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> JobOut:
    """One job (READ): a job waiting for a quota says so in `reason`."""
    job = service.get_job(db, user, job_id)
    out = jobs_out(db, [job], settings.fair_share_days)[0]
    out.attempts = [AttemptOut.model_validate(a) for a in preemption.attempts_of(db, job.id)]
    return out


@router.patch("/jobs/{job_id}", response_model=JobOut)
def patch_job(
    job_id: int, body: JobPatch, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> JobOut:
    """Change a queued job's priority (WRITE; `high` above the project's default: OWN)."""
    job = priority.set_job_priority(db, user, job_id, body.priority)
    db.flush()
    return jobs_out(db, [job], settings.fair_share_days)[0]


@router.get("/jobs/{job_id}/logs", response_class=PlainTextResponse)
def get_logs(
    job_id: int,
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    offset: Annotated[int, Query(ge=0, le=MAX_LOG_OFFSET)] = 0,
    follow: bool = False,
) -> Response:
    """The job's log from `offset` (plain text); `follow` streams until the job ends.
    The header X-Log-Offset gives the offset after the returned bytes."""
    service.get_job(db, user, job_id)
    path = service.job_dir(settings, job_id) / LOG_NAME
    if not follow:
        data, end = read_log(path, offset)
        return Response(
            data, media_type="text/plain; charset=utf-8", headers={"X-Log-Offset": str(end)}
        )
    database = get_database(request)

    async def stream() -> AsyncIterator[bytes]:
        position = offset
        while True:
            with database.read_session() as session:
                job = session.get(Job, job_id)
                done = job is None or job.status in FINAL_STATUSES
            data, position = read_log(path, position)
            if data:
                yield data
            elif done:
                return
            if await request.is_disconnected():
                return
            if not data:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")


@router.get("/jobs/{job_id}/metrics")
def get_metrics(
    job_id: int,
    user: CurrentUser,
    db: SessionDep,
    name: str | None = None,
    points: Annotated[int, Query(ge=2, le=100_000)] = 1000,
) -> dict[str, Any]:
    """Without `name`: the job's series. With `name`: that series, downsampled to `points`."""
    service.get_job(db, user, job_id)
    if name is None:
        return {"series": metrics.series_names(db, job_id)}
    data = metrics.read_series(db, job_id, name, points)
    return {"name": name, "points": [[x, y] for x, y in data], "read_at": utcnow().isoformat()}


@router.post("/jobs/{job_id}/stop", response_model=JobOut)
def stop_job(job_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> JobOut:
    """Stop a job: SIGTERM, then SIGKILL after the grace period (WRITE)."""
    return jobs_out(db, [service.stop_job(db, user, job_id)], settings.fair_share_days)[0]


@router.post("/jobs/{job_id}/retry", response_model=JobOut, status_code=201)
def retry_job(job_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> JobOut:
    """A new queued job from this one's code snapshot and params (WRITE)."""
    retried = service.retry_job(db, user, job_id, settings=settings)
    return jobs_out(db, [retried], settings.fair_share_days)[0]


@router.delete("/jobs/{job_id}", status_code=204)
def delete_job(job_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> Response:
    """Delete a job that is not running, with its files and metrics (WRITE)."""
    service.delete_job(db, user, job_id, settings=settings)
    return Response(status_code=204)


@router.get("/sweeps", response_model=list[SweepOut])
def list_sweeps(user: CurrentUser, db: SessionDep, project_id: int | None = None) -> list[SweepOut]:
    """Sweeps I can see, newest first."""
    return [sweep_out(db, s) for s in service.list_sweeps(db, user, project_id=project_id)]


@router.get("/sweeps/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: int, user: CurrentUser, db: SessionDep) -> SweepOut:
    """One sweep (READ)."""
    return sweep_out(db, service.get_sweep(db, user, sweep_id))


router.include_router(quota_api.router)  # /api/v1/quotas (labyard.jobs.quota_api)
