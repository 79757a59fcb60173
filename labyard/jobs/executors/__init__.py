"""Executors: where jobs run (local processes, Docker containers, Slurm batch jobs), a
registry by name."""

from __future__ import annotations

from labyard.config import Settings
from labyard.jobs.executors.base import Executor


def executor_class(name: str) -> type[Executor]:
    """The executor class registered as `name` (`local`, `docker`, `slurm`)."""
    from labyard.jobs.executors.docker import DockerExecutor
    from labyard.jobs.executors.local import LocalExecutor
    from labyard.jobs.executors.slurm import SlurmExecutor

    registry: dict[str, type[Executor]] = {
        LocalExecutor.name: LocalExecutor,
        DockerExecutor.name: DockerExecutor,
        SlurmExecutor.name: SlurmExecutor,
    }
    if name not in registry:
        raise ValueError(f"no executor {name!r}; choose one of {', '.join(sorted(registry))}")
    return registry[name]


def make_executor(settings: Settings, name: str | None = None) -> Executor:
    """An executor instance for `name` (default: the `executor` setting)."""
    return executor_class(name or settings.executor)(settings)
