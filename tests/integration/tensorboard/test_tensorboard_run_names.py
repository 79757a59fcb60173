"""A sweep's TensorBoard names its runs by the jobs' display names (a real TensorBoard,
asked through the proxy), not by ids and `/.`; the run links live under the data dir."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from labyard.auth.models import User
from labyard.jobs import service as jobs_service
from labyard.jobs.inventory import Inventory
from labyard.tensorboard import service
from tests.factories import make_job_flavors, session_client, write_scalars
from tests.integration.jobs.conftest import write_lab
from tests.integration.tensorboard.conftest import READY_DEADLINE_S

EXPECTED = [
    "QuickStart · sweep 1 · #1 · network=lenet",
    "QuickStart · sweep 1 · #2 · network=resnet18",
]


def _sweep(tb: Any, lab: Path) -> int:
    make_job_flavors(tb.database)
    with tb.database.session() as db:
        owner = db.get(User, tb.owner.id)
        sweep = jobs_service.create_sweep(
            db,
            owner,
            settings=tb.settings,
            project_id=tb.project_id,
            lab_dir=lab,
            flavor="tiny",
            grid={"network": ["lenet", "resnet18"], "lr": [0.1]},
            name="QuickStart",
            lab_id=1,
            inventory=Inventory(gpus=(), cpus=4, memory_mb=4096),
        )
        job_ids = [j.id for j in jobs_service.list_jobs(db, owner, sweep_id=sweep.id)]
    for job_id in job_ids:
        write_scalars(jobs_service.job_dir(tb.settings, job_id) / "output" / "tensorboard")
    return int(sweep.id)


def test_sweep_runs_are_listed_by_display_name(tb: Any, tmp_path: Path) -> None:
    lab = write_lab(tmp_path / "lab", params="  network: [lenet]\n  lr: [0.1]\n")
    sweep_id = _sweep(tb, lab)
    with session_client(tb.app, tb.database, tb.owner) as owner:
        response = owner.hx("POST", "/api/v1/tensorboards", json={"sweep_id": sweep_id})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["runs"] == EXPECTED
        # the list page shows the same names
        assert all(name in owner.get("/tensorboards").text for name in EXPECTED)
        tb.wait_ready(owner, body["id"])
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:  # TensorBoard lists a run once its first reload found the events
            runs = owner.get(f"/tensorboard/{body['id']}/data/runs")
            assert runs.status_code == 200, runs.text
            if len(runs.json()) == len(EXPECTED):
                break
            assert time.monotonic() < deadline, runs.text
            time.sleep(0.2)
        assert sorted(runs.json()) == EXPECTED  # readable: no ids, no "/."
    links = service.runs_path(tb.settings, body["id"])
    assert sorted(p.name for p in links.iterdir()) == EXPECTED
    assert all(p.is_symlink() for p in links.iterdir())
