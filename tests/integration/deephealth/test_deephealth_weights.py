"""Registered weights (labyard.weights) through DeepHealth's API: listed under their
network's model, downloadable as ONNX, and a training starting from them gets them mounted
(fine-tuning); others' private weights stay hidden."""

from __future__ import annotations

import base64
import json

from labyard.datasets import service as datasets_service
from labyard.datasets.models import Dataset
from labyard.jobs.models import Job, JobStatus
from labyard.jobs.scheduler import Scheduler
from labyard.jobs.service import job_dir, transition
from tests.factories import make_job_row
from tests.integration.deephealth.conftest import DeepHealthWorld
from tests.integration.deephealth.test_walkthrough import CPU_ONLY, _poll
from tests.integration.weights.conftest import fake_torch_zip, tiny_onnx

OWNER = [{"username": "dhtest", "permission": "OWN"}]


def _train(dh: DeepHealthWorld, headers: dict[str, str], body: dict[str, object]) -> str:
    response = dh.http.post("/backend/train", json=body, headers=headers)
    assert response.status_code == 201, response.text
    pid: str = response.json()["process_id"]
    return pid


def test_registered_weights_list_download_and_fine_tune(dh: DeepHealthWorld) -> None:
    headers = dh.login("dhtest")
    project = dh.http.post(
        "/backend/projects", json={"name": "w", "task_id": 1, "users": OWNER}, headers=headers
    ).json()
    [lab] = [
        lab
        for lab in dh.http.get(f"/api/v1/labs?project_id={project['id']}", headers=headers).json()
        if lab["name"] == "dh-classif"
    ]
    dh.make_cheap(lab["id"])
    datasets = dh.http.get("/backend/datasets?task_id=1", headers=headers).json()
    digits = next(d for d in datasets if d["name"] == "digits")
    body = {
        "project_id": project["id"],
        "dataset_id": digits["id"],
        "weights_id": 1_000_001,
        "properties": [{"name": "Epochs", "value": "2"}],
    }
    pid = _train(dh, headers, body)
    scheduler = Scheduler(dh.settings, dh.database, inventory=CPU_ONLY)
    _poll(dh, scheduler, headers, pid, lambda s: "batch [4/4]" in s["process_data"])
    dh.http.post("/backend/stopProcess", json={"process_id": pid}, headers=headers)
    _poll(dh, scheduler, headers, pid, lambda s: s["process_status"] == "REVOKED")
    with dh.database.session() as db:
        [job] = db.query(Job).filter(Job.project_id == project["id"]).all()
        assert job.status == JobStatus.STOPPED
    (job_dir(dh.settings, job.id) / "output" / "model.onnx").write_bytes(tiny_onnx())
    registered = dh.http.post(
        "/api/v1/weights", json={"job_id": job.id, "name": "lenet-digits"}, headers=headers
    )
    assert registered.status_code == 201, registered.text
    weights_id = registered.json()["id"]

    trainings = dh.http.get(
        f"/backend/trainings?project_id={project['id']}&modelweights_id={weights_id}",
        headers=headers,
    )
    assert [t["celery_id"] for t in trainings.json()] == [pid]
    listed = dh.http.get(f"/backend/weights?model_id=1&dataset_id={digits['id']}", headers=headers)
    ours = [w for w in listed.json() if w["id"] == weights_id]
    assert ours and ours[0]["name"] == "lenet-digits" and ours[0]["dataset_id"] == digits["id"]
    assert ours[0]["users"] == [{"username": "dhtest", "permission": "OWN"}]
    assert not any(
        w["id"] == weights_id
        for w in dh.http.get("/backend/weights?model_id=2", headers=headers).json()
    )
    download = dh.http.get(
        f"/backend/weightsDownload?modelweights_id={weights_id}", headers=headers
    )
    assert download.status_code == 200 and download.content == tiny_onnx()

    # another user neither sees, downloads nor trains from them
    theirs = dh.login("stranger")
    assert dh.http.get(f"/backend/weights/{weights_id}", headers=theirs).status_code == 404
    assert not any(
        w["id"] == weights_id
        for w in dh.http.get("/backend/weights?model_id=1", headers=theirs).json()
    )
    hidden = dh.http.get(f"/backend/weightsDownload?modelweights_id={weights_id}", headers=theirs)
    assert hidden.status_code == 404
    refused = dh.http.delete(f"/backend/weights/{weights_id}", headers=theirs)
    assert refused.status_code == 404

    # fine-tuning: a lab without a `weights` param cannot; one with it gets them mounted
    cannot = dh.http.post(
        "/backend/train", json={**body, "weights_id": weights_id}, headers=headers
    )
    assert cannot.status_code == 400 and "no `weights` param" in cannot.json()["Error"]
    dh.make_cheap(lab["id"], weights="lenet-digits")
    pid = _train(dh, headers, {**body, "weights_id": weights_id})
    _poll(dh, scheduler, headers, pid, lambda s: "batch [4/4]" in s["process_data"])
    job_id = int(pid.rsplit("-", 1)[1], 16)
    log = dh.http.get(f"/api/v1/jobs/{job_id}/logs", headers=headers).text
    assert "Weights ['model.onnx']" in log, log[-2000:]
    dh.http.post("/backend/stopProcess", json={"process_id": pid}, headers=headers)
    _poll(dh, scheduler, headers, pid, lambda s: s["process_status"] == "REVOKED")

    # inference: weights with the template's model.pt run over a dataset as a Labyard job
    output = job_dir(dh.settings, job.id) / "output"
    (output / "model.pt").write_bytes(fake_torch_zip())
    classes = [str(n) for n in range(10)]
    (output / "confusion_matrix.json").write_text(json.dumps({"classes": classes}))
    torch_weights = dh.http.post(
        "/api/v1/weights",
        json={"job_id": job.id, "name": "lenet-pt", "path": "model.pt"},
        headers=headers,
    )
    assert torch_weights.status_code == 201, torch_weights.text
    infer = {"dataset_id": digits["id"], "project_id": project["id"], "task_manager": "CELERY"}
    onnx_only = dh.http.post(
        "/backend/inference", json={**infer, "modelweights_id": weights_id}, headers=headers
    )
    assert onnx_only.status_code == 400 and "cannot run inference" in onnx_only.json()["Error"]
    started = dh.http.post(
        "/backend/inference",
        json={**infer, "modelweights_id": torch_weights.json()["id"]},
        headers=headers,
    )
    assert started.status_code == 201, started.text
    pid = started.json()["process_id"]
    [listed_inference] = dh.http.get(
        f"/backend/inference?project_id={project['id']}", headers=headers
    ).json()
    assert listed_inference["celery_id"] == pid
    assert listed_inference["modelweights_id"] == torch_weights.json()["id"]
    assert listed_inference["dataset_id"] == digits["id"]
    status = dh.http.get(f"/backend/status?process_id={pid}", headers=headers).json()["status"]
    assert (status["process_type"], status["process_status"]) == ("inference", "PENDING")
    waiting = dh.http.get(f"/backend/output?process_id={pid}", headers=headers).json()
    assert waiting == {"result": "Process in execution. Try later for output results."}
    hidden = dh.http.get(f"/backend/output?process_id={pid}", headers=theirs)
    assert hidden.status_code == 404

    # its results (written here as the template's predict.py writes them) in DeepHealth's rows
    infer_id = int(pid.rsplit("-", 1)[1], 16)
    with dh.database.session() as db:
        digits_row = db.get(Dataset, digits["id"])
        assert digits_row is not None
        root = datasets_service.dataset_dir(dh.settings, digits_row)
        image = sorted((root / "test" / "3").iterdir())[0]
        infer_job = db.get(Job, infer_id)
        assert infer_job is not None
        for state in (JobStatus.STARTING, JobStatus.RUNNING, JobStatus.SUCCEEDED):
            transition(infer_job, state)
    rel = image.relative_to(root).as_posix()
    probabilities = ",".join("0.9" if c == "3" else "0.01" for c in classes)
    header = "path,predicted_class,confidence," + ",".join(f"p_{c}" for c in classes)
    predictions = job_dir(dh.settings, infer_id) / "output" / "predictions.csv"
    predictions.parent.mkdir(parents=True, exist_ok=True)
    predictions.write_text(f"{header}\n{rel},3,0.9,{probabilities}\n")
    [row] = dh.http.get(f"/backend/output?process_id={pid}", headers=headers).json()["outputs"]
    assert row[0] == image.name
    assert base64.b64decode(row[1]) == image.read_bytes()
    assert json.loads(row[2]) == [[0.9 if c == "3" else 0.01 for c in classes]]


