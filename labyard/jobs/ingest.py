"""Reading a live job's log into the database: metric points in batches, progress, size.

The job's `log_parsed_offset` moves in the same transaction as the points it produced, so
after a crash ingestion resumes exactly where it stopped (no point twice, none lost).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

from prometheus_client import Counter
from sqlalchemy.orm import Session

from labyard.db import utcnow
from labyard.jobs.logs import LOG_NAME, complete_lines, split_stamp
from labyard.jobs.metrics import Point, parse_metric_line, store_points
from labyard.jobs.models import Job
from labyard.jobs.progress import eta_seconds, parse_progress

CHUNK_BYTES = 4 * 1024 * 1024
MAX_CHUNKS_PER_CALL = 16
LINES_INGESTED = Counter("labyard_log_lines_ingested", "Job log lines read by this process.")
POINTS_INGESTED = Counter("labyard_metric_points_ingested", "Metric points stored by this process.")


def ingest_log(db: Session, job: Job, folder: Path, *, final: bool = False) -> int:
    """Parse new whole lines of the job's log; return how many lines were read."""
    path = folder / LOG_NAME
    total = 0
    for _ in range(MAX_CHUNKS_PER_CALL if not final else 1_000_000):
        lines, offset = complete_lines(path, job.log_parsed_offset, CHUNK_BYTES)
        if offset == job.log_parsed_offset:
            break
        _ingest_lines(db, job, lines)
        job.log_parsed_offset = offset
        total += len(lines)
    with contextlib.suppress(OSError):
        job.log_size = path.stat().st_size
    return total


def _ingest_lines(db: Session, job: Job, lines: list[bytes]) -> None:
    points: list[tuple[Point, datetime]] = []
    progress: tuple[float, str, datetime] | None = None
    first_progress: tuple[float, datetime] | None = None  # where the ETA's pace starts
    now = utcnow()
    for raw in lines:
        stamp, text = split_stamp(raw)
        when = stamp or now
        if text.startswith("Progress "):
            fraction = parse_progress(text)
            if fraction is not None:
                progress = (fraction, text, when)
                first_progress = first_progress or (fraction, when)
            continue
        points.extend((p, when) for p in parse_metric_line(text))
    store_points(db, job.id, points)
    LINES_INGESTED.inc(len(lines))
    POINTS_INGESTED.inc(len(points))
    if progress is not None:
        fraction, text, when = progress
        if first_progress is not None and job.progress_started_at is None:
            job.progress_start_fraction, job.progress_started_at = first_progress
        job.progress_fraction = fraction
        job.progress_line = text.strip()[:300]
        if job.started_at is not None:
            elapsed = (when - job.started_at).total_seconds()
            start = None
            if job.progress_started_at is not None and job.progress_start_fraction is not None:
                since = (job.progress_started_at - job.started_at).total_seconds()
                start = (job.progress_start_fraction, since)
            job.eta_seconds = eta_seconds(fraction, elapsed, start)
