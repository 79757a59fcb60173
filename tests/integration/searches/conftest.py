"""Fixtures of the search tests: a fake training script whose validation accuracy is a known
function of its params (so the right answer is known), a lab folder running it, and a
scheduler that runs the search driver each tick."""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.models import FINAL_STATUSES, Job
from labyard.jobs.scheduler import Scheduler
from labyard.mlsteam import parse_mlsteam
from labyard.searches import service
from labyard.searches.driver import advance_searches
from labyard.searches.models import Search, SearchState, SearchTrial
from labyard.searches.space import search_space
from labyard.searchspec import search_settings
from tests.factories import access_token_for, auth, make_job_flavors, make_users_fast

if TYPE_CHECKING:
    from tests.integration.searches.world import SearchWorld

# acc(epoch) = quality * (1 - 0.5 ** epoch); quality peaks at lr = 0.01 and width = 64.
# lr above 0.5 "diverges": the job fails at its first epoch. SIGTERM is caught and logged.
TRAIN_SCRIPT = """\
import math, os, signal, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
lr, width = float(args["--lr"]), int(args["--width"])
epochs, pause = int(args.get("--epochs", "4")), float(os.environ.get("EPOCH_SECONDS", "0"))
out = os.environ["MLSTEAM_OUTPUT_DIR"]
with open(os.path.join(out, "starts.txt"), "a") as fh:
    fh.write("start\\n")
def term(*_):
    print("got SIGTERM, saving a checkpoint", flush=True)
    sys.exit(143)
signal.signal(signal.SIGTERM, term)
quality = max(0.0, 1.0 - (math.log10(lr) + 2.0) ** 2 / 4.0 - abs(math.log2(width / 64)) / 8.0)
for epoch in range(1, epochs + 1):
    if lr > 0.5:
        print("loss is nan: diverged", flush=True)
        sys.exit(1)
    time.sleep(pause)
    print(f"Validation epoch={epoch} acc={quality * (1 - 0.5 ** epoch):.6f}", flush=True)
    print(f"Progress epoch={epoch}/{epochs}", flush=True)
"""

SEARCH_YML = """\
command: {python} train.py
params:
  lr: 0.01
  width: [16, 64, 256]
  epochs: {epochs}
params_definition:
  lr: {{type: float, min: 0.0001, max: 1.0, log: true}}
  width: {{options: [16, 64, 256]}}
  epochs: {{type: int}}
search:
  algorithm: tpe
  metric: Validation_acc
  goal: maximize
  trials: 8
  parallel: 2
  early_stopping: none
  resource: epoch
"""


def quality(lr: float, width: int) -> float:
    """The fake script's final accuracy scale for these params (the known answer)."""
    return max(0.0, 1.0 - (math.log10(lr) + 2.0) ** 2 / 4.0 - abs(math.log2(width / 64)) / 8.0)


def write_search_lab(folder: Path, *, epochs: int = 4) -> Path:
    """A lab folder with train.py and an mlsteam.yml holding a search block."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(TRAIN_SCRIPT)
    python = shlex.quote(sys.executable)
    (folder / "mlsteam.yml").write_text(SEARCH_YML.format(python=python, epochs=epochs))
    return folder


@pytest.fixture
def search_lab(tmp_path: Path) -> Path:
    """The fake training lab."""
    return write_search_lab(tmp_path / "lab")


@pytest.fixture
def flavors(database: Database) -> None:
    """Small flavors: tiny (no GPU), g1 and g2."""
    make_job_flavors(database)


def start(
    database: Database,
    settings: Settings,
    user: User,
    lab: Path,
    *,
    overrides: dict[str, object] | None = None,
    space: dict[str, object] | None = None,
) -> int:
    """Start a search of `lab` (no lab row) in the user's default project; its id."""
    config = parse_mlsteam((lab / "mlsteam.yml").read_text())
    request = service.SearchRequest(
        settings=search_settings(config.search, overrides or {}),
        space=search_space(config, space or {}),
        flavor="tiny",
        datasets=[],
    )
    with database.session() as db:
        search = service.create_search(
            db,
            user,
            settings=settings,
            project_id=user.default_project_id or 0,
            lab_id=None,
            name="fake",
            lab_dir=lab,
            config=config,
            request=request,
        )
        return search.id


@pytest.fixture
def search_scheduler(settings: Settings, database: Database) -> Iterator[Callable[..., Scheduler]]:
    """Schedulers that advance searches each tick; live local jobs are killed at the end."""
    made: list[Scheduler] = []

    def factory(**kwargs: object) -> Scheduler:
        scheduler = Scheduler(settings, database, steps=[advance_searches], **kwargs)  # type: ignore[arg-type]
        made.append(scheduler)
        return scheduler

    yield factory
    for scheduler in made:
        with database.session() as db:
            for job in db.scalars(select(Job).where(Job.external_id != "")):
                if job.status not in FINAL_STATUSES:
                    scheduler.executor.stop(job.id, job.external_id, force=True)


def run_search(
    scheduler: Scheduler, database: Database, search_id: int, *, timeout: float = 120.0
) -> tuple[Search, list[SearchTrial], dict[int, Job]]:
    """Tick until the search is finished or stopped (a safety timeout, not a timed check)."""
    deadline = time.monotonic() + timeout
    while True:
        scheduler.tick()
        with database.session() as db:
            search = db.get(Search, search_id)
            assert search is not None
            db.expunge(search)
        if search.state in (SearchState.FINISHED, SearchState.STOPPED):
            _, trials, jobs = snapshot(database, search_id)
            return search, trials, jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"search {search_id} did not end: {search.state}")
        time.sleep(0.05)


def snapshot(database: Database, search_id: int) -> tuple[None, list[SearchTrial], dict[int, Job]]:
    """The search's trials and jobs, detached."""
    with database.session() as db:
        trials = service.trials_of(db, search_id)
        jobs = service.jobs_of(db, search_id)
        db.expunge_all()
    return None, trials, jobs


@pytest.fixture
def search_world(
    app: FastAPI, database: Database, settings: Settings, flavors: None
) -> Iterator[SearchWorld]:
    """An owner with a project and a bearer token, a stranger, over the real app."""
    from tests.integration.searches.world import SearchWorld

    users = make_users_fast(database, "owner", "stranger")
    owner, other = users["owner"], users["stranger"]
    assert owner.default_project_id is not None
    with TestClient(app) as api:
        yield SearchWorld(
            app=app,
            database=database,
            settings=settings,
            api=api,
            owner=owner,
            other=other,
            project_id=owner.default_project_id,
            headers=auth(access_token_for(app, database, owner)),
            other_headers=auth(access_token_for(app, database, other)),
        )
