"""`kill -9` of the server while jobs run, then a restart: live jobs are adopted and
followed to the end with complete logs and metrics; nothing is launched twice; jobs that
vanished are marked; orphaned containers are removed."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.executors.base import LOST_REASON
from labyard.jobs.executors.docker import LABEL_INSTANCE, LABEL_JOB, instance_id
from labyard.jobs.models import Job, JobStatus, MetricPoint
from tests import services
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.jobs.test_docker_jobs import docker_lab
from tests.integration.jobs.test_local_jobs import FOUR_GPUS, submit
from tests.serving import labyard_servers, wait_until

WAIT_SCRIPT = """\
import os, sys, time
print("ARGS", sys.argv[1:], flush=True)
out = os.environ.get("MLSTEAM_OUTPUT_DIR", "/mlsteam/output")
with open(os.path.join(out, "starts.txt"), "a") as fh:
    fh.write("start\\n")
while not os.path.exists(os.path.join(out, "go")):
    time.sleep(0.05)
for step in range(1, 6):
    print(f"Train step={step} loss={1 / step:.3f}", flush=True)
"""


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start `labyard serve` (with its scheduler) on this test's database and data dir."""
    with labyard_servers(settings, tmp_path / "server.log", LABYARD_DOCKER_NETWORK="none") as start:
        yield start


def _job(database: Database, job_id: int) -> Job:
    with database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        return job


def _kill9_and_restart(
    database: Database,
    settings: Settings,
    lab: Path,
    server,
    make_scheduler,  # type: ignore[no-untyped-def]
) -> Job:
    [job_id] = submit(database, settings, lab)
    proc = server()
    folder = service.job_dir(settings, job_id)
    wait_until(lambda: "ARGS" in _text(folder / "job.log"), "the job to start")
    before = _job(database, job_id)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _job(database, job_id).status == JobStatus.RUNNING
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    scheduler.tick()  # takes the dead server's lease at once, adopts
    adopted = _job(database, job_id)
    assert adopted.status == JobStatus.RUNNING and adopted.external_id == before.external_id
    (folder / "output" / "go").touch()
    [job] = run_until(scheduler, database, all_final, timeout=120)
    assert job.status == JobStatus.SUCCEEDED and job.attempt == 1
    assert (folder / "output" / "starts.txt").read_text() == "start\n"  # launched once
    log = _text(folder / "job.log")
    assert log.count("ARGS") == 1 and "Train step=5 loss=0.200" in log
    with database.session() as db:
        xs = [p.x for p in db.query(MetricPoint).filter_by(job_id=job_id).order_by(MetricPoint.x)]
    assert xs == [1.0, 2.0, 3.0, 4.0, 5.0]  # complete, and none twice
    return job


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@pytest.mark.usefixtures("flavors")
def test_local_job_survives_server_kill9_and_is_adopted(
    database: Database, settings: Settings, tmp_path: Path, server, make_scheduler
) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "job.py").write_text(WAIT_SCRIPT)
    (lab / "mlsteam.yml").write_text(f"command: {sys.executable} job.py\n")
    _kill9_and_restart(database, settings, lab, server, make_scheduler)


@pytest.mark.usefixtures("flavors")
def test_local_job_gone_during_downtime_is_marked_lost(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    [job_id] = submit(database, settings, lab)
    gone = subprocess.Popen(["true"])
    started = psutil.Process(gone.pid).create_time()
    gone.wait()
    with database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        job.status, job.executor = JobStatus.RUNNING, "local"
        job.external_id = f"{gone.pid}:{started:.3f}"
    make_scheduler(inventory=FOUR_GPUS).tick()
    job = _job(database, job_id)
    assert (job.status, job.reason) == (JobStatus.FAILED, LOST_REASON)


@pytest.mark.docker
@pytest.mark.usefixtures("flavors")
def test_docker_job_survives_server_kill9_and_orphans_are_removed(
    database: Database, settings: Settings, tmp_path: Path, server, make_scheduler
) -> None:
    client = services.require(services.docker_client)
    image = services.require(lambda: services.ensure_image(services.TEST_IMAGE))
    settings.executor = "docker"
    instance = instance_id(settings)
    orphan = client.containers.create(
        image, ["sleep", "60"], labels={LABEL_JOB: "999", LABEL_INSTANCE: instance}
    )
    try:
        lab = docker_lab(tmp_path / "lab", WAIT_SCRIPT)
        _kill9_and_restart(database, settings, lab, server, make_scheduler)
        remaining = client.containers.list(
            all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"}
        )
        assert remaining == []  # the orphan and the finished job's container are gone
    finally:
        for container in client.containers.list(
            all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"}
        ):
            container.remove(force=True)
        del orphan
