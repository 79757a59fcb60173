"""Stop, requeue and Slurm's own ends on the real test cluster: stop is SIGTERM through
scancel then a kill after the grace period; a job waiting in Slurm is cancelled at once; a
node failure requeues the job as a new attempt; TIMEOUT and OUT_OF_MEMORY are the reason."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labyard.app import create_app
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.executors.slurm import END_REASONS, SlurmExecutor
from labyard.jobs.models import Job, MetricPoint
from labyard.jobs.scheduler import Scheduler
from tests.factories import access_token_for, auth, session_client
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.jobs.test_local_jobs import submit
from tests.slurm_cluster import SlurmCluster

ATTEMPT_SCRIPT = """\
import os, time
out = os.environ["MLSTEAM_OUTPUT_DIR"]
attempt = int(os.environ["MLSTEAM_ATTEMPT"])
with open(os.path.join(out, "starts.txt"), "a") as fh:
    fh.write("start\\n")
print(f"Train step={attempt} loss={1.0 / attempt:.4f}", flush=True)
while not os.path.exists(os.path.join(out, "go")):
    time.sleep(0.05)
"""
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
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler,
    cluster: SlurmCluster,
) -> None:  # fmt: skip
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "attempt.py").write_text(ATTEMPT_SCRIPT)
    (lab / "mlsteam.yml").write_text(f"command: {sys.executable} attempt.py\n")
    [job_id] = submit(database, slurm_settings, lab, flavor="s1", inventory=None)
    folder = service.job_dir(slurm_settings, job_id)
    scheduler: Scheduler = make_slurm_scheduler()
    [job] = run_until(scheduler, database, lambda _: _points(database, job_id) == [1.0], 120)
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
    run_until(scheduler, database, lambda _: _points(database, job_id) == [1.0, 2.0], 120)
    (folder / "output" / "go").touch()
    [job] = run_until(scheduler, database, all_final, timeout=120)
    assert (job.status, job.attempt, job.exit_code, job.reason) == ("succeeded", 2, 0, "")
    assert job.node != failed_node
    assert (folder / "output" / "starts.txt").read_text() == "start\nstart\n"
    assert (
        "[labyard] Slurm requeued the job: attempt 2 starts on" in (folder / "job.log").read_text()
    )
    assert _points(database, job_id) == [1.0, 2.0]  # each attempt's metric, none twice
    attempts = _api_attempts(database, slurm_settings, job_id)
    assert [(a["number"], a["outcome"], a["exit_code"]) for a in attempts] == [
        (1, "requeued", None),
        (2, "succeeded", 0),
    ]
    assert attempts[0]["reason"].startswith(f"requeued by the cluster on {failed_node}")


def _points(database: Database, job_id: int) -> list[float]:
    with database.read_session() as db:
        query = db.query(MetricPoint).filter_by(job_id=job_id, name="Train_loss")
        return sorted(p.x for p in query)


def _api_attempts(database: Database, settings: Settings, job_id: int) -> list[dict[str, Any]]:
    """The job's attempts as the API lists them (the job page shows the same rows)."""
    app = create_app(settings, database=database)
    with database.session() as db:
        ana = db.query(service.User).filter_by(username="ana").one()
    with TestClient(app) as client:
        body = client.get(
            f"/api/v1/jobs/{job_id}", headers=auth(access_token_for(app, database, ana))
        )
    with session_client(app, database, ana) as browser:
        page = browser.get(f"/jobs/{job_id}").text
    assert 'data-attempt="1"' in page and 'data-attempt="2"' in page
    return list(body.json()["attempts"])


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
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "hog.py").write_text(HOG_SCRIPT)
    (lab / "mlsteam.yml").write_text(f"command: {sys.executable} hog.py\n")
    submit(database, slurm_settings, lab, flavor="s0", inventory=None)
    [job] = run_until(make_slurm_scheduler(), database, all_final, timeout=120)
    # task/cgroup's limit: Slurm says OUT_OF_MEMORY; OverMemoryKill (no cgroup v1): FAILED
    assert job.status == "failed"
    assert job.engine_state == ("OUT_OF_MEMORY" if cluster.cgroup_memory else "FAILED")
    assert job.reason == "OUT_OF_MEMORY: the job used more memory than its flavor gives"
    assert job.exit_code not in (None, 0)


MEMORY_KILL_OUTPUT = """\
slurmstepd-lynode1: error: StepId=971.batch exceeded memory limit (341872640 > 268435456), being killed
slurmstepd-lynode1: error: *** JOB 971 ON lynode1 CANCELLED AT 2026-12-06T10:40:08 ***
slurmstepd-lynode1: error: Exceeded job memory limit
"""  # noqa: E501 - slurmstepd's words when OverMemoryKill ends a job (no cgroup limits)


def test_slurmstepds_memory_kill_note_means_out_of_memory(tmp_path: Path) -> None:
    """Without cgroup memory limits (cgroup v2 hosts) Slurm says FAILED or CANCELLED for a
    job OverMemoryKill ended; the note in its Slurm output says why. (The OOM test above
    runs this path on such a cluster: LABYARD_TEST_SLURM_CGROUP=off.)"""
    (tmp_path / "slurm").mkdir()
    out = tmp_path / "slurm" / "slurm.out"
    out.write_text("x" * 100_000 + MEMORY_KILL_OUTPUT)
    killed = SlurmExecutor._memory_killed
    assert (
        killed(tmp_path, "FAILED") == killed(tmp_path, "CANCELLED") == END_REASONS["OUT_OF_MEMORY"]
    )
    assert killed(tmp_path, "COMPLETED") == "" and killed(tmp_path / "gone", "FAILED") == ""
    out.write_text("slurmstepd-lynode1: error: *** JOB 972 ON lynode1 CANCELLED AT now ***\n")
    assert killed(tmp_path, "CANCELLED") == ""
