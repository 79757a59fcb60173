"""mlsteam.yml's `output_dataset:`: when a job succeeds, a folder of its output becomes a
dataset of its project (the conversion template's result, with its insight), made by the
same code as "Save as dataset"; a refusal (name taken, quota, no folder) leaves the job
succeeded, writes nothing and says why in the job's reason; a failed job makes nothing; a
bad block is refused with its line when the lab's mlsteam.yml is saved."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from labyard.app import SCHEDULER_STEPS
from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as dataset_service
from labyard.datasets.models import Dataset
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import Job
from labyard.jobs.output_dataset import NOT_SAVED, auto_save_output
from labyard.jobs.scheduler import Scheduler
from labyard.jobs.service import job_dir
from tests.factories import make_dataset, make_job_row
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.labs import conftest as labs_conftest
from tests.integration.labs.conftest import LabWorld

world = labs_conftest.world  # the labs tests' owner, project and API client
CPU_ONLY = Inventory(gpus=(), cpus=2.0, memory_mb=8192)
IMAGES_PER_CLASS = 5


def png(shade: int, size: tuple[int, int] = (12, 9)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (shade, 255 - shade, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def tiny_dataset(world: LabWorld, name: str = "tiny") -> int:
    """A class-folder dataset of the project: classes a and b, 5 images each."""
    dataset_id = make_dataset(world.database, world.settings, world.owner, world.project_id, name)
    with world.database.session() as db:
        dataset = db.get(Dataset, dataset_id)
        assert dataset is not None
        folder = dataset_service.dataset_dir(world.settings, dataset)
    for label, base in (("a", 10), ("b", 150)):
        (folder / label).mkdir()
        for i in range(IMAGES_PER_CLASS):
            (folder / label / f"{i}.png").write_bytes(png(base + i))
    return dataset_id


def convert_lab(world: LabWorld, source_id: int) -> dict[str, Any]:
    """A lab from the conversion template with `source_id` attached instead of digits."""
    lab = world.create_lab("conv", template="convert", flavor="cpu")
    for attached in lab["datasets"]:
        url = f"/api/v1/labs/{lab['id']}/datasets/{attached['dataset_id']}"
        assert world.api.delete(url, headers=world.owner_headers).status_code == 200
    url = f"/api/v1/labs/{lab['id']}/datasets/{source_id}"
    answer = world.api.put(url, headers=world.owner_headers)
    assert answer.status_code == 200, answer.text
    return lab


def run_jobs(world: LabWorld, lab: dict[str, Any], params: dict[str, Any]) -> list[Job]:
    """Submit a grid, run it to the end under the scheduler with the app's steps, and wait
    for the saving thread to tell each succeeded job's outcome (a safety timeout)."""
    submit(world, lab, params)
    scheduler = Scheduler(world.settings, world.database, inventory=CPU_ONLY, steps=SCHEDULER_STEPS)
    run_until(scheduler, world.database, all_final, timeout=300)
    return wait_told(world, scheduler)


def submit(world: LabWorld, lab: dict[str, Any], params: dict[str, Any]) -> None:
    url = f"/api/v1/labs/{lab['id']}/sweeps"
    submitted = world.api.post(url, json={"params": params}, headers=world.owner_headers)
    assert submitted.status_code == 201, submitted.text


def wait_told(world: LabWorld, scheduler: Scheduler) -> list[Job]:
    """Tick until no job is marked to be saved (a safety timeout); the jobs, detached."""
    deadline = time.monotonic() + 60
    while True:
        with world.database.session() as db:
            jobs = list(db.scalars(select(Job).order_by(Job.id)))
            db.expunge_all()
        if not any(j.output_save_pending for j in jobs):
            return jobs
        assert time.monotonic() < deadline, [(j.id, j.reason) for j in jobs]
        scheduler.tick()
        time.sleep(0.05)


def datasets_named(world: LabWorld) -> dict[str, Dataset]:
    """The project's datasets by name (detached, loaded)."""
    with world.database.session() as db:
        rows = db.scalars(select(Dataset).where(Dataset.project_id == world.project_id))
        found = {d.name: d for d in rows}
        db.expunge_all()
    return found


def work_entries(settings: Settings) -> list[str]:
    return sorted(p.name for p in dataset_service.work_dir(settings).iterdir())


