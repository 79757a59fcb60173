"""GPU packing on a faked 4-GPU node, FIFO within priority, queue positions, the lease."""

from __future__ import annotations

from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service, views
from labyard.jobs.inventory import Inventory, node_inventory, parse_gpu_list
from labyard.jobs.models import Job
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.jobs.test_local_jobs import FOUR_GPUS, submit


def _states(database: Database) -> dict[int, tuple[str, list[str]]]:
    with database.session() as db:
        return {j.id: (j.status, j.assigned_gpus) for j in db.query(Job).order_by(Job.id)}


@pytest.mark.usefixtures("flavors")
def test_whole_gpus_are_packed_exclusively_fifo_within_priority(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    settings.gpus = "0,1,2,3"  # the configured inventory, as LABYARD_GPUS=0,1,2,3
    inventory = node_inventory(settings)
    assert inventory.gpus == ("0", "1", "2", "3")
    lab = write_lab(lab.parent / "two", params="  mode: [wait]\n  copy: [1]\n")
    two = {"mode": ["wait"], "copy": [1, 2]}  # two jobs each (a grid's values are distinct)
    g2 = submit(database, settings, lab, flavor="g2", grid=two)
    g1 = submit(database, settings, lab, flavor="g1", grid=two)
    with database.session() as db:
        positions = views.queue_positions(db, [db.get(Job, i) for i in g2 + g1], 7)  # type: ignore[misc]
    assert [positions[i] for i in g2 + g1] == [1, 2, 3, 4]
    scheduler = make_scheduler(inventory=inventory)
    scheduler.tick()
    states = _states(database)
    assert [states[i][1] for i in g2] == [["0", "1"], ["2", "3"]]
    assert [states[i][0] for i in g1] == ["queued", "queued"]
    with database.session() as db:
        positions = views.queue_positions(db, list(db.query(Job).order_by(Job.id)), 7)
        assert positions == {g1[0]: 1, g1[1]: 2}  # the running jobs have none
    # a high-priority job jumps the queue but not onto busy GPUs
    with database.session() as db:
        db.get(Job, g1[1]).priority = 5  # type: ignore[union-attr]
    (service.job_dir(settings, g2[0]) / "output" / "go").touch()  # frees GPUs 0 and 1
    run_until(scheduler, database, lambda js: _states(database)[g1[0]][0] == "running")
    states = _states(database)
    assert states[g2[0]][0] == "succeeded"
    assert states[g1[1]][1] == ["0"] and states[g1[0]][1] == ["1"]
    for job_id in [g2[1], *g1]:
        (service.job_dir(settings, job_id) / "output" / "go").touch()
    run_until(scheduler, database, all_final)
    log = (service.job_dir(settings, g1[1]) / "job.log").read_text()
    assert "ENV 0 " in log  # CUDA_VISIBLE_DEVICES is exactly the assigned GPU


@pytest.mark.usefixtures("flavors")
def test_a_job_that_can_no_longer_fit_fails_with_the_reason(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    [job_id] = submit(database, settings, lab, flavor="g2")
    run_until(make_scheduler(inventory=Inventory(("0",), 4, 4096)), database, all_final)
    with database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None and job.status == "failed"
        assert "can never run on this node: it needs 2 GPU(s)" in job.reason


def test_gpu_list_setting_is_validated() -> None:
    assert parse_gpu_list("0, 1,2") == ("0", "1", "2")
    assert parse_gpu_list("none") == ()
    for bad in ("0,0", "0;rm", "a b"):
        with pytest.raises(ValueError):
            parse_gpu_list(bad)


@pytest.mark.usefixtures("flavors")
def test_only_the_lease_holder_dispatches(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    first, second = make_scheduler(inventory=FOUR_GPUS), make_scheduler(inventory=FOUR_GPUS)
    assert first.tick() is True
    [job_id] = submit(database, settings, lab)
    assert second.tick() is False
    with database.session() as db:
        assert db.get(Job, job_id).status == "queued"  # type: ignore[union-attr]
    first.release_lease()
    run_until(second, database, all_final)
    assert first.tick() is False
