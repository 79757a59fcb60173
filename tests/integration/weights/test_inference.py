"""Inference jobs: registered classification weights (a real LeNet written by the
template's own export code) run over a dataset as an ordinary job; its predictions.csv
matches the model.onnx run directly with onnxruntime. Permissions and bad inputs."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as datasets_service
from labyard.db import Database
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import Job
from labyard.jobs.scheduler import Scheduler
from labyard.jobs.service import job_dir
from labyard.seed.digits import write_digits_dataset
from labyard.weights.inference import uploads_dir
from labyard.weights.models import Weights
from tests.factories import (
    WebClient,
    access_token_for,
    auth,
    make_dataset,
    make_job_row,
    make_user,
    permission_outcome,
    session_client,
)
from tests.integration.jobs.conftest import all_final, run_until

TEMPLATE = Path(__file__).resolve().parents[3] / "lab_templates" / "classification"
CLASSES = ["0", "1", "2"]
SIZE = 12
CPU_ONLY = Inventory(gpus=(), cpus=2.0, memory_mb=8192)
ROLES = ("anonymous", "nonmember", "READ", "WRITE", "OWN", "admin")
ACTING = {"nonmember": "eve", "READ": "rita", "WRITE": "walt", "OWN": "ana"}
NEED_READ = {**dict.fromkeys(ROLES, "ok"), "anonymous": "login", "nonmember": "404"}
PNG = b"\x89PNG\r\n\x1a\n"  # enough for the upload check; the jobs never run here
# The inference routes (the weights matrix, test_weights_permissions.py, leaves them to this
# file): every one needs READ on the weights (and the dataset or job it names).
INFERENCE_ROUTES = {
    ("POST", "/api/v1/weights/{weights_id}/inference"): NEED_READ,
    ("POST", "/api/v1/weights/{weights_id}/try"): NEED_READ,
    ("POST", "/weights/{weights_id}/inference"): NEED_READ,
    ("POST", "/api/v1/weights/{weights_id}/inference/uploads"): NEED_READ,
    ("POST", "/weights/{weights_id}/inference/uploads"): NEED_READ,
    ("POST", "/weights/{weights_id}/try"): NEED_READ,
    ("GET", "/weights/{weights_id}/try/{job_id}"): NEED_READ,
}


def template_modules() -> Any:
    """The template's cls package (models, export, data), imported from its folder."""
    if str(TEMPLATE) not in sys.path:
        sys.path.insert(0, str(TEMPLATE))
    from cls import data, export, models

    return data, export, models


