"""Webhooks end to end: a real job's end reaches a real receiver, signed; retries back off;
private addresses are refused without a connection; redirects are not followed."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service as jobs_service
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import Job
from labyard.jobs.scheduler import Scheduler
from labyard.notifications.delivery import deliver_due
from tests.factories import make_job_flavors
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.notifications.conftest import (
    People,
    Receiver,
    deliver_until,
    deliveries_of,
)

CPU = Inventory(gpus=(), cpus=8, memory_mb=8192)
ALL_EVENTS = ["job.finished", "job.failed", "sweep.finished", "search.finished"]


def _subscribe(client, url: str, events: list[str] | None = None) -> dict:
    response = client.post(
        "/api/v1/notifications", json={"url": url, "events": events or ALL_EVENTS}
    )
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


def _verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    stamp = headers["X-Labyard-Timestamp"]
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Labyard-Signature"], f"sha256={mac}")


def test_a_finished_sweep_reaches_the_receiver_signed(
    notify_settings: Settings,
    database: Database,
    people: People,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    settings = notify_settings
    make_job_flavors(database)
    settings.public_url = "https://labyard.example.org/"
    alice = people.users["alice"]
    created = _subscribe(people.api("alice"), receiver.url())
    bobs = _subscribe(people.api("bob"), receiver.url("/bob"))  # bob's jobs only
    lab = write_lab(tmp_path / "lab")
    with database.session() as db:
        user = db.get(jobs_service.User, alice.id)
        assert user is not None and user.default_project_id is not None
        sweep = jobs_service.create_sweep(
            db,
            user,
            settings=settings,
            project_id=user.default_project_id,
            lab_dir=lab,
            flavor="tiny",
            grid={"mode": ["ok", "fail"]},
            inventory=CPU,
        )
        sweep_id = sweep.id
    scheduler = Scheduler(settings, database, inventory=CPU)
    try:
        jobs = run_until(scheduler, database, all_final)
    finally:
        with database.session() as db:
            for job in db.query(Job).filter(Job.external_id != ""):
                scheduler.executor.stop(job.id, job.external_id, force=True)
    deliver_until(settings, database, lambda: len(receiver.hits) >= 3)
    deliver_due(settings, database)
    hits = sorted(receiver.hits, key=lambda h: h.headers["X-Labyard-Event"])
    assert [h.headers["X-Labyard-Event"] for h in hits] == [
        "job.failed",
        "job.finished",
        "sweep.finished",
    ]
    assert all(h.path == "/hook" for h in hits)  # nothing went to bob's subscription
    assert deliveries_of(database, bobs["id"]) == []
    for hit in hits:
        assert hit.headers["Content-Type"] == "application/json"
        assert _verified(created["secret"], hit.headers, hit.body)
        assert not _verified(bobs["secret"], hit.headers, hit.body)
        assert not _verified(created["secret"], hit.headers, hit.body + b" ")
    failed, finished, swept = (json.loads(h.body) for h in hits)
    by_status = {j.status: j for j in jobs}
    assert failed["job"]["id"] == by_status["failed"].id and failed["job"]["exit_code"] == 3
    assert finished["job"] == {
        **finished["job"],
        "id": by_status["succeeded"].id,
        "status": "succeeded",
        "exit_code": 0,
    }
    assert finished["job"]["url"] == f"https://labyard.example.org/jobs/{by_status['succeeded'].id}"
    assert finished["project"]["id"] == alice.default_project_id
    assert swept["sweep"]["id"] == sweep_id
    assert swept["sweep"]["counts"] == {"succeeded": 1, "failed": 1}
    log = deliveries_of(database, created["id"])
    assert [(d.state, d.attempts, d.status_code) for d in log] == [("delivered", 1, 200)] * 3
    assert all(len(d.response_excerpt) == 300 for d in log)  # 5000 bytes came, 300 kept


def test_a_failing_receiver_gets_retries_with_growing_delays(
    notify_settings: Settings, database: Database, people: People, receiver: Receiver
) -> None:
    receiver.answers = [500, 500]
    client = people.api("alice")
    created = _subscribe(client, receiver.url())
    assert client.post(f"/api/v1/notifications/{created['id']}/test").status_code == 202
    deliver_until(
        notify_settings,
        database,
        lambda: deliveries_of(database, created["id"])[0].state != "pending",
    )
    times = [h.at for h in receiver.hits]
    assert len(times) == 3
    first_wait, second_wait = times[1] - times[0], times[2] - times[1]
    assert first_wait >= 0.4 and second_wait >= 0.8 and second_wait > first_wait
    assert len({h.headers["X-Labyard-Delivery"] for h in receiver.hits}) == 1
    assert len({h.headers["X-Labyard-Timestamp"] for h in receiver.hits}) >= 1
    log = client.get(f"/api/v1/notifications/{created['id']}/deliveries").json()
    assert [(d["event"], d["state"], d["attempts"], d["status_code"]) for d in log] == [
        ("ping", "delivered", 3, 200)
    ]


def test_a_receiver_that_keeps_failing_is_given_up_after_the_last_attempt(
    notify_settings: Settings, database: Database, people: People, receiver: Receiver
) -> None:
    notify_settings.webhook_max_attempts = 2
    notify_settings.webhook_retry_base_seconds = 0.05
    receiver.answers = [503, 503, 503]
    client = people.api("alice")
    created = _subscribe(client, receiver.url())
    client.post(f"/api/v1/notifications/{created['id']}/test")
    deliver_until(
        notify_settings,
        database,
        lambda: deliveries_of(database, created["id"])[0].state != "pending",
    )
    (row,) = deliveries_of(database, created["id"])
    assert (row.state, row.attempts, row.status_code, row.error) == (
        "failed",
        2,
        503,
        "answered 503",
    )
    assert row.response_excerpt == "receiver says no"
    assert len(receiver.hits) == 2


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.20.30.40", "169.254.169.254", "[::1]", "[::ffff:127.0.0.1]", "localhost"],
)
def test_private_addresses_are_refused_without_a_connection(
    settings: Settings, database: Database, people: People, receiver: Receiver, host: str
) -> None:
    assert settings.webhook_allow_private is False  # the default
    client = people.api("alice")
    url = receiver.url() if host == "127.0.0.1" else f"http://{host}:{receiver.port}/hook"
    created = _subscribe(client, url)
    client.post(f"/api/v1/notifications/{created['id']}/test")
    assert deliver_due(settings, database) == 1
    (row,) = deliveries_of(database, created["id"])
    assert (row.state, row.attempts, row.status_code) == ("refused", 1, None)
    assert "not a public address" in row.error and "LABYARD_WEBHOOK_ALLOW_PRIVATE" in row.error
    assert receiver.hits == []  # no connection was made
    assert deliver_due(settings, database) == 0  # and it is not retried


def test_a_redirect_is_not_followed(
    notify_settings: Settings, database: Database, people: People, receiver: Receiver
) -> None:
    receiver.answers = [(302, "/elsewhere")]
    client = people.api("alice")
    created = _subscribe(client, receiver.url())
    client.post(f"/api/v1/notifications/{created['id']}/test")
    deliver_until(notify_settings, database, lambda: bool(receiver.hits))
    deliver_due(notify_settings, database)
    assert [h.path for h in receiver.hits] == ["/hook"]
    (row,) = deliveries_of(database, created["id"])
    assert (row.state, row.attempts, row.status_code) == ("failed", 1, 302)
    assert "redirects are not followed" in row.error and "/elsewhere" in row.error
