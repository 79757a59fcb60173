"""Deleting a project removes its rows and their files on disk, and waits for its jobs."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.config import Settings
from labyard.datasets.models import Dataset
from labyard.datasets.service import dataset_dir
from labyard.db import Database
from labyard.jobs.models import Job
from labyard.jobs.service import job_dir
from labyard.labs.service import lab_dir
from labyard.projects.models import Project
from tests.factories import access_token_for, auth, make_dataset, make_job_row, make_users_fast


def _project_with_files(app: FastAPI, database: Database, settings: Settings, client: TestClient):  # type: ignore[no-untyped-def]
    ana = make_users_fast(database, "ana")["ana"]
    headers = auth(access_token_for(app, database, ana))
    project = client.post("/api/v1/projects", json={"name": "study"}, headers=headers).json()
    dataset_id = make_dataset(database, settings, ana, project["id"])
    client.post(
        f"/api/v1/datasets/{dataset_id}/files",
        files={"file": ("a.txt", b"bytes")},
        headers=headers,
    )
    lab = client.post(
        "/api/v1/labs",
        json={
            "name": "lab1",
            "project_id": project["id"],
            "template": "classification",
            "flavor": "cpu",
        },
        headers=headers,
    ).json()
    job_id = make_job_row(database, settings, project["id"])
    with database.session() as db:
        dataset = db.get(Dataset, dataset_id)
        assert dataset is not None
        folders = [
            dataset_dir(settings, dataset),
            lab_dir(settings, lab["id"]),
            job_dir(settings, job_id),
        ]
    assert all(folder.is_dir() for folder in folders)
    return headers, project["id"], job_id, folders


def test_delete_removes_rows_and_every_folder(
    app: FastAPI, database: Database, settings: Settings
) -> None:
    with TestClient(app) as client:
        headers, project_id, job_id, folders = _project_with_files(app, database, settings, client)
        assert client.delete(f"/api/v1/projects/{project_id}", headers=headers).status_code == 204
    assert not any(folder.exists() for folder in folders)
    with database.session() as db:
        assert db.get(Project, project_id) is None and db.get(Job, job_id) is None


def test_delete_is_refused_while_a_job_is_queued_and_nothing_is_removed(
    app: FastAPI, database: Database, settings: Settings
) -> None:
    with TestClient(app) as client:
        headers, project_id, job_id, folders = _project_with_files(app, database, settings, client)
        with database.session() as db:
            job = db.get(Job, job_id)
            assert job is not None
            job.status = "queued"
        answer = client.delete(f"/api/v1/projects/{project_id}", headers=headers)
    assert answer.status_code == 409
    assert "queued or running" in answer.json()["detail"]
    assert all(folder.is_dir() for folder in folders)
    with database.session() as db:
        assert db.get(Project, project_id) is not None
