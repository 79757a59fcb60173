"""Jobs on the real two-node Slurm cluster through the sweep service and the scheduler:
the job contract (argv, CUDA_VISIBLE_DEVICES from Slurm's allocation, output folder), logs
and metrics ingested as for local jobs, exit codes, and GPU packing across the nodes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.flavors.models import Flavor
from labyard.jobs import service
from labyard.jobs.models import Job, MetricPoint
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.jobs.test_local_jobs import submit
from tests.slurm_cluster import SlurmCluster


@pytest.mark.usefixtures("slurm_flavors")
def test_a_sweep_runs_on_slurm_with_its_gpus_log_metrics_and_exit_codes(
    database: Database,
    slurm_settings: Settings,
    lab: Path,
    make_slurm_scheduler,
    cluster: SlurmCluster,
) -> None:
    ids = submit(
        database, slurm_settings, lab, flavor="s2", grid={"mode": ["ok", "fail"]}, inventory=None
    )
    scheduler = make_slurm_scheduler()
    ok, failed = run_until(scheduler, database, all_final, timeout=120)
    assert (ok.status, ok.exit_code, ok.reason) == ("succeeded", 0, "")
    assert (failed.status, failed.exit_code, failed.reason) == ("failed", 3, "exited with code 3")
    for job in (ok, failed):
        assert job.executor == "slurm" and job.external_id.isdigit() and job.attempt == 1
        assert job.node in cluster.nodes and len(job.assigned_gpus) == 2
        assert job.engine_state in ("COMPLETED", "FAILED") and job.queue_position is None
    log = (service.job_dir(slurm_settings, ok.id) / "job.log").read_text()
    output = service.job_dir(slurm_settings, ok.id) / "output"
    assert "ARGS ['--mode', 'ok']" in log
    assert f"ENV {','.join(ok.assigned_gpus)} {output}" in log  # Slurm's allocation
    assert (output / "done.txt").read_text() == "done"
    assert ok.progress_fraction == 1.0 and ok.started_at is not None
    with database.read_session() as db:
        xs = [p.x for p in db.query(MetricPoint).filter_by(job_id=ids[0], name="Train_loss")]
    assert sorted(xs) == [1.0, 2.0, 3.0]


@pytest.mark.usefixtures("slurm_flavors")
def test_gpu_jobs_are_packed_across_both_nodes_and_the_rest_wait_for_resources(
    database: Database,
    slurm_settings: Settings,
    tmp_path: Path,
    make_slurm_scheduler,
    cluster: SlurmCluster,
) -> None:

    lab = write_lab(tmp_path / "waitlab", params="  mode: [wait]\n  n: [1, 2, 3]\n")
    ids = submit(database, slurm_settings, lab, flavor="s3", inventory=None)
    scheduler = make_slurm_scheduler()

    def two_run_one_waits(jobs: list[Job]) -> bool:
        running = [j for j in jobs if j.status == "running"]
        waiting = [j for j in jobs if j.status == "starting" and j.engine_reason == "Resources"]
        return len(running) == 2 and len(waiting) == 1

    jobs = run_until(scheduler, database, two_run_one_waits, timeout=120)
    running = [j for j in jobs if j.status == "running"]
    assert sorted(j.node for j in running) == sorted(cluster.nodes)  # 3 + 3 > 4 per node
    assert all(len(j.assigned_gpus) == 3 for j in running)
    [waiting] = [j for j in jobs if j.status == "starting"]
    assert waiting.engine_state == "PENDING" and waiting.queue_position == 1
    assert waiting.node == "" and waiting.assigned_gpus == []
    for job_id in ids:
        (service.job_dir(slurm_settings, job_id) / "output" / "go").touch()
    jobs = run_until(scheduler, database, all_final, timeout=120)
    assert [j.status for j in jobs] == ["succeeded"] * 3


@pytest.mark.usefixtures("slurm_flavors")
def test_a_flavors_partition_places_the_job_and_a_bad_one_fails_it_saying_why(
    database: Database, slurm_settings: Settings, lab: Path, make_slurm_scheduler
) -> None:
    with database.session() as db:
        db.add(Flavor(name="only2", gpus=1, cpus=1, memory_mb=256, partition="second"))
        db.add(Flavor(name="nowhere", gpus=0, cpus=1, memory_mb=256, partition="nosuch"))
    submit(database, slurm_settings, lab, flavor="only2", inventory=None)
    submit(database, slurm_settings, lab, flavor="nowhere", inventory=None)
    placed, refused = run_until(make_slurm_scheduler(), database, all_final, timeout=120)
    assert (placed.status, placed.node) == ("succeeded", "lynode2")
    assert refused.status == "failed" and refused.external_id == ""
    assert refused.reason == (
        "could not start: sbatch: error: Batch job submission failed: "
        "Invalid partition name specified"
    )


def test_a_flavors_cpus_reach_the_job_rounded_up_to_whole_cpus(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler
) -> None:
    with database.session() as db:
        db.add(Flavor(name="c15", gpus=0, cpus=1.5, memory_mb=256))
    lab = tmp_path / "cpulab"
    lab.mkdir()
    (lab / "cpus.py").write_text("import os\nprint('CPUS', os.environ['SLURM_CPUS_PER_TASK'])\n")
    (lab / "mlsteam.yml").write_text(f"command: {sys.executable} cpus.py\n")
    [job_id] = submit(database, slurm_settings, lab, flavor="c15", inventory=None)
    [job] = run_until(make_slurm_scheduler(), database, all_final, timeout=120)
    assert job.status == "succeeded"
    assert "CPUS 2\n" in (service.job_dir(slurm_settings, job_id) / "job.log").read_text()
