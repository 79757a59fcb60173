"""Sweeps numbered per lab (also under concurrent submits), jobs named by their number in
the sweep and the params that differ, retries numbered next; the API shows both names."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import Job, Sweep
from tests.factories import make_users_fast, session_client

INVENTORY = Inventory(gpus=("0",), cpus=8, memory_mb=8192)
SUBMITTERS = 6


def _submit(database: Database, settings: Settings, lab: Path, user: User, **kw: object) -> int:
    with database.session() as db:
        row = db.get(User, user.id)
        assert row is not None and row.default_project_id is not None
        sweep = service.create_sweep(
            db,
            row,
            settings=settings,
            project_id=row.default_project_id,
            lab_dir=lab,
            flavor="tiny",
            inventory=INVENTORY,
            **kw,  # type: ignore[arg-type]
        )
        return sweep.id


def _names(database: Database, sweep_id: int) -> tuple[str, list[tuple[int | None, str, str]]]:
    with database.session() as db:
        sweep = db.get(Sweep, sweep_id)
        assert sweep is not None
        jobs = db.query(Job).filter_by(sweep_id=sweep_id).order_by(Job.id).all()
        return sweep.display_name, [(j.number, j.label, j.name) for j in jobs]


@pytest.mark.usefixtures("flavors")
def test_sweeps_are_numbered_per_lab_and_jobs_by_what_differs(
    database: Database, settings: Settings, lab: Path
) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    grid = {"mode": ["ok", "fail"]}
    first = _submit(database, settings, lab, ana, name="QuickStart", lab_id=7, grid=grid)
    other = _submit(database, settings, lab, ana, name="Other", lab_id=8, grid={"mode": ["ok"]})
    second = _submit(database, settings, lab, ana, name="QuickStart", lab_id=7, grid=grid)
    assert _names(database, first) == (
        "QuickStart · sweep 1",
        [
            (1, "#1 · mode=ok", "QuickStart · sweep 1 · #1 · mode=ok"),
            (2, "#2 · mode=fail", "QuickStart · sweep 1 · #2 · mode=fail"),
        ],
    )
    # another lab counts from 1; a one-job sweep's job is just "#1"
    assert _names(database, other) == ("Other · sweep 1", [(1, "#1", "Other · sweep 1 · #1")])
    assert _names(database, second)[0] == "QuickStart · sweep 2"

    # a retry takes the sweep's next number and says what it retries
    with database.session() as db:
        user = db.get(User, ana.id)
        assert user is not None
        first_job = db.query(Job).filter_by(sweep_id=first).order_by(Job.id).first()
        assert first_job is not None
        retry = service.retry_job(db, user, first_job.id, settings=settings)
        assert (retry.number, retry.name) == (
            3,
            "QuickStart · sweep 1 · #3 · retry of #1 · mode=ok",
        )


@pytest.mark.usefixtures("flavors")
def test_the_api_gives_numbers_and_display_names(
    database: Database, settings: Settings, lab: Path, app: object
) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    sweep_id = _submit(
        database, settings, lab, ana, name="QuickStart", lab_id=3, grid={"mode": ["ok", "x"]}
    )
    with session_client(app, database, ana) as client:  # type: ignore[arg-type]
        sweep = client.get(f"/api/v1/sweeps/{sweep_id}").json()
        assert (sweep["number"], sweep["display_name"]) == (1, "QuickStart · sweep 1")
        assert sweep["name"] == "QuickStart"  # the old field stays
        jobs = client.get(f"/api/v1/jobs?sweep_id={sweep_id}").json()
        assert sorted((j["number"], j["display_name"]) for j in jobs) == [
            (1, "QuickStart · sweep 1 · #1 · mode=ok"),
            (2, "QuickStart · sweep 1 · #2 · mode=x"),
        ]


@pytest.mark.usefixtures("flavors")
def test_concurrent_submits_to_one_lab_never_share_a_number(
    database: Database, settings: Settings, lab: Path
) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    start = threading.Barrier(SUBMITTERS)
    made: list[int] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            start.wait()
            made.append(_submit(database, settings, lab, ana, name="QuickStart", lab_id=5))
        except BaseException as exc:  # reported below, with the numbers
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(SUBMITTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with database.session() as db:
        numbers = sorted(s.number for s in db.query(Sweep).filter(Sweep.id.in_(made)))
    assert numbers == list(range(1, SUBMITTERS + 1))
