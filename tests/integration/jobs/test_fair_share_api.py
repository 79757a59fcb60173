"""Who may set what: a job's priority (WRITE; `high` above the project's default needs
OWN), a project's default priority (OWN), GPU quotas (admins, on the API and the admin
page); and bad input refused with 422 next to the field."""

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
from tests.factories import access_token_for, auth, make_user, make_users_fast, session_client
from tests.integration.jobs.test_local_jobs import submit


@pytest.fixture
def people(database: Database) -> dict[str, User]:
    """ana owns her project; walt writes, rita reads, eve is outside; root is an admin."""
    users = make_users_fast(database, "ana", "rita", "walt", "eve")
    with database.session() as db:
        project = users["ana"].default_project_id
        db.add(Membership(project_id=project, user_id=users["rita"].id, role=Role.READ))
        db.add(Membership(project_id=project, user_id=users["walt"].id, role=Role.WRITE))
    users["root"] = make_user(database, "root", admin=True)
    return users


@pytest.fixture
def queued(database: Database, settings: Settings, lab: Path, flavors: None, people: dict) -> int:
    """A queued job of ana's project."""
    [job_id] = submit(database, settings, lab)
    return job_id


def _as(app: FastAPI, database: Database, people: dict[str, User], name: str) -> dict[str, str]:
    return auth(access_token_for(app, database, people[name]))


