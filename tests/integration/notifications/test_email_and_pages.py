"""E-mail to a real SMTP server, a search's end, bad input refused next to its field, and
the delivery log on the settings page."""

from __future__ import annotations

import email
from email import policy
from typing import Any

import pytest
from sqlalchemy import select

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service as jobs_service
from labyard.jobs.models import Job, JobStatus, Sweep
from labyard.notifications.models import Subscription
from labyard.searches import driver
from labyard.searches.models import Search
from tests.factories import make_job_row, session_client
from tests.integration.notifications.conftest import (
    People,
    Receiver,
    deliver_until,
    deliveries_of,
    subscription_count,
)


def test_a_job_failure_is_e_mailed_through_smtp(
    settings: Settings, database: Database, people: People, smtp_sink: tuple[int, list[Any]]
) -> None:
    port, messages = smtp_sink
    settings.smtp_host, settings.smtp_port = "127.0.0.1", port
    settings.smtp_from, settings.smtp_starttls = "labyard@example.org", False
    alice = people.users["alice"]
    assert alice.default_project_id is not None
    client = people.api("alice")
    body = {"kind": "email", "email": "alice@example.org", "events": ["job.failed"]}
    response = client.post("/api/v1/notifications", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["secret"] == ""
    job_id = make_job_row(
        database,
        settings,
        alice.default_project_id,
        status="running",
        name="mnist\nBcc: x",
        created_by_id=alice.id,
    )
    with database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        jobs_service.transition(job, JobStatus.FAILED, reason="exited with code 3", exit_code=3)
    deliver_until(settings, database, lambda: bool(messages))
    (sent,) = messages
    assert sent["from"] == "<labyard@example.org>" and sent["rcpt"] == ["<alice@example.org>"]
    message = email.message_from_bytes(sent["data"], policy=policy.default)
    assert message["Subject"] == "[Labyard] Job mnist Bcc: x failed"
    assert message["Bcc"] is None
    text = message.get_content()
    assert "exited with code 3" in text and f"/jobs/{job_id}" in text
    (row,) = deliveries_of(database, response.json()["id"])
    assert (row.state, row.attempts, row.event) == ("delivered", 1, "job.failed")


def test_without_smtp_e_mail_cannot_be_chosen(settings: Settings, people: People) -> None:
    body = {"kind": "email", "email": "alice@example.org", "events": ["job.failed"]}
    response = people.api("alice").post("/api/v1/notifications", json=body)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "E-mail is not configured on this server.",
        "field": "email",
    }


def test_a_concluded_search_is_announced(
    notify_settings: Settings, database: Database, people: People, receiver: Receiver
) -> None:
    alice = people.users["alice"]
    created = (
        people.api("alice")
        .post("/api/v1/notifications", json={"url": receiver.url(), "events": ["search.finished"]})
        .json()
    )
    with database.session() as db:
        sweep = Sweep(
            project_id=alice.default_project_id,
            name="tune",
            kind="search",
            flavor="tiny",
            grid={},
            created_by_id=alice.id,
        )
        db.add(sweep)
        db.flush()
        db.add(
            Search(
                id=sweep.id,
                project_id=sweep.project_id,
                settings={"goal": "minimize"},
                space={},
                trials_wanted=0,
                seed=1,
                job_spec={},
                created_by_id=alice.id,
            )
        )
        search_id = sweep.id
    driver._conclude(database, search_id)  # noqa: SLF001 - the step that concludes a search
    deliver_until(notify_settings, database, lambda: bool(receiver.hits))
    payload = receiver.hits[0].body.decode()
    assert '"event":"search.finished"' in payload and f'"id":{search_id}' in payload
    assert '"state":"finished"' in payload
    assert [d.state for d in deliveries_of(database, created["id"])] == ["delivered"]


BAD_URLS = {
    "ftp://example.org/hook": "must start with http:// or https://",
    "https://user:secret@example.org/hook": "must not carry a user name or password",
    "https://example.org/" + "a" * 10_000: "at most 2048 characters",
    "javascript:alert(1)": "must start with http:// or https://",
    "https:///nohost": "has no host",
}


@pytest.mark.parametrize("url", list(BAD_URLS))
def test_a_bad_url_is_refused_next_to_its_field_and_nothing_is_stored(
    app: Any, database: Database, people: People, url: str
) -> None:
    with session_client(app, database, people.users["alice"]) as web:
        page = web.hx(
            "POST",
            "/settings/notifications",
            data={"kind": "webhook", "url": url, "events": ["job.failed"]},
        )
    assert page.status_code == 422
    assert 'data-field="url"' in page.text and BAD_URLS[url] in page.text
    api = people.api("alice").post(
        "/api/v1/notifications", json={"url": url, "events": ["job.failed"]}
    )
    assert api.status_code == 422
    assert subscription_count(database) == 0


def test_unknown_events_and_none_are_refused(app: Any, database: Database, people: People) -> None:
    with session_client(app, database, people.users["alice"]) as web:
        none = web.hx("POST", "/settings/notifications", data={"url": "https://example.org/h"})
        odd = web.hx(
            "POST",
            "/settings/notifications",
            data={"url": "https://example.org/h", "events": ["job.exploded"]},
        )
    assert none.status_code == odd.status_code == 422
    assert 'data-field="events"' in none.text and "at least one event" in none.text
    assert "Unknown event" in odd.text
    assert subscription_count(database) == 0


def test_the_settings_page_shows_the_delivery_log(
    app: Any, notify_settings: Settings, database: Database, people: People, receiver: Receiver
) -> None:
    receiver.answers = [500]
    with session_client(app, database, people.users["alice"]) as web:
        settings_page = web.get("/settings")
        assert 'hx-get="/settings/notifications"' in settings_page.text
        added = web.hx(
            "POST",
            "/settings/notifications",
            data={"kind": "webhook", "url": receiver.url(), "events": ["job.failed"]},
        )
        assert added.status_code == 200, added.text
        with database.read_session() as db:
            sub = db.scalars(select(Subscription)).one()
            secret, sub_id = sub.secret, sub.id
        assert f'<code class="token">{secret}</code>' in added.text  # shown this once
        tested = web.hx("POST", f"/settings/notifications/{sub_id}/test")
        assert "pending" in tested.text and 'hx-trigger="every 5s"' in tested.text
        deliver_until(notify_settings, database, lambda: len(receiver.hits) == 1)
        fragment = web.hx("GET", "/settings/notifications").text
        assert secret not in fragment
        assert "answered 500" in fragment and "<td>500</td>" in fragment
        deliver_until(notify_settings, database, lambda: len(receiver.hits) == 2)
        fragment = web.hx("GET", "/settings/notifications").text
        assert "delivered" in fragment and "<td>200</td>" in fragment
        assert 'class="num">2</td>' in fragment and "every 5s" not in fragment
        full = web.get("/settings/notifications")
        assert full.status_code == 200 and "<h1>Notifications</h1>" in full.text
        deleted = web.hx("POST", f"/settings/notifications/{sub_id}/delete")
        assert deleted.status_code == 200 and "No subscriptions." in deleted.text
    assert subscription_count(database) == 0
