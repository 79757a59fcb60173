"""The executor contract: submit, poll, stop with grace, logs, adopt after restart, clean up.

Every executor gives a job the same view (DESIGN.md's job contract) and keeps the job's
`job.log` filled (see labyard.jobs.logs). Executors keep no state that the database cannot
rebuild: `adopt` re-attaches to a job from its `external_id` after a server restart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from labyard.config import Settings

LOST_REASON = "lost while the server was down"


@dataclass(frozen=True)
class DatasetMount:
    """A dataset the job reads: mounted as `$MLSTEAM_INPUT_DIR/<name>`."""

    name: str
    host_path: Path


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

    @property
    def lab_dir(self) -> Path:
        """The code snapshot."""
        return self.job_dir / "lab"

    @property
    def output_dir(self) -> Path:
        """The writable output folder."""
        return self.job_dir / "output"


@dataclass(frozen=True)
class JobState:
    """What poll/adopt saw: still running, exited with a code, or gone without a trace.

    `started_at`/`finished_at` are the process's (container's) own times when the executor
    knows them; the scheduler keeps them as the job's times instead of its ticks."""

    running: bool
    exit_code: int | None = None
    lost: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def exited(
        cls, code: int, *, started_at: datetime | None = None, finished_at: datetime | None = None
    ) -> JobState:
        """The job ended with `code` (at `finished_at`, when known)."""
        return cls(running=False, exit_code=code, started_at=started_at, finished_at=finished_at)

    def describe(self) -> str:
        """What was found, in words (for the server's log)."""
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


class Executor(ABC):
    """Where jobs run. One instance per scheduler."""

    name: ClassVar[str]

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
