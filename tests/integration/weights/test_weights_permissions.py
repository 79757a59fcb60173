"""The weights permission matrix: every route (API and pages) for every role, and public
weights: readable and downloadable by every user, changed or deleted by none (admins may
delete them). READ members see but cannot change (403), non-members get 404, anonymous 401
(API) or the login redirect (pages)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.weights.register import register_weights
from tests.factories import (
    WebClient,
    access_token_for,
    auth,
    make_user,
    permission_outcome,
    session_client,
)
from tests.integration.core.test_openapi_twins import _served_routes
from tests.integration.weights.test_inference import INFERENCE_ROUTES

ROLES = ("anonymous", "nonmember", "READ", "WRITE", "OWN", "admin")
OK, DENIED, HIDDEN, AUTH = "ok", "403", "404", "login"
ANY_USER = {**dict.fromkeys(ROLES, OK), "anonymous": AUTH}
NEED_READ = {**ANY_USER, "nonmember": HIDDEN}
NEED_WRITE = {**NEED_READ, "READ": DENIED}
NEED_OWN = {**NEED_WRITE, "WRITE": DENIED}
ACTING = {"nonmember": "eve", "READ": "rita", "WRITE": "walt", "OWN": "ana"}
Body = Callable[[int, int], dict[str, Any]]  # (job id, weights id) -> request kwargs


def _none(job: int, weights: int) -> dict[str, Any]:
    return {}


ROUTES: dict[tuple[str, str], tuple[dict[str, str], Body]] = {
    ("GET", "/api/v1/weights"): (ANY_USER, _none),
    ("POST", "/api/v1/weights"): (
        NEED_WRITE,
        lambda j, w: {"json": {"job_id": j, "name": f"n{w}"}},
    ),
    ("GET", "/api/v1/weights/{weights_id}"): (NEED_READ, _none),
    ("PATCH", "/api/v1/weights/{weights_id}"): (
        NEED_WRITE,
        lambda j, w: {"json": {"name": f"m{w}"}},
    ),
    ("DELETE", "/api/v1/weights/{weights_id}"): (NEED_WRITE, _none),
    ("GET", "/api/v1/weights/{weights_id}/download"): (NEED_READ, _none),
    ("GET", "/weights"): (ANY_USER, _none),
    ("POST", "/weights"): (NEED_WRITE, lambda j, w: {"data": {"job_id": str(j), "name": f"n{w}"}}),
    ("GET", "/weights/{weights_id}"): (NEED_READ, _none),
    ("POST", "/weights/{weights_id}/edit"): (NEED_WRITE, lambda j, w: {"data": {"name": f"m{w}"}}),
    ("POST", "/weights/{weights_id}/publish"): (NEED_OWN, _none),
    ("POST", "/weights/{weights_id}/delete"): (NEED_WRITE, _none),
}


@pytest.fixture
def boss(database: Database) -> User:
    return make_user(database, "boss", admin=True)


@pytest.fixture
def register(
    database: Database, settings: Settings, people: dict[str, User], job: int
) -> Callable[[str], int]:
    counter = iter(range(1000))

    def make(name: str = "") -> int:
        db = database.sessionmaker()
        try:
            user = db.get(User, people["ana"].id)
            assert user is not None
            w = register_weights(
                db, settings, user=user, job_id=job, name=name or f"w{next(counter)}"
            )
            db.commit()
            return w.id
        finally:
            db.close()

    return make


@pytest.fixture
def clients(
    app: FastAPI, database: Database, people: dict[str, User], boss: User
) -> Iterator[dict[str, tuple[Any, Any]]]:
    """Per role: (API client with a bearer token, page client with a session)."""
    users = {**{role: people[name] for role, name in ACTING.items()}, "admin": boss}
    made: dict[str, tuple[Any, Any]] = {}
    for role, user in users.items():
        api = TestClient(app)
        api.headers.update(auth(access_token_for(app, database, user)))
        made[role] = (api, session_client(app, database, user))
    anonymous = WebClient(app)
    anonymous.refresh_csrf("/login")  # a pre-login token, so CSRF is not what refuses
    made["anonymous"] = (TestClient(app), anonymous)
    yield made
    for api, page in made.values():
        api.close()
        page.close()


def test_every_weights_route_is_in_the_matrix(app: FastAPI) -> None:
    served = {
        (method, path)
        for path, methods in _served_routes(app)
        if path.startswith(("/weights", "/api/v1/weights"))
        for method in methods - {"HEAD"}
    }
    assert served == set(ROUTES) | set(INFERENCE_ROUTES)  # those: test_inference.py


@pytest.mark.parametrize("route", list(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_each_role_gets_what_the_matrix_says(
    route: tuple[str, str],
    clients: dict[str, tuple[Any, Any]],
    register: Callable[..., int],
    job: int,
) -> None:
    expect, body = ROUTES[route]
    method, path = route
    got = {}
    destructive = method in ("POST", "DELETE") and not path.endswith("/edit")
    weights = register()
    for role in ROLES:
        weights = register() if destructive else weights
        url = path.replace("{weights_id}", str(weights))
        api, page = clients[role]
        kwargs = body(job, weights)
        if path.startswith("/api/"):
            response = api.request(method, url, **kwargs)
        else:
            response = page.hx(method, url, **kwargs) if method == "POST" else page.get(url)
        got[role] = permission_outcome(response)
    assert got == expect


def test_public_weights_are_read_only_for_everyone(
    clients: dict[str, tuple[Any, Any]], register: Callable[..., int]
) -> None:
    weights = register("shared")
    ana = clients["OWN"][0]
    assert (
        clients["WRITE"][0].patch(f"/api/v1/weights/{weights}", json={"public": True}).status_code
        == 403
    )
    made = ana.patch(f"/api/v1/weights/{weights}", json={"public": True})
    assert made.status_code == 200 and made.json()["read_only"]
    for role in ("nonmember", "READ", "WRITE", "OWN"):
        api = clients[role][0]
        assert api.get(f"/api/v1/weights/{weights}").status_code == 200
        assert api.get(f"/api/v1/weights/{weights}/download").status_code == 200
        assert weights in [w["id"] for w in api.get("/api/v1/weights").json()]
        changed = api.patch(f"/api/v1/weights/{weights}", json={"description": "x"})
        assert changed.status_code == 403 and "read-only" in changed.json()["detail"]
        assert api.delete(f"/api/v1/weights/{weights}").status_code == 403
    assert clients["admin"][0].delete(f"/api/v1/weights/{weights}").status_code == 204
