"""JSON shapes of the flavors API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FlavorIn(BaseModel):
    """A flavor's definition."""

    name: str
    gpus: int = 0
    cpus: float = 1.0
    memory_mb: int = 2048
    description: str = ""
    partition: str = ""  # Slurm options; empty: the cluster's default
    account: str = ""
    qos: str = ""


class FlavorUpdate(BaseModel):
    """New sizes of a flavor."""

    gpus: int
    cpus: float
    memory_mb: int
    description: str = ""
    partition: str = ""
    account: str = ""
    qos: str = ""


class FlavorOut(FlavorIn):
    """A flavor."""

    model_config = ConfigDict(from_attributes=True)

    id: int
