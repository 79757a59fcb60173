"""delete_project asks the jobs domain through a hook that create_app wires: in a fresh
interpreter that imports only the project service, it refuses while a job runs once the app
is created, and refuses to run at all (instead of skipping the check) when nothing is wired."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.service import job_dir
from labyard.projects.models import Project
from labyard.projects.service import create_project
from tests.factories import make_job_row

DELETE = """
import sys
from labyard.projects import service  # the only domain module this script imports itself
from labyard.auth.models import User
from sqlalchemy import select

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.errors import Conflict
from labyard.hooks import HooksNotWired

settings = Settings()
database = Database(settings.resolved_database_url)
if sys.argv[1] == "app":
    from labyard.app import create_app

    create_app(settings, database=database)
try:
    with database.session() as db:
        admin = db.query(User).filter_by(username="admin").one()
        service.delete_project(db, admin, int(sys.argv[2]), settings=settings)
except Conflict as exc:
    print("refused:", exc.message)
except HooksNotWired as exc:
    print("not wired:", exc)
else:
    print("deleted")
"""


def _delete_in_fresh_interpreter(settings: Settings, mode: str, project_id: int) -> str:
    env = {
        **os.environ,
        "LABYARD_DATABASE_URL": settings.resolved_database_url,
        "LABYARD_DATA_DIR": str(settings.data_dir),
        "LABYARD_SECRET_KEY": settings.resolved_secret_key,
        "LABYARD_START_SCHEDULER": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", DELETE, mode, str(project_id)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def _project_with_a_job(database: Database, settings: Settings, status: str) -> tuple[int, int]:
    with database.session() as db:
        admin = db.scalars(select(User).where(User.username == "admin")).one()
        project_id = create_project(db, owner=admin, name="study").id
    return project_id, make_job_row(database, settings, project_id, status=status)


@pytest.mark.parametrize(
    ("mode", "answer"),
    [
        (
            "app",
            "refused: Project 'study' cannot be deleted now: 1 of its jobs are queued or running",
        ),
        ("bare", "not wired: Hook 'projects.delete_blockers' is not wired"),
    ],
)
def test_delete_refuses_while_a_job_runs_and_changes_nothing(
    database: Database, settings: Settings, mode: str, answer: str
) -> None:
    """app: only the project service imported, the app created; bare: not even the app."""
    project_id, job_id = _project_with_a_job(database, settings, "running")
    assert _delete_in_fresh_interpreter(settings, mode, project_id).startswith(answer)
    with database.session() as db:
        assert db.get(Project, project_id) is not None
    assert job_dir(settings, job_id).is_dir()


def test_delete_goes_ahead_once_the_jobs_are_done(database: Database, settings: Settings) -> None:
    project_id, job_id = _project_with_a_job(database, settings, "succeeded")
    assert _delete_in_fresh_interpreter(settings, "app", project_id) == "deleted"
    with database.session() as db:
        assert db.get(Project, project_id) is None
    assert not job_dir(settings, job_id).exists()
