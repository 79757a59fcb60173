"""The start-up check: a short Slurm job must read a file the platform writes into the data
folder; when it cannot (the folder is not shared, no Slurm commands) the error says why,
and a scheduler dispatches nothing until the check passes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.executors.base import ExecutorError
from labyard.jobs.executors.slurm import SlurmExecutor
from labyard.jobs.models import Job
from labyard.jobs.scheduler import Scheduler
from tests.integration.jobs.test_local_jobs import submit


def test_the_check_passes_when_the_nodes_share_the_data_folder(slurm_settings: Settings) -> None:
    SlurmExecutor(slurm_settings).check()
    assert list((slurm_settings.data_dir / "slurm").iterdir()) == []  # the probe cleaned up


def test_the_check_says_the_nodes_do_not_see_the_data_folder(
    slurm_settings: Settings, tmp_path: Path
) -> None:
    slurm_settings.slurm_shared_dir = str(tmp_path / "not-mounted-on-the-nodes")
    with pytest.raises(ExecutorError, match="the nodes must see the data folder") as info:
        SlurmExecutor(slurm_settings).check()
    assert "LABYARD_SLURM_SHARED_DIR" in str(info.value)
    assert str(tmp_path / "not-mounted-on-the-nodes" / "slurm") in str(info.value)


def test_the_check_says_the_slurm_commands_are_missing(
    slurm_settings: Settings, tmp_path: Path
) -> None:
    slurm_settings.slurm_bin_dir = str(tmp_path)
    with pytest.raises(ExecutorError, match=f"sinfo not found on {tmp_path}"):
        SlurmExecutor(slurm_settings).check()


@pytest.mark.usefixtures("slurm_flavors")
def test_a_scheduler_whose_check_fails_dispatches_nothing(
    database: Database, slurm_settings: Settings, lab: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    slurm_settings.slurm_shared_dir = str(tmp_path / "elsewhere")
    [job_id] = submit(database, slurm_settings, lab, flavor="s0", inventory=None)
    stop = threading.Event()
    caplog.set_level(logging.ERROR, logger="labyard.jobs.scheduler")
    thread = threading.Thread(target=Scheduler(slurm_settings, database).run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 120
    while "cannot run jobs" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=60)
    assert "the slurm executor cannot run jobs: the probe job" in caplog.text
    with database.read_session() as db:
        job = db.get(Job, job_id)
        assert job is not None and (job.status, job.attempt) == ("queued", 0)


def test_labyard_check_executor_runs_the_probe(slurm_settings: Settings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LABYARD_DATA_DIR": str(slurm_settings.data_dir),
        "LABYARD_EXECUTOR": "slurm",
        "LABYARD_SLURM_CONF": slurm_settings.slurm_conf,
    }
    argv = [sys.executable, "-m", "labyard.cli", "check-executor"]
    ok = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert (ok.returncode, ok.stdout) == (0, "ok: the slurm executor can run jobs\n")
    env["LABYARD_SLURM_SHARED_DIR"] = str(tmp_path / "nowhere")
    bad = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: the slurm executor cannot run jobs: the probe job")
