"""Each training template as a platform job, end to end: a lab made from the template gets
its sample dataset attached, a grid submitted through the API runs under the real scheduler
and local executor, and the job ends with its metric series charted, its progress read (the
ETA's input) and its ONNX model in the output."""

from __future__ import annotations

import pytest

from labyard.jobs.inventory import Inventory
from labyard.jobs.scheduler import Scheduler
from labyard.jobs.service import job_dir
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.labs.conftest import LabWorld

CPU_ONLY = Inventory(gpus=(), cpus=2.0, memory_mb=8192)
CASES = {
    # template: (its sample dataset, short run params, series the charts must have)
    "segmentation": (
        "shapes",
        {"num_epoch": 2},
        {"Train_dice", "Validation_dice", "Validation_iou", "Test_dice", "Test_iou"},
    ),
    "regression": (
        "perceptions",
        {"num_epoch": 3},
        {"Train_loss", "Validation_r2", "Validation_mae", "Test_r2", "Test_mse"},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("template", sorted(CASES))
def test_template_runs_as_a_platform_job(world: LabWorld, template: str) -> None:
    sample, params, series = CASES[template]
    lab = world.create_lab(template[:3], template=template, flavor="cpu")
    assert [d["name"] for d in lab["datasets"]] == [sample]
    submitted = world.api.post(
        f"/api/v1/labs/{lab['id']}/sweeps", json={"params": params}, headers=world.owner_headers
    )
    assert submitted.status_code == 201, submitted.text
    [job] = run_until(
        Scheduler(world.settings, world.database, inventory=CPU_ONLY),
        world.database,
        all_final,
        timeout=600,
    )
    log = world.api.get(f"/api/v1/jobs/{job.id}/logs", headers=world.owner_headers).text
    assert job.status == "succeeded", log[-3000:]
    names = world.api.get(f"/api/v1/jobs/{job.id}/metrics", headers=world.owner_headers).json()
    assert series <= {s["name"] for s in names["series"] if s["points"] > 0}, names
    assert job.progress_fraction == 1.0 and job.progress_line.startswith("Progress")
    output = job_dir(world.settings, job.id) / "output"
    assert (output / "model.onnx").stat().st_size > 0 and (output / "model.pt").is_file()
