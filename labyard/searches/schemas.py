"""API shapes of the searches domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

# A whole number as JSON writes it: `true` or `4.0` is not 1 or 4 trials.
WholeNumber = Annotated[int, Strict()]


class SearchSettingsIn(BaseModel):
    """Settings over the lab file's `search:` block; omitted ones keep the file's; unknown
    ones are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["grid", "random", "tpe", "cmaes"] | None = None
    metric: str | None = Field(default=None, max_length=100)
    goal: Literal["maximize", "minimize"] | None = None
    trials: WholeNumber | None = None
    parallel: WholeNumber | None = None
    early_stopping: Literal["none", "asha", "hyperband", "median"] | None = None
    resource: Literal["step", "iter", "epoch"] | None = None
    min_resource: WholeNumber | None = None
    max_resource: WholeNumber | None = None
    reduction_factor: WholeNumber | None = None
    seed: WholeNumber | None = None


class SearchCreate(BaseModel):
    """Start a search from a lab: settings over the file's, and each param's space over the
    file's (`{"min": a, "max": b, "log": true}`, `{"values": [...]}`, a list, or one value)."""

    model_config = ConfigDict(extra="forbid")

    search: SearchSettingsIn = Field(default_factory=SearchSettingsIn)
    space: dict[str, Any] = Field(default_factory=dict)
    flavor: str | None = Field(default=None, max_length=32)


class SearchResume(BaseModel):
    """How many more trials to run."""

    trials: WholeNumber = Field(ge=1, le=1000)


class TrialOut(BaseModel):
    """One trial: its params, its job, the metric per resource step, and how it ended."""

    number: int
    job_id: int | None
    job_status: str | None
    params: dict[str, Any]
    state: str
    value: float | None
    steps: dict[str, float]
    pruned_step: int | None
    reason: str
    finished_at: datetime | None


class BestOut(BaseModel):
    """The best completed trial."""

    number: int
    job_id: int | None
    value: float
    params: dict[str, Any]


class SearchOut(BaseModel):
    """A search: state, settings, space, trial counts and the best trial so far."""

    id: int
    project_id: int
    lab_id: int | None
    name: str
    display_name: str
    state: str
    reason: str
    settings: dict[str, Any]
    space: dict[str, Any]
    trials: int = Field(description="Trials wanted in all (after any resume)")
    counts: dict[str, int] = Field(
        description="Trials by outcome: queued, running, complete, pruned, failed"
    )
    best: BestOut | None
    created_at: datetime
    finished_at: datetime | None
