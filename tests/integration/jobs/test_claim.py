"""The scheduler claims a queued job through transition(), under a row lock: a stop that
commits while the claim waits wins, and nothing is started for it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.errors import Conflict
from labyard.jobs import service
from labyard.jobs.models import Job
from labyard.jobs.service import transition
from tests.integration.jobs.test_local_jobs import FOUR_GPUS, submit


@pytest.mark.usefixtures("flavors")
def test_a_stop_committed_while_the_claim_waits_wins(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    (job_id,) = submit(database, settings, lab, grid={"mode": ["ok"]})
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    started: list[int] = []
    with database.session() as db:  # a stop in flight: the row is written, not yet committed
        job = db.get(Job, job_id)
        assert job is not None
        transition(job, service.S.STOPPED, reason="stopped before it started")
        db.flush()
        claim = threading.Thread(target=lambda: started.append(scheduler.dispatch()))
        claim.start()
        claim.join(0.5)  # the claim waits on the lock (SQLite: the write lock; PG: the row)
        assert claim.is_alive()
    claim.join(30)
    assert started == [0]
    with database.read_session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        assert (job.status, job.attempt, job.executor, job.external_id) == ("stopped", 0, "", "")
    assert not (service.job_dir(settings, job_id) / "output" / "starts.txt").exists()


@pytest.mark.usefixtures("flavors")
def test_the_claim_stamps_the_attempt_and_gpus_and_refuses_a_bad_move(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    (job_id,) = submit(database, settings, lab, flavor="g2", grid={"mode": ["ok"]})
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    assert scheduler.dispatch() == 1
    with database.read_session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        assert job.status in ("starting", "running") and job.attempt == 1
        assert job.assigned_gpus == ["0", "1"] and job.executor == "local"
        with pytest.raises(Conflict, match=f"cannot become {job.status}"):
            transition(job, service.S(job.status))  # the one rule book the claim follows
