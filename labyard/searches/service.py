"""Searches: create one from a lab's parsed file, stop it, resume it with more trials, and
read its state. The driver (searches.driver) samples and prunes its trials in the scheduler.

A search is a sweep with a driver: its id is its sweep's id, its trials are that sweep's
jobs (so `/api/v1/jobs?search_id=` is the sweep filter), and its code snapshot is taken once,
at creation, into `<data_dir>/searches/<id>/lab/`: every trial runs the code as it was.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import utcnow
from labyard.errors import Conflict, InvalidInput
from labyard.jobs import numbering
from labyard.jobs import service as jobs_service
from labyard.jobs.incoming import JobSpec
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import LIVE_STATUSES, Job, JobStatus, Sweep
from labyard.mlsteam import LabConfig
from labyard.projects.models import Role
from labyard.projects.service import (
    clean_display_name,
    require_owned,
    require_project,
    visible_project_ids,
)
from labyard.searches.models import Search, SearchState, SearchTrial, TrialState
from labyard.searches.space import check_algorithm_fits, grid_size_of
from labyard.searchspec import MAX_TRIALS, ParamSpace, SearchSettings

STOPPED_REASON = "the search was stopped"


@dataclass(frozen=True)
class SearchRequest:
    """A search as the lab asks for it: the settings and space already checked."""

    settings: SearchSettings
    space: dict[str, ParamSpace]
    flavor: str
    datasets: list[jobs_service.DatasetInput]


def search_dir(settings: Settings, search_id: int) -> Path:
    """The folder of a search's files (its code snapshot in `lab/`)."""
    return settings.data_dir / "searches" / str(search_id)


def space_of(search: Search) -> dict[str, ParamSpace]:
    """The search's param space."""
    return {name: ParamSpace.from_dict(p) for name, p in search.space.items()}


def settings_of(search: Search) -> SearchSettings:
    """The search's settings (with the trials wanted now, after any resume)."""
    data = dict(search.settings)
    data["trials"] = search.trials_wanted
    return SearchSettings(**data)


def _grid_of(space: dict[str, ParamSpace]) -> dict[str, list[Any]]:
    """What the sweep shows as its grid: choices, or a range's two ends."""
    return {
        n: list(p.choices) if p.kind in ("categorical", "fixed") else [p.low, p.high]
        for n, p in space.items()
    }


def create_search(
    db: Session,
    user: User,
    *,
    settings: Settings,
    project_id: int,
    lab_id: int | None,
    name: str,
    lab_dir: Path,
    config: LabConfig,
    request: SearchRequest,
    inventory: Inventory | None = None,
) -> Search:
    """A running search (WRITE) with its sweep and its code snapshot; the driver adds its
    trials. `config` was parsed and `request` checked before this transaction."""
    require_project(db, user, project_id, Role.WRITE)
    wanted = request.settings
    check_algorithm_fits(wanted, request.space)
    trials = wanted.trials
    size = grid_size_of(request.space) if wanted.algorithm == "grid" else None
    if size is not None and trials > size:
        trials = size  # a grid search never runs a combination twice
    flavor = jobs_service.resolve_flavor(db, settings, request.flavor, inventory)
    mounts = jobs_service.check_datasets(request.datasets)
    sweep = Sweep(
        project_id=project_id,
        lab_id=lab_id,
        name=clean_display_name(name, max_length=150),
        kind="search",
        flavor=flavor.name,
        grid=_grid_of(request.space),
        created_by_id=user.id,
    )
    numbering.add_numbered_sweep(db, sweep)
    spec = JobSpec(
        image=config.image or settings.docker_image,
        flavor=flavor.name,
        gpus=flavor.gpus,
        cpus=flavor.cpus,
        memory_mb=flavor.memory_mb,
        datasets=mounts,
    )
    search = Search(
        id=sweep.id,
        project_id=project_id,
        lab_id=lab_id,
        state=SearchState.RUNNING,
        settings={**wanted.as_dict(), "trials": trials},
        space={n: p.as_dict() for n, p in request.space.items()},
        trials_wanted=trials,
        seed=wanted.seed if wanted.seed is not None else random.randrange(2**31),
        job_spec=spec.as_dict(),
        created_by_id=user.id,
    )
    db.add(search)
    db.flush()
    _snapshot(lab_dir, search_dir(settings, search.id))
    return search


def _snapshot(lab_dir: Path, folder: Path) -> None:
    if folder.exists():  # a leftover of a rolled-back creation with a reused id
        shutil.rmtree(folder)
    try:
        shutil.copytree(lab_dir, folder / "lab", symlinks=True)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise Conflict(f"Could not snapshot the lab: {exc.strerror or exc}.") from exc


def get_search(db: Session, user: User, search_id: int, need: Role = Role.READ) -> Search:
    """One search, if the user holds `need` in its project (others: NotFound)."""
    return require_owned(db, user, Search, search_id, need, noun="search")


def list_searches(
    db: Session, user: User, *, project_id: int | None = None, lab_id: int | None = None
) -> list[Search]:
    """Searches the user can see, newest first."""
    query = select(Search).where(Search.project_id.in_(visible_project_ids(db, user)))
    if project_id is not None:
        query = query.where(Search.project_id == project_id)
    if lab_id is not None:
        query = query.where(Search.lab_id == lab_id)
    return list(db.scalars(query.order_by(Search.id.desc()).limit(500)))


