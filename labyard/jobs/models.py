"""Tables of the jobs domain: sweeps, jobs, metric points, the scheduler lease."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from labyard.db import Base, utcnow
from labyard.jobs import naming


class JobStatus(enum.StrEnum):
    """A job's state; see service.TRANSITIONS for the allowed moves."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    PRUNED = "pruned"  # stopped early by its search's pruner (not failed, not a user's stop)


LIVE_STATUSES = (JobStatus.STARTING, JobStatus.RUNNING)
FINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.PRUNED)


class Sweep(Base):
    """One grid submission from a lab; it expands into one job per combination."""

    __tablename__ = "sweeps"
    __table_args__ = (UniqueConstraint("lab_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    lab_id: Mapped[int | None] = mapped_column(default=None)  # labs table comes later
    name: Mapped[str] = mapped_column(String(200))
    number: Mapped[int | None] = mapped_column(default=None)  # 1, 2, ... within its lab
    kind: Mapped[str] = mapped_column(String(16), default="sweep")  # sweep | search
    flavor: Mapped[str] = mapped_column(String(32))
    grid: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def display_name(self) -> str:
        """ "QuickStart · sweep 3" (or "QuickStart · search 4")."""
        return naming.sweep_display_name(self.name, self.number, self.kind)


class Job(Base):
    """One run of one parameter combination."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_priority", "status", "priority", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="SET NULL"), index=True, default=None
    )
    lab_id: Mapped[int | None] = mapped_column(default=None)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    name: Mapped[str] = mapped_column(String(200))  # the display name (jobs.naming)
    number: Mapped[int | None] = mapped_column(default=None)  # 1, 2, ... within its sweep
    label: Mapped[str] = mapped_column(String(200), default="")  # "#2 · lr=0.1" in its sweep
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    reason: Mapped[str] = mapped_column(String(500), default="")
    exit_code: Mapped[int | None] = mapped_column(default=None)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    command: Mapped[list[str]] = mapped_column(JSON)
    image: Mapped[str] = mapped_column(String(300), default="")
    flavor: Mapped[str] = mapped_column(String(32))
    gpus: Mapped[int] = mapped_column(default=0)
    cpus: Mapped[float] = mapped_column(default=1.0)
    memory_mb: Mapped[int] = mapped_column(default=2048)
    assigned_gpus: Mapped[list[str]] = mapped_column(JSON, default=list)
    priority: Mapped[int] = mapped_column(default=0)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    stop_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    # the status a requested stop ends in: stopped (a user, a quota) or pruned (a search)
    stop_status: Mapped[str] = mapped_column(String(16), default=JobStatus.STOPPED)
    attempt: Mapped[int] = mapped_column(default=0)
    executor: Mapped[str] = mapped_column(String(16), default="")
    external_id: Mapped[str] = mapped_column(String(100), default="")
    # where an engine that places jobs (Slurm) has it: node(s), its state and reason in the
    # engine's words (PENDING / Resources), its place in the engine's queue
    node: Mapped[str] = mapped_column(String(200), default="")
    engine_state: Mapped[str] = mapped_column(String(32), default="")
    engine_reason: Mapped[str] = mapped_column(String(200), default="")
    queue_position: Mapped[int | None] = mapped_column(default=None)
    datasets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    progress_fraction: Mapped[float | None] = mapped_column(default=None)
    progress_start_fraction: Mapped[float | None] = mapped_column(default=None)
    progress_started_at: Mapped[datetime | None] = mapped_column(default=None)
    eta_seconds: Mapped[float | None] = mapped_column(default=None)
    progress_line: Mapped[str] = mapped_column(String(300), default="")
    log_size: Mapped[int] = mapped_column(default=0)
    log_parsed_offset: Mapped[int] = mapped_column(default=0)
    # succeeded, its mlsteam.yml's output_dataset: not looked at yet (jobs.output_dataset)
    output_save_pending: Mapped[bool] = mapped_column(default=False, index=True)

    @property
    def display_name(self) -> str:
        """ "QuickStart · sweep 3 · #2 · network=resnet18" (stored as `name`)."""
        return self.name

    @property
    def engine_summary(self) -> str:
        """Where the cluster has the job, in a line: "PENDING · Resources · #3 in the
        cluster's queue" ("" when no cluster places it)."""
        parts = [self.engine_state, self.engine_reason]
        if self.queue_position is not None:
            parts.append(f"#{self.queue_position} in the cluster's queue")
        return " · ".join(part for part in parts if part)

    @property
    def sweep_label(self) -> str:
        """The name within its sweep ("#2 · network=resnet18"); the full name without one."""
        return self.label or self.name

    @property
    def hover_text(self) -> str:
        """The display name with every param in full (a truncated name's hover text)."""
        params = naming.params_text(self.params or {})
        return f"{self.name}\n{params}" if params else self.name


ATTEMPT_PREEMPTED = "preempted"  # the outcome of an attempt that was preempted
ATTEMPT_REQUEUED = "requeued"  # the outcome of an attempt the engine itself ran again
# Attempts that ended with the job going back to the queue: their GPU time counts on its own.
ATTEMPTS_REQUEUED = (ATTEMPT_PREEMPTED, ATTEMPT_REQUEUED)


class JobAttempt(Base):
    """One ended attempt of a job (the current one is the job row itself): when it ran
    and how it ended ("preempted", or the job's final status) and why."""

    __tablename__ = "job_attempts"
    __table_args__ = (UniqueConstraint("job_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    number: Mapped[int]
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # preempted | succeeded | failed | ...
    reason: Mapped[str] = mapped_column(String(500), default="")
    exit_code: Mapped[int | None] = mapped_column(default=None)


class MetricPoint(Base):
    """One value of one metric series (e.g. Train_loss over step) of a job."""

    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_series", "job_id", "name", "x"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    x_name: Mapped[str] = mapped_column(String(8))
    x: Mapped[float]
    value: Mapped[float]
    ts: Mapped[datetime] = mapped_column(default=utcnow)


class MetricSeries(Base):
    """One series of a job (name over x axis), summarised as points arrive: how many, the
    first, last, lowest and highest value, and the last point's id. Pages read these instead
    of scanning every point."""

    __tablename__ = "metric_series"
    __table_args__ = (UniqueConstraint("job_id", "name", "x_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    x_name: Mapped[str] = mapped_column(String(8))
    points: Mapped[int] = mapped_column(default=0)
    first_x: Mapped[float]
    first_value: Mapped[float]
    last_x: Mapped[float]
    last_value: Mapped[float]
    low: Mapped[float]
    high: Mapped[float]
    last_point_id: Mapped[int]


class MetricBucket(Base):
    """The lowest and highest point of `size` consecutive points of a series (in arrival
    order), at one of the levels of metrics_rollup.SIZES: a chart of any length reads at
    most a few thousand of these."""

    __tablename__ = "metric_buckets"

    series_id: Mapped[int] = mapped_column(
        ForeignKey("metric_series.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    low_x: Mapped[float]
    low: Mapped[float]
    high_x: Mapped[float]
    high: Mapped[float]


class SchedulerLease(Base):
    """A single row: which scheduler may dispatch, until when."""

    __tablename__ = "scheduler_lease"

    id: Mapped[int] = mapped_column(primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class GpuQuota(Base):
    """An admin's GPU limits of one project or one user (exactly one of the two is set):
    most GPUs at once, GPU-hours per calendar month (UTC); None means no limit."""

    __tablename__ = "gpu_quotas"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), unique=True, default=None
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True, default=None
    )
    max_gpus: Mapped[int | None] = mapped_column(default=None)
    monthly_gpu_hours: Mapped[float | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
