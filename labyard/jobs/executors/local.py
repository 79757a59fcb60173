"""The local executor (embedded default): one process group per job on this machine.

The job runs under the log wrapper (labyard.jobs.logs) as the leader of a new session, so
it outlives a killed server; its external id is `pid:start_time` of the wrapper, checked
before every signal so a recycled pid is never hit. Datasets appear as symlinks in
`<job>/input/<name>`: the local executor cannot enforce read-only (the job runs as the
server's user), Docker does. Flavor CPU and memory sizes are reserved by the scheduler but
not enforced here. The job gets the server's environment minus every LABYARD_* variable
(no secrets, no database URL), plus the job contract's variables, and with the folder of
the server's own interpreter first on PATH: `python train.py` runs in the environment Labyard
was installed into (with torch), not whatever `python` the shell that started it had.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from labyard.jobs.executors.base import LOST, RUNNING, Executor, ExecutorError, JobState, LaunchSpec
from labyard.jobs.logs import EXIT_NAME


def job_environment(spec: LaunchSpec) -> dict[str, str]:
    """The job's environment: the server's minus LABYARD_*, plus the job contract."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABYARD_")}
    env.update(
        MLSTEAM_LAB_DIR=str(spec.lab_dir),
        MLSTEAM_INPUT_DIR=str(spec.job_dir / "input"),
        MLSTEAM_OUTPUT_DIR=str(spec.output_dir),
        CUDA_VISIBLE_DEVICES=",".join(spec.gpus),
        PYTHONUNBUFFERED="1",
        LABYARD_JOB_ID=str(spec.job_id),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    return env


def link_datasets(spec: LaunchSpec) -> None:
    """`<job>/input/<name>` -> each dataset's folder."""
    inputs = spec.job_dir / "input"
    inputs.mkdir(exist_ok=True)
    for mount in spec.datasets:
        link = inputs / mount.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(mount.host_path, target_is_directory=True)


def _process(external_id: str) -> psutil.Process | None:
    """The wrapper process if it is alive and really ours (same start time)."""
    pid_text, _, start = external_id.partition(":")
    try:
        proc = psutil.Process(int(pid_text))
        if f"{proc.create_time():.3f}" != start or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.Error, ValueError):
        return None


def _exit_code(job_dir: Path) -> int | None:
    try:
        return int((job_dir / EXIT_NAME).read_text().strip())
    except (OSError, ValueError):
        return None


class LocalExecutor(Executor):
    """Jobs as local subprocesses."""

    name = "local"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._children: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}
        self._dirs: dict[int, Path] = {}

    def submit(self, spec: LaunchSpec) -> str:
        link_datasets(spec)
        (spec.job_dir / EXIT_NAME).unlink(missing_ok=True)
        wrapper = [
            sys.executable,
            "-m",
            "labyard.jobs.logs",
            str(spec.job_dir),
            str(self.settings.log_max_bytes),
            "--",
            *spec.argv,
        ]
        try:
            child = subprocess.Popen(
                wrapper,
                cwd=spec.lab_dir,
                env=job_environment(spec),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ExecutorError(f"cannot start the job process: {exc.strerror}") from exc
        self._children[spec.job_id] = (child, spec.job_dir)
        self._dirs[spec.job_id] = spec.job_dir
        try:
            started = psutil.Process(child.pid).create_time()
        except psutil.Error:  # already gone (and a zombie until we wait): keep the handle
            started = 0.0
        return f"{child.pid}:{started:.3f}"

    def poll(self, job_id: int, external_id: str) -> JobState:
        held = self._children.get(job_id)
        if held is not None:
            child, job_dir = held
            code = child.poll()
            if code is None:
                return RUNNING
            del self._children[job_id]
            recorded = _exit_code(job_dir)
            if recorded is None:  # the wrapper itself was killed
                recorded = code if code >= 0 else 128 - code
            return JobState.exited(recorded)
        if _process(external_id) is not None:
            return RUNNING
        folder = self._dirs.get(job_id)
        code = _exit_code(folder) if folder else None
        return JobState.exited(code) if code is not None else LOST

    def stop(self, job_id: int, external_id: str, *, force: bool) -> None:
        held = self._children.get(job_id)
        if held is not None:
            if held[0].poll() is not None:
                return
            pid = held[0].pid
        else:
            proc = _process(external_id)
            if proc is None:
                return
            pid = proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL if force else signal.SIGTERM)

    def adopt(self, job_id: int, attempt: int, external_id: str, job_dir: Path) -> JobState:
        self._dirs[job_id] = job_dir
        return self.poll(job_id, external_id)
