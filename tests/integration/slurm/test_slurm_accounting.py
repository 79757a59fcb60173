"""Slurm's accounting on the real test cluster (slurmdbd on MariaDB): the exit code of a job
comes from sacct when its controller has forgotten it or its wrapper left no record, and
from scontrol when accounting is off; a flavor's account and QOS reach sbatch, and a job a
QOS limit holds back shows Slurm's reason in the API and on its page."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labyard.app import create_app
from labyard.config import Settings
from labyard.db import Database
from labyard.flavors.models import Flavor
from labyard.jobs import service
from labyard.jobs.executors.slurm import SlurmExecutor
from labyard.jobs.logs import EXIT_NAME
from labyard.jobs.models import Job
from tests.factories import access_token_for, auth, session_client
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.jobs.test_local_jobs import submit
from tests.serving import wait_until
from tests.slurm_cluster import ACCOUNT, QOS, SlurmCluster

QOS_REASON = "QOSMaxJobsPerUserLimit"


@pytest.mark.usefixtures("slurm_flavors")
def test_the_exit_code_comes_from_accounting_and_from_scontrol_when_accounting_is_off(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler,
    cluster: SlurmCluster,
) -> None:  # fmt: skip
    lab = write_lab(tmp_path / "lab", params="  mode: [fail]\n")
    [job_id] = submit(database, slurm_settings, lab, flavor="s0", inventory=None)
    [job] = run_until(make_slurm_scheduler(), database, all_final, timeout=120)
    assert (job.status, job.exit_code) == ("failed", 3)
    folder = service.job_dir(slurm_settings, job_id)
    (folder / EXIT_NAME).unlink()  # the wrapper's record is gone: Slurm must say
    executor = SlurmExecutor(slurm_settings)
    wait_until(lambda: executor.slurm.accounting(job.external_id) == ("FAILED", 3), "sacct")
    state = executor.adopt(job_id, 1, job.external_id, folder)  # the controller knows it
    assert (state.running, state.exit_code) == (False, 3)
    # the controller has purged it (after MinJobAge): accounting alone answers
    forgotten = executor._forgotten(job_id, job.external_id)
    assert (forgotten.running, forgotten.lost, forgotten.exit_code) == (False, False, 3)
    off = SlurmExecutor(
        slurm_settings.model_copy(update={"slurm_conf": str(cluster.conf_without_accounting)})
    )
    assert off.slurm.accounting(job.external_id) is None  # sacct: accounting is disabled
    assert off.adopt(job_id, 1, job.external_id, folder).exit_code == 3  # from scontrol
    assert off._forgotten(job_id, job.external_id).lost  # no record, no accounting: lost


def test_a_flavors_account_and_qos_reach_slurm_and_its_limit_shows_as_the_reason(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler,
    cluster: SlurmCluster,
) -> None:  # fmt: skip
    with database.session() as db:
        db.add(Flavor(name="q0", gpus=0, cpus=1, memory_mb=256, account=ACCOUNT, qos=QOS))
    lab = write_lab(tmp_path / "lab", params="  mode: [wait]\n  n: [1, 2]\n")
    ids = submit(database, slurm_settings, lab, flavor="q0", inventory=None)
    scheduler = make_slurm_scheduler()

    def one_runs_one_waits_for_the_qos(jobs: list[Job]) -> bool:
        return sorted((j.status, j.engine_reason) for j in jobs) == [
            ("running", ""),
            ("starting", QOS_REASON),
        ]

    jobs = run_until(scheduler, database, one_runs_one_waits_for_the_qos, timeout=120)
    [running] = [j for j in jobs if j.status == "running"]
    [waiting] = [j for j in jobs if j.status == "starting"]
    for job in (running, waiting):
        shown = cluster.command("scontrol", "show", "job", "-o", job.external_id)
        assert f" Account={ACCOUNT} " in shown and f" QOS={QOS} " in shown
    app = create_app(slurm_settings, database=database)
    with database.session() as db:
        ana = db.query(service.User).filter_by(username="ana").one()
    with TestClient(app) as client:
        token = access_token_for(app, database, ana)
        body = client.get(f"/api/v1/jobs/{waiting.id}", headers=auth(token)).json()
    assert (body["engine_state"], body["engine_reason"]) == ("PENDING", QOS_REASON)
    with session_client(app, database, ana) as browser:
        assert f"PENDING · {QOS_REASON}" in browser.get(f"/jobs/{waiting.id}").text
    for job_id in ids:
        (service.job_dir(slurm_settings, job_id) / "output" / "go").touch()
    jobs = run_until(scheduler, database, all_final, timeout=120)
    assert [j.status for j in jobs] == ["succeeded", "succeeded"]
