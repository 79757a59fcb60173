"""Register a finished job's model as weights: a copy in the weights store, with the job's
metadata and lineage.

The order keeps slow work out of the write transaction and leaves nothing behind, the way
labyard.jobs.output_dataset saves an output as a dataset (whose copier it reuses):

1. Checks: WRITE on the job's project (non-members NotFound), the job finished (Conflict),
   the name valid and free (Conflict); what is needed of the job is read. The request's
   transaction then ends.
2. The model is inspected (labyard.weights.detect: `..` and links leading out NotFound, an
   unknown file InvalidInput) and copied into `<data>/weights/.work/reg-<random>`.
3. The row is created with the job's metadata and lineage (its datasets, the weights it was
   fine-tuned from); once it commits the copy is renamed onto `<data>/weights/<id>/`; a
   rollback removes it. Job folders can be deleted; the store's copy stays.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from labyard import paths
from labyard.auth.models import User
from labyard.config import Settings
from labyard.db.unique import save_unique
from labyard.errors import Conflict
from labyard.jobs import output_dataset
from labyard.jobs.artifacts import output_root
from labyard.jobs.models import FINAL_STATUSES, Job
from labyard.jobs.service import get_job
from labyard.projects.models import Role
from labyard.weights.detect import (
    FoundModel,
    final_metrics,
    inspect_model,
    job_metadata,
    require_output,
)
from labyard.weights.models import Weights
from labyard.weights.service import (
    DEFAULT_PATH,
    UNIQUE,
    WEIGHTS_KIND,
    clean_weights_name,
    refuse_taken,
    weights_dir,
    work_dir,
)


@dataclass(frozen=True)
class _Source:
    """What registering needs of the job, read before the copy (no transaction is open
    while it runs)."""

    job_id: int
    job_name: str
    project_id: int
    params: dict[str, Any]
    trained_on: list[dict[str, Any]]
    parent_id: int | None
    metrics: dict[str, float]


def register_weights(
    db: Session,
    settings: Settings,
    *,
    user: User,
    job_id: int,
    name: str,
    path: str = DEFAULT_PATH,
    description: str = "",
) -> Weights:
    """Copy the model `path` of a finished job's output into new weights `name` of the
    job's project (WRITE), with the job's metadata and lineage."""
    job = get_job(db, user, job_id, Role.WRITE)
    if job.status not in FINAL_STATUSES:
        raise Conflict(f"The job is {job.status}; register its model once it has finished.")
    name = clean_weights_name(name)
    refuse_taken(db, job.project_id, name)
    root = output_root(settings, job_id)  # NotFound when the job made output/ a link
    require_output(root)
    source = _Source(
        job.id,
        job.name,
        job.project_id,
        dict(job.params or {}),
        _trained_on(job),
        _parent_of(db, job),
        final_metrics(db, job.id),
    )
    db.commit()  # ends the transaction: inspecting and copying hold no database lock
    found = inspect_model(root, path or DEFAULT_PATH)
    meta = job_metadata(root, source.params, found, source.metrics)
    temp, files = _copy_model(settings, root, found)
    try:
        weights = Weights(
            name=name,
            description=description.strip()[:2000]
            or f"Model {found.path} of job #{source.job_id} {source.job_name}"[:2000],
            project_id=source.project_id,
            framework=meta.framework,
            format=found.format,
            task=meta.task,
            classes=meta.classes,
            input_shape=meta.input_shape,
            datasets=source.trained_on,
            metrics=meta.metrics,
            file_name=Path(found.path).name,
            files=files,
            size_bytes=paths.tree_stats(temp)[0],
            source_job_id=source.job_id,
            source_job_name=source.job_name[:200],
            parent_id=source.parent_id,
            created_by_id=user.id,
        )
        taken = refuse_taken(db, source.project_id, name)
        save_unique(db, UNIQUE, taken, lambda: db.add(weights))
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    output_dataset.place_after_commit(db, temp, weights_dir(settings, weights))
    return weights


def _copy_model(settings: Settings, root: Path, found: FoundModel) -> tuple[Path, list[str]]:
    """Copy the model's files (labyard.jobs.output_dataset's copier: no links followed)
    into a new folder of the store's .work/; (that folder, the files relative to it: the
    registered file's folder is the copy's root)."""
    base = Path(found.path).parent.as_posix()
    rel = [Path(p).relative_to(base).as_posix() if base != "." else p for p in found.copy]
    parents = {p.as_posix() for r in rel for p in Path(r).parents} - {"."}
    folders = sorted(parents, key=lambda f: f.count("/"))  # parents before their children
    temp = work_dir(settings) / f"reg-{uuid.uuid4().hex}"
    try:
        tree = output_dataset._Tree(folders, [(r, 0) for r in rel])
        output_dataset._copy(root / base if base != "." else root, tree, temp)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return temp, rel


def _trained_on(job: Job) -> list[dict[str, Any]]:
    """The job's datasets; only the one its `dataset` param names, when it names one."""
    mounted = [
        {"id": m.get("dataset_id"), "name": m.get("name", "")}
        for m in job.datasets or []
        if m.get("kind", "input") != WEIGHTS_KIND
    ]
    chosen = (job.params or {}).get("dataset")
    return [d for d in mounted if d["name"] == chosen] or mounted


def _parent_of(db: Session, job: Job) -> int | None:
    """The weights the job was fine-tuned from: the weights mount its params name (a grid
    mounts each of its weights in every job), else its only one, if still registered."""
    mounts = [m for m in job.datasets or [] if m.get("kind") == WEIGHTS_KIND]
    values = {str(v) for v in (job.params or {}).values()}
    named = [m for m in mounts if m.get("name") in values] or (mounts if len(mounts) == 1 else [])
    for mount in named:
        if db.get(Weights, mount.get("weights_id")) is not None:
            return int(mount["weights_id"])
    return None
