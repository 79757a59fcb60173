"""Jobs and sweeps: the state machine (one place), sweeps, stop, retry, delete, queries.

A job moves queued -> starting -> running -> succeeded | failed | stopped | pruned;
`transition` is the only code that changes `Job.status`, and `request_stop` the only code
that asks the scheduler to stop a live job. Each job's files live in
`<data_dir>/jobs/<id>/`: `lab/` (the code snapshot with this job's mlsteam.yml),
`output/`, `input/` (local executor's dataset links), `job.log`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import utcnow
from labyard.errors import Conflict, InvalidInput
from labyard.flavors.models import Flavor
from labyard.hooks import HookPoint
from labyard.jobs import numbering
from labyard.jobs.grid import resolve_grid
from labyard.jobs.inventory import Inventory, node_inventory
from labyard.jobs.models import FINAL_STATUSES, LIVE_STATUSES, Job, JobStatus, Sweep
from labyard.mlsteam import (
    CONFIG_FILE,
    LabConfig,
    build_command,
    iter_grid,
    parse_mlsteam,
    resolved_yaml,
)
from labyard.projects.models import Role
from labyard.projects.service import (
    clean_display_name,
    require_owned,
    require_project,
    visible_project_ids,
)

S = JobStatus
TRANSITIONS: dict[str, set[str]] = {
    S.QUEUED: {S.STARTING, S.STOPPED, S.FAILED},
    S.STARTING: {S.RUNNING, S.SUCCEEDED, S.FAILED, S.STOPPED, S.PRUNED, S.QUEUED},
    # running -> starting: a cluster requeued the job (a node failed); its next attempt waits
    # -> queued: the job was preempted (labyard.jobs.preemption); its next attempt resumes
    S.RUNNING: {S.SUCCEEDED, S.FAILED, S.STOPPED, S.PRUNED, S.STARTING, S.QUEUED},
}
DATASET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


@dataclass(frozen=True)
class DatasetInput:
    """A dataset the caller attaches to a sweep's jobs (name + host folder); `kind`
    "weights": registered weights, mounted at /mlsteam/weights/<name> instead."""

    name: str
    host_path: Path
    dataset_id: int | None = None
    kind: str = "input"
    weights_id: int | None = None


def job_dir(settings: Settings, job_id: int) -> Path:
    """The folder holding a job's files."""
    return settings.data_dir / "jobs" / str(job_id)


# Told when a job reaches a final status, inside the caller's transaction (notifications
# queue outbox rows there; no network I/O or slow work). An announcement, not a check: an
# unwired point (a test that never built the app) tells nobody.
JOB_FINISHED: HookPoint[Callable[[Job], None]] = HookPoint("jobs.job_finished")


def transition(
    job: Job, to: JobStatus, *, reason: str | None = None, exit_code: int | None = None
) -> None:
    """Move `job` to `to` (Conflict if the move is not allowed), stamping times."""
    if to not in TRANSITIONS.get(job.status, set()):
        raise Conflict(f"A {job.status} job cannot become {to}.")
    now = utcnow()
    job.status = to
    if reason is not None:
        job.reason = reason[:500]
    if exit_code is not None:
        job.exit_code = exit_code
    if to == S.RUNNING and job.started_at is None:
        job.started_at = now
    if to in FINAL_STATUSES:
        job.finished_at = now
        if job.started_at is None and to != S.STOPPED:
            job.started_at = now
        for announce in JOB_FINISHED.handlers() if JOB_FINISHED.wired else ():
            announce(job)


def request_stop(job: Job, *, reason: str | None = None, status: JobStatus = S.STOPPED) -> None:
    """Ask the scheduler to stop a live job: SIGTERM, then SIGKILL after the grace period; it
    then ends as `status` (stopped, pruned by a search, or queued again when preempted:
    labyard.jobs.preemption). The first request wins, except that a preemption yields to a
    real stop (the job then ends as asked instead of going back to the queue)."""
    if job.stop_requested_at is not None:
        if job.stop_status == S.QUEUED and status != S.QUEUED:
            job.stop_status, job.reason = status, (reason or "")[:500]
        return
    job.stop_requested_at = utcnow()
    job.stop_status = status
    if reason is not None:
        job.reason = reason[:500]


# --------------------------------------------------------------------------- sweeps


def read_lab_config(lab_dir: Path) -> LabConfig:
    """The lab's parsed mlsteam.yml."""
    path = lab_dir / CONFIG_FILE
    if not path.is_file():
        raise InvalidInput("The lab has no mlsteam.yml.", field="mlsteam.yml")
    return parse_mlsteam(path.read_text(encoding="utf-8", errors="replace"))


def check_fits(inventory: Inventory, flavor: Flavor) -> None:
    """Refuse a flavor this node can never run, saying why."""
    why = inventory.why_never_fits(gpus=flavor.gpus, cpus=flavor.cpus, memory_mb=flavor.memory_mb)
    if why:
        raise InvalidInput(
            f"Flavor {flavor.name!r} can never run on this node: {why}.", field="flavor"
        )


