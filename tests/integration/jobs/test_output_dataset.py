""" "Save as dataset": a finished job's output (or a folder of it) becomes a dataset of the
job's project, with its insight; who may, which jobs and folders are refused, and that a
refusal or a rollback leaves no row, no folder and no temporary copy behind."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as dataset_service
from labyard.datasets.models import Dataset
from labyard.db import Database
from labyard.errors import TooLarge
from labyard.jobs.output_dataset import save_output_as_dataset
from labyard.jobs.service import job_dir
from labyard.projects.models import Membership, Role
from tests.factories import access_token_for, auth, make_job_row, make_users_fast, session_client

API = "/api/v1/jobs/{}/output-as-dataset"


def png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (6, 4), shade).save(buffer, format="PNG")
    return buffer.getvalue()


# A conversion job's output: a class-folder dataset under dataset/, plus a summary.
OUTPUTS = {
    "dataset/train/a/1.png": png(10),
    "dataset/train/b/2.png": png(20),
    "dataset/test/a/3.png": png(30),
    "dataset/test/b/4.png": png(40),
    "summary.json": b'{"parts": {}}',
}


@pytest.fixture
def people(database: Database) -> dict[str, User]:
    """ana owns the project; rita reads, walt writes; eve is not a member."""
    users = make_users_fast(database, "ana", "rita", "walt", "eve")
    with database.session() as db:
        project = users["ana"].default_project_id
        db.add(Membership(project_id=project, user_id=users["rita"].id, role=Role.READ))
        db.add(Membership(project_id=project, user_id=users["walt"].id, role=Role.WRITE))
    return users


@pytest.fixture
def project(people: dict[str, User]) -> int:
    project_id = people["ana"].default_project_id
    assert project_id is not None
    return project_id


@pytest.fixture
def job(database: Database, settings: Settings, project: int) -> int:
    """A succeeded job of the project with the conversion output above."""
    return make_job_row(database, settings, project, outputs=OUTPUTS)


def client_of(app: FastAPI, database: Database, user: User) -> Iterator[Any]:
    headers = auth(access_token_for(app, database, user))
    with TestClient(app) as client:
        client.headers.update(headers)
        yield client


@pytest.fixture
def walt(app: FastAPI, database: Database, people: dict[str, User]) -> Iterator[Any]:
    yield from client_of(app, database, people["walt"])


def leftovers(database: Database, settings: Settings) -> tuple[int, list[str]]:
    """Datasets rows, and the entries of the datasets folder (temporary copies included)."""
    with database.session() as db:
        rows = db.scalar(select(func.count()).select_from(Dataset)) or 0
    root = dataset_service.datasets_root(settings)
    entries = sorted(p.name for p in root.iterdir() if p.name != ".work")
    return rows, entries + sorted(os.listdir(dataset_service.work_dir(settings)))


def test_saving_a_folder_makes_a_dataset_with_insight(
    walt: Any, job: int, project: int, settings: Settings, database: Database
) -> None:
    before = leftovers(database, settings)
    answer = walt.post(API.format(job), json={"name": "digits-32", "path": "dataset"})
    assert answer.status_code == 201, answer.text
    dataset, insight = answer.json()["dataset"], answer.json()["insight"]
    assert dataset["name"] == "digits-32" and dataset["project_id"] == project
    assert dataset["file_count"] == 4 and dataset["size_bytes"] == sum(
        len(v) for k, v in OUTPUTS.items() if k.startswith("dataset/")
    )
    assert dataset["created_by"] == "walt" and f"job #{job}" in dataset["description"]
    assert insight["recognised"] and insight["classes"] == ["a", "b"]
    assert {s["name"]: s["images"] for s in insight["splits"]} == {"train": 2, "test": 2}
    # the platform's own views of the new dataset agree
    again = walt.get(f"/api/v1/datasets/{dataset['id']}/insight").json()
    assert again == insight
    folder = dataset_service.datasets_root(settings) / str(dataset["id"])
    assert (folder / "train" / "a" / "1.png").read_bytes() == OUTPUTS["dataset/train/a/1.png"]
    assert sorted(p.name for p in folder.iterdir()) == ["test", "train"]
    rows, entries = leftovers(database, settings)
    assert rows == before[0] + 1 and entries == sorted([*before[1], str(dataset["id"])])
    # the job's output is untouched, and the whole output can be saved too
    assert (job_dir(settings, job) / "output" / "dataset" / "train" / "a" / "1.png").is_file()
    whole = walt.post(API.format(job), json={"name": "everything"})
    assert whole.status_code == 201 and whole.json()["dataset"]["file_count"] == 5
    assert not whole.json()["insight"]["recognised"]  # dataset/ is one level down


@pytest.mark.parametrize(("who", "status"), [("eve", 404), ("rita", 403), ("ana", 201)])
def test_who_may_save(
    app: FastAPI,
    database: Database,
    settings: Settings,
    people: dict,
    job: int,
    who: str,
    status: int,
) -> None:
    before = leftovers(database, settings)
    for client in client_of(app, database, people[who]):
        answer = client.post(API.format(job), json={"name": "mine", "path": "dataset"})
        assert answer.status_code == status, answer.text
    if status != 201:
        assert leftovers(database, settings) == before
    assert TestClient(app).post(API.format(job), json={"name": "x"}).status_code == 401


@pytest.mark.parametrize("status", ["queued", "starting", "running"])
def test_an_unfinished_job_is_refused(
    walt: Any, database: Database, settings: Settings, project: int, status: str
) -> None:
    unfinished = make_job_row(database, settings, project, status=status, outputs=OUTPUTS)
    before = leftovers(database, settings)
    answer = walt.post(API.format(unfinished), json={"name": "early"})
    assert answer.status_code == 409 and f"is {status}" in answer.json()["detail"]
    assert leftovers(database, settings) == before


def test_a_taken_name_is_a_conflict(
    walt: Any, app: FastAPI, database: Database, settings: Settings, people: dict, job: int
) -> None:
    assert walt.post(API.format(job), json={"name": "taken", "path": "dataset"}).status_code == 201
    before = leftovers(database, settings)
    clash = walt.post(API.format(job), json={"name": "taken", "path": "dataset"})
    assert clash.status_code == 409 and clash.json()["field"] == "name"
    bad = walt.post(API.format(job), json={"name": "../up"})
    assert bad.status_code == 422 and bad.json()["field"] == "name"
    assert leftovers(database, settings) == before
    # names are per project: eve's own job may use it in eve's project
    eve_job = make_job_row(database, settings, people["eve"].default_project_id, outputs=OUTPUTS)
    for eve in client_of(app, database, people["eve"]):
        assert eve.post(API.format(eve_job), json={"name": "taken"}).status_code == 201


def test_escapes_links_and_files_are_refused(
    walt: Any, database: Database, settings: Settings, job: int, tmp_path: Path
) -> None:
    output = job_dir(settings, job) / "output"
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("not yours")
    (output / "dataset" / "train" / "leak").symlink_to(secret)
    (output / "alias").symlink_to(output / "dataset", target_is_directory=True)
    before = leftovers(database, settings)
    cases = {
        "../lab": 404,  # outside the output
        "alias/../../lab": 404,
        "missing": 404,
        "summary.json": 422,  # a file, not a folder
        "alias": 422,  # a link, even to a folder inside
        "dataset": 422,  # holds a link leading out
        "": 422,
    }
    for path, status in cases.items():
        answer = walt.post(API.format(job), json={"name": "escape", "path": path})
        assert answer.status_code == status, (path, answer.text)
    leak = walt.post(API.format(job), json={"name": "escape", "path": "dataset"}).json()
    assert "'train/leak'" in leak["detail"] and str(tmp_path) not in leak["detail"]
    assert leftovers(database, settings) == before
    (output / "dataset" / "train" / "leak").unlink()
    assert walt.post(API.format(job), json={"name": "ok", "path": "dataset"}).status_code == 201


def test_an_output_folder_that_is_a_link_is_not_found(
    walt: Any, database: Database, settings: Settings, job: int, tmp_path: Path
) -> None:
    output = job_dir(settings, job) / "output"
    output.rename(tmp_path / "moved")
    output.symlink_to(tmp_path / "moved", target_is_directory=True)
    assert walt.post(API.format(job), json={"name": "linked"}).status_code == 404


def test_the_quota_and_a_rollback_leave_nothing_behind(
    database: Database, settings: Settings, people: dict, job: int
) -> None:
    before = leftovers(database, settings)
    small = settings.model_copy(update={"dataset_project_quota_bytes": 100})
    with database.session() as db, pytest.raises(TooLarge, match="quota"):
        save_output_as_dataset(db, small, user=people["walt"], job_id=job, name="big")
    assert leftovers(database, settings) == before
    db = database.sessionmaker()
    try:
        saved = save_output_as_dataset(
            db, settings, user=people["walt"], job_id=job, name="undone", path="dataset"
        )
        assert saved.insight.recognised  # copied, row flushed ...
        db.rollback()  # ... and the transaction does not commit
    finally:
        db.close()
    assert leftovers(database, settings) == before


def test_the_job_page_form_saves_and_shows_errors_next_to_it(
    app: FastAPI, database: Database, people: dict, job: int
) -> None:
    with session_client(app, database, people["walt"]) as web:
        page = web.get(f"/jobs/{job}").text
        assert f'hx-post="/jobs/{job}/output-as-dataset"' in page and 'name="path"' in page
        saved = web.hx(
            "POST", f"/jobs/{job}/output-as-dataset", data={"name": "from-page", "path": "dataset"}
        )
        assert saved.status_code == 204
        assert saved.headers["HX-Redirect"].startswith("/datasets/")
        clash = web.hx("POST", f"/jobs/{job}/output-as-dataset", data={"name": "from-page"})
        assert clash.status_code == 409 and 'data-field="name"' in clash.text
        assert "already exists" in clash.text
    with session_client(app, database, people["rita"]) as reader:
        assert "output-as-dataset" not in reader.get(f"/jobs/{job}").text
        refused = reader.hx("POST", f"/jobs/{job}/output-as-dataset", data={"name": "nope"})
        assert refused.status_code == 403