def trials_of(db: Session, search_id: int) -> list[SearchTrial]:
    """The search's trials by number."""
    query = select(SearchTrial).where(SearchTrial.search_id == search_id)
    return list(db.scalars(query.order_by(SearchTrial.number)))


def stop_search(db: Session, user: User, search_id: int) -> Search:
    """Stop sampling (WRITE): queued trials stop at once, running ones get SIGTERM and the
    grace period; the search is `stopped` once none runs."""
    search = get_search(db, user, search_id, Role.WRITE)
    if search.state not in (SearchState.RUNNING,):
        raise Conflict(f"The search is already {search.state}.")
    live = 0
    for job in db.scalars(
        select(Job)
        .where(Job.sweep_id == search.id, Job.status.in_([JobStatus.QUEUED, *LIVE_STATUSES]))
        .with_for_update()
    ):
        if job.status == JobStatus.QUEUED:
            jobs_service.transition(job, JobStatus.STOPPED, reason=STOPPED_REASON)
        else:
            jobs_service.request_stop(job, reason=STOPPED_REASON)
            live += 1
    search.state = SearchState.STOPPING if live else SearchState.STOPPED
    search.reason = "stopped by a user"
    if not live:
        search.finished_at = utcnow()
    return search


def resume_search(db: Session, user: User, search_id: int, *, more_trials: int) -> Search:
    """Run `more_trials` more trials (WRITE): a stopped or finished search runs again with
    every earlier trial (and the pruner's records of them) kept; a running one grows."""
    search = get_search(db, user, search_id, Role.WRITE)
    if search.state == SearchState.STOPPING:
        raise Conflict("The search is still stopping; resume it once it has stopped.")
    have = len(trials_of(db, search.id))
    base = search.trials_wanted if search.state == SearchState.RUNNING else have
    wanted = base + more_trials
    if not 1 <= more_trials <= MAX_TRIALS or wanted > MAX_TRIALS:
        raise InvalidInput(
            f"A search runs at most {MAX_TRIALS} trials in all; this one has {base}.",
            field="trials",
        )
    space = space_of(search)
    size = grid_size_of(space) if search.settings.get("algorithm") == "grid" else None
    if size is not None and wanted > size:
        raise InvalidInput(
            f"The grid has {size} combinations and the search has {base} trials; "
            f"at most {max(0, size - base)} more can run.",
            field="trials",
        )
    search.trials_wanted = wanted
    search.state = SearchState.RUNNING
    search.reason = ""
    search.finished_at = None
    return search


def counts(trials: list[SearchTrial], jobs: dict[int, Job]) -> dict[str, int]:
    """Trials by outcome: queued, running, complete, pruned, failed."""
    out = {"queued": 0, "running": 0, "complete": 0, "pruned": 0, "failed": 0}
    for t in trials:
        if t.state == TrialState.RUNNING:
            job = jobs.get(t.job_id or -1)
            out["queued" if job is not None and job.status == JobStatus.QUEUED else "running"] += 1
        else:
            out[t.state] += 1
    return out


def best_trial(search: Search, trials: list[SearchTrial]) -> SearchTrial | None:
    """The completed trial with the best value for the search's goal (earliest on ties)."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not done:
        return None
    sign = -1.0 if search.settings.get("goal") == "maximize" else 1.0
    return min(done, key=lambda t: (sign * float(t.value or 0.0), t.number))


def jobs_of(db: Session, search_id: int) -> dict[int, Job]:
    """The search's jobs by id."""
    return {j.id: j for j in db.scalars(select(Job).where(Job.sweep_id == search_id))}


def submit_best(db: Session, user: User, settings: Settings, search_id: int) -> Sweep:
    """Run the best trial's params again as a one-job sweep of the search's lab (WRITE), with
    the search's code snapshot, flavor and datasets."""
    search = get_search(db, user, search_id, Role.WRITE)
    best = best_trial(search, trials_of(db, search.id))
    if best is None:
        raise Conflict("No trial has completed yet; there is no best trial to submit.")
    sweep = db.get(Sweep, search.id)
    spec = search.job_spec
    datasets = [
        jobs_service.DatasetInput(
            d["name"],
            Path(d["host_path"]),
            d.get("dataset_id"),
            d.get("kind", "input"),
            d.get("weights_id"),
        )
        for d in spec["datasets"]
    ]
    return jobs_service.create_sweep(
        db,
        user,
        settings=settings,
        project_id=search.project_id,
        lab_dir=search_dir(settings, search.id) / "lab",
        flavor=spec["flavor"],
        grid={name: [value] for name, value in best.params.items()},
        datasets=datasets,
        name=sweep.name if sweep is not None else "search",
        lab_id=search.lab_id,
    )


def project_search_folders(db: Session, settings: Settings, project_id: int) -> list[Path]:
    """The folders of the project's searches (wired into projects.delete_project)."""
    ids = db.scalars(select(Search.id).where(Search.project_id == project_id))
    return [search_dir(settings, search_id) for search_id in ids]
