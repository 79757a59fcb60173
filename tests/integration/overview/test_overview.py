"""The home overview and a project's overview: who sees which jobs, the queue with its
positions, recent failures, and every GPU with the job the scheduler assigned it to (a
faked 4-GPU node through LABYARD_GPUS=0,1,2,3)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from labyard.app import create_app
from labyard.config import Settings
from labyard.db import Database
from labyard.overview.gpus import read_gpus
from tests.factories import WebClient, make_dataset, make_job_row, session_client
from tests.integration.jobpages.conftest import People

GPU_ROW = re.compile(r'<tr data-gpu="(\w+)" data-busy="(\w+)">(.*?)</tr>', re.S)


@dataclass
class Jobs:
    """ana's running, queued and failed jobs, and otto's running and queued ones."""

    running: int
    queued: list[int]
    failed: int
    otto_running: int
    otto_queued: int


@pytest.fixture
def gpu_app(settings: Settings, database: Database) -> FastAPI:
    """The app on a node with four GPUs (LABYARD_GPUS=0,1,2,3)."""
    return create_app(settings.model_copy(update={"gpus": "0,1,2,3"}), database=database)


@pytest.fixture
def jobs(database: Database, settings: Settings, people: People) -> Jobs:
    """otto queues first (so ana's queued jobs are 2nd and 3rd in the one queue)."""
    assert people.otto.default_project_id is not None
    otto_project = people.otto.default_project_id
    otto_queued = make_job_row(database, settings, otto_project, status="queued", name="otto-q")
    otto_running = make_job_row(
        database, settings, otto_project, status="running", name="otto-secret", assigned_gpus=["3"]
    )
    running = make_job_row(
        database,
        settings,
        people.project_id,
        status="running",
        name="ana-train",
        gpus=2,
        assigned_gpus=["1", "2"],
        progress_fraction=0.25,
        eta_seconds=600,
        progress_line="Progress epoch=5/20",
    )
    queued = [
        make_job_row(database, settings, people.project_id, status="queued", name=f"ana-q{i}")
        for i in range(2)
    ]
    failed = make_job_row(
        database, settings, people.project_id, status="failed", name="ana-oom",
        reason="CUDA out of memory", exit_code=1,
    )  # fmt: skip
    return Jobs(running, queued, failed, otto_running, otto_queued)


@pytest.fixture
def gpu_clients(
    gpu_app: FastAPI, database: Database, people: People
) -> Iterator[dict[str, WebClient]]:
    """Logged-in clients of ana (owner), rita (READ member), otto (outsider) and the admin."""
    from sqlalchemy import select

    from labyard.auth.models import User

    with database.session() as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
    assert admin is not None
    users = {"ana": people.ana, "rita": people.rita, "otto": people.otto, "admin": admin}
    made = {name: session_client(gpu_app, database, user) for name, user in users.items()}
    for client in made.values():
        client.__enter__()
    yield made
    for client in made.values():
        client.__exit__(None, None, None)


def gpu_table(page: str) -> dict[str, tuple[str, str]]:
    """GPU id -> (busy, the holder cell's text) from the home page."""
    out = {}
    for gpu, busy, cells in GPU_ROW.findall(page):
        holder = re.search(r'data-col="holder">(.*?)</td>', cells, re.S)
        assert holder
        out[gpu] = (busy, html.unescape(re.sub(r"<[^>]+>", "", holder.group(1))).strip())
    return out


def test_home_shows_which_job_holds_each_gpu(gpu_clients: dict[str, WebClient], jobs: Jobs) -> None:
    page = gpu_clients["ana"].get("/")
    assert page.status_code == 200
    table = gpu_table(page.text)
    assert table == {
        "0": ("no", "free"),
        "1": ("yes", f"ana-train #{jobs.running}"),
        "2": ("yes", f"ana-train #{jobs.running}"),
        "3": ("yes", "in use by another project"),  # otto's job: busy, but not named
    }
    assert "otto-secret" not in page.text and "otto-q" not in page.text
    admin = gpu_table(gpu_clients["admin"].get("/").text)
    assert admin["3"] == ("yes", f"otto-secret #{jobs.otto_running}")


def test_gpu_model_and_utilisation_come_from_nvml_or_show_a_dash(
    gpu_clients: dict[str, WebClient], jobs: Jobs
) -> None:
    readings = read_gpus(("0", "1", "2", "3"))
    gpus = gpu_clients["ana"].get("/api/v1/overview").json()["gpus"]
    assert [g["id"] for g in gpus] == ["0", "1", "2", "3"]
    for gpu in gpus:
        reading = readings.get(gpu["id"])
        expected = reading.utilisation if reading else None
        assert gpu["utilisation"] == expected
        assert gpu["model"] == (reading.model if reading else None)
    if not readings:  # no NVML on this machine: the page says so with a dash
        row = GPU_ROW.search(gpu_clients["ana"].get("/").text)
        assert row and row.group(3).count("<td>—</td>") == 1  # model
        assert row.group(3).count('<td class="num">—</td>') == 2  # memory, utilisation


def test_members_see_their_projects_jobs_with_live_numbers(
    gpu_clients: dict[str, WebClient], jobs: Jobs
) -> None:
    for name in ("ana", "rita"):
        data = gpu_clients[name].get("/api/v1/overview").json()
        assert data["scope"] == "projects"
        [running] = data["running"]
        assert running["id"] == jobs.running and running["name"] == "ana-train"
        assert running["progress"] == 0.25 and running["eta_seconds"] == 600
        assert running["assigned_gpus"] == ["1", "2"]
        # one queue for everybody: otto's earlier job is first
        assert [(q["id"], q["queue_position"]) for q in data["queued"]] == [
            (jobs.queued[0], 2),
            (jobs.queued[1], 3),
        ]
        [failure] = data["failures"]
        assert failure["reason"] == "CUDA out of memory" and failure["exit_code"] == 1
    page = gpu_clients["rita"].get("/").text
    assert f'aria-label="Progress of job {jobs.running}"' in page
    assert "CUDA out of memory" in page and "0:10:00" in page  # the ETA


def test_outsider_sees_only_their_own_jobs_and_admin_sees_all(
    gpu_clients: dict[str, WebClient], jobs: Jobs
) -> None:
    otto = gpu_clients["otto"].get("/api/v1/overview").json()
    assert [r["id"] for r in otto["running"]] == [jobs.otto_running]
    assert [(q["id"], q["queue_position"]) for q in otto["queued"]] == [(jobs.otto_queued, 1)]
    assert otto["failures"] == []
    text = gpu_clients["otto"].get("/").text
    assert "ana-train" not in text and "CUDA out of memory" not in text
    admin = gpu_clients["admin"].get("/api/v1/overview").json()
    assert admin["scope"] == "all"
    assert {r["id"] for r in admin["running"]} == {jobs.running, jobs.otto_running}
    assert [q["queue_position"] for q in admin["queued"]] == [1, 2, 3]


def test_live_fragment_is_the_polled_part_only(
    gpu_clients: dict[str, WebClient], jobs: Jobs
) -> None:
    fragment = gpu_clients["ana"].hx("GET", "/overview/live")
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="overview-live"')
    assert "<html" not in fragment.text and 'hx-trigger="every 5s"' in fragment.text
    assert f'data-job="{jobs.running}"' in fragment.text


def test_empty_node_and_no_jobs(web: WebClient, app: FastAPI, database: Database) -> None:
    from tests.factories import make_users_fast

    user = make_users_fast(database, "newbie")["newbie"]
    with session_client(app, database, user) as client:
        page = client.get("/").text
        assert "Nothing is running." in page and "The queue is empty." in page
        data = client.get("/api/v1/overview").json()
    assert data["running"] == data["queued"] == data["failures"] == []
    assert web.get("/api/v1/overview").status_code == 401
    assert web.get("/").headers["location"].startswith("/login")


# --------------------------------------------------------------------------- a project


def test_project_page_opens_on_its_overview(
    clients: dict[str, WebClient], database: Database, settings: Settings, people: People
) -> None:
    from labyard.auth.models import User
    from labyard.labs.service import create_lab

    make_dataset(database, settings, people.ana, people.project_id, name="cats")
    job = make_job_row(database, settings, people.project_id, name="recent-one")
    with database.session() as db:
        ana = db.get(User, people.ana.id)
        assert ana is not None
        lab_id = create_lab(db, settings, ana, project_id=people.project_id, name="mnist").id
    page = clients["rita"].get(f"/projects/{people.project_id}").text
    assert f'<a href="/labs/{lab_id}">mnist</a>' in page
    for part in ("project-labs", "project-datasets", "project-recent-jobs", "members"):
        assert f'id="{part}"' in page
    assert "cats" in page and f'href="/jobs/{job}"' in page and "rita" in page
    assert 'aria-current="page">Overview</a>' in page
    data = clients["rita"].get(f"/api/v1/projects/{people.project_id}/overview").json()
    assert data["labs"] == [{"id": lab_id, "name": "mnist"}]
    assert [d["name"] for d in data["datasets"]] == ["cats"]
    assert [j["id"] for j in data["recent_jobs"]] == [job]
    assert {m["username"] for m in data["members"]} == {"ana", "rita"}
    assert data["role"] == "READ"


def test_project_datasets_tab_lists_its_own_datasets(
    clients: dict[str, WebClient], database: Database, settings: Settings, people: People
) -> None:
    make_dataset(database, settings, people.ana, people.project_id, name="cats")
    response = clients["rita"].get(f"/projects/{people.project_id}/datasets")
    assert response.status_code == 200
    assert 'class="mainnav"' in response.text  # the top navigation is there
    assert "cats" in response.text and "digits" not in response.text  # public ones: /datasets
    assert 'aria-current="page">Datasets</a>' in response.text


@pytest.mark.parametrize(
    "path", ["/projects/{p}", "/projects/{p}/datasets", "/api/v1/projects/{p}/overview"]
)
def test_outsiders_and_unknown_projects_get_a_clear_404(
    clients: dict[str, WebClient], people: People, path: str
) -> None:
    for project_id in (people.project_id, 999_999):
        response = clients["otto"].get(path.format(p=project_id))
        assert response.status_code == 404
        assert "No such project" in response.text
        assert "cats" not in response.text and "ana" not in response.text
    bad = clients["otto"].get(path.format(p="abc"))
    assert bad.status_code == 422 and "project_id" in bad.text
