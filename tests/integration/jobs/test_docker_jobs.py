"""Real Docker jobs (labyard/runner:test, built locally with no registry): the job
contract and the hardening, checked from inside the container."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.executors.docker import LABEL_INSTANCE, instance_id
from tests import services
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.jobs.test_local_jobs import FOUR_GPUS, submit

pytestmark = pytest.mark.docker

DOCKER_JOB = """\
import os, sys
print("ARGS", repr(sys.argv[1:]), flush=True)
print("UID", os.getuid(), flush=True)
for line in open("/proc/self/status"):
    if line.startswith(("CapEff", "NoNewPrivs")):
        print(line.split()[0], line.split()[1], flush=True)
print("HOME", os.environ["HOME"], "CWD", os.getcwd(), flush=True)
print("NET", sorted(os.listdir("/sys/class/net")), flush=True)
print("DATA", open("/mlsteam/input/ds/hello.txt").read().strip(), flush=True)
try:
    open("/mlsteam/input/ds/x", "w")
    print("DATASET WRITABLE", flush=True)
except OSError as exc:
    print("DATASET READONLY", exc.errno, flush=True)
import labyard_job
print("PARAM", labyard_job.get_value("evil", "?"), flush=True)
open("/mlsteam/output/out.txt", "w").write("hi")
labyard_job.log_metrics("Train", step=1, loss=0.5)
labyard_job.log_progress(epoch=(1, 2))
"""


@pytest.fixture
def docker_settings(settings: Settings) -> Iterator[Settings]:
    client = services.require(services.docker_client)
    services.require(lambda: services.ensure_image(services.TEST_IMAGE))
    settings.executor = "docker"
    settings.docker_network = "none"
    yield settings
    label = f"{LABEL_INSTANCE}={instance_id(settings)}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)


def docker_lab(folder: Path, script: str = DOCKER_JOB) -> Path:
    folder.mkdir(parents=True)
    (folder / "job.py").write_text(script)
    (folder / "mlsteam.yml").write_text(
        "command: python3 job.py\nparams:\n  evil: x\nimage: labyard/runner:test\n"
    )
    return folder


@pytest.mark.usefixtures("flavors")
@pytest.mark.parametrize("value", ["$(id)", "; rm -rf ~", "--privileged"])
def test_docker_job_contract_hardening_and_literal_arguments(
    database: Database, docker_settings: Settings, tmp_path: Path, make_scheduler, value: str
) -> None:
    lab = docker_lab(tmp_path / "lab")
    data = tmp_path / "ds"
    data.mkdir(mode=0o700)  # as a root server's umask 077 leaves it: the job's group reads it
    (data / "hello.txt").write_text("hello dataset")
    (data / "hello.txt").chmod(0o600)
    [job_id] = submit(
        database,
        docker_settings,
        lab,
        grid={"evil": [value]},
        datasets=[service.DatasetInput("ds", data)],
    )
    [job] = run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final, timeout=120)
    assert job.status == "succeeded", job.reason
    log = (service.job_dir(docker_settings, job_id) / "job.log").read_text()
    assert f"ARGS {['--evil', value]!r}" in log
    assert f"PARAM {value}" in log
    assert f"UID {docker_settings.docker_uid}" in log  # non-root
    assert "CapEff: 0000000000000000" in log  # every capability dropped
    assert "NoNewPrivs: 1" in log
    assert "HOME /mlsteam CWD /mlsteam/lab" in log
    assert "NET ['lo']" in log
    assert "DATA hello dataset" in log and "DATASET READONLY" in log
    assert not (data / "x").exists()
    assert (service.job_dir(docker_settings, job_id) / "output" / "out.txt").read_text() == "hi"
    assert job.progress_fraction == 0.5
    label = f"{LABEL_INSTANCE}={instance_id(docker_settings)}"
    assert services.docker_client().containers.list(all=True, filters={"label": label}) == []


@pytest.mark.usefixtures("flavors")
def test_docker_container_gets_flavor_limits(
    database: Database, docker_settings: Settings, tmp_path: Path, make_scheduler
) -> None:
    lab = docker_lab(tmp_path / "lab", "import time; print('sleeping'); time.sleep(60)\n")
    [job_id] = submit(database, docker_settings, lab)
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    log = service.job_dir(docker_settings, job_id) / "job.log"

    def sleeping(jobs: list) -> bool:  # the job's python runs (a 0.1-CPU container under
        # load can take seconds to get there, and a SIGTERM before it is the init's alone)
        return jobs[0].status == "running" and log.exists() and "sleeping" in log.read_text()

    [job] = run_until(scheduler, database, sleeping, timeout=120)
    attrs = services.docker_client().containers.get(job.external_id).attrs["HostConfig"]
    assert attrs["Memory"] == 64 * 1024 * 1024 and attrs["PidsLimit"] == 4096
    assert attrs["CapDrop"] == ["ALL"] and attrs["SecurityOpt"] == ["no-new-privileges"]
    assert attrs["NetworkMode"] == "none" and attrs["ShmSize"] == 2 * 1024**3
    assert attrs["NanoCpus"] == 100_000_000 and not attrs["Privileged"] and attrs["Init"]
    with database.session() as db:
        service.stop_job(db, db.get(service.User, job.created_by_id), job_id)  # type: ignore[arg-type]
    [job] = run_until(scheduler, database, all_final, timeout=120)
    assert (job.status, job.exit_code) == ("stopped", 143)  # SIGTERM reached the job


def test_a_later_attempts_log_keeps_the_earlier_attempts_lines(
    docker_settings: Settings, tmp_path: Path
) -> None:
    """A preempted Docker job's next attempt is a new container whose output Docker has
    from its start: job.log keeps attempt 1's lines ahead of attempt 2's, also when a
    restarted server adopts attempt 2 and rewrites the log."""
    import time

    from labyard.jobs.executors.base import LaunchSpec
    from labyard.jobs.executors.docker import DockerExecutor
    from labyard.jobs.logs import LOG_NAME

    job_dir = tmp_path / "job"
    for sub in ("lab", "output"):
        (job_dir / sub).mkdir(parents=True)
    script = "import os; print('attempt', os.environ['MLSTEAM_ATTEMPT'], flush=True)"
    executor = DockerExecutor(docker_settings)

    def run(attempt: int) -> str:
        spec = LaunchSpec(
            job_id=990_001, attempt=attempt, argv=["python3", "-c", script], job_dir=job_dir,
            image=services.TEST_IMAGE, gpus=[], cpus=1, memory_mb=256,
        )  # fmt: skip
        name = executor.submit(spec)
        deadline = time.monotonic() + 120  # a safety limit, not a timed assertion
        while executor.poll(spec.job_id, name).running and time.monotonic() < deadline:
            time.sleep(0.2)
        executor.logs_complete(spec.job_id)
        return name

    def lines() -> list[str]:
        return [line.split(" ", 1)[1] for line in (job_dir / LOG_NAME).read_text().splitlines()]

    run(1)
    assert lines() == ["attempt 1"]
    second = run(2)
    assert lines() == ["attempt 1", "attempt 2"]
    restarted = DockerExecutor(docker_settings)  # a restarted server adopts attempt 2
    restarted.adopt(990_001, 2, second, job_dir)
    restarted.logs_complete(990_001)  # its follower rewrote job.log from the start
    assert lines() == ["attempt 1", "attempt 2"]
    run(3)
    assert lines() == ["attempt 1", "attempt 2", "attempt 3"]
    assert [p.name for p in job_dir.glob("job.before-attempt-*.log")] == [
        "job.before-attempt-3.log"
    ]
