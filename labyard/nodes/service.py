"""The Nodes page's data: every node that runs jobs, its GPUs, CPUs, memory and state, and
which jobs run there. With Slurm the nodes come from the cluster (`scontrol show node`,
`squeue`), else the node is this server with its own inventory and live jobs. A user sees
the names of jobs of projects they may read (admins: all); other jobs are only counted."""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.jobs.executors import make_executor
from labyard.jobs.executors.base import Executor, ExecutorError, NodeInfo
from labyard.jobs.models import LIVE_STATUSES, Job
from labyard.overview.gpus import cached_inventory
from labyard.projects.service import visible_project_ids


@dataclass(frozen=True)
class NodeJob:
    """A job running on a node that the user may see."""

    id: int
    name: str
    gpus: list[str]


@dataclass(frozen=True)
class NodeView:
    """One node as the page and the API show it: the engine's report, and its jobs that the
    user may see (the others only counted)."""

    info: NodeInfo
    jobs: list[NodeJob] = field(default_factory=list)
    other_jobs: int = 0  # jobs there the user may not see, or not Labyard's

    def as_json(self) -> dict[str, Any]:
        """The API shape: the report's fields with the visible jobs in place of its ids."""
        shown = {"jobs": [asdict(job) for job in self.jobs], "other_jobs": self.other_jobs}
        return asdict(self.info) | shown


@dataclass(frozen=True)
class Nodes:
    """The nodes of this installation's executor, or why the cluster did not answer."""

    executor: str
    nodes: list[NodeView]
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        """The API shape."""
        nodes = [node.as_json() for node in self.nodes]
        return {"executor": self.executor, "nodes": nodes, "error": self.error}


def _this_server(db: Session, settings: Settings) -> list[NodeInfo]:
    """This server as the one node, with the live jobs the scheduler placed on it."""
    inventory = cached_inventory(settings)
    live = db.execute(
        select(Job.id, Job.assigned_gpus, Job.cpus, Job.memory_mb).where(
            Job.status.in_(LIVE_STATUSES)
        )
    ).all()
    return [
        NodeInfo(
            name=socket.gethostname(),
            state="up",
            gpus=len(inventory.gpus),
            gpus_used=sum(len(gpus or []) for _, gpus, _, _ in live),
            cpus=int(inventory.cpus),
            cpus_used=round(sum(cpus for _, _, cpus, _ in live)),
            memory_mb=inventory.memory_mb,
            memory_used_mb=sum(memory for _, _, _, memory in live),
            jobs=tuple(str(job_id) for job_id, _, _, _ in live),
        )
    ]


def list_nodes(
    db: Session, user: User, *, settings: Settings, executor: Executor | None = None
) -> Nodes:
    """Every node with the jobs running there (any logged-in user)."""
    executor = executor or make_executor(settings)
    try:
        found = executor.nodes()
    except ExecutorError as exc:
        return Nodes(executor.name, [], error=str(exc))
    mine = found is None
    infos = _this_server(db, settings) if found is None else found
    ids = {job for info in infos for job in info.jobs}
    column = Job.id if mine else Job.external_id
    keys = [int(i) for i in ids if i.isdigit()] if mine else sorted(ids)
    rows = db.execute(
        select(column, Job.id, Job.name, Job.project_id, Job.assigned_gpus).where(
            column.in_(keys), Job.status.in_(LIVE_STATUSES), Job.executor == executor.name
        )
    ).all()
    visible = None if user.is_admin else set(visible_project_ids(db, user))
    shown = {
        str(key): NodeJob(job_id, name, list(gpus or []))
        for key, job_id, name, project_id, gpus in rows
        if visible is None or project_id in visible
    }
    return Nodes(executor.name, [_view(info, shown) for info in infos])


def _view(info: NodeInfo, shown: dict[str, NodeJob]) -> NodeView:
    jobs = [shown[key] for key in info.jobs if key in shown]
    return NodeView(info, jobs, other_jobs=len(info.jobs) - len(jobs))
