""" "Submit Job": a lab's chosen grid becomes a sweep through the jobs service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.errors import InvalidInput
from labyard.jobs import service as jobs_service
from labyard.jobs.grid import GridCheck, check_selection
from labyard.jobs.models import Job, Sweep
from labyard.jobs.priority import PriorityName, chosen_priority, priority_name
from labyard.labs import files, service
from labyard.labs.models import Lab
from labyard.mlsteam import WEIGHTS_TYPE, LabConfig
from labyard.projects.models import Role
from labyard.projects.service import require_project
from labyard.weights import service as weights_service
from labyard.weights.models import Weights


def check_lab_grid(
    db: Session,
    settings: Settings,
    user: User,
    lab_id: int,
    *,
    chosen: Mapping[str, Sequence[Any]],
) -> tuple[Lab, LabConfig, GridCheck]:
    """The form's selection checked as a submission would check it (WRITE): each field's
    error and the grid's size against LABYARD_MAX_GRID_SIZE, from the value counts alone.
    The lab's mlsteam.yml is read after the request's transaction ended (no lock held)."""
    lab = service.lab_for_file_work(db, user, lab_id)
    config = files.read_config(settings, lab)
    return lab, config, check_selection(config, chosen, limit=settings.max_grid_size)


def lab_inputs(settings: Settings, lab: Lab) -> list[jobs_service.DatasetInput]:
    """The lab's attached datasets as its jobs (a sweep's or a search's) get them."""
    return [
        jobs_service.DatasetInput(
            name=m.dataset.name, host_path=m.host_path, dataset_id=m.dataset.id
        )
        for m in service.mounts(settings, lab)
    ]


def submit_lab(
    db: Session,
    settings: Settings,
    user: User,
    lab_id: int,
    *,
    chosen: Mapping[str, Sequence[Any]],
    flavor: str | None = None,
    priority: PriorityName | None = None,
) -> tuple[Sweep, list[Job]]:
    """Create one queued job per combination of `chosen` (WRITE), on `flavor` (default the
    lab's), at `priority` (default the project's; labyard.jobs.priority), with the lab's
    code snapshot and attached datasets. The file is parsed and the grid checked before the
    write transaction that creates the jobs begins."""
    lab = service.get_lab(db, user, lab_id, Role.WRITE)
    mounts = lab_inputs(settings, lab)
    lab, config, check = check_lab_grid(db, settings, user, lab_id, chosen=chosen)
    grid = check.require()
    mounts += weights_service.mount_inputs(
        db, settings, user, lab.project_id, weights_named(config, grid)
    )
    project = require_project(db, user, lab.project_id, Role.WRITE)
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
        config=config,
        priority=chosen_priority(db, user, project, priority),
    )
    return sweep, jobs_service.list_jobs(db, user, sweep_id=sweep.id)


def weights_params(config: LabConfig) -> list[str]:
    """The params of `type: weights` (their values name registered weights)."""
    return [n for n in config.params if (d := config.definitions.get(n)) and d.type == WEIGHTS_TYPE]


def weights_named(config: LabConfig, grid: Mapping[str, Sequence[Any]]) -> list[str]:
    """The weights names a grid's `type: weights` params take ('' = none)."""
    return [str(v) for name in weights_params(config) for v in grid.get(name, []) if v]


def weights_in_use(db: Session, settings: Settings, weights: Weights) -> str | None:
    """Why the weights cannot be deleted or renamed: a lab of their project (any lab, for
    public weights) names them in a `type: weights` param of its mlsteam.yml; or None."""
    query = select(Lab).order_by(Lab.id)
    if not weights.is_public:
        query = query.where(Lab.project_id == weights.project_id)
    for lab in db.scalars(query):
        try:
            config = files.read_config(settings, lab)
        except (InvalidInput, OSError):
            continue  # no or a broken mlsteam.yml names nothing
        if weights.name in weights_named(config, config.grid()):
            return f"lab {lab.name!r} names them in its mlsteam.yml"
    return None


def sweep_json(sweep: Sweep, jobs: list[Job]) -> dict[str, Any]:
    """The API answer of a submission: the sweep with its jobs, oldest first."""
    return {
        "id": sweep.id,
        "lab_id": sweep.lab_id,
        "project_id": sweep.project_id,
        "name": sweep.name,
        "number": sweep.number,
        "display_name": sweep.display_name,
        "flavor": sweep.flavor,
        "priority": priority_name(jobs[0].priority) if jobs else "normal",
        "grid": sweep.grid,
        "jobs": [
            {
                "id": j.id,
                "name": j.name,
                "display_name": j.display_name,
                "number": j.number,
                "status": j.status,
                "params": j.params,
            }
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
