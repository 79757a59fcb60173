"""A job's times are its process's, not the scheduler's: its elapsed time is the process's run
time, and a job that ended while the server was down keeps its real end (the wrapper's exit
record, the container's FinishedAt), not the restart time. The server logs one line per job
it adopts, finishes or marks lost at start. stdout and stderr lines keep their order."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs import service
from labyard.jobs.executors.docker import container_name, instance_id
from labyard.jobs.logs import parse_stamp, read_exit, read_start
from labyard.jobs.models import Job, JobStatus
from labyard.jobs.scheduler import Scheduler
from tests import services
from tests.factories import WebClient
from tests.integration.jobpages.test_job_page import shown_lines
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.jobs.test_docker_jobs import docker_lab
from tests.integration.jobs.test_local_jobs import FOUR_GPUS, submit

# prints its own clock at start and end; waits for output/go in between
TIMED = """\
import os, time
out = os.environ.get("MLSTEAM_OUTPUT_DIR", "/mlsteam/output")
print("BEGIN", repr(time.time()), flush=True)
while not os.path.exists(os.path.join(out, "go")):
    time.sleep(0.02)
print("END", repr(time.time()), flush=True)
"""

# stdout and stderr interleaved, flushed and (last lines) not flushed explicitly; then it
# lingers, so its output is followed live as a real job's is (Docker mixed the order then)
INTERLEAVED = """\
import sys, time
for i in range(3):
    print(f"out {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
print("out plain")
print("Traceback (most recent call last):", file=sys.stderr)
print("out after")
sys.stderr.write("err last\\n")
time.sleep(1)
"""
INTERLEAVED_LINES = [
    "out 0",
    "err 0",
    "out 1",
    "err 1",
    "out 2",
    "err 2",
    "out plain",
    "Traceback (most recent call last):",
    "out after",
    "err last",
]


def _job(database: Database, job_id: int) -> Job:
    with database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        return job


def _clock(log: str, word: str) -> float:
    """The time the job printed after `word` (its own clock)."""
    [value] = [line.split()[-1] for line in log.splitlines() if f" {word} " in line]
    return float(value)


def _wait(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll until `check` holds (a safety timeout, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _local_lab(folder: Path, script: str) -> Path:
    folder.mkdir()
    (folder / "job.py").write_text(script)
    (folder / "mlsteam.yml").write_text(f"command: {sys.executable} job.py\n")
    return folder


def _run_while_down(
    database: Database,
    settings: Settings,
    lab: Path,
    make_scheduler: Callable[..., Scheduler],
    ended: Callable[[int, Path], bool],
) -> tuple[Job, datetime, float]:
    """Start a job, take "the server" down, let the job end, restart; (job, restart time,
    the job's own END clock)."""
    [job_id] = submit(database, settings, lab)
    folder = service.job_dir(settings, job_id)
    first = make_scheduler(inventory=FOUR_GPUS)
    run_until(first, database, lambda jobs: "BEGIN" in _text(folder / "job.log"))
    assert _job(database, job_id).status == JobStatus.RUNNING
    first.release_lease()  # the server stops (jobs keep running); nothing ticks any more
    (folder / "output" / "go").touch()
    _wait(lambda: ended(job_id, folder), "the job to end while the server is down")
    first.executor.logs_complete(job_id)
    time.sleep(1.0)  # the restart comes clearly after the end
    restart = utcnow()
    make_scheduler(inventory=FOUR_GPUS).tick()  # adopts: finds the job ended
    job = _job(database, job_id)
    assert job.status == JobStatus.SUCCEEDED
    return job, restart, _clock(_text(folder / "job.log"), "END")


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@pytest.mark.usefixtures("flavors")
def test_local_job_that_ended_while_down_keeps_its_real_end_and_is_logged(
    database: Database,
    settings: Settings,
    tmp_path: Path,
    make_scheduler: Callable[..., Scheduler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    lab = _local_lab(tmp_path / "lab", TIMED)
    caplog.set_level(logging.INFO, logger="labyard.jobs.scheduler")
    job, restart, end_clock = _run_while_down(
        database, settings, lab, make_scheduler, lambda _, folder: read_exit(folder) is not None
    )
    record = read_exit(service.job_dir(settings, job.id))
    assert record is not None and record.at is not None
    assert job.finished_at == record.at  # the wrapper's exit record, to the microsecond
    assert end_clock <= job.finished_at.timestamp() and job.finished_at < restart
    assert job.started_at == read_start(service.job_dir(settings, job.id))
    [line] = [r.getMessage() for r in caplog.records if f"job {job.id} " in r.getMessage()]
    assert line.startswith(f"finishing job {job.id} (local executor, {job.external_id})")
    assert f"exited with code 0 at {record.at.isoformat()}" in line


@pytest.mark.usefixtures("flavors")
def test_adoption_logs_one_line_per_running_or_lost_job(
    database: Database,
    settings: Settings,
    tmp_path: Path,
    make_scheduler: Callable[..., Scheduler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    lab = _local_lab(tmp_path / "lab", TIMED)
    [running_id] = submit(database, settings, lab)
    folder = service.job_dir(settings, running_id)
    first = make_scheduler(inventory=FOUR_GPUS)
    run_until(first, database, lambda jobs: "BEGIN" in _text(folder / "job.log"))
    first.release_lease()
    [lost_id] = submit(database, settings, lab)
    gone = subprocess.Popen(["true"])
    gone_id = f"{gone.pid}:{psutil.Process(gone.pid).create_time():.3f}"
    gone.wait()
    with database.session() as db:  # a job whose process vanished without a trace
        lost = db.get(Job, lost_id)
        assert lost is not None
        lost.status, lost.executor, lost.external_id = JobStatus.RUNNING, "local", gone_id
    caplog.set_level(logging.INFO, logger="labyard.jobs.scheduler")
    make_scheduler(inventory=FOUR_GPUS).tick()
    lines = [r for r in caplog.records if r.name == "labyard.jobs.scheduler"]
    running = _job(database, running_id)
    assert [(r.levelname, r.getMessage()) for r in lines] == [
        ("INFO", f"adopted job {running_id} (local executor, {running.external_id}): running"),
        (
            "WARNING",
            f"marking job {lost_id} (local executor, {gone_id}) failed: "
            "gone without an exit record (lost)",
        ),
    ]
    (folder / "output" / "go").touch()


@pytest.mark.usefixtures("flavors")
def test_local_elapsed_is_the_process_run_time_running_and_finished(
    database: Database, settings: Settings, tmp_path: Path, make_scheduler
) -> None:
    lab = _local_lab(tmp_path / "lab", TIMED)
    [job_id] = submit(database, settings, lab)
    folder = service.job_dir(settings, job_id)
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    run_until(scheduler, database, lambda jobs: "BEGIN" in _text(folder / "job.log"))
    scheduler.tick()
    assert _job(database, job_id).started_at == read_start(folder)  # the running display
    (folder / "output" / "go").touch()
    time.sleep(0.5)  # the end is noticed a while after it happened
    [job] = run_until(scheduler, database, all_final)
    start, record = read_start(folder), read_exit(folder)
    assert start is not None and record is not None and record.at is not None
    assert (job.started_at, job.finished_at) == (start, record.at)
    assert service.elapsed_seconds(job) == (record.at - start).total_seconds()
    log = _text(folder / "job.log")
    assert start.timestamp() <= _clock(log, "BEGIN") <= _clock(log, "END") <= record.at.timestamp()


def _log_and_page(settings: Settings, job_id: int, app_web: WebClient) -> tuple[list[str], str]:
    log = _text(service.job_dir(settings, job_id) / "job.log")
    texts = [line.split(" ", 1)[1] for line in log.splitlines()]
    page = app_web.get(f"/jobs/{job_id}")
    assert page.status_code == 200
    return texts, page.text


@pytest.mark.usefixtures("flavors")
def test_local_stdout_and_stderr_keep_their_order_in_log_and_page(
    database: Database, settings: Settings, tmp_path: Path, make_scheduler, admin_web: WebClient
) -> None:
    lab = _local_lab(tmp_path / "lab", INTERLEAVED)
    [job_id] = submit(database, settings, lab)
    run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final)
    texts, page = _log_and_page(settings, job_id, admin_web)
    assert texts == INTERLEAVED_LINES
    assert shown_lines(page) == INTERLEAVED_LINES


@pytest.fixture
def docker_settings(settings: Settings) -> Settings:
    """The Docker executor with the test image (skipped without a Docker Engine)."""
    services.require(services.docker_client)
    services.require(lambda: services.ensure_image(services.TEST_IMAGE))
    settings.executor, settings.docker_network = "docker", "none"
    return settings


def _remove_containers(settings: Settings, job_id: int) -> None:
    client = services.docker_client()
    name = container_name(instance_id(settings), job_id, 1)
    for container in client.containers.list(all=True, filters={"name": name}):
        container.remove(force=True)


@pytest.mark.docker
@pytest.mark.usefixtures("flavors")
def test_docker_job_that_ended_while_down_keeps_the_container_end(
    database: Database,
    docker_settings: Settings,
    tmp_path: Path,
    make_scheduler: Callable[..., Scheduler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = docker_settings
    client = services.docker_client()
    instance = instance_id(settings)
    lab = docker_lab(tmp_path / "lab", TIMED)
    caplog.set_level(logging.INFO, logger="labyard.jobs.scheduler")
    state: dict[str, str] = {}

    def ended(job_id: int, folder: Path) -> bool:
        container = client.containers.get(container_name(instance, job_id, 1))
        state.update(container.attrs["State"])
        return container.status == "exited"

    try:
        job, restart, end_clock = _run_while_down(database, settings, lab, make_scheduler, ended)
    finally:
        for job_id in _job_ids(database):
            _remove_containers(settings, job_id)
    finished, started = (parse_stamp(state[k].encode()) for k in ("FinishedAt", "StartedAt"))
    assert finished is not None and started is not None
    assert (job.started_at, job.finished_at) == (started, finished)  # the container's own
    assert job.finished_at is not None and job.finished_at < restart
    assert end_clock <= job.finished_at.timestamp() + 0.001  # same clock, Docker's rounding
    [line] = [r.getMessage() for r in caplog.records if f"job {job.id} " in r.getMessage()]
    assert line.startswith(f"finishing job {job.id} (docker executor, {job.external_id})")
    assert f"exited with code 0 at {finished.isoformat()}" in line


def _job_ids(database: Database) -> list[int]:
    with database.session() as db:
        return [j.id for j in db.query(Job)]


@pytest.mark.docker
@pytest.mark.usefixtures("flavors")
def test_docker_stdout_and_stderr_keep_their_order_in_log_and_page(
    database: Database,
    docker_settings: Settings,
    tmp_path: Path,
    make_scheduler,
    admin_web: WebClient,
) -> None:
    lab = docker_lab(tmp_path / "lab", INTERLEAVED)
    [job_id] = submit(database, docker_settings, lab)
    try:
        run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final, timeout=120)
    finally:
        _remove_containers(docker_settings, job_id)
    texts, page = _log_and_page(docker_settings, job_id, admin_web)
    assert texts == INTERLEAVED_LINES
    assert shown_lines(page) == INTERLEAVED_LINES