def test_a_conversion_job_ends_with_a_new_dataset_and_a_failed_one_makes_none(
    world: LabWorld,
) -> None:
    lab = convert_lab(world, tiny_dataset(world))
    # a grid of two: the second split does not sum to 100, so that job fails
    jobs = run_jobs(world, lab, {"image_size": 8, "split": ["train:60 val:20 test:20", "train:50"]})
    assert [j.status for j in jobs] == ["succeeded", "failed"], [j.reason for j in jobs]
    made = datasets_named(world)["tiny-converted"]
    assert jobs[0].reason == f"Output saved as dataset 'tiny-converted' (#{made.id})."
    assert made.project_id == world.project_id and made.created_by_id == world.owner.id
    assert made.file_count == 2 * IMAGES_PER_CLASS
    assert set(datasets_named(world)) == {"tiny", "tiny-converted"}  # none of job 2
    insight = world.api.get(f"/api/v1/datasets/{made.id}/insight", headers=world.owner_headers)
    parts = {s["name"]: s["images"] for s in insight.json()["splits"]}
    assert insight.json()["classes"] == ["a", "b"], insight.json()
    assert parts == {"train": 6, "val": 2, "test": 2}
    shown = world.api.get(f"/api/v1/jobs/{jobs[0].id}", headers=world.owner_headers).json()
    assert shown["status"] == "succeeded" and "tiny-converted" in shown["reason"]
    assert work_entries(world.settings) == []


def test_a_job_that_succeeded_just_before_a_restart_is_saved_after_it(world: LabWorld) -> None:
    """The mark lives in the database: a scheduler that stopped before its saving step
    ran (here: one without the step) leaves the job marked; the restarted server's
    scheduler saves it, once."""
    lab = convert_lab(world, tiny_dataset(world))
    submit(world, lab, {"image_size": 8})
    before = Scheduler(world.settings, world.database, inventory=CPU_ONLY, steps=())
    [job] = run_until(before, world.database, all_final, timeout=300)
    assert job.status == "succeeded" and job.output_save_pending and job.reason == ""
    assert set(datasets_named(world)) == {"tiny"}
    after = Scheduler(world.settings, world.database, inventory=CPU_ONLY, steps=SCHEDULER_STEPS)
    [job] = wait_told(world, after)
    made = datasets_named(world)["tiny-converted"]
    assert job.reason == f"Output saved as dataset 'tiny-converted' (#{made.id})."
    for _ in range(3):  # later ticks find nothing to save: no second dataset, same reason
        after.tick()
    time.sleep(0.2)
    assert set(datasets_named(world)) == {"tiny", "tiny-converted"}
    assert job_reason(world, job.id) == job.reason and work_entries(world.settings) == []


def test_a_taken_name_leaves_the_job_succeeded_and_says_why(world: LabWorld) -> None:
    lab = convert_lab(world, tiny_dataset(world))
    make_dataset(world.database, world.settings, world.owner, world.project_id, "mine")
    [job] = run_jobs(world, lab, {"image_size": 8, "dataset_name": "mine"})
    assert job.status == "succeeded"
    assert job.reason.startswith(NOT_SAVED) and "'mine' already exists" in job.reason
    assert datasets_named(world)["mine"].file_count == 0  # untouched
    assert set(datasets_named(world)) == {"tiny", "mine"}
    assert work_entries(world.settings) == []
    page = world.web_for(world.owner)
    try:
        assert "already exists" in page.get(f"/jobs/{job.id}").text
    finally:
        page.close()
    # Save as dataset still works under another name
    url = f"/api/v1/jobs/{job.id}/output-as-dataset"
    saved = world.api.post(
        url, json={"name": "mine-2", "path": "dataset"}, headers=world.owner_headers
    )
    assert saved.status_code == 201 and saved.json()["dataset"]["file_count"] == 10