def resolve_flavor(
    db: Session, settings: Settings, name: str, inventory: Inventory | None = None
) -> Flavor:
    """The flavor called `name`, refused when missing or when this node can never run it."""
    flavor_row = db.scalar(select(Flavor).where(Flavor.name == name))
    if flavor_row is None:
        raise InvalidInput(f"No flavor {name!r}.", field="flavor")
    check_fits(inventory or node_inventory(settings), flavor_row)
    return flavor_row


def check_datasets(datasets: list[DatasetInput]) -> list[dict[str, Any]]:
    """The datasets as jobs store them; refused when a name is bad or repeated, or a
    folder is missing."""
    seen: set[tuple[str, str]] = set()
    out = []
    for ds in datasets:
        if not DATASET_NAME_RE.match(ds.name) or (ds.kind, ds.name) in seen:
            raise InvalidInput(f"Bad or repeated dataset name {ds.name!r}.", field="datasets")
        if not ds.host_path.is_dir():
            raise InvalidInput(f"Dataset {ds.name!r} has no folder.", field="datasets")
        seen.add((ds.kind, ds.name))
        entry: dict[str, Any] = {
            "dataset_id": ds.dataset_id,
            "name": ds.name,
            "host_path": str(ds.host_path.resolve()),
        }
        if ds.kind != "input":
            entry.update(kind=ds.kind, weights_id=ds.weights_id)
        out.append(entry)
    return out


def create_sweep(
    db: Session,
    user: User,
    *,
    settings: Settings,
    project_id: int,
    lab_dir: Path,
    flavor: str,
    grid: dict[str, list[Any]] | None = None,
    datasets: list[DatasetInput] | None = None,
    name: str = "sweep",
    lab_id: int | None = None,
    priority: int | None = None,
    inventory: Inventory | None = None,
    config: LabConfig | None = None,
) -> Sweep:
    """Create one queued job per grid combination, with their files, all or nothing.

    `config` is the lab's mlsteam.yml when the caller parsed it already (before its write
    transaction began); else it is read from `lab_dir` here. `priority` None: the
    project's default (labyard.jobs.priority checks a chosen one)."""
    project = require_project(db, user, project_id, Role.WRITE)
    if priority is None:
        priority = project.default_priority
    name = clean_display_name(name, max_length=150)
    config = config or read_lab_config(lab_dir)
    full_grid = resolve_grid(config, grid, limit=settings.max_grid_size)
    flavor_row = resolve_flavor(db, settings, flavor, inventory)
    mounts = check_datasets(datasets or [])
    sweep = Sweep(
        project_id=project_id,
        lab_id=lab_id,
        name=name,
        flavor=flavor,
        grid=full_grid,
        created_by_id=user.id,
    )
    numbering.add_numbered_sweep(db, sweep)
    combos = iter_grid(full_grid)  # resolve_grid checked its size against the limit
    jobs = [
        Job(
            project_id=project_id,
            sweep_id=sweep.id,
            lab_id=lab_id,
            created_by_id=user.id,
            name=f"{name} #{i}"[:200],
            status=S.QUEUED,
            params=values,
            command=build_command(config, values),
            image=config.image or settings.docker_image,
            flavor=flavor,
            gpus=flavor_row.gpus,
            cpus=flavor_row.cpus,
            memory_mb=flavor_row.memory_mb,
            priority=priority,
            datasets=mounts,
            assigned_gpus=[],
        )
        for i, values in enumerate(combos, start=1)
    ]
    numbering.name_sweep_jobs(sweep, jobs)
    db.add_all(jobs)
    db.flush()
    _write_job_files(settings, lab_dir, [(j.id, resolved_yaml(config, j.params)) for j in jobs])
    return sweep


def _write_job_files(settings: Settings, lab_dir: Path, jobs: list[tuple[int, str]]) -> None:
    """Snapshot the lab into each job's folder; on any error remove every folder made."""
    made: list[Path] = []
    try:
        for job_id, config_text in jobs:
            folder = job_dir(settings, job_id)
            if folder.exists():  # a leftover of a rolled-back submission with a reused id
                shutil.rmtree(folder)
            made.append(folder)
            shutil.copytree(lab_dir, folder / "lab", symlinks=True)
            (folder / "lab" / CONFIG_FILE).write_text(config_text, encoding="utf-8")
            (folder / "output").mkdir()
    except OSError as exc:
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
        raise Conflict(f"Could not snapshot the lab: {exc.strerror or exc}.") from exc


def list_sweeps(db: Session, user: User, *, project_id: int | None = None) -> list[Sweep]:
    """Sweeps the user can see, newest first."""
    query = select(Sweep).where(Sweep.project_id.in_(visible_project_ids(db, user)))
    if project_id is not None:
        query = query.where(Sweep.project_id == project_id)
    return list(db.scalars(query.order_by(Sweep.id.desc()).limit(500)))


def get_sweep(db: Session, user: User, sweep_id: int) -> Sweep:
    """One sweep (READ on its project)."""
    return require_owned(db, user, Sweep, sweep_id, noun="sweep")


