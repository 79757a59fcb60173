"""/metrics in Prometheus' text format, parsed with prometheus_client's own parser: the
gauges agree with the database, HTTP latency is recorded by route template, ingestion
counts lines and points, and only admins or the metrics token may read it."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs.ingest import ingest_log
from labyard.jobs.models import Job
from labyard.jobs.service import job_dir
from tests.factories import WebClient, access_token_for, auth, make_job_row, make_users_fast

REPO = Path(__file__).resolve().parents[3]
SCRAPE_TOKEN = "scrape-me-0123456789abcdef"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _project(database: Database) -> tuple[User, int]:
    user = make_users_fast(database, "ana")["ana"]
    assert user.default_project_id is not None
    return user, user.default_project_id


def test_gauges_agree_with_the_database(
    admin_web: WebClient, database: Database, settings: Settings
) -> None:
    _, project_id = _project(database)
    for status in ("queued", "queued", "running", "succeeded", "failed"):
        make_job_row(database, settings, project_id, status=status, assigned_gpus=[])
    with database.session() as db:  # the running job holds two GPUs; a queued one waited
        running = db.query(Job).filter(Job.status == "running").one()
        running.assigned_gpus = ["0", "1"]
        oldest = db.query(Job).filter(Job.status == "queued").first()
        assert oldest is not None
        oldest.queued_at = utcnow() - timedelta(minutes=10)
        for started in db.query(Job).filter(Job.started_at.is_not(None)):
            started.queued_at = started.started_at - timedelta(seconds=30)  # type: ignore[operator]
    response = admin_web.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    jobs = {
        labels[0][1]: value for (name, labels), value in samples.items() if name == "labyard_jobs"
    }
    assert jobs["queued"] == 2 and jobs["running"] == 1 and jobs["succeeded"] == 1
    assert jobs["failed"] == 1 and jobs["pruned"] == 0
    assert samples[("labyard_queue_length", ())] == 2
    assert 590 <= samples[("labyard_queue_oldest_wait_seconds", ())] <= 700
    assert samples[("labyard_queue_recent_wait_seconds", ())] == 30
    allocated = [v for (name, _), v in samples.items() if name == "labyard_gpus_allocated"]
    assert allocated == [2]
    assert samples[("labyard_tensorboards", ())] == 0


def test_http_latency_by_route_template(admin_web: WebClient, database: Database) -> None:
    _, project_id = _project(database)
    admin_web.get(f"/api/v1/projects/{project_id}")
    admin_web.get("/api/v1/projects/999999")  # a 404 on the same template
    samples = _samples(admin_web.get("/metrics").text)
    route = "/api/v1/projects/{project_id}"
    count = "labyard_http_request_duration_seconds_count"
    ok = samples[(count, (("method", "GET"), ("route", route), ("status", "2xx")))]
    missing = samples[(count, (("method", "GET"), ("route", route), ("status", "4xx")))]
    assert ok >= 1 and missing >= 1
    assert not any(f"/{project_id}" in str(labels) for (_, labels) in samples)  # no raw paths


def test_ingestion_counts_lines_and_points(
    admin_web: WebClient, database: Database, settings: Settings
) -> None:
    _, project_id = _project(database)
    before = _samples(admin_web.get("/metrics").text)
    lines = ["Train step=1 loss=0.5 acc=0.9", "hello", "Progress 1/2"]
    job_id = make_job_row(database, settings, project_id, status="running", log_lines=lines)
    with database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        assert ingest_log(db, job, job_dir(settings, job_id)) == 3
    after = _samples(admin_web.get("/metrics").text)
    for name, grew in (
        ("labyard_log_lines_ingested_total", 3),
        ("labyard_metric_points_ingested_total", 2),
    ):
        assert after[(name, ())] - before.get((name, ()), 0) == grew


def test_only_admins_and_the_metrics_token_may_scrape(
    app: object, web: WebClient, database: Database, settings: Settings
) -> None:
    user, _ = _project(database)
    assert web.get("/metrics").status_code == 404  # anonymous
    member = auth(access_token_for(app, database, user))  # type: ignore[arg-type]
    assert web.get("/metrics", headers=member).status_code == 404
    assert web.get("/metrics", headers=auth(SCRAPE_TOKEN)).status_code == 404  # no token set
    settings.metrics_token = SCRAPE_TOKEN
    assert web.get("/metrics", headers=auth(SCRAPE_TOKEN)).status_code == 200
    assert web.get("/metrics", headers=auth(SCRAPE_TOKEN + "x")).status_code == 404
    assert web.get("/metrics", headers=member).status_code == 404


def test_the_grafana_dashboard_plots_only_metrics_we_expose(admin_web: WebClient) -> None:
    dashboard = json.loads((REPO / "grafana" / "labyard-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    suffix = re.compile(r"_(bucket|count|sum|total)$")  # a histogram's or counter's series
    used = {
        suffix.sub("", name) for expr in exprs for name in re.findall(r"\blabyard_[a-z_]+", expr)
    }
    declared = {f.name for f in text_string_to_metric_families(admin_web.get("/metrics").text)}
    assert len(used) >= 10 and used <= declared, used - declared