@pytest.mark.parametrize(
    ("block", "line", "says"),
    [
        ("output_dataset: {path: ../up, name: x}\n", 4, "without '..'"),
        ("output_dataset:\n  path: dataset\n  name: '{nope}'\n", 6, "{nope}"),
        ("output_dataset:\n  folder: dataset\n", 5, "unknown key 'folder'"),
        ("output_dataset: {path: dataset}\n", 4, "needs a name"),
    ],
)
def test_a_bad_block_is_refused_with_its_line(
    world: LabWorld, block: str, line: int, says: str
) -> None:
    lab = world.create_lab("plain")
    url = f"/api/v1/labs/{lab['id']}/config"
    before = world.api.get(url, headers=world.owner_headers).json()
    text = "command: python train.py\nparams:\n  lr: 0.1\n" + block
    answer = world.api.put(url, json={"content": text}, headers=world.owner_headers)
    assert answer.status_code == 422 and f"line {line}" in answer.text and says in answer.text
    assert world.api.get(url, headers=world.owner_headers).json() == before


def snapshot_job(world: LabWorld, block: str, outputs: dict[str, bytes]) -> int:
    """A succeeded job row (no process) whose snapshot has `block`, created by the owner."""
    job_id = make_job_row(
        world.database,
        world.settings,
        world.project_id,
        outputs=outputs,
        params={"lr": 0.1, "dataset_name": "{source}-out"},
        created_by_id=world.owner.id,
        datasets=[{"dataset_id": None, "name": "src", "host_path": "/nowhere"}],
    )
    config = "command: python train.py\nparams:\n  lr: 0.1\n  dataset_name: x\n" + block
    (job_dir(world.settings, job_id) / "lab" / "mlsteam.yml").write_text(config)
    return job_id


def test_a_missing_folder_or_the_quota_writes_nothing(world: LabWorld) -> None:
    block = "output_dataset: {path: dataset, name: '{dataset_name}'}\n"
    missing = snapshot_job(world, block, {"other/1.png": png(1)})
    said = auto_save_output(world.settings, world.database, missing)
    assert said is not None and said.startswith(NOT_SAVED) and "dataset" in said
    big = snapshot_job(world, block, {"dataset/a/1.png": png(1, (300, 300))})
    world.settings.dataset_project_quota_bytes = 100
    said = auto_save_output(world.settings, world.database, big)
    assert said is not None and "quota" in said
    assert set(datasets_named(world)) == set() and work_entries(world.settings) == []
    assert job_reason(world, big) == said and job_reason(world, missing).startswith(NOT_SAVED)


def job_reason(world: LabWorld, job_id: int) -> str:
    with world.database.read_session() as db:
        job = db.get(Job, job_id)
        assert job is not None and job.status == "succeeded"
        return job.reason


def test_the_name_fills_params_and_the_source_and_a_job_without_block_is_left_alone(
    world: LabWorld,
) -> None:
    plain = make_job_row(world.database, world.settings, world.project_id, outputs={"a": b"1"})
    with world.database.session() as db:
        marked = db.get(Job, plain)
        assert marked is not None
        marked.output_save_pending = True
    assert auto_save_output(world.settings, world.database, plain) is None
    with world.database.read_session() as db:  # looked at: the mark goes, nothing is said
        marked = db.get(Job, plain)
        assert marked is not None and not marked.output_save_pending and marked.reason == ""
    block = "output_dataset: {path: dataset, name: x}\n"
    failed = make_job_row(
        world.database, world.settings, world.project_id, status="failed", reason="exit 1",
        output_save_pending=True, outputs={"dataset/a.png": png(3)},
    )  # fmt: skip
    (job_dir(world.settings, failed) / "lab" / "mlsteam.yml").write_text("command: x\n" + block)
    assert auto_save_output(world.settings, world.database, failed) is None
    with world.database.read_session() as db:  # a stray mark on a failed job goes too
        marked = db.get(Job, failed)
        assert marked is not None and not marked.output_save_pending
        assert marked.reason == "exit 1" and "x" not in datasets_named(world)
    block = "output_dataset: {path: dataset/, name: '{dataset_name}-{lr}'}\n"
    job_id = snapshot_job(world, block, {"dataset/a/1.png": png(1), "dataset/b/2.png": png(2)})
    said = auto_save_output(world.settings, world.database, job_id)
    made = datasets_named(world)["src-out-0.1"]
    assert said == f"Output saved as dataset 'src-out-0.1' (#{made.id})." and made.file_count == 2
    assert isinstance(world.owner, User) and made.created_by_id == world.owner.id
    assert Path(dataset_service.dataset_dir(world.settings, made), "a", "1.png").is_file()
