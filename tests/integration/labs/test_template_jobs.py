"""Each template as a platform job, end to end: a lab made from the template gets its
sample dataset attached, a grid submitted through the API runs under the real scheduler and
local executor, and the job ends with its metric series charted, its progress read (the
ETA's input) and its outputs written; the converter's output becomes a dataset."""

from __future__ import annotations

from typing import Any

import pytest

from labyard.jobs.inventory import Inventory
from labyard.jobs.models import Job
from labyard.jobs.scheduler import Scheduler
from labyard.jobs.service import job_dir
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.labs.conftest import LabWorld

CPU_ONLY = Inventory(gpus=(), cpus=2.0, memory_mb=8192)
MODELS = ("model.onnx", "model.pt")
CASES: dict[str, tuple[str, str, dict[str, Any], set[str], tuple[str, ...]]] = {
    # case: (template, its sample, short run params, series charted, output files)
    "segmentation": (
        "segmentation",
        "shapes",
        {"num_epoch": 2},
        {"Train_dice", "Validation_dice", "Validation_iou", "Test_dice", "Test_iou"},
        MODELS,
    ),
    "regression": (
        "regression",
        "perceptions",
        {"num_epoch": 3},
        {"Train_loss", "Validation_r2", "Validation_mae", "Test_r2", "Test_mse"},
        MODELS,
    ),
    "tensorflow": (
        "classification",
        "digits",
        {"framework": "tensorflow", "num_epoch": 2},
        {"Train_loss", "Validation_acc", "Test_acc"},
        ("model.onnx", "saved_model"),
    ),
    "convert": ("convert", "digits", {}, set(), ("summary.json", "dataset")),
}


def _run(world: LabWorld, case: str) -> Job:
    template, sample, params, _, _ = CASES[case]
    lab = world.create_lab(case[:3], template=template, flavor="cpu")
    assert [d["name"] for d in lab["datasets"]] == [sample]
    submitted = world.api.post(
        f"/api/v1/labs/{lab['id']}/sweeps", json={"params": params}, headers=world.owner_headers
    )
    assert submitted.status_code == 201, submitted.text
    scheduler = Scheduler(world.settings, world.database, inventory=CPU_ONLY)
    [job] = run_until(scheduler, world.database, all_final, timeout=600)
    log = world.api.get(f"/api/v1/jobs/{job.id}/logs", headers=world.owner_headers).text
    assert job.status == "succeeded", log[-3000:]
    return job


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_template_runs_as_a_platform_job(world: LabWorld, case: str) -> None:
    _, _, _, series, outputs = CASES[case]
    job = _run(world, case)
    names = world.api.get(f"/api/v1/jobs/{job.id}/metrics", headers=world.owner_headers).json()
    assert series <= {s["name"] for s in names["series"] if s["points"] > 0}, names
    assert job.progress_fraction == 1.0 and job.progress_line.startswith("Progress")
    output = job_dir(world.settings, job.id) / "output"
    assert all((output / name).exists() for name in outputs), sorted(output.iterdir())
    if case == "convert":  # its output becomes a dataset of the project, with its insight
        saved = world.api.post(
            f"/api/v1/jobs/{job.id}/output-as-dataset",
            json={"name": "digits-32", "path": "dataset"},
            headers=world.owner_headers,
        )
        assert saved.status_code == 201, saved.text
        parts = {s["name"]: s["images"] for s in saved.json()["insight"]["splits"]}
        assert set(parts) == {"train", "val", "test"} and sum(parts.values()) == 1797
