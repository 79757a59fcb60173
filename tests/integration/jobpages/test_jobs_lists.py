"""Jobs lists: filters, sorting, paging at 10,000 jobs, metric and queue columns, live rows,
bulk actions (page and API) with per-job errors, and the sweep page."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs import service, views
from labyard.jobs.models import Job, Sweep
from labyard.labs.models import Lab
from tests.factories import WebClient, access_token_for, auth, make_job_row
from tests.integration.jobpages.conftest import People, parse_sse


def row_ids(page: str) -> list[int]:
    """Job ids of the table rows, in order."""
    return [int(i) for i in re.findall(r'<tr data-job="(\d+)"', page)]


def link(page: str, rel: str) -> str | None:
    """The pager's link with this rel (unescaped), or None."""
    match = re.search(rf'href="([^"]+)" rel="{rel}"', page)
    return html.unescape(match.group(1)) if match else None


def bulk_jobs(database: Database, project_id: int, count: int, **fields: object) -> None:
    """Insert `count` queued jobs in one statement (`started`: a start time every 3rd job)."""
    now = utcnow()
    started = fields.get("started")
    rows = [
        {
            "started_at": now - timedelta(seconds=i % 97) if started and i % 3 else None,
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
    assert "Jobs 1–50 of 10000" in first.text
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
    # the queue position shown is the one views.queue_positions computes
    with database.session() as db:
        job = db.get(Job, ids[0])
        assert job is not None
        assert f"#{views.queue_positions(db, [job], 7)[job.id]} in queue" in first.text


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


def test_keyset_pages_of_ten_thousand_jobs(
    clients: dict[str, WebClient], database: Database, people: People
) -> None:
    bulk_jobs(database, people.project_id, 10_000)
    ana, base = clients["ana"], f"/projects/{people.project_id}/jobs"
    first = ana.get(base).text
    assert row_ids(first) == list(range(10_000, 9_950, -1))
    assert link(first, "prev") is None and link(first, "first") is None
    second = ana.get(link(first, "next") or "").text
    assert row_ids(second) == list(range(9_950, 9_900, -1)) and "Jobs 51–100 of 10000" in second
    assert row_ids(ana.get(link(second, "prev") or "").text) == row_ids(first)
    last = ana.get(link(first, "last") or "").text
    assert row_ids(last) == list(range(50, 0, -1)) and "Jobs 9951–10000 of 10000" in last
    assert link(last, "next") is None and link(last, "last") is None
    before_last = ana.get(link(last, "prev") or "").text
    assert row_ids(before_last) == list(range(100, 50, -1))
    assert row_ids(ana.get(link(before_last, "next") or "").text) == row_ids(last)
    assert row_ids(ana.get(f"{base}?after=51").text) == list(range(50, 0, -1))
    assert row_ids(ana.get(f"{base}?after=1").text) == []
    oldest = ana.get(f"{base}?order=asc&last=1").text
    assert row_ids(oldest) == list(range(9_951, 10_001))
    assert ana.get(f"{base}?after=x1").status_code in (400, 422)


def test_keyset_by_start_time_pages_through_every_job_once(
    clients: dict[str, WebClient], database: Database, people: People, settings: Settings
) -> None:
    bulk_jobs(database, people.project_id, 260, started=True)  # ties and never-started ones
    with database.session() as db:
        jobs = db.query(Job).all()
        never = {j.id for j in jobs if j.started_at is None}
        expected = sorted(
            jobs,
            key=lambda j: (j.started_at is None, -(j.started_at or utcnow()).timestamp(), -j.id),
        )
    ana = clients["ana"]
    for order in ("desc", "asc"):
        url: str | None = f"/projects/{people.project_id}/jobs?sort=started&order={order}"
        seen: list[int] = []
        while url:
            page = ana.get(url).text
            seen += row_ids(page)
            url = link(page, "next")
        assert len(seen) == 260 and set(seen[-len(never) :]) == never  # NULLs last both ways
        if order == "desc":
            assert seen == [j.id for j in expected]
        backwards: list[int] = []
        url = f"/projects/{people.project_id}/jobs?sort=started&order={order}&last=1"
        while url:
            page = ana.get(url).text
            backwards = row_ids(page) + backwards
            url = link(page, "prev")
        assert backwards == seen


def test_sort_by_latest_and_best_of_a_metric(
    clients: dict[str, WebClient], database: Database, people: People, settings: Settings
) -> None:
    acc = {
        "a": [(1, 0.9), (2, 0.5)],  # best 0.9, latest 0.5
        "b": [(1, 0.6), (2, 0.7)],  # best 0.7, latest 0.7
        "c": [(1, 0.8), (2, 0.2), (3, 0.6)],  # best 0.8, latest 0.6
    }
    ids = {
        name: make_job_row(
            database, settings, people.project_id, name=name, points={"Validation_acc": pts}
        )
        for name, pts in acc.items()
    }
    ids["none"] = make_job_row(database, settings, people.project_id, name="none")
    loss = make_job_row(
        database, settings, people.project_id, name="l", points={"Train_loss": [(1, 0.3), (2, 0.1)]}
    )
    ana, base = clients["ana"], f"/projects/{people.project_id}/jobs"
    order = [ids[n] for n in ("a", "c", "b")]
    best_desc = ana.get(f"{base}?sort=best:Validation_acc").text
    assert row_ids(best_desc) == order + [loss, ids["none"]]  # no value: last, newest first
    assert 'class="sort sorted-desc" id="sort-best:Validation_acc"' in best_desc
    best_asc = row_ids(ana.get(f"{base}?sort=best:Validation_acc&order=asc").text)
    assert best_asc[:3] == order[::-1] and set(best_asc[3:]) == {loss, ids["none"]}
    latest = row_ids(ana.get(f"{base}?sort=latest:Validation_acc").text)
    assert latest[:3] == [ids["b"], ids["c"], ids["a"]]
    # best of a loss is its minimum
    assert row_ids(ana.get(f"{base}?sort=best:Train_loss&order=asc").text)[0] == loss
    # the sorted metric is a column with its sort links even when the page has many metrics
    assert '<th class="metric" aria-sort="descending">Validation_acc' in best_desc
    assert "sort=latest%3AValidation_acc" in best_desc
    for bad in ("best:", "worst:Validation_acc", "best:x;drop", "latest:" + "x" * 101):
        assert ana.get(f"{base}?sort={bad}").status_code == 422


def test_metric_sort_pages_by_offset(
    clients: dict[str, WebClient], database: Database, people: People, settings: Settings
) -> None:
    settings.jobs_per_page = 2
    made = [
        make_job_row(database, settings, people.project_id, points={"Train_acc": [(1, v / 10)]})
        for v in range(5)
    ]
    ana, base = clients["ana"], f"/projects/{people.project_id}/jobs?sort=latest:Train_acc"
    pages, url = [], base
    while url:
        page = ana.get(url).text
        pages.append(row_ids(page))
        url = link(page, "next")
    assert pages == [made[4:2:-1], made[2:0:-1], made[:1]]


def test_lab_filter_offers_lab_names(
    clients: dict[str, WebClient], database: Database, people: People, settings: Settings
) -> None:
    other = people.otto.default_project_id
    with database.session() as db:
        labs = [
            Lab(project_id=people.project_id, name=name, flavor="cpu")
            for name in ("mnist", "<i>cifar")
        ]
        secret = Lab(project_id=other, name="otto-lab", flavor="cpu")
        db.add_all([*labs, secret])
        db.flush()
        mnist, cifar = labs[0].id, labs[1].id
    in_mnist = make_job_row(database, settings, people.project_id, lab_id=mnist)
    make_job_row(database, settings, people.project_id, lab_id=cifar)
    make_job_row(database, settings, people.project_id)
    page = clients["ana"].get(f"/projects/{people.project_id}/jobs").text
    assert f'<option value="{mnist}" >mnist</option>' in page
    assert f'<option value="{cifar}" >&lt;i&gt;cifar</option>' in page
    assert "<i>cifar" not in page and "otto-lab" not in page
    filtered = clients["ana"].get(f"/projects/{people.project_id}/jobs?lab_id={mnist}").text
    assert row_ids(filtered) == [in_mnist]
    assert f'<option value="{mnist}" selected>mnist</option>' in filtered
    everywhere = clients["ana"].get("/jobs").text  # all projects: the project is named too
    assert re.search(rf'<option value="{mnist}" >mnist \(ana-default\)</option>', everywhere)
