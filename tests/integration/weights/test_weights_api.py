"""Weights round trip over the API: register a finished job's model (copied, with its
metadata), list, get, patch, download; bad inputs are refused with a clear message and
leave no row and no file behind; delete is refused while a live job uses them."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
from sqlalchemy import func, select

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.service import job_dir
from labyard.weights import service
from labyard.weights.models import Weights
from tests.factories import make_job_row
from tests.integration.weights.conftest import OUTPUTS

API = "/api/v1/weights"


def leftovers(database: Database, settings: Settings) -> tuple[int, list[str]]:
    """Weights rows, and the entries of the store (temporary copies included)."""
    with database.session() as db:
        rows = db.scalar(select(func.count()).select_from(Weights)) or 0
    root = service.weights_root(settings)
    entries = sorted(p.name for p in root.iterdir() if p.name != ".work") if root.exists() else []
    return rows, entries + sorted(os.listdir(service.work_dir(settings)))


def test_register_list_get_patch_download_round_trip(
    walt: Any, job: int, project: int, settings: Settings
) -> None:
    answer = walt.post(API, json={"job_id": job, "name": "lenet-digits"})
    assert answer.status_code == 201, answer.text
    w = answer.json()
    assert w["name"] == "lenet-digits" and w["project_id"] == project
    assert (w["format"], w["framework"], w["task"]) == ("onnx", "pytorch", "classification")
    assert w["classes"] == ["cat", "dog"] and w["input_shape"] == [3, 8, 8]
    assert w["metrics"] == {"Train_loss": 0.25, "Validation_acc": 0.875}
    assert w["datasets"] == [{"id": None, "name": "digits"}]
    assert (w["source_job_id"], w["parent_id"], w["created_by"]) == (job, None, "walt")
    assert w["file_name"] == "model.onnx" and w["files"] == ["model.onnx", "model.pt"]
    assert w["size_bytes"] == len(OUTPUTS["model.onnx"]) + len(OUTPUTS["model.pt"])
    # copied: the store keeps the bytes when the job's folder goes
    shutil.rmtree(job_dir(settings, job))
    got = walt.get(f"{API}/{w['id']}/download")
    assert got.status_code == 200 and got.content == OUTPUTS["model.onnx"]
    assert "model.onnx" in got.headers["content-disposition"]
    assert [x["id"] for x in walt.get(API).json()] == [w["id"]]
    assert walt.get(API, params={"project_id": project}).json()[0]["name"] == "lenet-digits"
    assert walt.get(f"{API}/{w['id']}").json() == w
    patched = walt.patch(f"{API}/{w['id']}", json={"name": "lenet-v2", "description": "d"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["description"]) == ("lenet-v2", "d")
    assert walt.delete(f"{API}/{w['id']}").status_code == 204
    assert walt.get(f"{API}/{w['id']}").status_code == 404
    assert not (service.weights_root(settings) / str(w["id"])).exists()


def test_other_formats_are_detected(walt: Any, job: int) -> None:
    pt = walt.post(API, json={"job_id": job, "name": "pt", "path": "model.pt"}).json()
    assert (pt["format"], pt["files"], pt["task"]) == (
        "pytorch_state_dict",
        ["model.pt"],
        "classification",
    )
    assert pt["input_shape"] == [None, 8, 8]  # from the job's image_size
    saved = walt.post(API, json={"job_id": job, "name": "tf", "path": "saved_model/"})
    assert saved.status_code == 201, saved.text
    assert saved.json()["format"] == "savedmodel"
    assert sorted(saved.json()["files"]) == [
        "saved_model/saved_model.pb",
        "saved_model/variables/variables.index",
    ]
    zipped = walt.get(f"{API}/{saved.json()['id']}/download")
    assert zipped.status_code == 200 and zipped.content[:2] == b"PK"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"path": "../../lab/mlsteam.yml"}, 404, "No such file"),
        ({"path": "missing.onnx"}, 404, "No such file"),
        ({"path": "notes.txt"}, 422, "not a model file"),
        ({"path": "broken.onnx"}, 422, "not a valid ONNX file"),
        ({"path": "empty.onnx"}, 422, "not a valid ONNX file"),
        ({"path": "/etc/passwd"}, 404, "No such file"),
        ({"path": "confusion_matrix.json"}, 422, "not a model file"),
        ({"path": "saved_model/variables"}, 422, "without saved_model.pb"),
        ({"name": "x" * 101}, 422, "100"),
        ({"name": "bad name!"}, 422, "letters, digits"),
        ({"name": ""}, 422, "empty"),
    ],
)
def test_bad_inputs_are_refused_and_write_nothing(
    walt: Any,
    job: int,
    database: Database,
    settings: Settings,
    body: dict[str, Any],
    status: int,
    words: str,
) -> None:
    before = leftovers(database, settings)
    answer = walt.post(API, json={"job_id": job, "name": "w", **body})
    assert answer.status_code == status, answer.text
    assert words in answer.text
    assert leftovers(database, settings) == before


def test_a_link_leading_out_of_the_output_is_refused(
    walt: Any, job: int, settings: Settings, tmp_path: Any, database: Database
) -> None:
    secret = tmp_path / "secret.onnx"
    secret.write_bytes(OUTPUTS["model.onnx"])
    (job_dir(settings, job) / "output" / "escape.onnx").symlink_to(secret)
    before = leftovers(database, settings)
    answer = walt.post(API, json={"job_id": job, "name": "w", "path": "escape.onnx"})
    assert answer.status_code == 404
    assert leftovers(database, settings) == before


def test_unfinished_jobs_and_taken_names_are_refused(
    walt: Any, job: int, project: int, database: Database, settings: Settings
) -> None:
    running = make_job_row(database, settings, project, status="running", outputs=OUTPUTS)
    answer = walt.post(API, json={"job_id": running, "name": "w"})
    assert answer.status_code == 409 and "running" in answer.json()["detail"]
    assert walt.post(API, json={"job_id": job, "name": "w"}).status_code == 201
    before = leftovers(database, settings)
    again = walt.post(API, json={"job_id": job, "name": "w"})
    assert again.status_code == 409 and "already exist" in again.json()["detail"]
    assert leftovers(database, settings) == before
    second = walt.post(API, json={"job_id": job, "name": "w2"}).json()
    clash = walt.patch(f"{API}/{second['id']}", json={"name": "w"})
    assert clash.status_code == 409


def test_delete_is_refused_while_a_live_job_uses_them(
    walt: Any, job: int, project: int, database: Database, settings: Settings
) -> None:
    w = walt.post(API, json={"job_id": job, "name": "base"}).json()
    mount = {
        "dataset_id": None,
        "name": "base",
        "host_path": str(service.weights_root(settings) / str(w["id"])),
        "kind": "weights",
        "weights_id": w["id"],
    }
    user = make_job_row(database, settings, project, status="running", datasets=[mount])
    refused = walt.delete(f"{API}/{w['id']}")
    assert refused.status_code == 409
    assert f"job {user} uses them" in refused.json()["detail"]
    assert walt.get(f"{API}/{w['id']}/download").status_code == 200
    with database.session() as db:
        db.get(service.Job, user).status = "succeeded"  # type: ignore[union-attr]
    assert walt.delete(f"{API}/{w['id']}").status_code == 204


def test_weights_outlive_their_job(walt: Any, job: int, settings: Settings) -> None:
    w = walt.post(API, json={"job_id": job, "name": "keep"}).json()
    deleted = walt.delete(f"/api/v1/jobs/{job}")
    assert deleted.status_code == 204, deleted.text
    kept = walt.get(f"{API}/{w['id']}").json()
    assert (kept["source_job_id"], kept["source_job_name"]) == (None, w["source_job_name"])
    assert walt.get(f"{API}/{w['id']}/download").content == OUTPUTS["model.onnx"]
    page = walt.get(f"/weights/{w['id']}")
    assert page.status_code == 200 and "(deleted)" in page.text
