"""The Slurm batch script's body run as Slurm runs it (a process in the job's folder): a
run Slurm requeued (SLURM_RESTART_COUNT) is the next attempt and resumes from its
checkpoint (MLSTEAM_ATTEMPT, MLSTEAM_RESUME=auto), a first run does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labyard.jobs.slurm_batch import LAUNCH_FILE

PRINT_ENV = "import os; print(os.environ['MLSTEAM_ATTEMPT'], os.environ.get('MLSTEAM_RESUME', '-'))"


@pytest.mark.parametrize(("restarts", "said"), [("0", "1 -"), ("2", "3 auto")])
def test_a_requeued_run_is_the_next_attempt_and_resumes(
    tmp_path: Path, restarts: str, said: str
) -> None:
    job_dir, lab = tmp_path / "job", tmp_path / "job" / "lab"
    (job_dir / "slurm").mkdir(parents=True)
    lab.mkdir()
    launch = {"argv": [sys.executable, "-c", PRINT_ENV], "lab_dir": str(lab),
              "log_max_bytes": 100_000, "attempt": 1}  # fmt: skip
    (job_dir / LAUNCH_FILE).write_text(json.dumps(launch))
    env = dict(os.environ, SLURM_RESTART_COUNT=restarts, MLSTEAM_ATTEMPT="1")  # as sbatch exported
    env.pop("MLSTEAM_RESUME", None)
    run = [
        sys.executable,
        "-c",
        "from labyard.jobs.slurm_batch import main; raise SystemExit(main())",
    ]
    done = subprocess.run(run, cwd=job_dir, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed = [line.split(" ", 1)[1] for line in (job_dir / "job.log").read_text().splitlines()]
    assert printed[-1] == said
    assert any("requeued" in line for line in printed) == (restarts != "0")