def model_files(folder: Path) -> dict[str, bytes]:
    """model.pt and model.onnx of a freshly initialised LeNet on 1x12x12 images, 3 classes,
    plus the test report naming the classes (what train.py writes)."""
    _data, export, models = template_modules()
    torch.manual_seed(0)
    model = models.Classifier(models.build_network("lenet", 1, 3, SIZE), [0.5], [0.25]).eval()
    meta = export.model_meta(
        network="lenet", in_channels=1, classes=CLASSES, image_size=SIZE,
        mean=[0.5], std=[0.25], args={},
    )  # fmt: skip
    export.save_model(folder / "model.pt", model, meta)
    export.export_onnx(model, folder / "model.onnx", 1, SIZE)
    report = {"accuracy": 0.5, "classes": CLASSES}
    (folder / "confusion_matrix.json").write_text(json.dumps(report))
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def weights_id(
    database: Database, settings: Settings, project: int, ana: Any, tmp_path: Path
) -> int:
    """Weights 'digits3' of ana's project, registered from a finished job's real model."""
    made = tmp_path / "model"
    made.mkdir()
    outputs = model_files(made)
    job = make_job_row(
        database, settings, project, outputs=outputs,
        params={"framework": "pytorch", "network": "lenet", "image_size": SIZE},
    )  # fmt: skip
    answer = ana.post("/api/v1/weights", json={"job_id": job, "name": "digits3"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["task"] == "classification" and "model.pt" in answer.json()["files"]
    return int(answer.json()["id"])


def fill_dataset(database: Database, settings: Settings, owner: User, project: int) -> int:
    """Dataset 'few' of `project`: test/<0|1|2>/ with 4 digit images each, and a note."""
    source = Path(settings.data_dir) / "digits-src"
    if not source.exists():
        write_digits_dataset(source)
    dataset = make_dataset(database, settings, owner, project, "few")
    with database.session() as db:
        row = db.get(datasets_service.Dataset, dataset)
        folder = datasets_service.dataset_dir(settings, row)  # type: ignore[arg-type]
    for digit in CLASSES:
        (folder / "test" / digit).mkdir(parents=True)
        for image in sorted((source / "test" / digit).iterdir())[:4]:
            shutil.copy(image, folder / "test" / digit / image.name)
    (folder / "README.txt").write_text("not an image")
    return dataset


@pytest.fixture
def dataset(database: Database, settings: Settings, people: dict[str, User], project: int) -> int:
    """ana's dataset 'few' in her project (fill_dataset)."""
    return fill_dataset(database, settings, people["ana"], project)


def infer(client: Any, weights_id: int, **body: Any) -> Any:
    """POST an inference job of the weights over the body's dataset (the JSON API)."""
    return client.post(f"/api/v1/weights/{weights_id}/inference", json=body)


def run_job(settings: Settings, database: Database, job_id: int) -> Job:
    """Run every queued job to its end with the local executor; job `job_id`."""
    jobs = run_until(Scheduler(settings, database, inventory=CPU_ONLY), database, all_final, 300)
    return next(j for j in jobs if j.id == job_id)


def onnx_predictions(onnx_file: Path, root: Path) -> dict[str, tuple[str, np.ndarray]]:
    """path -> (class, probabilities) of model.onnx run directly on every image under root."""
    import onnxruntime

    data, _export, _models = template_modules()
    paths = data.list_images(root)
    x = (data.load_batch(paths, 1, SIZE).float() / 255.0).numpy()
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x})[0]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return {
        p.relative_to(root).as_posix(): (CLASSES[int(row.argmax())], row)
        for p, row in zip(paths, probs, strict=True)
    }


def read_predictions(settings: Settings, job_id: int) -> list[dict[str, str]]:
    with (job_dir(settings, job_id) / "output" / "predictions.csv").open() as fh:
        return list(csv.DictReader(fh))


def try_image(ana: Any, settings: Settings, weights_id: int, files: Any) -> tuple[Any, Path]:
    """POST "try one image"; the answer and the new upload folder it made."""
    before = set(uploads_dir(settings).glob("*"))
    answer = ana.post(f"/api/v1/weights/{weights_id}/try", files=files)
    assert answer.status_code == 201, answer.text
    [folder] = set(uploads_dir(settings).glob("*")) - before
    return answer, folder


def job_folders(settings: Settings) -> list[str]:
    return sorted(p.name for p in (Path(settings.data_dir) / "jobs").iterdir())


def job_count(database: Database) -> int:
    with database.session() as db:
        return db.query(Job).count()


def test_inference_job_matches_onnxruntime_on_the_same_images(
    app: FastAPI,
    database: Database,
    settings: Settings,
    people: dict[str, User],
    project: int,
    ana: Any,
    weights_id: int,
    dataset: int,
) -> None:
    body = {"dataset_id": dataset, "path": "test", "flavor": "cpu"}
    answer = infer(ana, weights_id, **body)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["status"] == "queued" and job["flavor"] == "cpu" and job["project_id"] == project
    assert ana.get(f"/api/v1/jobs/{job['id']}").json()["id"] == job["id"]
    done = run_job(settings, database, job["id"])
    log = ana.get(f"/api/v1/jobs/{job['id']}/logs").text
    assert done.status == "succeeded", log[-3000:]
    rows = read_predictions(settings, job["id"])
    with database.session() as db:
        folder = datasets_service.dataset_dir(settings, db.get(datasets_service.Dataset, dataset))  # type: ignore[arg-type]
    weights = ana.get(f"/api/v1/weights/{weights_id}").json()
    onnx_file = Path(settings.data_dir) / "weights" / str(weights["id"]) / "model.onnx"
    expected = onnx_predictions(onnx_file, folder / "test")
    assert sorted(r["path"] for r in rows) == sorted(expected) and len(rows) == 12
    for row in rows:
        klass, probs = expected[row["path"]]
        got = np.array([float(row[f"p_{c}"]) for c in CLASSES])
        assert np.allclose(got, probs, atol=1e-4), (row, probs)
        if np.sort(probs)[-1] - np.sort(probs)[-2] > 1e-4:  # a clear winner
            assert row["predicted_class"] == klass
        assert abs(float(row["confidence"]) - probs.max()) < 1e-4
    page = session_client(app, database, people["ana"])
    shown = page.get(f"/jobs/{job['id']}/view/predictions.csv").text  # the job's file viewer
    assert "viewer-table" in shown and "predicted_class" in shown and "<td>0/" in shown


