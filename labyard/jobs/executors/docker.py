"""The Docker executor: one container per job attempt, through the docker SDK.

The container gets the job contract and nothing a user can choose beyond it: the image from
mlsteam.yml (or the `docker_image` setting), the assigned GPUs as a device request, datasets
read-only at /mlsteam/input/<name> (registered weights at /mlsteam/weights/<name>), the
code snapshot at /mlsteam/lab, the output at /mlsteam/output, HOME=/mlsteam. It runs as
a non-root user (`docker_uid`:`docker_gid` when the server is root, else the server's own
uid), with every capability dropped, no-new-privileges, the flavor's memory (no extra
swap), CPU and a pids limit, a /dev/shm fit for data loaders, and the `docker_network`
setting. Each attempt has one deterministic name, so a job is never launched twice;
containers carry the job id and this installation's id (a hash of the data dir, so several
Labyards or test runs can share one engine) as labels, so after a restart they are found
again (adopted) or, with no live row behind them, removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from labyard.config import Settings
from labyard.jobs import isolation
from labyard.jobs.executors.base import (
    LOST,
    RUNNING,
    Executor,
    ExecutorError,
    JobState,
    LaunchSpec,
    attempt_environment,
    instance_id,
)
from labyard.jobs.logs import LOG_NAME, LogWriter, format_stamp, parse_stamp

LABEL_JOB = "io.labyard.job"
LABEL_ATTEMPT = "io.labyard.attempt"
LABEL_INSTANCE = "io.labyard.instance"
LOG_JOIN_SECONDS = 15.0


def container_name(instance: str, job_id: int, attempt: int) -> str:
    """The one name of a job attempt's container."""
    return f"labyard-{instance}-job-{job_id}-{attempt}"


def _job_user(spec: LaunchSpec, settings: Settings) -> str:
    """A non-root user for the container (`docker_uid`:`docker_gid` when the server is root,
    owning the job's lab/ and output/); its files stay deletable by the server."""
    if os.geteuid() != 0:
        return f"{os.getuid()}:{os.getgid()}"
    uid, gid = settings.docker_uid, settings.docker_gid
    for folder in (spec.lab_dir, spec.output_dir):
        for root, dirs, files in os.walk(folder):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), uid, gid)
        os.chown(folder, uid, gid)
    return f"{uid}:{gid}"


def _dataset_groups(spec: LaunchSpec) -> list[str]:
    """Groups that let the container's user read its datasets (a root server keeps them
    0600/0700 to itself, see labyard.jobs.isolation); none needed when not root."""
    if os.geteuid() != 0:
        return []
    return [str(isolation.grant_dataset(mount.host_path)) for mount in spec.datasets]


EARLIER_LOG = "job.before-attempt-{}.log"  # job.log as the earlier attempts left it


def keep_earlier_attempts(job_dir: Path, attempt: int) -> None:
    """Before attempt `attempt` (> 1) starts, set job.log aside as what came before it:
    the follower writes it ahead of the new container's output, so job.log keeps every
    attempt's lines (and the offset its parser reached stays valid). Done once per attempt;
    the file of an earlier attempt is then contained in it and removed."""
    if attempt <= 1:
        return
    kept = job_dir / EARLIER_LOG.format(attempt)
    log = job_dir / LOG_NAME
    if not kept.exists() and log.exists():
        os.replace(log, kept)
    for older in job_dir.glob(EARLIER_LOG.format("*")):
        if older != kept:
            older.unlink(missing_ok=True)


def _earlier_log(job_dir: Path) -> Path | None:
    """The earlier attempts' log kept by `keep_earlier_attempts`, if any."""
    found = {p.name.split("-")[-1].split(".")[0]: p for p in job_dir.glob(EARLIER_LOG.format("*"))}
    numbers = [n for n in found if n.isdigit()]
    return found[max(numbers, key=int)] if numbers else None


