"""Seed 000's walk-through, line by line, with a plain HTTP client: log in with a client id,
pick a project and task, list models, datasets and weights, read properties and allowed
values, train, poll status until it reports progress, stop. What /train starts is an
ordinary Labyard job (listed by /api/v1/jobs), run here by the real scheduler."""

from __future__ import annotations

import time
from typing import Any

from labyard.jobs.inventory import Inventory
from labyard.jobs.models import FINAL_STATUSES, Job
from labyard.jobs.scheduler import Scheduler
from tests.integration.deephealth.conftest import DeepHealthWorld

CPU_ONLY = Inventory(gpus=(), cpus=2.0, memory_mb=8192)
AUG = "SequentialAugmentationContainer\n    AugToFloat32 divisor=255\nend"


def _properties() -> list[dict[str, str]]:
    """The front-end's /train properties (seed 000's, with a short run)."""
    values = [
        ("Learning rate", "1e-4"),
        ("Loss function", "softmax_cross_entropy"),
        ("Metric", "accuracy"),
        ("Epochs", "3"),
        ("Input height", "28"),
        ("Input width", "28"),
        ("batch size", "16"),
        ("Training augmentations", AUG),
        ("Validation augmentations", AUG),
        ("Test augmentations", AUG),
    ]
    return [{"name": n, "value": v} for n, v in values]


