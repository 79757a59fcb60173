"""The DeepHealth API's refusals: client ids, credentials, other users' projects and
processes, and bad bodies (a clear 400 in DeepHealth's shape, and nothing written)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from labyard.jobs.models import Job
from labyard.labs.models import Lab
from labyard.projects.models import Project, Role
from tests.factories import PASSWORD
from tests.integration.deephealth.conftest import CLIENT_ID, DeepHealthWorld

OWNER = [{"username": "dhtest", "permission": "OWN"}]


def _grant(dh: DeepHealthWorld, **fields: str) -> Any:
    body = {"grant_type": "password", "username": "dhtest", "password": PASSWORD, **fields}
    return dh.http.post("/backend/auth/token/", data=body)


def test_login_needs_a_registered_client_and_the_password(dh: DeepHealthWorld) -> None:
    unknown = _grant(dh, client_id="not-registered")
    assert unknown.status_code == 401 and unknown.json() == {"error": "invalid_client"}
    missing = dh.http.post(
        "/backend/auth/token/",
        data={"grant_type": "password", "username": "dhtest", "password": PASSWORD},
    )
    assert missing.status_code == 401 and missing.json() == {"error": "invalid_client"}
    wrong = _grant(dh, client_id=CLIENT_ID, password="not the password")
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid credentials given.",
    }
    good = _grant(dh, client_id=CLIENT_ID)
    assert good.status_code == 200 and good.reason_phrase == "OK"
    tokens = good.json()
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "read write"
    # JSON works too (DeepHealth copies request.data), without the trailing slash as well
    as_json = dh.http.post(
        "/backend/auth/token",
        json={
            "grant_type": "password",
            "username": "dhtest",
            "password": PASSWORD,
            "client_id": CLIENT_ID,
        },
    )
    assert as_json.status_code == 200
    refreshed = dh.http.post(
        "/backend/auth/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": CLIENT_ID,
        },
    )
    assert (
        refreshed.status_code == 200 and refreshed.json()["access_token"] != tokens["access_token"]
    )


def test_the_api_takes_only_live_bearer_tokens(dh: DeepHealthWorld) -> None:
    none = dh.http.get("/backend/projects")
    assert none.status_code == 401
    assert none.json() == {"detail": "Authentication credentials were not provided."}
    bad = dh.http.get("/backend/projects", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json() == {"detail": "Invalid token header. No credentials provided."}
    posted = dh.http.post("/backend/train", json={"project_id": 1})
    assert posted.status_code == 401
    stale_login = dh.http.post(
        "/backend/auth/token/",
        data={
            "grant_type": "password",
            "username": "dhtest",
            "password": PASSWORD,
            "client_id": CLIENT_ID,
        },
        headers={"Authorization": "Bearer stale"},
    )
    assert stale_login.status_code == 401


def test_slashes_and_unknown_paths_answer_as_deephealth(dh: DeepHealthWorld) -> None:
    schema = dh.http.get("/backend/swagger.json")  # like DeepHealth's swagger: no login
    assert schema.status_code == 200 and "/train" in schema.json()["paths"]
    as_yaml = dh.http.get("/backend/swagger.yaml")
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.text) == schema.json()
    for page in ("/backend/swagger", "/backend/redoc"):
        moved = dh.http.get(page, follow_redirects=False)
        assert moved.status_code == 307 and moved.headers["location"] == "/docs/deephealth"
    reference = dh.http.get("/docs/deephealth")
    assert reference.status_code == 200
    assert 'data-openapi-url="/backend/swagger.json"' in reference.text
    headers = dh.login("dhtest")
    assert dh.http.get("/backend/tasks/", headers=headers).status_code == 200
    assert dh.http.get("/backend/tasks/2", headers=headers).json()["name"] == "Segmentation"
    assert dh.http.get("/backend/status/?process_id=x", headers=headers).status_code == 404
    assert dh.http.get("/backend/models/1", headers=headers).json() == {"detail": "Not found."}
    missing = dh.http.get("/backend/weights", headers=headers)
    assert missing.status_code == 400
    assert missing.json() == {"Error": "Missing required parameter `model_id`"}


def _train_body(
    dh: DeepHealthWorld, headers: dict[str, str], project_id: int, **extra: Any
) -> dict[str, Any]:
    digits = next(
        d for d in dh.http.get("/backend/datasets", headers=headers).json() if d["name"] == "digits"
    )
    body = {
        "project_id": project_id,
        "dataset_id": digits["id"],
        "weights_id": 1_000_001,
        "properties": [
            {"name": "Epochs", "value": "2"},
            {"name": "Learning rate", "value": "0.01"},
        ],
    }
    return {**body, **extra}


def _own_project(
    dh: DeepHealthWorld, headers: dict[str, str], name: str = "mine"
) -> dict[str, Any]:
    response = dh.http.post(
        "/backend/projects", json={"name": name, "task_id": 1, "users": OWNER}, headers=headers
    )
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


def test_other_users_cannot_see_train_in_or_stop_a_project(dh: DeepHealthWorld) -> None:
    mine = dh.login("dhtest")
    theirs = dh.login("stranger")
    project = _own_project(dh, mine)
    started = dh.http.post(
        "/backend/train", json=_train_body(dh, mine, project["id"]), headers=mine
    )
    assert started.status_code == 201, started.text
    pid = started.json()["process_id"]

    assert dh.http.get(f"/backend/projects/{project['id']}", headers=theirs).status_code == 404
    assert project["id"] not in [
        p["id"] for p in dh.http.get("/backend/projects", headers=theirs).json()
    ]
    status = dh.http.get(f"/backend/status?process_id={pid}", headers=theirs)
    assert status.status_code == 404
    assert status.json() == {"result": "error", "error": "Process not found"}
    stop = dh.http.post("/backend/stopProcess", json={"process_id": pid}, headers=theirs)
    assert stop.status_code == 404
    jobs = dh.count(Job)
    train = dh.http.post(
        "/backend/train", json=_train_body(dh, theirs, project["id"]), headers=theirs
    )
    assert train.status_code == 400
    assert train.json() == {
        "project_id": [f'Invalid pk "{project["id"]}" - object does not exist.']
    }
    assert dh.count(Job) == jobs
    trainings = dh.http.get(f"/backend/trainings?project_id={project['id']}", headers=theirs)
    assert trainings.status_code == 403

    # a VIEW member sees the process; Labyard's READ role may not stop it
    owner_put = dh.http.put(
        f"/backend/projects/{project['id']}",
        json={
            "name": "mine",
            "task_id": 1,
            "users": [*OWNER, {"username": "stranger", "permission": "VIEW"}],
        },
        headers=mine,
    )
    assert owner_put.status_code == 200, owner_put.text
    assert {"username": "stranger", "permission": "VIEW"} in owner_put.json()["users"]
    with dh.database.session() as db:
        project_row = db.get(Project, project["id"])
        assert project_row is not None
        for membership in project_row.memberships:
            if membership.user.username == "stranger":
                assert membership.role == Role.WRITE
                membership.role = Role.READ
    seen = dh.http.get(f"/backend/status?process_id={pid}", headers=theirs)
    assert seen.status_code == 200 and seen.json()["status"]["process_status"] == "PENDING"
    refused = dh.http.post("/backend/stopProcess", json={"process_id": pid}, headers=theirs)
    assert refused.status_code == 403 and "Error" in refused.json()
    put = dh.http.put(
        f"/backend/projects/{project['id']}",
        json={"name": "renamed", "task_id": 1, "users": OWNER},
        headers=theirs,
    )
    assert put.status_code == 403
    assert put.json() == {"Error": "User `stranger` does not have owner permission on this Project"}
    delete = dh.http.delete(f"/backend/projects/{project['id']}", headers=theirs)
    assert delete.status_code == 403
    assert delete.json() == {"Error": "'stranger' has no permission to delete mine"}
    assert dh.http.get(f"/backend/projects/{project['id']}", headers=mine).json()["name"] == "mine"
    # the owner's PUT that lists a READ member as VIEW keeps them READ
    dh.http.put(
        f"/backend/projects/{project['id']}",
        json={
            "name": "mine",
            "task_id": 1,
            "users": [*OWNER, {"username": "stranger", "permission": "VIEW"}],
        },
        headers=mine,
    )
    with dh.database.session() as db:
        roles = {m.user.username: m.role for m in db.get(Project, project["id"]).memberships}  # type: ignore[union-attr]
    assert roles == {"dhtest": Role.OWN, "stranger": Role.READ}
    stopped = dh.http.post("/backend/stopProcess", json={"process_id": pid}, headers=mine)
    assert stopped.status_code == 200
    deleted = dh.http.delete(f"/backend/projects/{project['id']}", headers=mine)
    assert deleted.status_code == 204
    assert dh.http.get(f"/backend/projects/{project['id']}", headers=mine).status_code == 404


BAD_TRAIN = {
    "no properties": ({"properties": None}, {"properties": ["Input should be a valid list"]}),
    "unknown dataset": (
        {"dataset_id": 99999},
        {"dataset_id": ['Invalid pk "99999" - object does not exist.']},
    ),
    "unknown weights": (
        {"weights_id": 99999},
        {"weights_id": ['Invalid pk "99999" - object does not exist.']},
    ),
    "not a number": (
        {"properties": [{"name": "Epochs", "value": "many"}]},
        {"Error": "Epochs must be a whole number, got 'many'."},
    ),
    "unknown property": (
        {"properties": [{"name": "Momentum", "value": "0.9"}]},
        {"Error": "Property with name `Momentum` does not exist"},
    ),
    "null value": ({"properties": [{"name": "Epochs", "value": None}]}, None),
    "other task": (
        {"weights_id": 1_000_003},
        {"Error": "Model and dataset must belong to the same task"},
    ),
    "streamflow": ({"task_manager": "STREAMFLOW"}, None),
    "outside the template's range": (
        {"properties": [{"name": "Learning rate", "value": "0.000001"}]},
        {"Error": "Learning rate: lr: 1e-06 is below the minimum 1e-05."},
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAIN))
def test_bad_train_bodies_are_refused_and_write_nothing(dh: DeepHealthWorld, case: str) -> None:
    headers = dh.login("dhtest")
    project = _own_project(dh, headers)
    changes, expected = BAD_TRAIN[case]
    body = {**_train_body(dh, headers, project["id"]), **changes}
    if body["properties"] is None:
        del body["properties"]
        expected = {"properties": ["This field is required."]}
    labs, jobs = dh.count(Lab), dh.count(Job)
    response = dh.http.post("/backend/train", json=body, headers=headers)
    assert response.status_code == 400, response.text
    if expected is not None:
        assert response.json() == expected
    assert (dh.count(Lab), dh.count(Job)) == (labs, jobs)


def test_bad_requests_get_clear_answers(dh: DeepHealthWorld) -> None:
    headers = dh.login("dhtest")
    projects = dh.count(Project)
    for users, message in (
        ([], "'users' list cannot be empty"),
        ("dhtest", "'users' must be a list of dictionaries"),
        (
            [{"username": "dhtest"}],
            "'users' field must be always associated with its permission level",
        ),
        ([{"username": "ghost", "permission": "OWN"}], "User `ghost` does not exist"),
        (
            [{"username": "dhtest", "permission": "VIEW"}],
            "At least one user in 'users' must be Owner",
        ),
    ):
        response = dh.http.post(
            "/backend/projects", json={"name": "p", "task_id": 1, "users": users}, headers=headers
        )
        assert (response.status_code, response.json()) == (400, {"Error": message})
    no_task = dh.http.post(
        "/backend/projects", json={"name": "p", "task_id": 9, "users": OWNER}, headers=headers
    )
    assert no_task.json() == {"task_id": ['Invalid pk "9" - object does not exist.']}
    no_name = dh.http.post(
        "/backend/projects", json={"task_id": 1, "users": OWNER}, headers=headers
    )
    assert no_name.status_code == 400 and no_name.json() == {"name": ["This field is required."]}
    garbage = dh.http.post(
        "/backend/train",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert garbage.status_code == 400
    assert dh.count(Project) == projects
    not_uuid = dh.http.get("/backend/status?process_id=abc", headers=headers)
    assert not_uuid.status_code == 400 and not_uuid.json() == {
        "process_id": ["Must be a valid UUID."]
    }
    stranger_uuid = dh.http.get(
        "/backend/status?process_id=62a10034-1f2f-44b9-9014-71a1992647be", headers=headers
    )
    assert stranger_uuid.status_code == 404
    fixed = dh.http.post("/backend/models", json={"name": "X", "task_id": 1}, headers=headers)
    assert fixed.status_code == 403 and "Error" in fixed.json()


def test_a_refused_train_in_a_project_without_its_lab_makes_no_lab(dh: DeepHealthWorld) -> None:
    headers = dh.login("dhtest")
    project_id = dh.owner.default_project_id
    assert project_id is not None
    body = _train_body(dh, headers, project_id)
    low = {**body, "properties": [{"name": "Learning rate", "value": "1e-6"}]}
    labs, folders = dh.count(Lab), sorted((dh.settings.data_dir / "labs").glob("*"))
    refused = dh.http.post("/backend/train", json=low, headers=headers)
    assert refused.status_code == 400, refused.text
    assert (dh.count(Lab), sorted((dh.settings.data_dir / "labs").glob("*"))) == (labs, folders)
    started = dh.http.post("/backend/train", json=body, headers=headers)
    assert started.status_code == 201, started.text
    assert dh.http.get(f"/backend/projects/{project_id}", headers=headers).json()["task_id"] == 1


def test_a_front_end_on_another_origin_may_call_it(dh: DeepHealthWorld) -> None:
    origin = {"Origin": "https://dh.example.org"}
    preflight = dh.http.options(
        "/backend/train",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    headers = dh.login("dhtest")
    listed = dh.http.get("/backend/tasks", headers={**headers, **origin})
    assert listed.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in listed.headers
    project_id = dh.owner.default_project_id
    inferences = dh.http.get(f"/backend/inference?project_id={project_id}", headers=headers)
    assert inferences.status_code == 200 and inferences.json() == []
    other = dh.login("stranger")
    hidden = dh.http.get(f"/backend/inference?project_id={project_id}", headers=other)
    assert hidden.status_code == 403


def test_change_password_as_deephealth(dh: DeepHealthWorld) -> None:
    headers = dh.login("dhtest")
    url = "/backend/auth/change-password/"
    new = "a brand new password 7"
    mismatch = {"old_password": PASSWORD, "new_password1": new, "new_password2": new + "x"}
    response = dh.http.put(url, json=mismatch, headers=headers)
    assert response.json() == {"new_password2": ["The two password fields didn't match."]}
    wrong = {"old_password": "nope", "new_password1": new, "new_password2": new}
    response = dh.http.put(url, json=wrong, headers=headers)
    assert response.status_code == 400 and list(response.json()) == ["old_password"]
    assert dh.login("dhtest")  # unchanged
    good = {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    response = dh.http.put(url, json=good, headers=headers)
    assert (response.status_code, response.json()) == (200, {})
    assert dh.login("dhtest", new)


def test_a_front_end_on_the_same_host_with_a_labyard_session_may_post(
    dh: DeepHealthWorld,
) -> None:
    """The browser of someone logged in to Labyard's pages sends its session cookie along
    to a DeepHealth front-end's calls on the same host: /backend authenticates by the
    bearer token alone and asks no CSRF token, while /api/v1 still does."""
    from tests.factories import session_client

    headers = dh.login("dhtest")
    with session_client(dh.app, dh.database, dh.owner) as browser:
        assert "labyard_session" in browser.cookies
        made = browser.post(
            "/backend/projects",
            json={"name": "same-host", "task_id": 1, "users": OWNER},
            headers=headers,
        )
        assert made.status_code == 201, made.text
        api = browser.post("/api/v1/projects", json={"name": "sneaky"}, headers=headers)
        assert api.status_code == 403  # Labyard's own API: the cookie asks its CSRF token
        anonymous = browser.post("/backend/train", json={"project_id": 1})
        assert anonymous.status_code == 401  # the cookie is no credential here
    with dh.database.read_session() as db:
        names = {p.name for p in db.query(Project)}
    assert "same-host" in names and "sneaky" not in names
