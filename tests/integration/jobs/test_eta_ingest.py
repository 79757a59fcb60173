"""The ETA the scheduler stores while ingesting a log: paced from the first progress line, so
start-up time before training does not inflate it; the anchor survives later ingestions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.ingest import ingest_log
from labyard.jobs.models import Job
from labyard.jobs.service import job_dir
from tests.factories import make_job_row, make_users_fast


def _append(settings: Settings, job_id: int, at: datetime, text: str) -> None:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with (job_dir(settings, job_id) / "job.log").open("a") as fh:
        fh.write(f"{stamp} {text}\n")


def _ingest(database: Database, settings: Settings, job_id: int) -> Job:
    with database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        ingest_log(db, job, job_dir(settings, job_id))
    with database.read_session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        db.expunge(job)
        return job


def test_eta_is_paced_from_the_first_progress_line(database: Database, settings: Settings) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    assert ana.default_project_id is not None
    job_id = make_job_row(database, settings, ana.default_project_id, status="running")
    with database.read_session() as db:
        job = db.get(Job, job_id)
        assert job is not None and job.started_at is not None
        start = job.started_at
    _ingest(database, settings, job_id)  # the fixture's own log: no progress line
    # 30 s of imports and data loading, then training starts and a fifth takes 10 s
    _append(settings, job_id, start + timedelta(seconds=30), "Progress epoch=1/5 step=0/10")
    _append(settings, job_id, start + timedelta(seconds=40), "Progress epoch=1/5 step=10/10")
    job = _ingest(database, settings, job_id)
    assert job.progress_fraction == pytest.approx(0.2)
    assert job.progress_start_fraction == 0.0
    assert job.progress_started_at == start + timedelta(seconds=30)
    assert job.eta_seconds == pytest.approx(40.0)  # not 160 s, the pace since the job's start
    # a later ingestion keeps the anchor: 40 % after 50 s is 20 s for 20 %, so 30 s left
    _append(settings, job_id, start + timedelta(seconds=50), "Progress epoch=2/5 step=10/10")
    job = _ingest(database, settings, job_id)
    assert job.progress_started_at == start + timedelta(seconds=30)
    assert job.eta_seconds == pytest.approx(30.0)
    # a malformed progress line changes nothing
    _append(settings, job_id, start + timedelta(seconds=55), "Progress epoch=9/5 step=1/10")
    assert _ingest(database, settings, job_id).eta_seconds == pytest.approx(30.0)
