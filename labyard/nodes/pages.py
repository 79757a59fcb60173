"""The Nodes page (`/nodes`) and its JSON twin `/api/v1/nodes`: the machines that run jobs,
their GPUs and state, and which jobs run there (labyard.nodes.service decides who sees
which job)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from labyard.nodes import service
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["nodes"])
NAV_LINKS = [("Nodes", "/nodes")]


class NodeJobOut(BaseModel):
    """A job running on the node (one the caller may see)."""

    id: int
    name: str
    gpus: list[str] = Field(description="The GPUs it holds there")


class NodeOut(BaseModel):
    """A node that runs jobs."""

    name: str
    state: str = Field(description="idle, mixed, allocated, down, drained ... (Slurm), or up")
    gpus: int
    gpus_used: int
    cpus: int
    cpus_used: int
    memory_mb: int
    memory_used_mb: int
    partitions: list[str]
    reason: str = Field(description="Why the node is down or drained")
    jobs: list[NodeJobOut]
    other_jobs: int = Field(description="Jobs running there that the caller may not see")


class NodesOut(BaseModel):
    """The nodes of this installation's executor."""

    executor: str
    nodes: list[NodeOut]
    error: str = Field(description="Why the cluster did not answer (empty when it did)")


@router.get("/nodes")
def nodes_page(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Every node, its GPUs, CPUs, memory and state, and the jobs running there."""
    found = service.list_nodes(db, user, settings=settings)
    return render(request, "nodes.html", {"cluster": found})


@api.get("/nodes", response_model=NodesOut)
def nodes_api(user: CurrentUser, db: SessionDep, settings: SettingsDep) -> NodesOut:
    """Every node that runs jobs (a Slurm cluster's, or this server), its GPUs, CPUs,
    memory and state, and the jobs running there."""
    return NodesOut.model_validate(service.list_nodes(db, user, settings=settings).as_json())
