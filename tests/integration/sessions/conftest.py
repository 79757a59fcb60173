"""Fixtures of the sessions tests: a project with members by role, a lab, a blocking job's
lab folder, a scheduler on a faked 1-GPU inventory driven tick by tick, API clients, waits
for a session's state (safety deadlines, not timed assertions), and a real `labyard serve`
for the `kill -9` tests (local and Docker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service as jobs_service
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import FINAL_STATUSES, Job, SchedulerLease
from labyard.jobs.scheduler import Scheduler
from labyard.labs import service as labs_service
from labyard.projects import service as project_service
from labyard.projects.models import Role
from tests.factories import (
    ADMIN_PASSWORD,
    WebClient,
    access_token_for,
    auth,
    make_job_flavors,
    make_users_fast,
)
from tests.integration.jobs.conftest import write_lab
from tests.serving import free_port, wait_until_healthy

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


def until(check: Callable[[], object], what: str) -> object:
    """Wait for `check` to answer something true (a safety deadline, not a timing)."""
    deadline = time.monotonic() + DEADLINE_S
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


Server = Callable[[], tuple[subprocess.Popen[bytes], str]]


@pytest.fixture
def server(world: SessionWorld, tmp_path: Path) -> Iterator[Server]:
    """Start `labyard serve` (its scheduler too) on the world's database, data dir and
    executor (Docker: its image and network)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        settings = world.settings
        env = {
            **os.environ,
            "LABYARD_DATA_DIR": str(settings.data_dir),
            "LABYARD_DATABASE_URL": settings.database_url,
            "LABYARD_SECRET_KEY": settings.secret_key,
            "LABYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LABYARD_GPUS": "0",
            "LABYARD_SCHEDULER_INTERVAL_SECONDS": "0.2",
            "LABYARD_PORT": str(port),
            "LABYARD_EXECUTOR": settings.executor,
            "LABYARD_DOCKER_IMAGE": settings.docker_image,
            "LABYARD_DOCKER_NETWORK": settings.docker_network,
        }
        log = open(tmp_path / "server.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "labyard.cli", "serve"], env=env, stdout=log, stderr=log
        )
        procs.append(proc)
        return wait_until_healthy(proc, port), f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def kill9_then_adopt(world: SessionWorld, server: Server, flavor: str | None = None) -> str:
    """Start a session through a real server, `kill -9` the server, start another: it says
    the session runs, proxies it at once, adopts the same process or container (JupyterLab
    started once), and stops it. The session job's external id (pid or container name)."""
    token = access_token_for(world.app, world.database, world.users["write"])
    headers = {"authorization": f"Bearer {token}"}
    first, url = server()
    started = httpx.post(
        f"{url}/api/v1/labs/{world.lab_id}/session",
        headers=headers,
        json={"flavor": flavor},
        timeout=30,
    )
    assert started.status_code == 200, started.text
    job_id = started.json()["job_id"]

    def state(base: str) -> str:
        answer = httpx.get(
            f"{base}/api/v1/labs/{world.lab_id}/session", headers=headers, timeout=30
        )
        return str(answer.json()["state"])

    until(lambda: state(url) == "running", "the session to run")
    before = httpx.put(
        f"{url}/labs/{world.lab_id}/session/api/contents/before.txt",
        headers=headers,
        json={"type": "file", "format": "text", "content": "before"},
        timeout=30,
    )
    assert before.status_code == 201, before.text
    with world.database.session() as db:
        external = db.get(Job, job_id).external_id  # type: ignore[union-attr]
    first.send_signal(signal.SIGKILL)
    first.wait()

    second, url = server()
    assert state(url) == "running"  # JupyterLab outlived the server
    listed = httpx.get(
        f"{url}/labs/{world.lab_id}/session/api/contents", headers=headers, timeout=30
    )
    assert listed.status_code == 200 and "before.txt" in listed.text
    until(lambda: _lease_pid(world) == second.pid, "the new server to adopt the session")
    with world.database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None and job.status == "running" and job.external_id == external
    log = (jobs_service.job_dir(world.settings, job_id) / "job.log").read_text()
    assert log.count("starting JupyterLab") == 1  # the same process, never started twice
    stop = httpx.delete(f"{url}/api/v1/labs/{world.lab_id}/session", headers=headers, timeout=30)
    assert stop.status_code == 200
    until(lambda: state(url) == "stopped", "the session to stop")
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=30)
    return external


def _lease_pid(world: SessionWorld) -> int | None:
    """The pid of the server whose scheduler holds the lease (it adopts on its first tick)."""
    with world.database.session() as db:
        lease = db.get(SchedulerLease, 1)
        return int(lease.holder.split("|")[1]) if lease is not None else None
