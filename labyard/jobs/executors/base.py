"""The executor contract: submit, poll, stop with grace, logs, adopt after restart, clean up.

Every executor gives a job the same view (DESIGN.md's job contract) and keeps the job's
`job.log` filled (see labyard.jobs.logs). Executors keep no state that the database cannot
rebuild: `adopt` re-attaches to a job from its `external_id` after a server restart.

Placement: by default the scheduler places jobs (its node inventory, whole GPUs in
`LaunchSpec.gpus`). An executor with `places_jobs` (Slurm; Kubernetes next) is handed queued
jobs without GPUs and places them itself: the job waits in `starting` while `poll` reports
it `waiting` with the engine's `Placement` (state, reason, queue position), then runs on
the node and GPUs the engine chose; an engine that re-runs a job (a requeue after a node
failure) reports the new `attempt`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from labyard.config import Settings

LOST_REASON = "lost while the server was down"


def instance_id(settings: Settings) -> str:
    """This installation's tag on what it starts in a shared engine (Docker containers,
    Slurm job names): several Labyards or test runs can share one engine."""
    return hashlib.sha256(str(settings.data_dir).encode()).hexdigest()[:10]


def attempt_environment(attempt: int) -> dict[str, str]:
    """The job contract's variables of an attempt: MLSTEAM_ATTEMPT (1, 2, ...) and, on a
    later attempt (the job was preempted and queued again), MLSTEAM_RESUME=auto: continue
    from the output folder's checkpoint (the built-in templates' --resume default)."""
    env = {"MLSTEAM_ATTEMPT": str(max(attempt, 1))}
    if attempt > 1:
        env["MLSTEAM_RESUME"] = "auto"
    return env


@dataclass(frozen=True)
class DatasetMount:
    """A dataset the job reads: mounted as `$MLSTEAM_INPUT_DIR/<name>`; `kind` "weights":
    registered weights, mounted read-only as `$MLSTEAM_WEIGHTS_DIR/<name>`."""

    name: str
    host_path: Path
    kind: str = "input"

    @property
    def folder(self) -> str:
        """The folder of the job's view it appears in: input or weights."""
        return "weights" if self.kind == "weights" else "input"


@dataclass(frozen=True)
class LaunchSpec:
    """Everything an executor needs to start one attempt of a job."""

    job_id: int
    attempt: int
    argv: list[str]
    job_dir: Path
    image: str
    gpus: list[str]
    cpus: float
    memory_mb: int
    datasets: list[DatasetMount] = field(default_factory=list)
    gpu_count: int = 0  # GPUs asked for: `gpus` are they, or empty when the engine places
    partition: str = ""  # engine options of the flavor (Slurm); empty: the engine's default
    account: str = ""
    qos: str = ""

    @property
    def lab_dir(self) -> Path:
        """The code snapshot."""
        return self.job_dir / "lab"

    @property
    def output_dir(self) -> Path:
        """The writable output folder."""
        return self.job_dir / "output"


@dataclass(frozen=True)
class Placement:
    """Where an engine that places jobs has a job: its state and reason in the engine's own
    words (PENDING / Resources), its place in the engine's queue, the node and GPUs it got."""

    state: str
    reason: str = ""
    position: int | None = None
    node: str = ""
    gpus: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobState:
    """What poll/adopt saw: still running, exited with a code, or gone without a trace.

    `started_at`/`finished_at` are the process's (container's) own times when the executor
    knows them; the scheduler keeps them as the job's times instead of its ticks. An engine
    that places jobs says `waiting` (alive, not started yet), where the job is (`placement`),
    which `attempt` it runs (after its own requeues) and, when it ended the job itself, why
    (`reason`: a time or memory limit)."""

    running: bool
    exit_code: int | None = None
    lost: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    waiting: bool = False
    placement: Placement | None = None
    attempt: int | None = None
    reason: str = ""

    @classmethod
    def exited(
        cls,
        code: int,
        *,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        reason: str = "",
    ) -> JobState:
        """The job ended with `code` (at `finished_at`, when known)."""
        return cls(
            running=False,
            exit_code=code,
            started_at=started_at,
            finished_at=finished_at,
            reason=reason,
        )

    def describe(self) -> str:
        """What was found, in words (for the server's log)."""
        if self.waiting:
            return "waiting to be placed"
        if self.running:
            return "running"
        if self.lost:
            return "gone without an exit record (lost)"
        at = f" at {self.finished_at.isoformat()}" if self.finished_at else " (time unknown)"
        return f"exited with code {self.exit_code}{at}"


RUNNING = JobState(running=True)
LOST = JobState(running=False, lost=True)


class ExecutorError(RuntimeError):
    """The executor could not start a job (bad image, daemon down); the job fails with it."""


@dataclass(frozen=True)
class NodeInfo:
    """A machine that runs jobs, as its engine reports it (the Nodes page)."""

    name: str
    state: str
    gpus: int
    gpus_used: int
    cpus: int
    cpus_used: int
    memory_mb: int
    memory_used_mb: int
    partitions: tuple[str, ...] = ()
    reason: str = ""  # why a node is down or drained
    jobs: tuple[str, ...] = ()  # external ids of the jobs running there


class Executor(ABC):
    """Where jobs run. One instance per scheduler."""

    name: ClassVar[str]
    # True: the engine places jobs (Slurm); the scheduler hands them over without its own
    # GPU inventory and follows them while they wait in the engine.
    places_jobs: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def submit(self, spec: LaunchSpec) -> str:
        """Start the job; return its external id (pid:starttime, container id)."""

    @abstractmethod
    def poll(self, job_id: int, external_id: str) -> JobState:
        """Is it running, did it exit (with what code), or is it gone?"""

    @abstractmethod
    def stop(self, job_id: int, external_id: str, *, force: bool) -> None:
        """Ask the job to stop (SIGTERM), or with `force` kill it (SIGKILL)."""

    @abstractmethod
    def adopt(self, job_id: int, attempt: int, external_id: str, job_dir: Path) -> JobState:
        """After a restart: re-attach to the job (logs included) and report its state."""

    def external_id_of(self, job_id: int, attempt: int) -> str:
        """The external id known before submit returns ('' if none, e.g. a pid)."""
        return ""

    def logs_complete(self, job_id: int) -> None:  # noqa: B027 - optional hook
        """Block (briefly) until job.log holds all output of an exited job."""

    def cleanup(self, job_id: int, external_id: str) -> None:  # noqa: B027 - optional hook
        """Free what the finished job left behind in the executor (not its files)."""

    def remove_orphans(self, live_job_ids: set[int]) -> list[str]:
        """Remove executor resources of jobs with no live row; return what was removed."""
        return []

    def check(self) -> None:  # noqa: B027 - optional hook
        """Raise ExecutorError saying what is wrong when jobs cannot run (start-up check)."""

    def refresh(self) -> None:  # noqa: B027 - optional hook
        """Read every job's state at once before a round of polls (ExecutorError: the
        engine does not answer now; the round is skipped)."""

    def nodes(self) -> list[NodeInfo] | None:
        """The engine's nodes; None when the jobs run on this server (its own inventory)."""
        return None
