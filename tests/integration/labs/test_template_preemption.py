"""A classification template job preempted by a high-priority job goes back to the queue,
resumes from its checkpoint (MLSTEAM_RESUME=auto) as attempt 2 and ends with exactly the
weights of an uninterrupted run of the same params, under the real scheduler and local
executor on a CPU-only node."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from labyard.auth.models import User
from labyard.jobs import service
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import Job, JobAttempt
from labyard.jobs.scheduler import Scheduler
from labyard.jobs.service import job_dir
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.labs.conftest import LabWorld

TEMPLATES = Path(__file__).resolve().parents[3] / "lab_templates"
PARSE_ALL = """
import os
from cls.config import parse_args as cls_args
from reg.config import parse_args as reg_args
from seg.config import parse_args as seg_args
for os.environ["MLSTEAM_RESUME"] in ("auto", ""):
    for parse in (cls_args, reg_args, seg_args):
        print(parse([]).resume, parse(["--resume", ""]).resume, parse(["--resume", "x.pt"]).resume)
"""
TWO_AT_ONCE = Inventory(gpus=(), cpus=4.0, memory_mb=16384)  # two "cpu" flavor jobs
PARAMS = {"num_epoch": 3, "batch_size": 128}


def _submit(world: LabWorld, lab_id: int, priority: str) -> int:
    body = {"params": PARAMS, "priority": priority}
    got = world.api.post(f"/api/v1/labs/{lab_id}/sweeps", json=body, headers=world.owner_headers)
    assert got.status_code == 201, got.text
    jobs = world.api.get(
        "/api/v1/jobs", params={"sweep_id": got.json()["id"]}, headers=world.owner_headers
    ).json()
    return int(jobs[0]["id"])


def _quick_high_job(world: LabWorld, folder: Path) -> int:
    """A high-priority job of the "cpu" flavor that ends at once (a plain script)."""
    with world.database.session() as db:
        owner = db.get(User, world.owner.id)
        assert owner is not None
        sweep = service.create_sweep(
            db, owner, settings=world.settings, project_id=world.project_id,
            lab_dir=write_lab(folder), flavor="cpu", priority=1,
        )  # fmt: skip
        return int(db.scalars(select(Job.id).where(Job.sweep_id == sweep.id)).one())


def _weights(world: LabWorld, job_id: int) -> dict[str, torch.Tensor]:
    path = job_dir(world.settings, job_id) / "output" / "model.pt"
    model: dict[str, torch.Tensor] = torch.load(path, weights_only=False)["model"]
    return model


def _log(world: LabWorld, job_id: int) -> str:
    return world.api.get(f"/api/v1/jobs/{job_id}/logs", headers=world.owner_headers).text


@pytest.mark.slow
def test_a_preempted_template_job_resumes_to_the_same_weights(
    world: LabWorld, tmp_path: Path
) -> None:
    """The same params run twice side by side, the low one preempted after its first
    epoch by a high job that needs its CPUs (the normal one is not touched)."""
    lab = world.create_lab("pre", template="classification", flavor="cpu")
    settings = world.settings.model_copy(update={"preemption": True})
    scheduler = Scheduler(settings, world.database, inventory=TWO_AT_ONCE)
    straight, victim = _submit(world, lab["id"], "normal"), _submit(world, lab["id"], "low")
    checkpoint = job_dir(world.settings, victim) / "output" / "checkpoint.pt"
    run_until(scheduler, world.database, lambda _: checkpoint.is_file(), timeout=600)
    high = _quick_high_job(world, tmp_path / "quick")
    jobs = {j.id: j for j in run_until(scheduler, world.database, all_final, timeout=600)}
    assert {i: (jobs[i].status, jobs[i].attempt) for i in (straight, victim, high)} == {
        straight: ("succeeded", 1),
        victim: ("succeeded", 2),
        high: ("succeeded", 1),
    }, _log(world, victim)[-3000:]
    with world.database.session() as db:
        ended = db.query(JobAttempt).filter_by(job_id=victim).order_by(JobAttempt.number)
        assert [(a.outcome, a.reason, a.exit_code) for a in ended] == [
            ("preempted", f"preempted by job {high} (priority high)", 143),
            ("succeeded", "", 0),
        ]
    log = _log(world, victim)
    assert "Stopped by SIGTERM" in log and "Resume: continuing after epoch" in log, log[-3000:]
    a, b = _weights(world, straight), _weights(world, victim)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_templates_resume_defaults_to_mlsteam_resume(tmp_path: Path) -> None:
    """The flag parsing all templates share (tfcls too) takes --resume from MLSTEAM_RESUME,
    which a later attempt gets; a given --resume (even an empty one) wins."""
    for dataset in ("digits", "perceptions", "shapes"):
        (tmp_path / dataset / "train").mkdir(parents=True)
    (tmp_path / "perceptions" / "train.csv").write_text("")
    paths = [TEMPLATES / "classification", TEMPLATES / "regression", TEMPLATES / "segmentation"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSTEAM_")}
    env.update(PYTHONPATH=os.pathsep.join(map(str, paths)), MLSTEAM_INPUT_DIR=str(tmp_path))
    got = subprocess.run(
        [sys.executable, "-c", PARSE_ALL], env=env, capture_output=True, text=True, check=True
    )
    assert got.stdout.splitlines() == ["auto None x.pt"] * 3 + ["None None x.pt"] * 3, got.stderr
