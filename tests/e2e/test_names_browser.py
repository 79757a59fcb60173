"""Browser test: the job page's title and heading name the job once ("QuickStart1 ·
sweep 2 · #2 · network=resnet18"), with no number repeated (it read "QuickStart1 #1 #1")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import Job
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_job_flavors, make_users_fast

pytestmark = [pytest.mark.browser]

SWEEP = "QuickStart1 · sweep 2"
NAME = f"{SWEEP} · #2 · network=resnet18"


def _second_sweep(database: Database, settings: Settings, lab: Path) -> int:
    """Two sweeps of one lab; the id of the second's job on resnet18."""
    (lab / "mlsteam.yml").write_text(
        "command: python train.py\nparams:\n  network: [lenet]\n  lr: [0.1]\n"
    )
    make_job_flavors(database)
    ana = make_users_fast(database, "ana")["ana"]
    with database.session() as db:
        user = db.get(service.User, ana.id)
        assert user is not None and user.default_project_id is not None
        for _ in range(2):
            sweep = service.create_sweep(
                db,
                user,
                settings=settings,
                project_id=user.default_project_id,
                lab_dir=lab,
                flavor="tiny",
                grid={"network": ["lenet", "resnet18"], "lr": [0.1]},
                name="QuickStart1",
                lab_id=1,
                inventory=Inventory(gpus=(), cpus=4, memory_mb=4096),
            )
        job = db.query(Job).filter_by(sweep_id=sweep.id).order_by(Job.id.desc()).first()
        assert job is not None
        return job.id


def test_job_page_names_the_job_once(
    page: Any, live_server: str, database: Database, settings: Settings, tmp_path: Path
) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    job_id = _second_sweep(database, settings, lab)
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/jobs/{job_id}")
    heading = page.locator("h1").inner_text().strip()
    assert heading == NAME
    assert page.title().startswith(NAME)
    # each number appears once: no "#2 #2", no job id tacked on
    for text in (heading, page.title()):
        assert len(re.findall(r"#\d+", text)) == 1, text
    assert page.locator(".crumbs").inner_text().count(SWEEP) == 1
    page.goto(f"{live_server}/jobs")
    assert page.get_by_role("link", name=NAME).count() == 1
