"""Priorities, fair share by recent GPU-hours and FIFO within a project, on a faked 4-GPU
node with three projects: exactly who runs when, and queue positions that are the real
dispatch order."""

from __future__ import annotations

from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.inventory import Inventory
from tests.factories import make_users_fast
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.jobs.fairshare_helpers import (
    finish,
    positions,
    queue,
    running,
    statuses,
    used_before,
)
from tests.integration.jobs.test_local_jobs import FOUR_GPUS

ONE_GPU = Inventory(gpus=("0",), cpus=8, memory_mb=8192)


@pytest.fixture
def waiting_lab(tmp_path: Path) -> Path:
    """A lab whose jobs wait for their `go` file."""
    return write_lab(tmp_path / "wait", params="  mode: [wait]\n  copy: [1]\n")


@pytest.mark.usefixtures("flavors")
def test_priority_then_fewest_recent_gpu_hours_then_fifo(
    database: Database, settings: Settings, waiting_lab: Path, make_scheduler
) -> None:
    people = make_users_fast(database, "ana", "bob", "cy")
    used_before(database, people["ana"], 10.0)  # ana's project used the most lately
    used_before(database, people["bob"], 2.0)
    a12 = queue(database, settings, waiting_lab, people["ana"], 2)
    b12 = queue(database, settings, waiting_lab, people["bob"], 2)
    [c_low] = queue(database, settings, waiting_lab, people["cy"], 1, priority=-1)
    [c_norm] = queue(database, settings, waiting_lab, people["cy"], 1)
    [a_high] = queue(database, settings, waiting_lab, people["ana"], 1, priority=1)
    expected = [a_high, c_norm, *b12, *a12, c_low]
    assert positions(database, settings) == expected
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    scheduler.tick()
    assert running(database) == set(expected[:4])  # 4 GPUs: the first four in order
    assert positions(database, settings) == [*a12, c_low]
    finish(settings, b12[0])
    run_until(scheduler, database, lambda _: a12[0] in running(database))
    assert statuses(database, [a12[1], c_low]) == ["queued", "queued"]
    finish(settings, *expected)
    run_until(scheduler, database, all_final)


@pytest.mark.usefixtures("flavors")
def test_a_project_that_ran_lately_waits_behind_one_that_did_not(
    database: Database, settings: Settings, waiting_lab: Path, make_scheduler
) -> None:
    """A big sweep of one project fills the node; the next free GPU goes to another
    project's job submitted later, since the sweep's project has used GPU-hours since."""
    people = make_users_fast(database, "ana", "bob", "cy")
    sweep = queue(database, settings, waiting_lab, people["ana"], 6)
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    scheduler.tick()
    assert running(database) == set(sweep[:4])
    [late] = queue(database, settings, waiting_lab, people["bob"], 1)
    assert positions(database, settings) == [late, *sweep[4:]]
    finish(settings, sweep[0])
    run_until(scheduler, database, lambda _: late in running(database))
    assert statuses(database, sweep[4:]) == ["queued", "queued"]
    finish(settings, *sweep, late)
    run_until(scheduler, database, all_final)


@pytest.mark.usefixtures("flavors")
def test_positions_are_the_order_jobs_really_start_one_slot_at_a_time(
    database: Database, settings: Settings, waiting_lab: Path, make_scheduler
) -> None:
    people = make_users_fast(database, "ana", "bob", "cy")
    used_before(database, people["ana"], 3.0)
    used_before(database, people["cy"], 1.0)
    ids = []
    for who, count, prio in (
        ("ana", 2, None),
        ("bob", 2, -1),
        ("cy", 2, None),
        ("bob", 1, None),
        ("ana", 1, 1),
        ("cy", 1, -1),
    ):
        ids += queue(database, settings, waiting_lab, people[who], count, priority=prio)
    shown = positions(database, settings)
    assert set(shown) == set(ids)
    scheduler = make_scheduler(inventory=ONE_GPU)
    started: list[int] = []
    while len(started) < len(ids):  # one GPU: one job at a time, each let end at once
        run_until(scheduler, database, lambda _: bool(running(database) - set(started)))
        [now] = running(database) - set(started)
        started.append(now)
        finish(settings, now)
    run_until(scheduler, database, all_final)
    assert started == shown