def test_job_priority_rights_and_bad_values(
    app: FastAPI, database: Database, people: dict[str, User], queued: int
) -> None:
    client, url = TestClient(app), f"/api/v1/jobs/{queued}"
    for name, value, status in (
        ("eve", "low", 404),
        ("rita", "low", 403),
        ("walt", "high", 403),  # a writer cannot jump everyone
        ("walt", "low", 200),
        ("ana", "high", 200),
        ("root", "normal", 200),
    ):
        got = client.patch(url, json={"priority": value}, headers=_as(app, database, people, name))
        assert got.status_code == status, (name, value, got.text)
    assert client.get(url, headers=_as(app, database, people, "ana")).json()["priority"] == 0
    bad = client.patch(url, json={"priority": "urgent"}, headers=_as(app, database, people, "ana"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "priority"]
    client.post(f"{url}/stop", headers=_as(app, database, people, "ana"))
    late = client.patch(url, json={"priority": "low"}, headers=_as(app, database, people, "ana"))
    assert late.status_code == 409


def test_job_page_changes_a_queued_jobs_priority(
    app: FastAPI, database: Database, people: dict[str, User], queued: int
) -> None:
    with session_client(app, database, people["walt"]) as browser:
        assert 'name="priority"' in browser.get(f"/jobs/{queued}").text
        answer = browser.hx("POST", f"/jobs/{queued}/priority", data={"priority": "low"})
        assert answer.status_code == 200 and 'value="low" selected' in answer.text
    with session_client(app, database, people["rita"]) as reader:
        assert 'name="priority"' not in reader.get(f"/jobs/{queued}").text
        assert (
            reader.hx("POST", f"/jobs/{queued}/priority", data={"priority": "low"}).status_code
            == 403
        )
    with database.session() as db:
        assert db.get(Job, queued).priority == -1  # type: ignore[union-attr]


def test_project_default_priority_is_the_owners_and_new_jobs_take_it(
    app: FastAPI,
    database: Database,
    settings: Settings,
    lab: Path,
    flavors: None,
    people: dict[str, User],
) -> None:
    client = TestClient(app)
    url = f"/api/v1/projects/{people['ana'].default_project_id}"
    body = {"default_priority": "high"}
    assert (
        client.patch(url, json=body, headers=_as(app, database, people, "walt")).status_code == 403
    )
    got = client.patch(url, json=body, headers=_as(app, database, people, "ana"))
    assert got.status_code == 200 and got.json()["default_priority"] == "high"
    bad = client.patch(url, json={"default_priority": 2}, headers=_as(app, database, people, "ana"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "default_priority"]
    [job_id] = submit(database, settings, lab)
    with database.session() as db:
        assert db.get(Job, job_id).priority == 1  # type: ignore[union-attr]


def test_quotas_are_the_admins_and_bad_limits_are_refused_next_to_the_field(
    app: FastAPI, database: Database, people: dict[str, User]
) -> None:
    client = TestClient(app)
    project = people["ana"].default_project_id
    url = f"/api/v1/quotas/projects/{project}"
    for name in ("ana", "walt"):
        headers = _as(app, database, people, name)
        assert client.get("/api/v1/quotas", headers=headers).status_code == 403
        assert client.put(url, json={"max_gpus": 8}, headers=headers).status_code == 403
    admin = _as(app, database, people, "root")
    set_ = client.put(url, json={"max_gpus": 4, "monthly_gpu_hours": 100}, headers=admin)
    assert set_.status_code == 200
    assert set_.json() | {"id": 0} == {
        "id": 0,
        "project_id": project,
        "user_id": None,
        "name": "ana-default",
        "max_gpus": 4,
        "monthly_gpu_hours": 100.0,
        "gpus_in_use": 0,
        "gpu_hours_this_month": 0.0,
    }
    user_url = f"/api/v1/quotas/users/{people['walt'].id}"
    assert client.put(user_url, json={"max_gpus": 1}, headers=admin).json()["name"] == "walt"
    assert [q["name"] for q in client.get("/api/v1/quotas", headers=admin).json()] == [
        "ana-default",
        "walt",
    ]
    for field, value in (("max_gpus", -1), ("monthly_gpu_hours", -0.5), ("max_gpus", "x")):
        bad = client.put(url, json={field: value}, headers=admin)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", field]
    assert client.put("/api/v1/quotas/projects/999999", json={}, headers=admin).status_code == 404
    assert client.put(user_url, json={}, headers=admin).status_code == 204  # no limits: removed
    assert len(client.get("/api/v1/quotas", headers=admin).json()) == 1


def test_admin_page_sets_quotas_and_refuses_negative_ones(
    app: FastAPI, database: Database, people: dict[str, User]
) -> None:
    project = str(people["ana"].default_project_id)
    with session_client(app, database, people["root"]) as browser:
        page = browser.get("/admin").text
        assert 'id="quotas"' in page and "No quotas" in page
        ok = browser.hx(
            "POST", "/admin/quotas/projects", data={"target_id": project, "max_gpus": "3"}
        )
        assert ok.status_code == 200 and "ana-default" in ok.text
        for field, value in (("max_gpus", "-2"), ("monthly_gpu_hours", "-1"), ("max_gpus", "x")):
            bad = browser.hx(
                "POST", "/admin/quotas/projects", data={"target_id": project, field: value}
            )
            assert bad.status_code == 422, bad.text
    with session_client(app, database, people["ana"]) as owner:
        data = {"target_id": project, "max_gpus": "9"}
        assert owner.hx("POST", "/admin/quotas/projects", data=data).status_code == 403


def test_stop_and_retry_answer_positions_in_the_servers_fair_share_window(
    app: FastAPI, database: Database, settings: Settings, tmp_path: Path, flavors: None
) -> None:
    """Every answer carrying a queue position orders by the server's window: bob's project
    used 10 GPU-hours 2 days ago, outside a 1-day window, so ana's retried job queues behind
    bob's older one (with the default 7-day window it would be ahead)."""
    from datetime import timedelta

    from labyard.db import utcnow
    from tests.integration.jobs.conftest import write_lab
    from tests.integration.jobs.fairshare_helpers import positions, queue

    lab = write_lab(tmp_path / "wait", params="  mode: [wait]\n  copy: [1]\n")
    settings.fair_share_days = 1.0
    people = make_users_fast(database, "ana", "bob")
    now = utcnow()
    with database.session() as db:
        bob = people["bob"]
        history = Job(
            project_id=bob.default_project_id,
            created_by_id=bob.id,
            name="history",
            status="succeeded",
            params={},
            command=["true"],
            flavor="g1",
            gpus=1,
        )
        history.started_at, history.finished_at = (
            now - timedelta(hours=58),
            now - timedelta(hours=48),
        )
        db.add(history)
    [bobs] = queue(database, settings, lab, people["bob"], 1)
    [anas] = queue(database, settings, lab, people["ana"], 1)
    client, headers = TestClient(app), auth(access_token_for(app, database, people["ana"]))
    stopped = client.post(f"/api/v1/jobs/{anas}/stop", headers=headers)
    assert stopped.status_code == 200 and stopped.json()["queue_position"] is None
    retried = client.post(f"/api/v1/jobs/{anas}/retry", headers=headers)
    assert retried.status_code == 201, retried.text
    assert positions(database, settings) == [bobs, retried.json()["id"]]
    assert retried.json()["queue_position"] == 2
    got = client.get(f"/api/v1/jobs/{retried.json()['id']}", headers=headers).json()
    assert got["queue_position"] == 2