def test_the_stock_lab_fine_tunes_from_registered_weights(dh: DeepHealthWorld) -> None:
    """The lab POST /projects made, unedited: /train with registered (not from-scratch)
    weights queues a job that names them in its `weights` param and mounts them."""
    headers = dh.login("dhtest")
    project = dh.http.post(
        "/backend/projects", json={"name": "stock", "task_id": 1, "users": OWNER}, headers=headers
    ).json()
    outputs = {"model.onnx": tiny_onnx()}
    source = make_job_row(
        dh.database, dh.settings, project["id"], outputs=outputs, params={"network": "lenet"}
    )
    registered = dh.http.post(
        "/api/v1/weights", json={"job_id": source, "name": "lenet-base"}, headers=headers
    )
    assert registered.status_code == 201, registered.text
    weights_id = registered.json()["id"]
    digits = next(
        d
        for d in dh.http.get("/backend/datasets?task_id=1", headers=headers).json()
        if d["name"] == "digits"
    )
    body = {
        "project_id": project["id"],
        "dataset_id": digits["id"],
        "weights_id": weights_id,
        "properties": [{"name": "Epochs", "value": "1"}],
    }
    pid = _train(dh, headers, body)
    with dh.database.session() as db:
        job = db.get(Job, int(pid.rsplit("-", 1)[1], 16))
        assert job is not None and job.lab_id is not None
        assert job.params["weights"] == "lenet-base" and job.params["network"] == "lenet"
        mounted = [d for d in job.datasets if d.get("kind") == "weights"]
        assert [d["weights_id"] for d in mounted] == [weights_id]
        assert "--weights lenet-base" in " ".join(job.command)
    # from scratch on the same lab: its `weights` param stays empty, nothing is mounted
    scratch = _train(dh, headers, {**body, "weights_id": 1_000_001})
    with dh.database.session() as db:
        job = db.get(Job, int(scratch.rsplit("-", 1)[1], 16))
        assert job is not None and job.params["weights"] == ""
        assert not [d for d in job.datasets if d.get("kind") == "weights"]
