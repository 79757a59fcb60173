"""`kill -9` of the server while its jobs run and wait on Slurm, then a restart: every job
is found again by its Slurm id and followed to the end with its whole log and metrics, and
nothing is submitted twice, not even an attempt whose Slurm id the database never got."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import placement, service
from labyard.jobs.executors.slurm import SlurmExecutor
from labyard.jobs.models import Job, MetricPoint
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.jobs.test_local_jobs import submit
from tests.serving import labyard_servers, wait_until


@pytest.fixture
def slurm_server(
    slurm_settings: Settings, tmp_path: Path
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start `labyard serve` (its scheduler on Slurm, start-up probe included)."""
    conf = {"LABYARD_EXECUTOR": "slurm", "LABYARD_SLURM_CONF": slurm_settings.slurm_conf}
    with labyard_servers(slurm_settings, tmp_path / "server.log", **conf) as start:
        yield start


def _rows(database: Database) -> list[Job]:
    with database.session() as db:
        return list(db.query(Job).order_by(Job.id))


@pytest.mark.usefixtures("slurm_flavors")
def test_slurm_jobs_survive_server_kill9_and_are_adopted_by_their_slurm_ids(
    database: Database, slurm_settings: Settings, tmp_path: Path, slurm_server,
    make_slurm_scheduler,
) -> None:  # fmt: skip
    lab = write_lab(tmp_path / "lab", params="  mode: [wait]\n  n: [1, 2, 3]\n")
    ids = submit(database, slurm_settings, lab, flavor="s3", inventory=None)
    proc = slurm_server()

    def two_run_one_waits() -> bool:
        rows = _rows(database)
        running = [j for j in rows if j.status == "running"]
        folders = [service.job_dir(slurm_settings, j.id) / "output" / "starts.txt" for j in running]
        waiting = [j for j in rows if j.status == "starting" and j.engine_state == "PENDING"]
        return len(running) == 2 and all(f.exists() for f in folders) and len(waiting) == 1

    wait_until(two_run_one_waits, "two jobs running on Slurm and one waiting", timeout=180)
    before = {j.id: j.external_id for j in _rows(database)}
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    scheduler = make_slurm_scheduler()
    scheduler.tick()  # takes the dead server's lease at once, adopts
    adopted = _rows(database)
    assert {j.id: j.external_id for j in adopted} == before
    assert sorted(j.status for j in adopted) == ["running", "running", "starting"]
    for job_id in ids:
        (service.job_dir(slurm_settings, job_id) / "output" / "go").touch()
    jobs = run_until(scheduler, database, all_final, timeout=180)
    assert [(j.status, j.attempt) for j in jobs] == [("succeeded", 1)] * 3
    executor = SlurmExecutor(slurm_settings)
    for job in jobs:
        folder = service.job_dir(slurm_settings, job.id)
        assert (folder / "output" / "starts.txt").read_text() == "start\n"  # ran once
        assert len(executor.slurm.queue(name=executor.job_name(job.id, 1))) == 1
        assert "Validation epoch=1 loss=0.5" in (folder / "job.log").read_text()
        with database.read_session() as db:
            xs = [p.x for p in db.query(MetricPoint).filter_by(job_id=job.id, name="Train_loss")]
        assert sorted(xs) == [1.0, 2.0, 3.0]  # complete, and none twice


@pytest.mark.usefixtures("slurm_flavors")
def test_an_attempt_submitted_before_a_crash_recorded_its_id_is_found_not_resubmitted(
    database: Database, slurm_settings: Settings, lab: Path, make_slurm_scheduler
) -> None:
    [job_id] = submit(database, slurm_settings, lab, flavor="s1", inventory=None)
    executor = SlurmExecutor(slurm_settings)
    with database.session() as db:  # the claim commits...
        _, spec = placement.claim_for_engine(db, slurm_settings, executor.name)
    assert spec is not None
    slurm_id = executor.submit(spec)  # ...sbatch runs, and the server dies before recording
    assert executor.submit(spec) == slurm_id  # asked again: the same Slurm job, not a second
    scheduler = make_slurm_scheduler()
    [job] = run_until(scheduler, database, all_final, timeout=120)
    assert (job.status, job.attempt, job.external_id) == ("succeeded", 1, slurm_id)
    assert len(executor.slurm.queue(name=executor.job_name(job_id, 1))) == 1
    folder = service.job_dir(slurm_settings, job_id)
    assert (folder / "output" / "starts.txt").read_text() == "start\n"


@pytest.mark.usefixtures("slurm_flavors")
def test_a_job_claimed_but_never_submitted_before_a_crash_is_queued_again_and_submitted_once(
    database: Database, slurm_settings: Settings, lab: Path, make_slurm_scheduler
) -> None:
    [job_id] = submit(database, slurm_settings, lab, flavor="s1", inventory=None)
    executor = SlurmExecutor(slurm_settings)
    with database.session() as db:  # the claim commits, and the server dies before sbatch
        _, spec = placement.claim_for_engine(db, slurm_settings, executor.name)
    assert spec is not None and _rows(database)[0].status == "starting"
    scheduler = make_slurm_scheduler()
    scheduler.adopt_all()  # the restart: no Slurm id, no Slurm job of its name
    [job] = _rows(database)
    assert (job.status, job.attempt, job.external_id, job.reason) == ("queued", 0, "", "")
    [job] = run_until(scheduler, database, all_final, timeout=120)
    assert (job.status, job.attempt) == ("succeeded", 1)
    assert len(executor.slurm.queue(name=executor.job_name(job_id, 1))) == 1
    folder = service.job_dir(slurm_settings, job_id)
    assert (folder / "output" / "starts.txt").read_text() == "start\n"