def _poll(
    dh: DeepHealthWorld,
    scheduler: Scheduler,
    headers: dict[str, str],
    pid: str,
    until: Any,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Tick the scheduler and poll /status until `until(status)` (a safety timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        scheduler.tick()
        response = dh.http.get(f"/backend/status?process_id={pid}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if until(body["status"]):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_seed_000_walkthrough(dh: DeepHealthWorld) -> None:
    headers = dh.login("dhtest")
    get = lambda path: dh.http.get("/backend/" + path, headers=headers)  # noqa: E731

    # choose or create a project, setting a task
    me = [u for u in get("auth/users/").json() if u["username"] == "dhtest"]
    assert me and get("auth/user/").json()["username"] == "dhtest"
    created = dh.http.post(
        "/backend/projects",
        json={
            "name": "testProject",
            "task_id": 1,
            "users": [{"username": "dhtest", "permission": "OWN"}],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    project = created.json()
    assert project["task_id"] == 1
    assert project["users"] == [{"username": "dhtest", "permission": "OWN"}]
    assert project in get("projects").json()
    assert get("tasks").json() == [
        {"id": 1, "name": "Classification"},
        {"id": 2, "name": "Segmentation"},
    ]

    # the models of the task; ResNet50 is id 5 as in DeepHealth
    models = get("models?task_id=1").json()
    assert {"id": 5, "name": "ResNet50", "task_id": 1} in models
    assert all(m["task_id"] == 1 for m in models)
    lenet = next(m for m in models if m["name"] == "LeNet")

    # a dataset of the same task: the public digits sample, with its classes
    datasets = get("datasets?task_id=1").json()
    digits = next(d for d in datasets if d["name"] == "digits")
    assert digits["public"] is True and digits["users"] == []
    assert digits["classes"] == "0,1,2,3,4,5,6,7,8,9"
    assert all(d["task_id"] == 1 for d in datasets)
    assert any(d["name"] == "shapes" for d in get("datasets?task_id=2").json())

    # a pretraining of that model usable on that dataset
    weights = get(f"weights?model_id={lenet['id']}&dataset_id={digits['id']}").json()
    assert weights and weights[0]["model_id"] == lenet["id"] and weights[0]["public"] is True

    # the properties, and the model-dataset defaults
    properties = get("properties/").json()
    assert [p["name"] for p in properties][:3] == ["Learning rate", "Loss function", "Epochs"]
    assert {p["type"] for p in properties} == {"FLT", "LST", "INT", "STR"}
    height = get(
        f"allowedProperties?property_id=6&model_id={lenet['id']}&dataset_id={digits['id']}"
    )
    assert [(r["default_value"], r["dataset_id"]) for r in height.json()] == [("28", digits["id"])]
    epochs = get(f"allowedProperties?property_id=3&model_id={lenet['id']}").json()
    assert [(r["default_value"], r["allowed_value"]) for r in epochs] == [("3", ">0")]

    # launch a training: the project's DeepHealth lab (made by POST /projects) runs it
    labs = dh.http.get(f"/api/v1/labs?project_id={project['id']}", headers=headers).json()
    [lab] = [lab for lab in labs if lab["name"] == "dh-classif"]
    dh.make_cheap(lab["id"])
    body = {
        "dataset_id": digits["id"],
        "weights_id": weights[0]["id"],
        "properties": _properties(),
        "project_id": project["id"],
        "task_manager": "CELERY",
    }
    started = dh.http.post("/backend/train", json=body, headers=headers)
    assert started.status_code == 201, started.text
    assert started.json()["result"] == "ok"
    pid = started.json()["process_id"]
    assert started.json()["created"].endswith("Z")

    # an ordinary Labyard job, visible in the API (and so the pages)
    jobs = dh.http.get(f"/api/v1/jobs?project_id={project['id']}", headers=headers).json()
    [job] = jobs if isinstance(jobs, list) else jobs["jobs"]
    assert job["params"]["network"] == "lenet" and job["params"]["num_epoch"] == 3
    assert job["params"]["lr"] == 0.0001 and job["params"]["batch_size"] == 16
    queued = get(f"status?process_id={pid}").json()
    assert queued["status"]["process_status"] == "PENDING"

    # monitor: progress in DeepHealth's words
    scheduler = Scheduler(dh.settings, dh.database, inventory=CPU_ONLY)
    running = _poll(dh, scheduler, headers, pid, lambda s: "batch [4/4]" in s["process_data"])
    assert running["result"] == "ok"
    assert running["status"]["process_type"] == "training"
    assert running["status"]["process_status"] == "STARTED"
    assert running["status"]["process_data"] == (
        "Train - epoch [1/3] - batch [4/4] - loss=0.250 - metric=0.400"
    )
    full = get(f"status?process_id={pid}&full=true").json()["status"]["process_data"]
    assert full[0] == "Starting training" and len(full) == 5
    assert full[1] == "Train - epoch [1/3] - batch [1/4] - loss=1.000 - metric=0.100"
    log = dh.http.get(f"/api/v1/jobs/{job['id']}/logs", headers=headers).text
    assert "Reading dataset ['digits']" in log and "ARGS lenet 3 16 0.0001 28" in log

    # stop it: the job stop service, through the scheduler
    stopped = dh.http.post("/backend/stopProcess", json={"process_id": pid}, headers=headers)
    assert stopped.status_code == 200 and stopped.json() == {"result": "Training stopped"}
    ended = _poll(dh, scheduler, headers, pid, lambda s: s["process_status"] != "STARTED")
    assert ended["status"]["process_status"] == "REVOKED"
    with dh.database.session() as db:
        assert db.get(Job, job["id"]).status in FINAL_STATUSES  # type: ignore[union-attr]
    again = dh.http.post("/backend/stopProcess", json={"process_id": pid}, headers=headers)
    assert again.status_code == 404
    assert again.json() == {"result": "Process already stopped or non existing"}
    assert get(f"output?process_id={pid}").json() == {"outputs": ["model.onnx"]}
    trainings = get(f"trainings/?project_id={project['id']}").json()
    assert [t["celery_id"] for t in trainings] == [pid]
    settings = get(f"trainingSettings?training_id={trainings[0]['id']}").json()
    assert {"property_id": 3, "value": "3"}.items() <= settings[2].items()
    assert settings[-1]["dataset_id"] == digits["id"] and settings[-1]["model_id"] == lenet["id"]


def test_a_failed_training_reports_failure_and_its_output(dh: DeepHealthWorld) -> None:
    headers = dh.login("dhtest")
    project = dh.http.post(
        "/backend/projects",
        json={"name": "f", "task_id": 1, "users": [{"username": "dhtest", "permission": "OWN"}]},
        headers=headers,
    ).json()
    labs = dh.http.get(f"/api/v1/labs?project_id={project['id']}", headers=headers).json()
    dh.make_cheap(next(lab["id"] for lab in labs if lab["name"] == "dh-classif"))
    models = dh.http.get("/backend/models?task_id=1", headers=headers).json()
    resnet18 = next(m for m in models if m["name"] == "resnet18")
    [weights] = dh.http.get(f"/backend/weights?model_id={resnet18['id']}", headers=headers).json()
    datasets = dh.http.get("/backend/datasets?task_id=1", headers=headers).json()
    body = {
        "project_id": project["id"],
        "dataset_id": next(d["id"] for d in datasets if d["name"] == "digits"),
        "weights_id": weights["id"],
        "properties": [{"name": "Learning rate", "value": "0.01"}],
    }
    started = dh.http.post("/backend/train", json=body, headers=headers)
    assert started.status_code == 201, started.text
    pid = started.json()["process_id"]
    pending = dh.http.get(f"/backend/output?process_id={pid}", headers=headers).json()
    assert pending == {"result": "Process in execution. Try later for output results."}
    scheduler = Scheduler(dh.settings, dh.database, inventory=CPU_ONLY)
    failed = _poll(dh, scheduler, headers, pid, lambda s: s["process_status"] == "FAILURE")
    assert failed["result"] == "error"
    assert failed["status"]["process_data"] == "exited with code 3"
    output = dh.http.get(f"/backend/output?process_id={pid}", headers=headers).json()
    assert output == {"outputs": []}


def test_defaults_resolve_as_deephealth_for_the_real_segmentation_template(
    dh: DeepHealthWorld,
) -> None:
    headers = dh.login("dhtest")
    project = dh.http.post(
        "/backend/projects",
        json={"name": "s", "task_id": 2, "users": [{"username": "dhtest", "permission": "OWN"}]},
        headers=headers,
    ).json()
    assert project["task_id"] == 2
    shapes = next(
        d
        for d in dh.http.get("/backend/datasets?task_id=2", headers=headers).json()
        if d["name"] == "shapes"
    )
    assert shapes["ctype_gt"] == "GRAY" and shapes["classes"] is None
    segnet = next(m for m in dh.http.get("/backend/models?task_id=2", headers=headers).json())
    assert segnet["name"] == "SegNet"
    [weights] = dh.http.get(f"/backend/weights?model_id={segnet['id']}", headers=headers).json()
    body = {"project_id": project["id"], "dataset_id": shapes["id"], "weights_id": weights["id"]}
    started = dh.http.post("/backend/train", json={**body, "properties": []}, headers=headers)
    assert started.status_code == 201, started.text
    jobs = dh.http.get(f"/api/v1/jobs?project_id={project['id']}", headers=headers).json()
    [job] = jobs if isinstance(jobs, list) else jobs["jobs"]
    params = {
        k: job["params"][k] for k in ("network", "lr", "num_epoch", "batch_size", "image_size")
    }
    # SegNet's rows, and those of DeepHealth's ISIC segmentation, which `shapes` stands in for
    assert params == {
        "network": "unet_small",
        "lr": 0.001,
        "num_epoch": 3,
        "batch_size": 4,
        "image_size": 192,
    }
    with dh.database.session() as db:
        row = db.get(Job, job["id"])
        assert row is not None and [d["name"] for d in row.datasets] == ["shapes"]
