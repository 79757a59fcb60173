"""Fixtures of the TensorBoard tests: an owner's project with a job that wrote real scalars,
a READ member and a stranger, browser-like clients, and a wait for TensorBoard to answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.projects import service as project_service
from labyard.projects.models import Role
from labyard.tensorboard import service
from labyard.tensorboard.models import TensorBoardInstance
from tests.factories import WebClient, make_job_with_scalars, make_users_fast

READY_DEADLINE_S = 90.0
TAG = "Train/loss"


@dataclass
class TBWorld:
    """Users around one project with one job that has TensorBoard event files."""

    app: FastAPI
    database: Database
    settings: Settings
    owner: User
    reader: User
    stranger: User
    project_id: int
    job_id: int
    tag: str = TAG

    def instance(self, instance_id: int) -> TensorBoardInstance:
        """The row as the database has it now."""
        with self.database.session() as db:
            row = db.get(TensorBoardInstance, instance_id)
            assert row is not None
            db.expunge(row)
            return row

    @property
    def run(self) -> str:
        """The run name given for the job's log dir: the job's display name."""
        return "mnist run"

    @property
    def tb_run(self) -> str:
        """The run as TensorBoard lists it (events right in the run's linked dir)."""
        return self.run

    def wait_ready(self, client: WebClient, instance_id: int) -> dict[str, object]:
        """Poll the API until TensorBoard answers (fails after READY_DEADLINE_S)."""
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:
            response = client.get(f"/api/v1/tensorboards/{instance_id}")
            assert response.status_code == 200, response.text
            body: dict[str, object] = response.json()
            if body["status"] == "running":
                return body
            assert body["status"] == "starting", body
            assert time.monotonic() < deadline, "TensorBoard did not answer"
            time.sleep(0.2)

    def wait_for_tag(self, client: WebClient, instance_id: int) -> None:
        """Poll the proxied scalars API until the job's tag is loaded (first reload)."""
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:
            response = client.get(f"/tensorboard/{instance_id}/data/plugin/scalars/tags")
            assert response.status_code == 200, response.text
            if TAG in response.json().get(self.tb_run, {}):
                return
            assert time.monotonic() < deadline, f"{TAG} never appeared: {response.text}"
            time.sleep(0.2)

    def count(self) -> int:
        """How many TensorBoard rows exist (any status)."""
        with self.database.session() as db:
            return db.scalar(select(func.count()).select_from(TensorBoardInstance)) or 0


@pytest.fixture
def tb(app: FastAPI, database: Database, settings: Settings) -> Iterator[TBWorld]:
    """The world; every TensorBoard process a test started is stopped at its end."""
    users = make_users_fast(database, "owner", "reader", "stranger")
    project_id = users["owner"].default_project_id
    assert project_id is not None
    with database.session() as db:
        owner = db.get(User, users["owner"].id)
        assert owner is not None
        project_service.set_member(db, owner, project_id, username="reader", role=Role.READ)
    job_id = make_job_with_scalars(database, settings, project_id, name="mnist run", tag=TAG)
    yield TBWorld(
        app,
        database,
        settings,
        users["owner"],
        users["reader"],
        users["stranger"],
        project_id,
        job_id,
    )
    with database.session() as db:
        service.stop_children(db)
