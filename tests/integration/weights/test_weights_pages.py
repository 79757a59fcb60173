"""The Weights pages: the list, one entry with its lineage and actions, "Register as
weights" from a finished job's page, and a refused delete's message for the page."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.weights import service
from tests.factories import make_job_row, session_client


def test_register_from_the_job_page_then_see_it_with_lineage(
    app: FastAPI, database: Database, settings: Settings, people: dict[str, User], job: int
) -> None:
    with session_client(app, database, people["walt"]) as web:
        page = web.get(f"/jobs/{job}")
        assert 'id="job-register-weights"' in page.text and 'hx-post="/weights"' in page.text
        made = web.hx("POST", "/weights", data={"job_id": str(job), "name": "base"})
        assert made.status_code == 204, made.text
        base_id = int(made.headers["hx-redirect"].rsplit("/", 1)[1])
        # a job fine-tuned from them, registered in turn: its page shows the chain
        mount = {
            "dataset_id": None,
            "name": "base",
            "host_path": str(service.weights_root(settings) / str(base_id)),
            "kind": "weights",
            "weights_id": base_id,
        }
        tuned = make_job_row(
            database,
            settings,
            people["ana"].default_project_id,  # type: ignore[arg-type]
            outputs={"model.pt": b"\x80\x02}q\x00."},
            params={"weights": "base"},
            datasets=[mount],
            name="tune",
        )
        child = web.hx(
            "POST", "/weights", data={"job_id": str(tuned), "name": "tuned", "path": "model.pt"}
        )
        assert child.status_code == 204, child.text
        detail = web.get(child.headers["hx-redirect"])
        assert detail.status_code == 200
        assert f'href="/jobs/{tuned}"' in detail.text
        assert f'href="/weights/{base_id}">base</a>' in detail.text
        listing = web.get("/weights")
        assert "tuned" in listing.text and "base" in listing.text
        assert 'href="/weights"' in listing.text  # the nav link
        # delete refused while a job uses them: the message comes back for the page
        make_job_row(
            database, settings, people["ana"].default_project_id, status="queued", datasets=[mount]
        )  # type: ignore[arg-type]
        refused = web.hx("POST", f"/weights/{base_id}/delete")
        assert refused.status_code == 409 and "in use" in refused.text
        assert web.get(f"/weights/{base_id}").status_code == 200


def test_a_register_error_is_shown_next_to_the_form(
    app: FastAPI, database: Database, people: dict[str, User], job: int
) -> None:
    with session_client(app, database, people["walt"]) as web:
        bad = web.hx(
            "POST", "/weights", data={"job_id": str(job), "name": "x", "path": "notes.txt"}
        )
        assert bad.status_code == 422 and "not a model file" in bad.text
        detail: Any = web.get("/weights")
        assert "No weights yet" in detail.text
