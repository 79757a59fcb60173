"""What runs on a Slurm node: the batch script's body, and the start-up probe's.

The batch script the executor submits is constant text (no user value is ever put into
it): a `#!` line naming the platform's Python, then `main()` below. Slurm starts it in the
job's folder (`sbatch --chdir`); it reads the job's argv from `slurm/launch.json` there
(written by the platform), and runs it under the local executor's log wrapper
(labyard.jobs.logs.run_wrapped) in the lab snapshot, so `job.log`, the start record and
the exit record are exactly a local job's: ingestion, ETA and live charts work unchanged.
The environment is the one sbatch exported (the job contract's variables) with
CUDA_VISIBLE_DEVICES set by Slurm from the job's GPU allocation. A run that Slurm requeued
(SLURM_RESTART_COUNT) first writes one line into the log saying so, and its job gets the
next attempt's MLSTEAM_ATTEMPT and MLSTEAM_RESUME=auto (it resumes from its checkpoint, as
after a preemption).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from labyard.jobs.executors.base import attempt_environment
from labyard.jobs.logs import EXIT_NAME, LOG_NAME, START_NAME, LogWriter, run_wrapped

LAUNCH_FILE = "slurm/launch.json"
PLACED_FILE = "slurm/placed.json"  # the node and GPUs this run got, as Slurm told it
PROBE_REQUEST = "request"
PROBE_ANSWER = "answer"


def script(module_main: str) -> str:
    """A batch script running `module_main` (e.g. `labyard.jobs.slurm_batch:main`)
    with this Python; constant for one installation."""
    module, _, function = module_main.partition(":")
    return (
        f"#!{sys.executable}\n"
        "# Labyard's Slurm batch script: reads everything else from files in its folder.\n"
        f"from {module} import {function}\n"
        f"raise SystemExit({function}())\n"
    )


def main() -> int:
    """Run the job described by `slurm/launch.json` in the current folder (the job's)."""
    job_dir = Path.cwd()
    launch = json.loads((job_dir / LAUNCH_FILE).read_text())
    for stale in (EXIT_NAME, START_NAME):  # an earlier run's records (a requeue)
        (job_dir / stale).unlink(missing_ok=True)
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    placed = {
        "node": os.environ.get("SLURMD_NODENAME", socket.gethostname()),
        "gpus": [g for g in os.environ.get("SLURM_JOB_GPUS", "").split(",") if g],
        "restarts": int(restarts) if restarts.isdigit() else 0,
    }
    (job_dir / PLACED_FILE).write_text(json.dumps(placed))
    if restarts.isdigit() and int(restarts) > 0:
        attempt = int(launch["attempt"]) + int(restarts)
        os.environ.update(attempt_environment(attempt))  # resume from the checkpoint
        writer = LogWriter(job_dir / LOG_NAME, int(launch["log_max_bytes"]))
        note = (
            f"[labyard] Slurm requeued the job: attempt {attempt} starts on {socket.gethostname()}"
        )
        writer.write_line(note.encode())
        writer.close()
    os.chdir(launch["lab_dir"])
    return run_wrapped(job_dir, int(launch["log_max_bytes"]), list(launch["argv"]))


def probe() -> int:
    """The start-up probe: answer the platform's request file, from the node."""
    request = Path(PROBE_REQUEST).read_text()
    Path(PROBE_ANSWER).write_text(f"{request} {socket.gethostname()}")
    return 0
