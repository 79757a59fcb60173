"""The jobs JSON API: fields, logs (offset, follow), metrics, stop/retry/delete, and the
permission matrix (non-member, READ, WRITE, owner, admin)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.models import Job
from labyard.projects.models import Membership, Role
from tests.factories import access_token_for, auth, make_users_fast
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.jobs.test_local_jobs import FOUR_GPUS, submit


@pytest.fixture
def people(database: Database) -> dict[str, object]:
    users = make_users_fast(database, "ana", "rita", "walt", "eve")
    with database.session() as db:
        project = users["ana"].default_project_id
        db.add(Membership(project_id=project, user_id=users["rita"].id, role=Role.READ))
        db.add(Membership(project_id=project, user_id=users["walt"].id, role=Role.WRITE))
    return users  # type: ignore[return-value]


@pytest.fixture
def finished_job(
    database: Database,
    settings: Settings,
    lab: Path,
    make_scheduler,
    flavors: None,
    people: dict[str, object],
) -> int:
    [job_id] = submit(database, settings, lab)
    run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final)
    return job_id


def _client(app: FastAPI, database: Database, people: dict, name: str) -> tuple[TestClient, dict]:
    return TestClient(app), auth(access_token_for(app, database, people[name]))


def test_job_fields_logs_and_metrics(
    app: FastAPI, database: Database, people: dict, finished_job: int
) -> None:
    client, headers = _client(app, database, people, "rita")
    job = client.get(f"/api/v1/jobs/{finished_job}", headers=headers).json()
    assert job["status"] == "succeeded" and job["exit_code"] == 0 and job["reason"] == ""
    assert job["assigned_gpus"] == [] and job["queue_position"] is None
    assert job["progress"] == 1.0 and job["elapsed_seconds"] >= 0
    listed = client.get("/api/v1/jobs", params={"status": "succeeded"}, headers=headers).json()
    assert [j["id"] for j in listed] == [finished_job]
    assert client.get("/api/v1/jobs", params={"status": "queued"}, headers=headers).json() == []
    logs = client.get(f"/api/v1/jobs/{finished_job}/logs", headers=headers)
    assert logs.headers["content-type"].startswith("text/plain") and "ARGS" in logs.text
    tail = client.get(f"/api/v1/jobs/{finished_job}/logs", params={"offset": 10}, headers=headers)
    assert tail.text == logs.text[10:]
    assert int(tail.headers["x-log-offset"]) == len(logs.content)
    followed = client.get(
        f"/api/v1/jobs/{finished_job}/logs", params={"follow": True}, headers=headers
    )
    assert followed.text == logs.text  # a finished job's follow ends after the last byte
    series = client.get(f"/api/v1/jobs/{finished_job}/metrics", headers=headers).json()
    assert {s["name"] for s in series["series"]} == {"Train_loss", "Train_acc", "Validation_loss"}
    one = client.get(
        f"/api/v1/jobs/{finished_job}/metrics",
        params={"name": "Train_loss", "points": 2},
        headers=headers,
    ).json()
    assert one["points"] == [[1.0, 1.0], [3.0, 0.3333]]
    sweeps = client.get("/api/v1/sweeps", headers=headers).json()
    assert sweeps[0]["jobs"] == {"succeeded": 1}
    assert client.get(f"/api/v1/sweeps/{sweeps[0]['id']}", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("who", "read", "write"),
    [("eve", 404, 404), ("rita", 200, 403), ("walt", 200, 201), ("ana", 200, 201)],
)
def test_permission_matrix(
    app: FastAPI,
    database: Database,
    people: dict,
    finished_job: int,
    who: str,
    read: int,
    write: int,
) -> None:
    client, headers = _client(app, database, people, who)
    base = f"/api/v1/jobs/{finished_job}"
    for path in (base, f"{base}/logs", f"{base}/metrics"):
        assert client.get(path, headers=headers).status_code == read, path
    visible = [j["id"] for j in client.get("/api/v1/jobs", headers=headers).json()]
    assert visible == ([] if who == "eve" else [finished_job])
    assert client.post(f"{base}/retry", headers=headers).status_code == write
    stop = client.post(f"{base}/stop", headers=headers).status_code
    assert stop == (write if write != 201 else 409)  # 409: it already finished
    delete = client.delete(base, headers=headers).status_code
    assert delete == (write if write != 201 else 204)
    with database.session() as db:
        assert (db.get(Job, finished_job) is None) == (write == 201)


def test_anonymous_gets_401(app: FastAPI, finished_job: int) -> None:
    client = TestClient(app)
    assert client.get("/api/v1/jobs").status_code == 401
    assert client.get(f"/api/v1/jobs/{finished_job}/logs").status_code == 401
    assert client.post(f"/api/v1/jobs/{finished_job}/stop").status_code == 401


def test_admin_sees_and_manages_every_job(
    app: FastAPI, database: Database, finished_job: int
) -> None:
    client = TestClient(app)
    with database.session() as db:
        root = db.query(User).filter_by(username="admin").one()
    headers = auth(access_token_for(app, database, root))
    assert client.get(f"/api/v1/jobs/{finished_job}", headers=headers).status_code == 200
    assert client.delete(f"/api/v1/jobs/{finished_job}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/jobs/{finished_job}", headers=headers).status_code == 404
