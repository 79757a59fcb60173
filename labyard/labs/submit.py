""" "Submit Job": a lab's chosen grid becomes a sweep through the jobs service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.jobs import service as jobs_service
from labyard.jobs.models import Job, Sweep
from labyard.labs import files, params, service
from labyard.labs.models import Lab
from labyard.projects.models import Role


def submit_lab(
    db: Session,
    settings: Settings,
    user: User,
    lab_id: int,
    *,
    chosen: Mapping[str, Sequence[Any]],
    flavor: str | None = None,
) -> tuple[Sweep, list[Job]]:
    """Create one queued job per combination of `chosen` (WRITE), on `flavor` (default the
    lab's), with the lab's code snapshot and attached datasets."""
    lab = service.get_lab(db, user, lab_id, Role.WRITE)
    config = files.read_config(settings, lab)
    grid = params.require_grid(config, chosen)
    mounts = [
        jobs_service.DatasetInput(
            name=m.dataset.name, host_path=m.host_path, dataset_id=m.dataset.id
        )
        for m in service.mounts(settings, lab)
    ]
    sweep = jobs_service.create_sweep(
        db,
        user,
        settings=settings,
        project_id=lab.project_id,
        lab_dir=files.lab_root(settings, lab),
        flavor=flavor or lab.flavor,
        grid=grid,
        datasets=mounts,
        name=lab.name,
        lab_id=lab.id,
    )
    return sweep, jobs_service.list_jobs(db, user, sweep_id=sweep.id)


def sweep_json(sweep: Sweep, jobs: list[Job]) -> dict[str, Any]:
    """The API answer of a submission: the sweep with its jobs, oldest first."""
    return {
        "id": sweep.id,
        "lab_id": sweep.lab_id,
        "project_id": sweep.project_id,
        "name": sweep.name,
        "flavor": sweep.flavor,
        "grid": sweep.grid,
        "jobs": [
            {"id": j.id, "name": j.name, "status": j.status, "params": j.params}
            for j in sorted(jobs, key=lambda j: j.id)
        ],
    }


def lab_sweeps(db: Session, user: User, lab: Lab) -> list[tuple[Sweep, list[Job]]]:
    """The lab's sweeps, newest first, each with its jobs (the Jobs tab)."""
    jobs = jobs_service.list_jobs(db, user, lab_id=lab.id)
    sweeps = [
        s
        for s in jobs_service.list_sweeps(db, user, project_id=lab.project_id)
        if s.lab_id == lab.id
    ]
    by_sweep: dict[int | None, list[Job]] = {}
    for job in sorted(jobs, key=lambda j: j.id):
        by_sweep.setdefault(job.sweep_id, []).append(job)
    return [(s, by_sweep.get(s.id, [])) for s in sweeps]
