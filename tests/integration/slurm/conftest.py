"""Fixtures of the Slurm tests: the real two-node test cluster (tests/slurm_cluster.py),
settings with the Slurm executor on it, flavors of 0 to 4 GPUs, and schedulers whose jobs
are cancelled in Slurm at the end of each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.flavors.models import Flavor
from labyard.jobs.executors.slurm import SlurmExecutor
from labyard.jobs.models import Job
from labyard.jobs.scheduler import Scheduler
from tests import services
from tests.integration.jobs.conftest import write_lab
from tests.slurm_cluster import SlurmCluster

SLURM_FLAVORS = (("s0", 0), ("s1", 1), ("s2", 2), ("s3", 3), ("s4", 4))


@pytest.fixture
def cluster() -> Iterator[SlurmCluster]:
    """The running test cluster; every node is back up after the test."""
    found = services.require(services.slurm_cluster)
    yield found
    found.resume_nodes()


@pytest.fixture
def slurm_settings(settings: Settings, cluster: SlurmCluster) -> Settings:
    """The test's settings with the Slurm executor on the test cluster."""
    return settings.model_copy(
        update={
            "executor": "slurm",
            "slurm_conf": str(cluster.conf),
            "stop_grace_seconds": 3.0,
            "slurm_probe_timeout_seconds": 60.0,
        }
    )


@pytest.fixture
def slurm_flavors(database: Database) -> None:
    """s0 .. s4: 0 to 4 GPUs, one CPU and 256 MiB each."""
    with database.session() as db:
        for name, gpus in SLURM_FLAVORS:
            db.add(Flavor(name=name, gpus=gpus, cpus=1, memory_mb=256, description=name))


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """The jobs tests' lab (prints args, CUDA_VISIBLE_DEVICES, metrics, progress)."""
    return write_lab(tmp_path / "lab")


@pytest.fixture
def make_slurm_scheduler(
    slurm_settings: Settings, database: Database
) -> Iterator[Callable[..., Scheduler]]:
    """Schedulers with the Slurm executor; the test's Slurm jobs are cancelled at the end."""
    made: list[Scheduler] = []

    def factory(**kwargs: object) -> Scheduler:
        scheduler = Scheduler(slurm_settings, database, **kwargs)  # type: ignore[arg-type]
        made.append(scheduler)
        return scheduler

    yield factory
    executor = SlurmExecutor(slurm_settings)
    with database.read_session() as db:
        ids = [j.external_id for j in db.query(Job).filter(Job.external_id != "")]
    if ids:
        executor.slurm.run("scancel", "--full", "--signal=KILL", *ids, check=False)
        executor.slurm.run("scancel", *ids, check=False)
