"""Jobs lists: filters, sorting, paging at 10,000 jobs, metric and queue columns, live rows,
bulk actions (page and API) with per-job errors, and the sweep page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs import service
from labyard.jobs.models import Job, Sweep
from tests.factories import WebClient, access_token_for, auth, make_job_row
from tests.integration.jobpages.conftest import People, parse_sse


def row_ids(page: str) -> list[int]:
    """Job ids of the table rows, in order."""
    return [int(i) for i in re.findall(r'<tr data-job="(\d+)"', page)]


def bulk_jobs(database: Database, project_id: int, count: int, **fields: object) -> None:
    """Insert `count` queued jobs in one statement."""
    now = utcnow()
    rows = [
        {
            "project_id": project_id,
            "name": f"bulk {i}",
            "status": fields.get("status", "queued"),
            "params": {"lr": i % 7, "bs": 32},
            "command": ["true"],
            "flavor": "cpu",
            "assigned_gpus": [],
            "datasets": [],
            "queued_at": now - timedelta(seconds=count - i),
        }
        for i in range(count)
    ]
    with database.session() as db:
        db.execute(insert(Job), rows)


def test_ten_thousand_jobs_page_filter_and_sort(
    clients: dict[str, WebClient], database: Database, people: People, settings: Settings
) -> None:
    bulk_jobs(database, people.project_id, 10_000)
    ana = clients["ana"]
    first = ana.get(f"/projects/{people.project_id}/jobs")
    assert first.status_code == 200
    ids = row_ids(first.text)
    assert len(ids) == settings.jobs_per_page and ids == sorted(ids, reverse=True)
    assert "Page 1 of 200 · 10000 jobs" in first.text
    assert "#1 in queue" in first.text or "in queue" in first.text
    last = ana.get(f"/projects/{people.project_id}/jobs?page=200")
    assert len(row_ids(last.text)) == 50 and min(row_ids(last.text)) == 1
    beyond = ana.get(f"/projects/{people.project_id}/jobs?page=999")
    assert row_ids(beyond.text) == []
    ascending = ana.get(f"/projects/{people.project_id}/jobs?sort=id&order=asc")
    assert row_ids(ascending.text)[:3] == [1, 2, 3]
    by_name = ana.get(f"/projects/{people.project_id}/jobs?sort=name&order=asc")
    assert row_ids(by_name.text)[:2] == [1, 2]  # "bulk 0", "bulk 1"
    none_running = ana.get(f"/projects/{people.project_id}/jobs?status=running")
    assert row_ids(none_running.text) == [] and "No jobs match." in none_running.text
    bad = ana.get(f"/projects/{people.project_id}/jobs?sort=password_hash")
    assert bad.status_code == 422
    # the queue position shown is the service's
    with database.session() as db:
        job = db.get(Job, ids[0])
        assert job is not None
        assert f"#{service.queue_position(db, job)} in queue" in first.text


def test_lists_show_params_metrics_and_only_visible_jobs(
    clients: dict[str, WebClient], database: Database, people: People, settings: Settings
) -> None:
    mine = make_job_row(
        database,
        settings,
        people.project_id,
        params={"lr": 0.5, "net": "lenet"},
        points={"Train_loss": [(1, 0.9), (2, 0.2), (3, 0.4)], "Train_acc": [(1, 0.5), (2, 0.8)]},
    )
    other = people.otto.default_project_id
    assert other is not None
    hidden = make_job_row(database, settings, other, name="otto-secret")
    page = clients["ana"].get("/jobs").text
    assert row_ids(page) == [mine]
    assert "otto-secret" not in page
    assert '<th class="param">lr</th>' in page and "lenet" in page
    assert '0.4 <span class="muted">/ 0.2</span>' in page  # Train_loss latest / best (min)
    assert '0.8 <span class="muted">/ 0.8</span>' in page  # Train_acc best is the max
    assert row_ids(clients["otto"].get("/jobs").text) == [hidden]
    assert clients["otto"].get(f"/projects/{people.project_id}/jobs").status_code == 404
    nav = clients["ana"].get("/projects").text
    assert 'href="/jobs"' in nav


def test_live_rows_stream_only_visible_jobs_and_ends_when_final(
    clients: dict[str, WebClient], database: Database, people: People, settings: Settings
) -> None:
    mine = make_job_row(database, settings, people.project_id, points={"Train_loss": [(1, 0.3)]})
    other = people.otto.default_project_id
    assert other is not None
    hidden = make_job_row(database, settings, other)
    events = parse_sse(clients["ana"].get(f"/jobs/events?ids={mine},{hidden}").text)
    assert [e["event"] for e in events] == ["row", "end"]
    row = events[0]["data"]
    assert row["id"] == mine and row["status"] == "succeeded"
    assert row["metrics"] == {"Train_loss": [0.3, 0.3]}
    assert clients["ana"].get("/jobs/events?ids=1,x").status_code == 422


def test_bulk_actions_report_each_job_and_change_only_allowed_ones(
    clients: dict[str, WebClient], database: Database, people: People, settings: Settings
) -> None:
    queued = make_job_row(database, settings, people.project_id, status="queued")
    done = make_job_row(database, settings, people.project_id)
    running = make_job_row(database, settings, people.project_id, status="running")
    ana = clients["ana"]
    response = ana.hx(
        "POST", "/jobs/bulk", data={"action": "delete", "job_ids": [str(done), str(running)]}
    )
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "jobs-changed"
    assert "1 job done" in response.text and "stop it before deleting" in response.text
    stopped = ana.hx(
        "POST", "/jobs/bulk", data={"action": "stop", "job_ids": f"{queued},{running}"}
    )
    assert "2 jobs done" in stopped.text
    with database.session() as db:
        assert db.get(Job, done) is None and not service.job_dir(settings, done).exists()
        assert db.get(Job, queued).status == "stopped"  # type: ignore[union-attr]
        live = db.get(Job, running)
        assert live is not None and live.status == "running" and live.stop_requested_at
    # READ member: every job refused, nothing changes
    refused = clients["rita"].hx(
        "POST", "/jobs/bulk", data={"action": "retry", "job_ids": str(queued)}
    )
    assert (
        "0 jobs done" in refused.text
        and "WRITE" in refused.text
        or "permission" in refused.text.lower()
    )
    for bad in ({"action": "explode", "job_ids": str(queued)}, {"action": "stop"}):
        assert ana.hx("POST", "/jobs/bulk", data=bad).status_code in (400, 422)
    with database.session() as db:
        assert db.query(Job).count() == 2


def test_bulk_api_twin(
    app: FastAPI, web: WebClient, database: Database, people: People, settings: Settings
) -> None:
    done = make_job_row(database, settings, people.project_id)
    token = access_token_for(app, database, people.ana)
    response = web.post(
        "/api/v1/jobs/bulk",
        json={"action": "retry", "job_ids": [done, 999_999]},
        headers=auth(token),
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["ok"] is True and results[0]["new_job_id"] > done
    assert results[1] == {
        "job_id": 999_999,
        "ok": False,
        "error": "No such job.",
        "new_job_id": None,
    }
    bad = web.post(
        "/api/v1/jobs/bulk", json={"action": "x", "job_ids": [done]}, headers=auth(token)
    )
    assert bad.status_code == 422
    with database.session() as db:
        assert db.query(Job).count() == 2


@pytest.fixture
def sweep_id(database: Database, settings: Settings, people: People) -> int:
    """A sweep of three finished jobs over lr, the middle one best."""
    with database.session() as db:
        sweep = Sweep(
            project_id=people.project_id,
            name="lr-sweep",
            flavor="cpu",
            grid={"lr": [0.1, 0.01, 0.001]},
        )
        db.add(sweep)
        db.flush()
        sid = sweep.id
    for lr, loss in ((0.1, 0.5), (0.01, 0.1), (0.001, 0.3)):
        make_job_row(
            database,
            settings,
            people.project_id,
            sweep_id=sid,
            params={"lr": lr},
            points={
                "Validation_loss": [(1, 0.9), (2, loss)],
                "Train_loss": [(1, 1.0), (2, loss + 0.1)],
            },
        )
    return sid


def test_sweep_page_table_best_job_and_apis(clients: dict[str, WebClient], sweep_id: int) -> None:
    page = clients["ana"].get(f"/sweeps/{sweep_id}")
    assert page.status_code == 200
    best = re.search(r'<tr data-job="(\d+)" class="best">', page.text)
    assert best is not None
    assert "best by Validation_loss" in page.text
    compare = clients["ana"].get(f"/api/v1/sweeps/{sweep_id}/compare").json()
    assert compare["best_job_id"] == int(best.group(1)) and compare["primary"] == "Validation_loss"
    by_lr = {j["params"]["lr"]: j for j in compare["jobs"]}
    assert by_lr[0.01]["id"] == compare["best_job_id"]
    assert by_lr[0.01]["metrics"]["Validation_loss"] == {"latest": 0.1, "best": 0.1}
    curves = clients["ana"].get(f"/api/v1/sweeps/{sweep_id}/curves?metric=Train_loss").json()
    assert len(curves["curves"]) == 3 and all(c["x"] == [1.0, 2.0] for c in curves["curves"])
    for route in (
        f"/sweeps/{sweep_id}",
        f"/api/v1/sweeps/{sweep_id}/compare",
        f"/api/v1/sweeps/{sweep_id}/curves?metric=Train_loss",
    ):
        assert clients["otto"].get(route).status_code == 404
        assert clients["rita"].get(route).status_code == 200
    filtered = clients["ana"].get(f"/jobs?sweep_id={sweep_id}")
    assert len(row_ids(filtered.text)) == 3
