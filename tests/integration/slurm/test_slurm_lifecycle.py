"""Stop, requeue and Slurm's own ends on the real test cluster: stop is SIGTERM through
scancel then a kill after the grace period; a job waiting in Slurm is cancelled at once; a
node failure requeues the job as a new attempt; TIMEOUT and OUT_OF_MEMORY are the reason."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.models import Job
from labyard.jobs.scheduler import Scheduler
from tests import services
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.jobs.test_local_jobs import submit
from tests.slurm_cluster import SlurmCluster

HOG_SCRIPT = """\
import time
print("allocating", flush=True)
hog = []
for _ in range(200):
    hog.append(bytearray(16 * 1024 * 1024))
    time.sleep(0.02)
print("survived", flush=True)
"""


def _stop(database: Database, job_id: int) -> None:
    with database.session() as db:
        ana = db.query(service.User).filter_by(username="ana").one()
        service.stop_job(db, ana, job_id)


def _until(status: str, job_id: int) -> Callable[[list[Job]], bool]:
    return lambda jobs: any(j.id == job_id and j.status == status for j in jobs)


def _started(folder: Path) -> Callable[[list[Job]], bool]:
    log = folder / "job.log"
    return lambda jobs: (
        log.exists() and ("sleeping" in log.read_text() or "ignoring" in log.read_text())
    )


@pytest.mark.usefixtures("slurm_flavors")
@pytest.mark.parametrize(
    ("mode", "said", "code"), [("sleep", "got SIGTERM", 42), ("stubborn", "ignoring SIGTERM", 137)]
)
def test_stop_sends_sigterm_through_scancel_then_kills_after_the_grace_period(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler,
    mode: str, said: str, code: int,
) -> None:  # fmt: skip
    lab = write_lab(tmp_path / "lab", params=f"  mode: [{mode}]\n")
    [job_id] = submit(database, slurm_settings, lab, flavor="s1", inventory=None)
    scheduler: Scheduler = make_slurm_scheduler()
    run_until(scheduler, database, _started(service.job_dir(slurm_settings, job_id)), timeout=120)
    _stop(database, job_id)
    [job] = run_until(scheduler, database, all_final, timeout=120)
    assert (job.status, job.reason, job.exit_code) == ("stopped", "stopped by user", code)
    log = (service.job_dir(slurm_settings, job_id) / "job.log").read_text()
    assert said in log


@pytest.mark.usefixtures("slurm_flavors")
def test_a_job_waiting_in_slurm_is_cancelled_at_once(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler
) -> None:
    lab = write_lab(tmp_path / "lab", params="  mode: [wait]\n  n: [1, 2, 3]\n")
    ids = submit(database, slurm_settings, lab, flavor="s4", inventory=None)
    scheduler: Scheduler = make_slurm_scheduler()
    run_until(scheduler, database, _until("starting", ids[2]), timeout=120)
    run_until(scheduler, database, lambda jobs: jobs[2].engine_state == "PENDING", timeout=60)
    _stop(database, ids[2])
    jobs = run_until(scheduler, database, _until("stopped", ids[2]), timeout=60)
    assert jobs[2].started_at is None and jobs[2].engine_state == "CANCELLED"
    assert not (service.job_dir(slurm_settings, ids[2]) / "job.log").exists()
    for job_id in ids[:2]:
        (service.job_dir(slurm_settings, job_id) / "output" / "go").touch()
    jobs = run_until(scheduler, database, all_final, timeout=120)
    assert [j.status for j in jobs] == ["succeeded", "succeeded", "stopped"]


@pytest.mark.usefixtures("slurm_flavors")
def test_a_node_failure_requeues_the_job_as_a_new_attempt(
    database: Database, slurm_settings: Settings, lab: Path, tmp_path: Path,
    make_slurm_scheduler, cluster: SlurmCluster,
) -> None:  # fmt: skip
    lab = write_lab(tmp_path / "lab", params="  mode: [wait]\n")
    [job_id] = submit(database, slurm_settings, lab, flavor="s1", inventory=None)
    folder = service.job_dir(slurm_settings, job_id)
    scheduler: Scheduler = make_slurm_scheduler()
    [job] = run_until(scheduler, database, _until("running", job_id), timeout=120)
    run_until(scheduler, database, lambda _: (folder / "output" / "starts.txt").exists())
    job_node = job.node
    cluster.command("scontrol", "update", f"nodename={job_node}", "state=down", "reason=test")
    [job] = run_until(scheduler, database, lambda jobs: jobs[0].attempt == 2, timeout=120)
    assert job.status == "starting" and job.reason == "requeued by the cluster: attempt 2"
    assert job.external_id.isdigit() and job.engine_state == "PENDING"
    # Slurm holds a requeued job back for a while (BeginTime): let it start now, on the
    # other node (the failed one may still be ending the first run)
    failed_node = job_node
    cluster.command(
        "scontrol", "update", f"jobid={job.external_id}", f"ExcNodeList={failed_node}",
        "StartTime=now",
    )  # fmt: skip
    [job] = run_until(scheduler, database, _until("running", job_id), timeout=120)
    (folder / "output" / "go").touch()
    [job] = run_until(scheduler, database, all_final, timeout=120)
    assert (job.status, job.attempt, job.exit_code, job.reason) == ("succeeded", 2, 0, "")
    assert job.node != failed_node
    assert (folder / "output" / "starts.txt").read_text() == "start\nstart\n"
    assert (
        "[labyard] Slurm requeued the job: attempt 2 starts on" in (folder / "job.log").read_text()
    )


@pytest.mark.slow
@pytest.mark.usefixtures("slurm_flavors")
def test_a_job_slurm_ends_at_its_time_limit_says_timeout(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler,
    cluster: SlurmCluster,
) -> None:  # fmt: skip
    lab = write_lab(tmp_path / "lab", params="  mode: [wait]\n")
    [job_id] = submit(database, slurm_settings, lab, flavor="s0", inventory=None)
    scheduler: Scheduler = make_slurm_scheduler()
    [job] = run_until(scheduler, database, _until("running", job_id), timeout=120)
    cluster.command("scontrol", "update", f"jobid={job.external_id}", "EndTime=now")
    [job] = run_until(scheduler, database, all_final, timeout=180)
    assert job.status == "failed" and job.engine_state == "TIMEOUT"
    assert job.reason == "TIMEOUT: Slurm ended the job at its time limit"


@pytest.mark.usefixtures("slurm_flavors")
def test_a_job_over_its_memory_says_out_of_memory(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler,
    cluster: SlurmCluster,
) -> None:  # fmt: skip
    services.require(lambda: _memory_enforced(cluster))
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "hog.py").write_text(HOG_SCRIPT)
    (lab / "mlsteam.yml").write_text(f"command: {sys.executable} hog.py\n")
    submit(database, slurm_settings, lab, flavor="s0", inventory=None)
    [job] = run_until(make_slurm_scheduler(), database, all_final, timeout=120)
    assert job.status == "failed" and job.engine_state == "OUT_OF_MEMORY"
    assert job.reason == "OUT_OF_MEMORY: the job used more memory than its flavor gives"
    assert job.exit_code not in (None, 0)


def _memory_enforced(cluster: SlurmCluster) -> None:
    """Slurm's task/cgroup enforces --mem here (a cgroup v1 memory controller), else the
    test's component is missing (a failure under CI=true)."""
    if not cluster.memory_enforced:
        raise services.ServiceMissing("no cgroup v1 memory controller for Slurm's task/cgroup")
