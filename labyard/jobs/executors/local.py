"""The local executor (embedded default): one process tree per job on this machine.

The job runs under the log wrapper (labyard.jobs.logs) as the leader of a new session, so
it outlives a killed server; its external id is `pid:start_time` of the wrapper, checked
before every signal so a recycled pid is never hit. Stop signals the job's whole tree (its
cgroup, else the wrapper's descendants: labyard.jobs.proctree), `setsid` escapees included,
after a restart too. When the server is root the job runs as the job user and reaches only
its own folder and datasets (labyard.jobs.isolation); otherwise it runs as the server's
user and the local executor is for one trusted user. Datasets appear as symlinks in
`<job>/input/<name>`; read-only is enforced by permissions under the job user, by Docker
in containers. Flavor CPU and memory sizes are reserved by the scheduler but not enforced
here. The job gets the server's environment minus every LABYARD_* variable
(no secrets, no database URL), plus the job contract's variables, and with the folder of
the server's own interpreter first on PATH: `python train.py` runs in the environment Labyard
was installed into (with torch), not whatever `python` the shell that started it had.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from labyard.config import Settings
from labyard.jobs import isolation, proctree
from labyard.jobs.executors.base import (
    LOST,
    RUNNING,
    Executor,
    ExecutorError,
    JobState,
    LaunchSpec,
    attempt_environment,
)
from labyard.jobs.logs import EXIT_NAME, START_NAME, RunAs, read_exit, read_start


def job_environment(spec: LaunchSpec, *, job_python: str, own_home: bool = False) -> dict[str, str]:
    """The job's environment: the server's minus LABYARD_*, plus the job contract, with
    `job_python`'s folder first on PATH (so `python` is that interpreter).

    `own_home`: HOME is the job's `home/` folder (a job user cannot write the server's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABYARD_")}
    if own_home:
        env.update(HOME=str(spec.job_dir / "home"), USER="", LOGNAME="")
    env.update(
        MLSTEAM_LAB_DIR=str(spec.lab_dir),
        MLSTEAM_INPUT_DIR=str(spec.job_dir / "input"),
        MLSTEAM_WEIGHTS_DIR=str(spec.job_dir / "weights"),
        MLSTEAM_OUTPUT_DIR=str(spec.output_dir),
        CUDA_VISIBLE_DEVICES=",".join(spec.gpus),
        PYTHONUNBUFFERED="1",
        LABYARD_JOB_ID=str(spec.job_id),
        PATH=os.pathsep.join([str(Path(job_python).parent), os.environ.get("PATH", "")]),
    )
    env.pop("MLSTEAM_RESUME", None)  # only a later attempt resumes
    env.update(attempt_environment(spec.attempt))
    return env


def link_datasets(spec: LaunchSpec) -> None:
    """`<job>/input/<name>` -> each dataset's folder; `<job>/weights/<name>` -> weights'."""
    (spec.job_dir / "input").mkdir(exist_ok=True)
    for mount in spec.datasets:
        folder = spec.job_dir / mount.folder
        folder.mkdir(exist_ok=True)
        link = folder / mount.name
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


def _exited(job_dir: Path) -> JobState | None:
    """The job's end from the wrapper's records (its own start and exit times), if written."""
    record = read_exit(job_dir)
    if record is None:
        return None
    return JobState.exited(record.code, started_at=read_start(job_dir), finished_at=record.at)


def _running(job_dir: Path | None) -> JobState:
    """Running, with the wrapper's start record when it has written it."""
    started = read_start(job_dir) if job_dir is not None else None
    return RUNNING if started is None else JobState(running=True, started_at=started)


class LocalExecutor(Executor):
    """Jobs as local subprocesses."""

    name = "local"

    def __init__(self, settings: Settings, *, cgroups: bool = True) -> None:
        super().__init__(settings)
        self.cgroups = cgroups  # False: track the tree by the wrapper's descendants only
        self._children: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}
        self._dirs: dict[int, Path] = {}

    def _isolate(self, spec: LaunchSpec) -> RunAs | None:
        """The job user's identity with access to this job's files, or None (trusted mode)."""
        try:
            identity = isolation.job_identity(self.settings)
        except LookupError as exc:
            raise ExecutorError(
                f"no job user: {exc}; `labyard serve` creates it (see LABYARD_JOB_USER)"
            ) from exc
        if identity is None:
            return None
        groups = isolation.grant_job_files(
            self.settings, identity, spec.job_id, spec.job_dir, [m.host_path for m in spec.datasets]
        )
        return RunAs(identity.uid, identity.gid, tuple(groups))

    def submit(self, spec: LaunchSpec) -> str:
        link_datasets(spec)
        (spec.job_dir / EXIT_NAME).unlink(missing_ok=True)
        (spec.job_dir / START_NAME).unlink(missing_ok=True)
        (spec.job_dir / proctree.CGROUP_FILE).unlink(missing_ok=True)
        run_as = self._isolate(spec)
        options: list[str] = []
        cgroup = proctree.create_cgroup(spec.job_id) if self.cgroups else None
        if cgroup is not None:
            (spec.job_dir / proctree.CGROUP_FILE).write_text(str(cgroup))
            options += ["--cgroup", str(cgroup)]
        if run_as is not None:
            options += ["--as", run_as.encode()]
        wrapper = [
            sys.executable,
            "-m",
            "labyard.jobs.logs",
            str(spec.job_dir),
            str(self.settings.log_max_bytes),
            *options,
            "--",
            *spec.argv,
        ]
        try:
            child = subprocess.Popen(
                wrapper,
                cwd=spec.lab_dir,
                env=job_environment(
                    spec,
                    job_python=isolation.job_python(self.settings),
                    own_home=run_as is not None,
                ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            if cgroup is not None:
                proctree.remove_cgroup(cgroup)
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
                return _running(job_dir)
            del self._children[job_id]
            recorded = _exited(job_dir)
            if recorded is None:  # the wrapper itself was killed: no times either
                return JobState.exited(code if code >= 0 else 128 - code)
            return recorded
        folder = self._dirs.get(job_id)
        if _process(external_id) is not None:
            return _running(folder)
        recorded = _exited(folder) if folder else None
        return recorded or LOST

    def stop(self, job_id: int, external_id: str, *, force: bool) -> None:
        """Signal every process of the job's tree; the wrapper stays to record the exit."""
        held = self._children.get(job_id)
        pid: int | None
        if held is not None:
            pid = held[0].pid if held[0].poll() is None else None
        else:
            proc = _process(external_id)
            pid = proc.pid if proc is not None else None
        folder = self._dirs.get(job_id)
        cgroup = proctree.read_cgroup(folder) if folder else None
        if pid is None and cgroup is None:
            return
        proctree.signal_tree(pid, cgroup, signal.SIGKILL if force else signal.SIGTERM)

    def adopt(self, job_id: int, attempt: int, external_id: str, job_dir: Path) -> JobState:
        self._dirs[job_id] = job_dir
        return self.poll(job_id, external_id)

    def cleanup(self, job_id: int, external_id: str) -> None:
        """Remove the job's (empty) cgroup if the wrapper could not."""
        folder = self._dirs.get(job_id)
        cgroup = proctree.read_cgroup(folder) if folder else None
        if cgroup is not None:
            proctree.remove_cgroup(cgroup)