def test_try_one_image_runs_a_job_on_that_image(
    app: FastAPI,
    database: Database,
    settings: Settings,
    people: dict[str, User],
    ana: Any,
    weights_id: int,
) -> None:
    source = Path(settings.data_dir) / "digits-src"
    write_digits_dataset(source)
    image = next((source / "test" / "1").iterdir())
    files = {"image": ("one.png", image.read_bytes(), "image/png")}
    answer, upload = try_image(ana, settings, weights_id, files)
    # a second try deleted while queued leaves its folder: an orphan, swept once an hour old
    deleted, orphan = try_image(ana, settings, weights_id, files)
    assert ana.delete(f"/api/v1/jobs/{deleted.json()['id']}").status_code == 204
    assert orphan.is_dir()
    hours_ago = time.time() - 7200
    os.utime(orphan, (hours_ago, hours_ago))
    young = uploads_dir(settings) / ("0" * 32)  # another upload whose job is not made yet
    young.mkdir()
    kept = sorted(p.name for p in (Path(settings.data_dir) / "weights").rglob("*"))
    done = run_job(settings, database, answer.json()["id"])
    assert done.status == "succeeded"
    assert not upload.exists() and not orphan.exists()  # the job's upload, and the orphan
    rest = sorted(p.name for p in (Path(settings.data_dir) / "weights").rglob("*"))
    assert rest == sorted(n for n in kept if n not in {upload.name, orphan.name, "one.png"})
    assert young.is_dir()  # nothing else went: the weights, the young upload
    [row] = read_predictions(settings, answer.json()["id"])
    assert row["path"] == "one.png" and row["predicted_class"] in CLASSES
    page = session_client(app, database, people["ana"])
    shown = page.get(f"/weights/{weights_id}/try/{answer.json()['id']}").text  # what htmx polls
    assert f"Predicted class <strong>{row['predicted_class']}</strong>" in shown
    assert "hx-trigger" not in shown  # the job ended: no more polling
    job_page = page.get(f"/jobs/{answer.json()['id']}")
    assert job_page.status_code == 200 and "infer-digits3" in job_page.text


