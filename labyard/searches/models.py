"""Tables of the searches domain: a search (one per sweep) and its trials (one per job).

The study lives here, in the platform's own tables and migrations: each decision rebuilds an
in-memory Optuna study from these rows (searches.study), so a restart loses nothing and the
pruner's past decisions (its rung records in `system_attrs`) stay as they were made.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from labyard.db import Base, utcnow


class SearchState(enum.StrEnum):
    """running -> stopping -> stopped, or running -> finished; stopped/finished -> running
    again when resumed with more trials."""

    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FINISHED = "finished"


class TrialState(enum.StrEnum):
    """A trial's outcome as Optuna sees it (its job's status says how the job ended)."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


class Search(Base):
    """A search: its sweep's id is its id, its trials are that sweep's jobs."""

    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    lab_id: Mapped[int | None] = mapped_column(default=None)
    state: Mapped[str] = mapped_column(String(16), default=SearchState.RUNNING)
    reason: Mapped[str] = mapped_column(String(500), default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)  # searchspec.SearchSettings
    space: Mapped[dict[str, Any]] = mapped_column(JSON)  # name -> searchspec.ParamSpace
    trials_wanted: Mapped[int]
    seed: Mapped[int]
    job_spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # what every trial job shares
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class SearchTrial(Base):
    """One trial: Optuna's trial `number`, the params it sampled, the job that runs them,
    the metric's values per resource step as they were ingested, and its outcome."""

    __tablename__ = "search_trials"
    __table_args__ = (UniqueConstraint("search_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    number: Mapped[int]
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), unique=True, default=None
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=TrialState.RUNNING)
    value: Mapped[float | None] = mapped_column(default=None)
    steps: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)  # "3" -> value
    system_attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_point_id: Mapped[int] = mapped_column(default=0)  # metric points already read
    pruned_step: Mapped[int | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
