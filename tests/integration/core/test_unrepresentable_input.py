"""Values that parse but cannot be stored or answered: ids past an INTEGER column, NaN,
Infinity, 1e309 and lone surrogates in JSON, JSON nested past the parser. Each is a 4xx with
a message on every route at once (db.base.CheckedInteger, web.bodies.strict_json,
web.errors), never a 500, and nothing is written."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from labyard.auth.models import ApiToken
from labyard.db import Database
from labyard.db.base import NumberOutOfRange
from labyard.projects.models import Project
from tests.factories import access_token_for, auth, make_users_fast

HUGE_IDS = ["99999999999999999999", "2147483648", "-9223372036854775809"]


@pytest.fixture
def client(app: FastAPI, database: Database) -> tuple[TestClient, dict[str, str]]:
    ana = make_users_fast(database, "ana")["ana"]
    return TestClient(app, raise_server_exceptions=False), auth(
        access_token_for(app, database, ana)
    )


def _counts(database: Database) -> tuple[int, int]:
    with database.read_session() as db:
        projects = db.scalar(select(func.count()).select_from(Project)) or 0
        tokens = db.scalar(select(func.count()).select_from(ApiToken)) or 0
        return projects, tokens


@pytest.mark.parametrize("value", HUGE_IDS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/projects/{}"),
        ("DELETE", "/api/v1/projects/{}"),
        ("GET", "/api/v1/jobs/{}/files"),
        ("POST", "/api/v1/tensorboards/{}/stop"),
        ("GET", "/api/v1/sweeps/{}/compare"),
        ("GET", "/api/v1/jobs?project_id={}"),
        ("GET", "/projects/{}"),
    ],
)
def test_an_id_past_the_integer_column_is_a_422(
    client: tuple[TestClient, dict[str, str]], method: str, path: str, value: str
) -> None:
    http, headers = client
    response = http.request(method, path.format(value), headers=headers)
    assert response.status_code == 422, response.text
    assert "out of range" in response.text


def test_a_body_id_past_the_integer_column_writes_nothing(
    client: tuple[TestClient, dict[str, str]], database: Database
) -> None:
    http, headers = client
    before = _counts(database)
    response = http.post(
        "/api/v1/datasets", json={"name": "d", "project_id": 2**63}, headers=headers
    )
    assert response.status_code == 422, response.text
    assert "out of range" in response.json()["detail"]
    assert _counts(database) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"name": NaN}', "NaN is not a number JSON allows."),
        (b'{"name": -Infinity}', "-Infinity is not a number JSON allows."),
        (b'{"name": 1e309}', "The number 1e309 in the JSON body is out of range."),
        (b'{"name": "a\\ud800b"}', "lone surrogate"),
        (b'{"name": {"x": ["\\udfff"]}}', "lone surrogate"),
        (b"[" * 100_000, "The JSON body is nested too deeply."),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/projects", "/api/v1/me/tokens"])
def test_unrepresentable_json_is_refused_and_writes_nothing(
    client: tuple[TestClient, dict[str, str]],
    database: Database,
    path: str,
    body: bytes,
    message: str,
) -> None:
    http, headers = client
    before = _counts(database)
    response = http.post(
        path, content=body, headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert _counts(database) == before


def test_a_validation_error_does_not_echo_the_input(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    """A 422 names the field and the rule, not the value (which may be megabytes)."""
    http, headers = client
    response = http.post("/api/v1/projects", json={"name": ["x" * 100_000]}, headers=headers)
    assert response.status_code == 422
    assert "xxxx" not in response.text
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


def test_escaped_surrogate_pairs_are_text(
    client: tuple[TestClient, dict[str, str]], database: Database
) -> None:
    """An emoji escaped as a pair (as json.dumps writes it) is ordinary text."""
    http, headers = client
    response = http.post(
        "/api/v1/projects",
        content=b'{"name": "\\ud83d\\ude00 lab"}',
        headers={**headers, "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "\U0001f600 lab"


NUL = "a\x00b"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/me/tokens", {"name": NUL}),
        ("/api/v1/projects", {"name": "p", "description": NUL}),
        ("/api/v1/projects/{project}/members", {"username": NUL, "role": "READ"}),
        ("/api/v1/labs", {"name": "l", "project_id": "{project}", "description": NUL}),
    ],
)
def test_text_with_nul_is_a_422_and_writes_nothing(
    app: FastAPI, database: Database, path: str, body: dict[str, object]
) -> None:
    """PostgreSQL cannot hold NUL in text (it answered 500); SQLite must refuse it alike."""
    ana = make_users_fast(database, "ana")["ana"]
    http = TestClient(app, raise_server_exceptions=False)
    headers = auth(access_token_for(app, database, ana))
    project = ana.default_project_id
    path = path.format(project=project)
    body = {key: project if value == "{project}" else value for key, value in body.items()}
    before = _counts(database)
    response = http.post(path, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == "Text must not contain NUL characters (\\x00)."
    assert _counts(database) == before


def test_a_login_with_nul_is_a_422_for_anyone(app: FastAPI, database: Database) -> None:
    http = TestClient(app, raise_server_exceptions=False)
    response = http.post(
        "/api/v1/auth/token", data={"username": NUL, "password": NUL, "grant_type": "password"}
    )
    assert response.status_code == 422, response.text
    assert "NUL" in response.text


def test_an_offset_past_64_bits_is_refused_by_the_database_layer(database: Database) -> None:
    """No column type sees an OFFSET or LIMIT: the statement check refuses what SQLite and
    PostgreSQL would (as an OverflowError or a driver error: a 500 from any route that sends one),
    and /jobs?page= past 64 bits is read as no page at all."""
    with database.read_session() as db, pytest.raises(NumberOutOfRange):
        db.scalars(select(Project).offset(2**70)).all()


def test_a_page_past_64_bits_is_the_first_page(admin_web: TestClient) -> None:
    assert admin_web.get("/jobs?page=99999999999999999999").status_code == 200


@pytest.mark.parametrize(
    "query",
    ["lab_id=²", "sweep_id=²", "page=²", "lab_id=" + "9" * 5000, "page=" + "9" * 5000],
)
def test_non_ascii_or_overlong_digits_in_job_filters_are_ignored(
    admin_web: TestClient, query: str
) -> None:
    """'²' passes str.isdigit() and int() refuses it (a 500, as did 5,000 digits): such a
    filter is no filter, as any other malformed one."""
    response = admin_web.get(f"/jobs?{query}")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("ids", ["²", "99999999999999999999", "9" * 5000])
def test_a_job_id_list_with_bad_digits_is_a_422(admin_web: TestClient, ids: str) -> None:
    response = admin_web.get("/jobs/events", params={"ids": ids})
    assert response.status_code == 422, response.text
    assert "is not a job id" in response.text
