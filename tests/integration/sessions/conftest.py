"""Fixtures of the sessions tests: a project with members by role, a lab, a blocking job's
lab folder, a scheduler on a faked 1-GPU inventory driven tick by tick, API clients, and
waits for a session's state (safety deadlines, not timed assertions)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service as jobs_service
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import FINAL_STATUSES, Job
from labyard.jobs.scheduler import Scheduler
from labyard.labs import service as labs_service
from labyard.projects import service as project_service
from labyard.projects.models import Role
from tests.factories import WebClient, access_token_for, auth, make_job_flavors, make_users_fast
from tests.integration.jobs.conftest import write_lab

DEADLINE_S = 120.0
ONE_GPU = Inventory(gpus=("0",), cpus=8.0, memory_mb=16384)


@dataclass
class SessionWorld:
    """Users around one project with a lab (flavor g1), and a scheduler with one GPU."""

    app: FastAPI
    database: Database
    settings: Settings
    users: dict[str, User]
    project_id: int
    lab_id: int
    scheduler: Scheduler
    clients: list[WebClient] = field(default_factory=list)

    def api(self, name: str) -> WebClient:
        """A client with `name`'s bearer token ('anonymous': none)."""
        client = WebClient(self.app)
        if name != "anonymous":
            client.headers.update(auth(access_token_for(self.app, self.database, self.users[name])))
        self.clients.append(client)
        return client

    def state(self, client: WebClient, lab_id: int | None = None) -> dict[str, Any]:
        """GET the lab's session (asserting it answers 200)."""
        response = client.get(f"/api/v1/labs/{lab_id or self.lab_id}/session")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def tick_until(
        self, client: WebClient, done: Callable[[dict[str, Any]], bool], lab_id: int | None = None
    ) -> dict[str, Any]:
        """Tick the scheduler until the session's state satisfies `done`."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            self.scheduler.tick()
            body = self.state(client, lab_id)
            if done(body):
                return body
            assert time.monotonic() < deadline, f"the session never got there: {body}"
            time.sleep(0.1)

    def running(self, client: WebClient, lab_id: int | None = None) -> dict[str, Any]:
        """Tick until JupyterLab answers through its session."""
        return self.tick_until(client, lambda b: b["state"] == "running", lab_id)

    def blocking_job(self, tmp: Any) -> int:
        """A job on the only GPU that runs until `output/go` exists; its id (queued)."""
        folder = write_lab(tmp / "blocker", params="  mode: [wait]\n")
        with self.database.session() as db:
            owner = db.get(User, self.users["own"].id)
            assert owner is not None
            sweep = jobs_service.create_sweep(
                db,
                owner,
                settings=self.settings,
                project_id=self.project_id,
                lab_dir=folder,
                flavor="g1",
                inventory=ONE_GPU,
            )
            job_id = db.query(Job.id).filter(Job.sweep_id == sweep.id).scalar()
        assert job_id is not None
        return int(job_id)


@pytest.fixture
def world(app: FastAPI, database: Database, settings: Settings) -> Iterator[SessionWorld]:
    """The world; every live job (sessions included) is killed at the end."""
    make_job_flavors(database)
    settings.gpus = "0"  # what the node says it has (flavor checks) is what ONE_GPU offers
    users = make_users_fast(database, "own", "write", "read", "stranger", "boss")
    with database.session() as db:
        owner = db.get(User, users["own"].id)
        boss = db.get(User, users["boss"].id)
        assert owner is not None and boss is not None and owner.default_project_id
        boss.is_admin = True
        project_id = owner.default_project_id
        for name, role in (("write", Role.WRITE), ("read", Role.READ)):
            project_service.set_member(db, owner, project_id, username=name, role=role)
        lab = labs_service.create_lab(
            db, settings, owner, project_id=project_id, name="nb", flavor="g1"
        )
        lab_id = lab.id
    scheduler = Scheduler(settings, database, inventory=ONE_GPU)
    made = SessionWorld(app, database, settings, users, project_id, lab_id, scheduler)
    yield made
    for client in made.clients:
        client.close()
    with database.session() as db:
        live = [
            (job.id, job.external_id)
            for job in db.query(Job).filter(Job.external_id != "")
            if job.status not in FINAL_STATUSES
        ]
    for job_id, external_id in live:
        _kill(scheduler, job_id, external_id)


def _kill(scheduler: Scheduler, job_id: int, external_id: str) -> None:
    """Kill a job's processes until it has ended (a job launched a moment ago may not have
    started its command yet when the first signal goes)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        scheduler.executor.stop(job_id, external_id, force=True)
        if not scheduler.executor.poll(job_id, external_id).running:
            return
        time.sleep(0.1)