def _follow_logs(container: Any, log_path: Path, max_bytes: int) -> None:
    """Copy the earlier attempts' log, then the container's whole output, into job.log
    (rewritten from the start)."""
    writer = LogWriter(log_path, max_bytes, truncate=True)
    earlier = _earlier_log(log_path.parent)
    if earlier is not None:
        with earlier.open("rb") as kept:
            shutil.copyfileobj(kept, writer.file)
        writer.size = writer.file.tell()
        writer.file.flush()
    pending = b""
    try:
        for chunk in container.logs(stream=True, follow=True, timestamps=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                _write_docker_line(writer, line)
        if pending:
            _write_docker_line(writer, pending)
    except Exception:  # noqa: BLE001 - the daemon went away; adopt will rewrite the log
        pass
    finally:
        writer.close()


def merged_output_command(argv: list[str]) -> list[str]:
    """`argv` run with its stderr on its stdout: one stream, so lines keep their order.

    Docker reads a container's stdout and stderr from two pipes and stamps each on its own;
    lines printed close together then come back out of order (a traceback before the
    output printed earlier). `sh` joins them and `exec`s argv, arguments kept literal
    ("$@"); the image needs /bin/sh (Debian-, Ubuntu- and Alpine-based images have it)."""
    return ["/bin/sh", "-c", 'exec "$@" 2>&1', "labyard-job", *argv]


def _docker_time(container: Any, key: str) -> datetime | None:
    """A container's `State.StartedAt`/`FinishedAt` (None for Docker's zero time)."""
    stamp = parse_stamp(str(container.attrs["State"].get(key, "")).encode())
    return stamp if stamp is not None and stamp.year > 1 else None


def _state(container: Any) -> JobState:
    """An exited container's code and its own start and end times."""
    return JobState.exited(
        int(container.attrs["State"]["ExitCode"]),
        started_at=_docker_time(container, "StartedAt"),
        finished_at=_docker_time(container, "FinishedAt"),
    )


def _write_docker_line(writer: LogWriter, line: bytes) -> None:
    head, _, rest = line.partition(b" ")
    stamp = parse_stamp(head)
    if stamp is None:
        writer.write_line(line)
    else:
        writer.write_line(rest, format_stamp(stamp))


class DockerExecutor(Executor):
    """Jobs as Docker containers."""

    name = "docker"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._client: Any = None
        self._followers: dict[int, threading.Thread] = {}
        self.instance = instance_id(self.settings)

    @property
    def client(self) -> Any:
        """The docker SDK client (made on first use)."""
        if self._client is None:
            import docker

            try:
                self._client = docker.from_env(timeout=60)
            except docker.errors.DockerException as exc:
                raise ExecutorError(f"cannot reach the Docker Engine: {exc}") from exc
        return self._client

    def _container(self, external_id: str) -> Any | None:
        import docker

        try:
            return self.client.containers.get(external_id)
        except docker.errors.NotFound:
            return None

    def _create_args(self, spec: LaunchSpec) -> dict[str, Any]:
        import docker

        volumes = {
            str(spec.lab_dir): {"bind": "/mlsteam/lab", "mode": "rw"},
            str(spec.output_dir): {"bind": "/mlsteam/output", "mode": "rw"},
        }
        for mount in spec.datasets:
            bind = f"/mlsteam/{mount.folder}/{mount.name}"
            volumes[str(mount.host_path)] = {"bind": bind, "mode": "ro"}
        requests = []
        if spec.gpus:
            requests.append(
                docker.types.DeviceRequest(device_ids=list(spec.gpus), capabilities=[["gpu"]])
            )
        return dict(
            image=spec.image,
            command=merged_output_command(spec.argv),
            name=container_name(self.instance, spec.job_id, spec.attempt),
            labels={
                LABEL_JOB: str(spec.job_id),
                LABEL_ATTEMPT: str(spec.attempt),
                LABEL_INSTANCE: self.instance,
            },
            user=_job_user(spec, self.settings),
            group_add=_dataset_groups(spec),
            working_dir="/mlsteam/lab",
            environment={
                "HOME": "/mlsteam",
                "MLSTEAM_LAB_DIR": "/mlsteam/lab",
                "MLSTEAM_INPUT_DIR": "/mlsteam/input",
                "MLSTEAM_WEIGHTS_DIR": "/mlsteam/weights",
                "MLSTEAM_OUTPUT_DIR": "/mlsteam/output",
                "PYTHONUNBUFFERED": "1",
                "LABYARD_JOB_ID": str(spec.job_id),
                **attempt_environment(spec.attempt),
            },
            volumes=volumes,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=f"{spec.memory_mb}m",
            memswap_limit=f"{spec.memory_mb}m",
            pids_limit=self.settings.docker_pids_limit,
            shm_size=self.settings.docker_shm_size,
            network_mode=self.settings.docker_network,
            nano_cpus=int(min(spec.cpus, os.cpu_count() or 1) * 1e9),
            device_requests=requests or None,
            init=True,  # an init as PID 1 forwards SIGTERM (PID 1 ignores it by default)
            stdin_open=False,
            tty=False,
        )

    def submit(self, spec: LaunchSpec) -> str:
        import docker

        keep_earlier_attempts(spec.job_dir, spec.attempt)
        try:
            container = self.client.containers.create(**self._create_args(spec))
        except docker.errors.ImageNotFound as exc:
            raise ExecutorError(f"image {spec.image!r} is not on this node") from exc
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: this attempt's container already exists
                raise ExecutorError(f"Docker refused the job: {exc.explanation}") from exc
            name = container_name(self.instance, spec.job_id, spec.attempt)
            container = self.client.containers.get(name)
        try:
            if container.status == "created":
                container.start()
        except docker.errors.APIError as exc:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
            raise ExecutorError(f"Docker could not start the job: {exc.explanation}") from exc
        self._follow(spec.job_id, container, spec.job_dir)
        return str(container.name)

    def _follow(self, job_id: int, container: Any, job_dir: Path) -> None:
        thread = threading.Thread(
            target=_follow_logs,
            args=(container, job_dir / LOG_NAME, self.settings.log_max_bytes),
            name=f"labyard-logs-{job_id}",
            daemon=True,
        )
        self._followers[job_id] = thread
        thread.start()

    def poll(self, job_id: int, external_id: str) -> JobState:
        import docker

        try:
            container = self._container(external_id)
            if container is None:
                return LOST
            if container.status == "created":
                container.start()
                return RUNNING
            if container.status in ("running", "restarting", "paused"):
                return JobState(running=True, started_at=_docker_time(container, "StartedAt"))
            return _state(container)
        except docker.errors.APIError:
            return RUNNING  # the daemon hiccupped: look again next tick

    def stop(self, job_id: int, external_id: str, *, force: bool) -> None:
        import docker

        container = self._container(external_id)
        if container is None:
            return
        with contextlib.suppress(docker.errors.APIError):
            container.kill(signal="SIGKILL" if force else "SIGTERM")

    def adopt(self, job_id: int, attempt: int, external_id: str, job_dir: Path) -> JobState:
        external_id = external_id or container_name(self.instance, job_id, attempt)
        container = self._container(external_id)
        if container is None:
            return LOST
        self._follow(job_id, container, job_dir)
        return self.poll(job_id, external_id)

    def external_id_of(self, job_id: int, attempt: int) -> str:
        """The external id a crashed `starting` job would have (its container name)."""
        return container_name(self.instance, job_id, attempt)

    def logs_complete(self, job_id: int) -> None:
        thread = self._followers.pop(job_id, None)
        if thread is not None:
            thread.join(LOG_JOIN_SECONDS)

    def cleanup(self, job_id: int, external_id: str) -> None:
        import docker

        container = self._container(external_id) if external_id else None
        if container is not None:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)

    def remove_orphans(self, live_job_ids: set[int]) -> list[str]:
        import docker

        removed = []
        mine = {"label": f"{LABEL_INSTANCE}={self.instance}"}
        for container in self.client.containers.list(all=True, filters=mine):
            label = container.labels.get(LABEL_JOB, "")
            if label.isdigit() and int(label) in live_job_ids:
                continue
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
                removed.append(container.name)
        return removed