def test_permissions_outsider_reader_and_public_weights(
    database: Database,
    settings: Settings,
    people: dict[str, User],
    project: int,
    ana: Any,
    rita: Any,
    eve: Any,
    weights_id: int,
    dataset: int,
) -> None:
    body = {"dataset_id": dataset, "path": ""}
    assert infer(eve, weights_id, **body).status_code == 404  # neither weights nor dataset are hers
    # rita reads the project: she may run them, the job lands in her own project
    answer = infer(rita, weights_id, **body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["project_id"] == people["rita"].default_project_id
    # ...but not submit into the project she only reads
    refused = infer(rita, weights_id, **body, project_id=project)
    assert refused.status_code == 403, refused.text
    # public weights: eve runs them over her own dataset, but still not over ana's
    assert ana.patch(f"/api/v1/weights/{weights_id}", json={"public": True}).status_code == 200
    own = fill_dataset(database, settings, people["eve"], people["eve"].default_project_id)  # type: ignore[arg-type]
    mine = infer(eve, weights_id, dataset_id=own)
    assert mine.status_code == 201, mine.text
    assert mine.json()["project_id"] == people["eve"].default_project_id
    theirs = infer(eve, weights_id, **body)
    assert theirs.status_code == 422 and theirs.json()["field"] == "dataset_id"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dataset_id": 99999}, "dataset_id"),
        ({"path": "../../weights"}, "path"),
        ({"path": "test/9"}, "path"),
        ({"flavor": "nope"}, "flavor"),
    ],
)
def test_bad_inference_requests_write_nothing(
    database: Database,
    settings: Settings,
    ana: Any,
    weights_id: int,
    body: dict[str, Any],
    field: str,
    dataset: int,
) -> None:
    before, folders = job_count(database), job_folders(settings)
    answer = infer(ana, weights_id, **{"dataset_id": dataset, **body})
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert job_count(database) == before and job_folders(settings) == folders
    scratch = Path(settings.data_dir) / "weights" / ".work"
    assert not [p for p in scratch.iterdir() if p.name.startswith("infer-")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.4 not an image", "Not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"0" * (10 << 20), "larger"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_kept(
    database: Database, settings: Settings, ana: Any, weights_id: int, data: bytes, message: str
) -> None:
    files = {"image": ("x.png", data, "image/png")}
    answer = ana.post(f"/api/v1/weights/{weights_id}/try", files=files)
    assert answer.status_code in (413, 422), answer.text
    assert message in answer.text or answer.status_code == 413
    assert job_count(database) == 1  # the registered job only
    assert not uploads_dir(settings).exists() or not any(uploads_dir(settings).iterdir())


def _request(path: str, dataset: int) -> dict[str, Any]:
    """The body of one inference route (valid for every role that may use it)."""
    if path.endswith("/try"):
        return {"files": {"image": ("a.png", PNG + b"x", "image/png")}}
    if path.endswith("/uploads"):
        return {"files": [("files", (n, PNG + b"x", "image/png")) for n in ("a.png", "b.png")]}
    if path.endswith("/inference"):
        body = {"dataset_id": dataset, "path": "test"}
        return {"json": body} if path.startswith("/api/") else {"data": body}
    return {}


@pytest.mark.parametrize("route", list(INFERENCE_ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_each_role_gets_what_the_inference_matrix_says(
    app: FastAPI,
    database: Database,
    people: dict[str, User],
    ana: Any,
    weights_id: int,
    route: tuple[str, str],
    dataset: int,
) -> None:
    method, path = route
    job = infer(ana, weights_id, dataset_id=dataset)
    url = path.replace("{weights_id}", str(weights_id)).replace("{job_id}", str(job.json()["id"]))
    users = {role: people[name] for role, name in ACTING.items()}
    users["admin"] = make_user(database, "boss", admin=True)
    got = {}
    for role in ROLES:
        if path.startswith("/api/"):
            client: Any = TestClient(app)
            if role != "anonymous":
                client.headers.update(auth(access_token_for(app, database, users[role])))
        elif role == "anonymous":
            client = WebClient(app)
            client.refresh_csrf("/login")
        else:
            client = session_client(app, database, users[role])
        with client:
            kwargs = _request(path, dataset)
            if path.startswith("/api/"):
                response = client.request(method, url, **kwargs)
            else:
                response = client.hx(method, url, **kwargs) if method == "POST" else client.get(url)
            got[role] = permission_outcome(response)
    assert got == INFERENCE_ROUTES[route]


def test_weights_page_offers_inference_and_its_form_opens_the_job(
    app: FastAPI,
    database: Database,
    people: dict[str, User],
    weights_id: int,
    dataset: int,
) -> None:
    page = session_client(app, database, people["ana"])
    html = page.get(f"/weights/{weights_id}").text
    assert 'id="weights-inference-form"' in html and f'value="{dataset}"' in html
    assert 'id="weights-try-form"' in html
    bad = page.hx(
        "POST", f"/weights/{weights_id}/inference", data={"dataset_id": dataset, "path": "../x"}
    )
    assert bad.status_code == 422 and "path" in bad.text
    sent = page.hx(
        "POST", f"/weights/{weights_id}/inference", data={"dataset_id": dataset, "path": "test"}
    )
    assert sent.status_code == 204 and sent.headers["hx-redirect"].startswith("/jobs/")
    tried = page.hx(
        "POST", f"/weights/{weights_id}/try", files={"image": ("a.png", PNG, "image/png")}
    )
    assert tried.status_code == 200 and 'id="weights-try-job"' in tried.text
    assert 'hx-trigger="every 2s"' in tried.text  # polls until the job ends
    refused = page.hx(
        "POST", f"/weights/{weights_id}/try", files={"image": ("a.txt", b"hello", "text/plain")}
    )
    assert refused.status_code == 422 and "Not an image" in refused.text


def test_cli_infer_prints_the_job_and_refusals(
    cli: Any,
    weights_id: int,
    dataset: int,
) -> None:
    cli.login()
    made = cli("infer", str(weights_id), "--dataset", str(dataset), "--path", "test", "--json")
    assert made.exit_code == 0, made.output
    job = json.loads(made.stdout)
    again = cli.api("GET", f"/api/v1/jobs/{job['id']}").json()
    assert set(job) == set(again) and job["name"] == again["name"]  # the API's JSON
    assert job["status"] == "queued" and job["flavor"] == "cpu"
    table = cli("infer", str(weights_id), "--dataset", str(dataset))
    assert table.exit_code == 0 and "queued" in table.stdout
    refused = cli("infer", str(weights_id), "--dataset", str(dataset), "--path", "../..")
    assert refused.exit_code == 1 and "No file or folder" in refused.stderr


def test_segmentation_weights_write_masks(
    database: Database,
    settings: Settings,
    project: int,
    ana: Any,
    tmp_path: Path,
    dataset: int,
) -> None:
    """A segmenter's weights (told by their Dice/IoU metrics) write one mask per image."""
    seg_root = TEMPLATE.parent / "segmentation"
    template_modules()
    sys.path.insert(0, str(seg_root))
    try:
        from seg.export import build_model
    finally:
        sys.path.remove(str(seg_root))
    meta = {
        "network": "unet_small", "in_channels": 1, "num_classes": 2, "class_names": ["bg", "fg"],
        "image_size": 16, "mean": [0.5], "std": [0.25], "palette": [[0, 0, 0], [255, 255, 255]],
        "mask_mode": "binary",
    }  # fmt: skip
    torch.manual_seed(0)
    model = build_model(meta).eval()
    torch.save({"model": model.state_dict(), **meta}, tmp_path / "model.pt")
    outputs = {"model.pt": (tmp_path / "model.pt").read_bytes()}
    job = make_job_row(
        database, settings, project, outputs=outputs, params={"network": "unet_small"},
        points={"Validation_iou": [(1, 0.5)], "Validation_dice": [(1, 0.6)]},
    )  # fmt: skip
    made = ana.post("/api/v1/weights", json={"job_id": job, "name": "seg", "path": "model.pt"})
    assert made.status_code == 201, made.text
    answer = infer(ana, made.json()["id"], dataset_id=dataset, path="test/1")
    assert answer.status_code == 201, answer.text
    done = run_job(settings, database, answer.json()["id"])
    log = ana.get(f"/api/v1/jobs/{done.id}/logs").text
    assert done.status == "succeeded", log[-3000:]
    masks = job_dir(settings, done.id) / "output" / "masks"
    assert len(list(masks.glob("*.png"))) == 4


def test_weights_without_a_model_pt_are_refused_clearly(
    database: Database,
    settings: Settings,
    project: int,
    ana: Any,
    tmp_path: Path,
    dataset: int,
) -> None:
    (tmp_path / "m").mkdir()
    job = make_job_row(database, settings, project, outputs=model_files(tmp_path / "m"))
    made = ana.post("/api/v1/weights", json={"job_id": job, "name": "onnx-only"})
    assert made.status_code == 201, made.text
    (Path(settings.data_dir) / "weights" / str(made.json()["id"]) / "model.pt").unlink()
    with database.session() as db:  # as weights registered from a lone model.onnx are
        db.get(Weights, made.json()["id"]).files = ["model.onnx"]  # type: ignore[union-attr]
    before = job_count(database)
    answer = infer(ana, made.json()["id"], dataset_id=dataset)
    assert answer.status_code == 422 and "hold no model.pt" in answer.json()["detail"]
    assert job_count(database) == before