def sweep_counts(db: Session, sweep_id: int) -> dict[str, int]:
    """How many of the sweep's jobs are in each state."""
    rows = db.execute(
        select(Job.status, func.count()).where(Job.sweep_id == sweep_id).group_by(Job.status)
    )
    return {status: count for status, count in rows}


# --------------------------------------------------------------------------- jobs


def get_job(db: Session, user: User, job_id: int, need: Role = Role.READ) -> Job:
    """One job, if the user holds `need` in its project (non-members: NotFound)."""
    return require_owned(db, user, Job, job_id, need, noun="job")


def list_jobs(
    db: Session,
    user: User,
    *,
    project_id: int | None = None,
    lab_id: int | None = None,
    sweep_id: int | None = None,
    status: JobStatus | None = None,
    limit: int = 500,
) -> list[Job]:
    """Jobs the user can see, newest first, filtered."""
    query = select(Job).where(Job.project_id.in_(visible_project_ids(db, user)))
    for column, value in (
        (Job.project_id, project_id),
        (Job.lab_id, lab_id),
        (Job.sweep_id, sweep_id),
        (Job.status, status),
    ):
        if value is not None:
            query = query.where(column == value)
    return list(db.scalars(query.order_by(Job.id.desc()).limit(max(1, min(limit, 5000)))))


def elapsed_seconds(job: Job, now: datetime | None = None) -> float | None:
    """Run time so far (or in total once finished)."""
    if job.started_at is None:
        return None
    end = job.finished_at or now or utcnow()
    return max(0.0, (end - job.started_at).total_seconds())


def stop_job(db: Session, user: User, job_id: int) -> Job:
    """Stop a job (WRITE): a queued one at once, a live one via the scheduler (grace)."""
    job = get_job(db, user, job_id, Role.WRITE)
    if job.status == S.QUEUED:
        transition(job, S.STOPPED, reason="stopped before it started")
    elif job.status in LIVE_STATUSES:
        request_stop(job)
    else:
        raise Conflict(f"The job already {job.status}.")
    return job


# Why a higher domain's job may not be retried (a lab session's: it is restarted from its
# lab), or None; wired in labyard.app.wire_hooks.
RETRY_REFUSALS: HookPoint[Callable[[Session, int], str | None]] = HookPoint("jobs.retry_refusals")


def retry_job(db: Session, user: User, job_id: int, *, settings: Settings) -> Job:
    """A new queued job with the old one's code snapshot, params, flavor and datasets."""
    old = get_job(db, user, job_id, Role.WRITE)
    for refusal in RETRY_REFUSALS.handlers():
        why = refusal(db, old.id)
        if why:
            raise Conflict(why)
    new = Job(
        project_id=old.project_id,
        sweep_id=old.sweep_id,
        lab_id=old.lab_id,
        created_by_id=user.id,
        name=f"{old.name} (retry)"[:200],
        status=S.QUEUED,
        params=dict(old.params),
        command=list(old.command),
        image=old.image,
        flavor=old.flavor,
        gpus=old.gpus,
        cpus=old.cpus,
        memory_mb=old.memory_mb,
        priority=old.priority,
        datasets=list(old.datasets),
        assigned_gpus=[],
    )
    numbering.name_retry(db, old, new)
    db.add(new)
    db.flush()
    source = job_dir(settings, old.id) / "lab"
    if not source.is_dir():
        raise Conflict("The job's code snapshot is gone; it cannot be retried.")
    target = job_dir(settings, new.id)
    try:
        shutil.copytree(source, target / "lab", symlinks=True)
        (target / "output").mkdir()
    except OSError as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise Conflict(f"Could not copy the job's code: {exc.strerror or exc}.") from exc
    return new


def delete_job(db: Session, user: User, job_id: int, *, settings: Settings) -> None:
    """Delete a finished or queued job (WRITE) and its files, metrics and log."""
    job = get_job(db, user, job_id, Role.WRITE)
    if job.status in LIVE_STATUSES:
        raise Conflict("The job is running; stop it before deleting it.")
    db.delete(job)
    db.flush()
    shutil.rmtree(job_dir(settings, job_id), ignore_errors=True)


def dataset_in_use(db: Session, dataset_id: int) -> str | None:
    """Why a dataset cannot be deleted now (a queued or live job uses it), or None."""
    rows = db.execute(
        select(Job.id, Job.datasets).where(Job.status.in_([S.QUEUED, *LIVE_STATUSES]))
    )
    for job_id, mounts in rows:
        if any(m.get("dataset_id") == dataset_id for m in mounts or []):
            return f"job {job_id} uses it"
    return None


def project_job_folders(db: Session, settings: Settings, project_id: int) -> list[Path]:
    ids = db.scalars(select(Job.id).where(Job.project_id == project_id))
    """The folders of the project's jobs (wired into projects.delete_project)."""
    return [job_dir(settings, job_id) for job_id in ids]


def project_jobs_active(db: Session, project_id: int) -> str | None:
    """Why the project cannot be deleted now: queued or running jobs (or None)."""
    active = db.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.project_id == project_id, Job.status.in_([S.QUEUED, *LIVE_STATUSES]))
    )
    return f"{active} of its jobs are queued or running; stop them first" if active else None
