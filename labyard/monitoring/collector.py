"""What `/metrics` reads from the database at each scrape: jobs by status, the queue and its
waits, GPUs per node (held by live jobs, and busy by NVML where it reads), TensorBoards and
lab sessions. One read session per scrape, a handful of grouped queries: a scrape costs the
same with 10 jobs or 100,000."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs.models import LIVE_STATUSES, Job, JobStatus
from labyard.overview.gpus import cached_inventory, read_gpus
from labyard.sessions.models import LabSession
from labyard.tensorboard.models import TensorBoardInstance, TensorBoardStatus

RECENT = timedelta(hours=1)  # the window of the mean wait of jobs that started


class PlatformCollector(Collector):
    """Prometheus gauges computed from the database when scraped."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database

    def collect(self) -> Iterator[Metric]:
        """Every gauge, from one read session."""
        with self.database.read_session() as db:
            yield from _jobs(db)
            yield from _queue(db)
            yield from _gpus(db, self.settings)
            yield from _tools(db)


def _jobs(db: Session) -> Iterator[Metric]:
    counts = dict(db.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    family = GaugeMetricFamily("labyard_jobs", "Jobs by status.", labels=["status"])
    for status in JobStatus:
        family.add_metric([status.value], float(counts.get(status.value, 0)))
    yield family


def _queue(db: Session) -> Iterator[Metric]:
    now = utcnow()
    queued = select(func.count(), func.min(Job.queued_at)).where(Job.status == JobStatus.QUEUED)
    length, oldest = db.execute(queued).one()
    yield GaugeMetricFamily("labyard_queue_length", "Jobs waiting for resources.", length)
    oldest_wait = (now - oldest).total_seconds() if oldest is not None else 0.0
    yield GaugeMetricFamily(
        "labyard_queue_oldest_wait_seconds", "How long the oldest queued job has waited.",
        oldest_wait,
    )  # fmt: skip
    started = db.execute(
        select(Job.queued_at, Job.started_at).where(Job.started_at >= now - RECENT)
    ).all()
    waits = [(begun - queued_at).total_seconds() for queued_at, begun in started if begun]
    yield GaugeMetricFamily(
        "labyard_queue_recent_wait_seconds",
        "Mean wait, from queued to started, of the jobs that started in the last hour.",
        sum(waits) / len(waits) if waits else 0.0,
    )


def _gpus(db: Session, settings: Settings) -> Iterator[Metric]:
    """GPUs held per node (a cluster's nodes as its jobs report them; this server's own
    inventory otherwise), and this server's GPUs busy by NVML."""
    here = socket.gethostname()
    held: dict[str, int] = {}
    rows = db.execute(select(Job.node, Job.assigned_gpus).where(Job.status.in_(LIVE_STATUSES)))
    for node, assigned in rows:
        held[node or here] = held.get(node or here, 0) + len(assigned or [])
    total = GaugeMetricFamily("labyard_gpus", "GPUs this server places jobs on.", labels=["node"])
    allocated = GaugeMetricFamily(
        "labyard_gpus_allocated", "GPUs held by live jobs and sessions.", labels=["node"]
    )
    busy = GaugeMetricFamily(
        "labyard_gpus_in_use", "GPUs with non-zero utilisation (NVML).", labels=["node"]
    )
    utilisation = GaugeMetricFamily(
        "labyard_gpu_utilisation_percent", "A GPU's utilisation (NVML).", labels=["node", "gpu"]
    )
    if settings.executor != "slurm":
        inventory = cached_inventory(settings)
        total.add_metric([here], float(len(inventory.gpus)))
        readings = read_gpus(inventory.gpus)
        in_use = 0
        for gpu, reading in readings.items():
            if reading.utilisation is not None:
                utilisation.add_metric([here, gpu], float(reading.utilisation))
                in_use += reading.utilisation > 0
        busy.add_metric([here], float(in_use))
        held.setdefault(here, 0)
    for node, count in sorted(held.items()):
        allocated.add_metric([node], float(count))
    yield from (total, allocated, busy, utilisation)


def _tools(db: Session) -> Iterator[Metric]:
    boards = db.scalar(
        select(func.count())
        .select_from(TensorBoardInstance)
        .where(TensorBoardInstance.status == TensorBoardStatus.RUNNING)
    )
    yield GaugeMetricFamily("labyard_tensorboards", "TensorBoards running.", boards or 0)
    sessions = db.execute(
        select(Job.status, func.count())
        .join(LabSession, LabSession.job_id == Job.id)
        .where(Job.status.in_((JobStatus.QUEUED, *LIVE_STATUSES)))
        .group_by(Job.status)
    ).all()
    family = GaugeMetricFamily(
        "labyard_sessions", "Lab sessions queued or live, by job status.", labels=["status"]
    )
    for status, count in sessions:
        family.add_metric([status], float(count))
    yield family
