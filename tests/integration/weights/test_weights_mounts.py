"""A job given weights (`DatasetInput(kind="weights")`) reads them at
$MLSTEAM_WEIGHTS_DIR/<name>: a link under the job's folder for local jobs, a read-only bind
at /mlsteam/weights/<name> for Docker jobs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.jobs.test_docker_jobs import docker_lab
from tests.integration.jobs.test_local_jobs import FOUR_GPUS, submit

READER = """\
import os
folder = os.path.join(os.environ["MLSTEAM_WEIGHTS_DIR"], "base")
print("WEIGHTS", os.environ["MLSTEAM_WEIGHTS_DIR"], open(os.path.join(folder, "model.pt")).read())
try:
    open(os.path.join(folder, "x"), "w")
    print("WEIGHTS WRITABLE", flush=True)
except OSError as exc:
    print("WEIGHTS READONLY", exc.errno, flush=True)
"""


def _weights(tmp_path: Path) -> service.DatasetInput:
    folder = tmp_path / "store" / "7"
    folder.mkdir(parents=True)
    (folder / "model.pt").write_text("tensors")
    return service.DatasetInput("base", folder, kind="weights", weights_id=7)


@pytest.mark.usefixtures("flavors")
def test_a_local_job_reads_its_weights(
    database: Database, settings: Settings, tmp_path: Path, make_scheduler
) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "job.py").write_text(READER)
    (lab / "mlsteam.yml").write_text(f"command: {sys.executable} job.py\nparams: {{}}\n")
    [job_id] = submit(database, settings, lab, datasets=[_weights(tmp_path)])
    [job] = run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final, timeout=120)
    log = (service.job_dir(settings, job_id) / "job.log").read_text()
    assert job.status == "succeeded", log
    assert f"WEIGHTS {service.job_dir(settings, job_id) / 'weights'} tensors" in log
    assert job.datasets[0]["kind"] == "weights" and job.datasets[0]["weights_id"] == 7


@pytest.mark.docker
@pytest.mark.usefixtures("flavors")
def test_a_docker_job_reads_its_weights_read_only(
    database: Database, docker_settings: Settings, tmp_path: Path, make_scheduler
) -> None:
    lab = docker_lab(tmp_path / "lab", READER)
    [job_id] = submit(database, docker_settings, lab, datasets=[_weights(tmp_path)])
    [job] = run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final, timeout=120)
    log = (service.job_dir(docker_settings, job_id) / "job.log").read_text()
    assert job.status == "succeeded", log
    assert "WEIGHTS /mlsteam/weights tensors" in log and "WEIGHTS READONLY" in log
    assert not (tmp_path / "store" / "7" / "x").exists()
