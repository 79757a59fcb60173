"""Docker jobs run as the operator's LABYARD_DOCKER_UID / LABYARD_DOCKER_GID, and the files
they write in output/ belong to that account on the host (real Docker Engine)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.jobs.test_docker_jobs import docker_lab, docker_settings  # noqa: F401
from tests.integration.jobs.test_local_jobs import FOUR_GPUS, submit

pytestmark = pytest.mark.docker

ID_JOB = """\
import os, subprocess
print("ID", subprocess.check_output(["id", "-u"]).decode().strip(),
      subprocess.check_output(["id", "-g"]).decode().strip(), flush=True)
open("/mlsteam/output/made.txt", "w").write("x")
"""


def test_default_uid_is_no_login_account() -> None:
    fields = Settings.model_fields
    assert fields["docker_uid"].default == fields["docker_gid"].default == 64000  # not 1000


@pytest.mark.usefixtures("flavors")
def test_docker_job_runs_as_the_configured_uid_and_gid(
    database: Database,
    docker_settings: Settings,  # noqa: F811
    tmp_path: Path,
    make_scheduler,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("a server that is not root runs jobs as its own user")
    docker_settings.docker_uid, docker_settings.docker_gid = 64123, 64321
    lab = docker_lab(tmp_path / "lab", ID_JOB)
    [job_id] = submit(database, docker_settings, lab)
    [job] = run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final, timeout=120)
    assert job.status == "succeeded", job.reason
    job_dir = service.job_dir(docker_settings, job_id)
    assert "ID 64123 64321" in (job_dir / "job.log").read_text()
    made = (job_dir / "output" / "made.txt").stat()
    assert (made.st_uid, made.st_gid) == (64123, 64321)
    output = (job_dir / "output").stat()
    assert (output.st_uid, output.st_gid) == (64123, 64321)
