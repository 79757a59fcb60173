"""Fine-tuning from registered weights, end to end: a tiny classification-template job on
ten digit classes is registered as weights; a lab whose mlsteam.yml declares a
`type: weights` param offers them, and its job (on three classes) gets them read-only at
$MLSTEAM_WEIGHTS_DIR/<name>, starts from them with the head replaced, and its model
registered in turn records them as its parent. Weights that do not fit fail clearly."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch

from labyard.datasets import service as datasets_service
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import Job
from labyard.jobs.scheduler import Scheduler
from labyard.jobs.service import job_dir
from labyard.searches.models import Search
from labyard.seed.digits import write_digits_dataset
from labyard.seed.perceptions import write_perceptions_dataset
from labyard.weights.detect import HDF5_MAGIC, inspect_model
from tests.factories import make_dataset, make_job_row
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.labs.conftest import LabWorld
from tests.integration.weights.conftest import OUTPUTS, tiny_onnx

TEMPLATE = Path(__file__).resolve().parents[3] / "lab_templates" / "classification"
CPU_ONLY = Inventory(gpus=(), cpus=2.0, memory_mb=8192)
TINY = "  network: lenet\n  num_epoch: 1\n  max_steps_per_epoch: 2\n  image_size: 12\n"
SOURCE = f"command: python train.py\nparams:\n{TINY}"
TUNED = (
    f"command: python train.py\nparams:\n{TINY}  dataset: three\n  weights: [digits10]\n"
    "params_definition:\n  weights: {type: weights, help: fine-tune from these}\n"
)


REGRESSION = (  # RGB 12 px lenet: the classification source must match all but its head
    "command: python train.py\nparams:\n  network: lenet\n  num_epoch: 1\n"
    "  max_steps_per_epoch: 2\n  image_size: 12\n  dataset: perc\n  weights: [rgb10]\n"
    "params_definition:\n  weights: {type: weights}\n"
)


def _run_lab(
    world: LabWorld,
    name: str,
    config: str,
    dataset: int | None = None,
    template: str = "classification",
) -> Job:
    lab = world.create_lab(name, template=template, flavor="cpu")
    h = world.owner_headers
    put = world.api.put(f"/api/v1/labs/{lab['id']}/config", json={"content": config}, headers=h)
    assert put.status_code == 200, put.text
    if dataset is not None:
        assert world.api.put(f"/api/v1/labs/{lab['id']}/datasets/{dataset}", headers=h).is_success
    fields = world.api.get(f"/api/v1/labs/{lab['id']}/parameters", headers=h).json()["fields"]
    sent = world.api.post(f"/api/v1/labs/{lab['id']}/sweeps", json={}, headers=h)
    assert sent.status_code == 201, sent.text
    scheduler = Scheduler(world.settings, world.database, inventory=CPU_ONLY)
    jobs = run_until(scheduler, world.database, all_final, timeout=300)
    job = jobs[-1]
    log = world.api.get(f"/api/v1/jobs/{job.id}/logs", headers=h).text
    assert job.status == "succeeded", log[-3000:]
    job.log_text, job.fields = log, fields  # type: ignore[attr-defined]
    return job


def _three_classes(world: LabWorld, tmp_path: Path) -> int:
    digits = tmp_path / "digits"
    write_digits_dataset(digits)
    dataset = make_dataset(world.database, world.settings, world.owner, world.project_id, "three")
    with world.database.session() as db:
        row = db.get(datasets_service.Dataset, dataset)
        folder = datasets_service.dataset_dir(world.settings, row)  # type: ignore[arg-type]
    for split in ("train", "test"):
        for digit in "012":
            shutil.copytree(digits / split / digit, folder / split / digit)
    return dataset


@pytest.mark.slow
def test_fine_tune_with_other_classes_replaces_the_head_and_records_lineage(
    world: LabWorld, tmp_path: Path
) -> None:
    h = world.owner_headers
    source = _run_lab(world, "src", SOURCE)
    base = world.api.post(
        "/api/v1/weights", json={"job_id": source.id, "name": "digits10"}, headers=h
    )
    assert base.status_code == 201, base.text
    assert len(base.json()["classes"]) == 10 and base.json()["files"] == ["model.onnx", "model.pt"]
    tuned = _run_lab(world, "tune", TUNED, _three_classes(world, tmp_path))
    [field] = [f for f in tuned.fields if f["name"] == "weights"]  # type: ignore[attr-defined]
    assert field["kind"] == "select" and "digits10" in field["options"]
    assert "Weights: re-initialised classifier.5.weight: shape (10, 84)" in tuned.log_text  # type: ignore[attr-defined]
    assert "Weights: loaded 8/10 tensors" in tuned.log_text  # type: ignore[attr-defined]
    [mount] = [m for m in tuned.datasets if m.get("kind") == "weights"]
    assert (mount["name"], mount["weights_id"]) == ("digits10", base.json()["id"])
    model = torch.load(
        job_dir(world.settings, tuned.id) / "output" / "model.pt", weights_only=False
    )
    assert model["class_names"] == ["0", "1", "2"]
    child = world.api.post("/api/v1/weights", json={"job_id": tuned.id, "name": "three"}, headers=h)
    assert child.status_code == 201, child.text
    assert child.json()["parent_id"] == base.json()["id"]
    assert child.json()["classes"] == ["0", "1", "2"]
    three = next(m["dataset_id"] for m in tuned.datasets if m["name"] == "three")
    assert child.json()["datasets"] == [{"id": three, "name": "three"}]  # its `dataset` param
    # the lab still names them: deleting is refused, saying why
    refused = world.api.delete(f"/api/v1/weights/{base.json()['id']}", headers=h)
    assert refused.status_code == 409 and "lab 'tune'" in refused.json()["detail"]


@pytest.mark.slow
def test_regression_fine_tunes_from_registered_classification_weights(world: LabWorld) -> None:
    h = world.owner_headers
    source = _run_lab(world, "rgb", SOURCE.replace("lenet\n", "lenet\n  channels: '3'\n"))
    base = world.api.post("/api/v1/weights", json={"job_id": source.id, "name": "rgb10"}, headers=h)
    assert base.status_code == 201, base.text
    perc = make_dataset(world.database, world.settings, world.owner, world.project_id, "perc")
    with world.database.session() as db:
        row = db.get(datasets_service.Dataset, perc)
        folder = datasets_service.dataset_dir(world.settings, row)  # type: ignore[arg-type]
    write_perceptions_dataset(folder / "perceptions")
    for item in (folder / "perceptions").iterdir():
        item.rename(folder / item.name)
    tuned = _run_lab(world, "reg", REGRESSION, perc, template="regression")
    log = tuned.log_text  # type: ignore[attr-defined]
    assert "Weights: re-initialised classifier.5.weight: shape (10, 84)" in log, log[-3000:]
    assert "Weights: loaded 8/10 tensors" in log and "Test " in log
    [mount] = [m for m in tuned.datasets if m.get("kind") == "weights"]
    assert (mount["name"], mount["weights_id"]) == ("rgb10", base.json()["id"])
    model = torch.load(
        job_dir(world.settings, tuned.id) / "output" / "model.pt", weights_only=False
    )
    [head] = [v for k, v in model["model"].items() if k.endswith("classifier.5.weight")]
    assert head.shape == (3, 84)  # three scores
    child = world.api.post("/api/v1/weights", json={"job_id": tuned.id, "name": "reg"}, headers=h)
    assert child.status_code == 201, child.text
    assert child.json()["parent_id"] == base.json()["id"]
    assert child.json()["files"] == ["model.onnx", "model.pt"]
    assert child.json()["datasets"] == [{"id": perc, "name": "perc"}]


def test_unknown_weights_are_refused_at_submission(world: LabWorld) -> None:
    lab = world.create_lab("nope", template="classification", flavor="cpu")
    h = world.owner_headers
    world.api.put(f"/api/v1/labs/{lab['id']}/config", json={"content": TUNED}, headers=h)
    sent = world.api.post(f"/api/v1/labs/{lab['id']}/sweeps", json={}, headers=h)
    assert sent.status_code == 422 and "No weights named 'digits10'" in sent.json()["detail"]
    bad = world.api.post(
        f"/api/v1/labs/{lab['id']}/sweeps", json={"params": {"weights": ["../x"]}}, headers=h
    )
    assert bad.status_code == 422
    search = {"search": {"metric": "Validation_acc", "trials": 2, "algorithm": "random"}}
    refused = world.api.post(f"/api/v1/labs/{lab['id']}/searches", json=search, headers=h)
    assert refused.status_code == 422 and "No weights named 'digits10'" in refused.text
    # once registered, a search's trials get them too
    job = make_job_row(world.database, world.settings, world.project_id, outputs=OUTPUTS)
    made = world.api.post("/api/v1/weights", json={"job_id": job, "name": "digits10"}, headers=h)
    assert made.status_code == 201, made.text
    with world.web_for(world.owner) as web:  # the Parameters tab offers them
        form = web.get(f"/labs/{lab['id']}/parameters")
        assert form.status_code == 200 and 'value="digits10"' in form.text
    started = world.api.post(f"/api/v1/labs/{lab['id']}/searches", json=search, headers=h)
    assert started.status_code == 201, started.text
    with world.database.session() as db:
        spec = db.get(Search, started.json()["id"]).job_spec  # type: ignore[union-attr]
    [mount] = [m for m in spec["datasets"] if m.get("kind") == "weights"]
    assert mount["weights_id"] == made.json()["id"]


# ------------------------------------------------ the template's side, in process


@pytest.fixture
def cls_checkpoint() -> object:
    if str(TEMPLATE) not in sys.path:
        sys.path.insert(0, str(TEMPLATE))
    from cls import checkpoint

    return checkpoint


def test_registered_weights_resolve_by_name_and_unfit_ones_fail_clearly(
    cls_checkpoint: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cls.models import build_network

    checkpoint = cls_checkpoint
    folder = tmp_path / "weights" / "base"
    folder.mkdir(parents=True)
    torch.save({"model": build_network("lenet", 1, 10, 12).state_dict()}, folder / "model.pt")
    (folder / "model.onnx").write_bytes(b"onnx")
    monkeypatch.setenv("MLSTEAM_WEIGHTS_DIR", str(tmp_path / "weights"))
    path = checkpoint.resolve_weights("base")  # type: ignore[attr-defined]
    assert path == folder / "model.pt"
    with pytest.raises(FileNotFoundError, match="no registered weights of that name"):
        checkpoint.resolve_weights("other")  # type: ignore[attr-defined]
    lines: list[str] = []
    fresh = checkpoint.load_initial_weights(build_network("lenet", 1, 3, 12), path, lines.append)  # type: ignore[attr-defined]
    assert fresh == ["classifier.5.weight", "classifier.5.bias"]
    wider = build_network("lenet", 1, 3, 16)  # another image size: the first linear differs
    with pytest.raises(ValueError, match="do not fit this network .* classifier.1.weight"):
        checkpoint.load_initial_weights(wider, path, lines.append)  # type: ignore[attr-defined]


def test_registering_an_onnx_model_keeps_the_weights_beside_it(tmp_path: Path) -> None:
    """A TensorFlow job's best.weights.h5 (and a PyTorch job's model.pt) travel with its
    model.onnx, so a job of that framework can start from the registered copy; links do not."""
    (tmp_path / "model.onnx").write_bytes(tiny_onnx())
    assert inspect_model(tmp_path, "model.onnx").copy == ["model.onnx"]
    (tmp_path / "best.weights.h5").write_bytes(HDF5_MAGIC + b"\0" * 8)
    assert inspect_model(tmp_path, "model.onnx").copy == ["model.onnx", "best.weights.h5"]
    (tmp_path / "elsewhere.pt").write_bytes(b"PK")
    (tmp_path / "model.pt").symlink_to(tmp_path / "elsewhere.pt")
    assert inspect_model(tmp_path, "model.onnx").copy == ["model.onnx", "best.weights.h5"]
