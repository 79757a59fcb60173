"""Jobs added one at a time to an existing sweep (a search's trials).

The slow part, copying the code snapshot, happens before the write transaction into a
folder under `<data_dir>/jobs/.incoming/`; inside the transaction the job row is inserted
and that folder is renamed into place (one rename), so no write lock waits on the disk.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labyard.config import Settings
from labyard.errors import Conflict
from labyard.jobs import naming
from labyard.jobs.models import Job, JobStatus, Sweep
from labyard.jobs.service import job_dir
from labyard.mlsteam import CONFIG_FILE


@dataclass(frozen=True)
class JobSpec:
    """What every job added to one sweep shares (stored as JSON on its search)."""

    image: str
    flavor: str
    gpus: int
    cpus: float
    memory_mb: int
    datasets: list[dict[str, Any]]
    priority: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dict(self.__dict__)


def prepare_folder(settings: Settings, snapshot: Path, config_text: str) -> Path:
    """Copy `snapshot` (a lab's code) with this job's mlsteam.yml into a fresh incoming folder
    (outside any transaction); `add_job` moves it into place, `discard` removes it."""
    incoming = settings.data_dir / "jobs" / ".incoming" / uuid.uuid4().hex
    try:
        shutil.copytree(snapshot, incoming / "lab", symlinks=True)
        (incoming / "lab" / CONFIG_FILE).write_text(config_text, encoding="utf-8")
        (incoming / "output").mkdir()
    except OSError as exc:
        discard(incoming)
        raise Conflict(f"Could not snapshot the lab: {exc.strerror or exc}.") from exc
    return incoming


def discard(folder: Path) -> None:
    """Remove a prepared folder that was not used."""
    shutil.rmtree(folder, ignore_errors=True)


def add_job(
    db: Session,
    settings: Settings,
    *,
    sweep: Sweep,
    spec: JobSpec,
    params: dict[str, Any],
    command: list[str],
    prepared: Path,
    created_by_id: int | None,
    varying: list[str],
) -> Job:
    """Insert a queued job numbered next in `sweep` (locked by the caller) and move its
    prepared folder into place; named by the params in `varying`."""
    top = db.scalar(select(func.max(Job.number)).where(Job.sweep_id == sweep.id))
    number = (top or 0) + 1
    label = naming.job_label(number, params, varying)[:200]
    job = Job(
        project_id=sweep.project_id,
        sweep_id=sweep.id,
        lab_id=sweep.lab_id,
        created_by_id=created_by_id,
        name=naming.job_display_name(sweep.display_name, label)[:200],
        number=number,
        label=label,
        status=JobStatus.QUEUED,
        params=params,
        command=command,
        image=spec.image,
        flavor=spec.flavor,
        gpus=spec.gpus,
        cpus=spec.cpus,
        memory_mb=spec.memory_mb,
        priority=spec.priority,
        datasets=list(spec.datasets),
        assigned_gpus=[],
    )
    db.add(job)
    db.flush()
    target = job_dir(settings, job.id)
    if target.exists():  # a leftover of a rolled-back insert with a reused id
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prepared.rename(target)
    return job
