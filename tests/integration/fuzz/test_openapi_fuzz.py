"""Property-based pass over the OpenAPI schema (schemathesis): no route answers 500 to
generated input, as an anonymous caller and as a logged-in admin (a personal token)."""

from __future__ import annotations

import contextlib
import os

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from labyard.auth import service as auth_service
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import artifacts
from labyard.web.docs import OPENAPI_URL

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("LABYARD_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def api_schema(app: FastAPI) -> schemathesis.BaseSchema:
    """The app's own OpenAPI schema, called in-process."""
    return schemathesis.openapi.from_asgi(OPENAPI_URL, app)


@pytest.fixture
def admin_token(app: FastAPI, database: Database, settings: Settings) -> str:
    """A personal token of the seeded admin, who owns a lab (id 1) with a queued sweep and
    job (id 1) and the public dataset (id 1): generated ids hit real rows, not only 404s."""
    with database.session() as db:
        token, _ = auth_service.create_personal_token(
            db, auth_service.get_user_by_name(db, "admin"), name="fuzz"
        )
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as api:
        project_id = api.get("/api/v1/me", headers=headers).json()["default_project_id"]
        lab = api.post(
            "/api/v1/labs",
            json={"name": "fuzz", "project_id": project_id, "template": "classification"},
            headers=headers,
        )
        assert lab.status_code == 201, lab.text
        sweep = api.post(f"/api/v1/labs/{lab.json()['id']}/sweeps", json={}, headers=headers)
        assert sweep.status_code == 201, sweep.text
    for job in sweep.json()["jobs"]:  # a log and an output file for the log and file routes
        log = artifacts.log_path(settings, job["id"])
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("2026-01-01T00:00:00.000Z Train step=1 loss=0.5\n")
    return token


FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


def _fuzz_every_operation(schema: schemathesis.BaseSchema, headers: dict[str, str]) -> None:
    """Run generated cases against every operation; collect the 5xx answers."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @FUZZ
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )
                raise AssertionError(failures[-1])

        with contextlib.suppress(AssertionError):  # recorded: one run lists every failure
            check()
    assert not failures, "\n".join(failures)


def test_anonymous_never_gets_500(api_schema: schemathesis.BaseSchema) -> None:
    _fuzz_every_operation(api_schema, {})


def test_logged_in_never_gets_500(api_schema: schemathesis.BaseSchema, admin_token: str) -> None:
    _fuzz_every_operation(api_schema, {"Authorization": f"Bearer {admin_token}"})
