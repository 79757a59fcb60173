"""Fixtures of the jobs tests: a lab folder with a small real job script, test flavors,
and a scheduler driven tick by tick (LABYARD_GPUS-style faked GPUs)."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.models import FINAL_STATUSES, Job
from labyard.jobs.scheduler import Scheduler
from tests.factories import make_job_flavors

JOB_SCRIPT = """\
import os, signal, sys, time
args = sys.argv[1:]
print("ARGS", repr(args), flush=True)
print("ENV", os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("MLSTEAM_OUTPUT_DIR"))
steps = int(os.environ.get("STEPS", "3"))
mode = dict(zip(args[::2], args[1::2])).get("--mode", "ok")
with open(os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], "starts.txt"), "a") as fh:
    fh.write("start\\n")
if mode == "sleep":
    def term(*_):
        print("got SIGTERM, cleaning up", flush=True)
        sys.exit(42)
    signal.signal(signal.SIGTERM, term)
    print("sleeping", flush=True)
    time.sleep(120)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring SIGTERM", flush=True)
    time.sleep(120)
if mode == "wait":
    while not os.path.exists(os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], "go")):
        time.sleep(0.05)
for step in range(1, steps + 1):
    print(f"Train step={step} loss={1.0 / step:.4f} acc={step / 10:.2f}", flush=True)
    print(f"Progress epoch=1/1 step={step}/{steps}", flush=True)
print("Validation epoch=1 loss=0.5", flush=True)
print("garbage Train step=x loss=nan", flush=True)
with open(os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], "done.txt"), "w") as fh:
    fh.write("done")
sys.exit(3 if mode == "fail" else 0)
"""


def write_lab(folder: Path, params: str = "  mode: [ok]\n", command: str | None = None) -> Path:
    """A lab folder with job.py and an mlsteam.yml running it with this Python."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(JOB_SCRIPT)
    cmd = command or f"{shlex.quote(sys.executable)} job.py"
    (folder / "mlsteam.yml").write_text(f"command: {cmd}\nparams:\n{params}")
    return folder


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A lab folder whose job prints args, metrics and progress, then exits 0."""
    return write_lab(tmp_path / "lab")


@pytest.fixture
def flavors(database: Database) -> None:
    """Small flavors: tiny (no GPU), g1 and g2 (1 and 2 GPUs)."""
    make_job_flavors(database)


@pytest.fixture
def make_scheduler(settings: Settings, database: Database) -> Iterator[Callable[..., Scheduler]]:
    """Schedulers on the test's database; every live local job is killed at the end."""
    made: list[Scheduler] = []

    def factory(**kwargs: object) -> Scheduler:
        scheduler = Scheduler(settings, database, **kwargs)  # type: ignore[arg-type]
        made.append(scheduler)
        return scheduler

    yield factory
    for scheduler in made:
        with database.session() as db:
            for job in db.query(Job).filter(Job.external_id != ""):
                if job.status not in FINAL_STATUSES:
                    scheduler.executor.stop(job.id, job.external_id, force=True)


def run_until(
    scheduler: Scheduler,
    database: Database,
    done: Callable[[list[Job]], bool],
    timeout: float = 60.0,
) -> list[Job]:
    """Tick until `done(all jobs)` holds (a safety timeout, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        scheduler.tick()
        with database.session() as db:
            jobs = list(db.query(Job).order_by(Job.id))
        if done(jobs):
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(
                f"jobs did not reach the state: {[(j.id, j.status) for j in jobs]}"
            )
        time.sleep(0.05)


def all_final(jobs: list[Job]) -> bool:
    """Every job has finished."""
    return bool(jobs) and all(j.status in FINAL_STATUSES for j in jobs)
