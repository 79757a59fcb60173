"""The searches permission matrix: every searches route (API and pages) and the lab's
"start a search" route, for every role.

READ members see a search but cannot change it (403), non-members get 404 (no existence
leak), anonymous gets 401 (API) or the login redirect (pages), WRITE/OWN members and admins
may. A refused change leaves the search, its rows and its files as they were.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs.models import Job, Sweep
from labyard.labs import service as labs_service
from labyard.projects import service as project_service
from labyard.projects.models import Role
from labyard.searches import driver
from labyard.searches.models import Search, SearchTrial, TrialState
from tests.factories import (
    WebClient,
    access_token_for,
    auth,
    make_users_fast,
    permission_outcome,
    session_client,
)
from tests.integration.searches.conftest import TRAIN_SCRIPT
from tests.integration.searches.world import search_yml

ROLES = ("anonymous", "nonmember", "READ", "WRITE", "OWN", "admin")
OK, DENIED, HIDDEN, AUTH = "ok", "403", "404", "login"
ANY_USER = {**dict.fromkeys(ROLES, OK), "anonymous": AUTH}
NEED_READ = {**ANY_USER, "nonmember": HIDDEN}
NEED_WRITE = {**NEED_READ, "READ": DENIED}
_fresh = itertools.count()

Body = Callable[[], dict[str, Any]]


def _none() -> dict[str, Any]:
    return {}


# Page routes (labyard.searches.pages) are listed with the API's: the guard below fails when
# either module gains a route this table does not classify. Expected pages (issue #14):
# GET /searches/{id}, POST /searches/{id}/stop, /resume (form field `trials`), /submit-best.
ROUTES: dict[tuple[str, str], tuple[dict[str, str], Body]] = {
    ("GET", "/api/v1/searches"): (ANY_USER, _none),
    ("GET", "/api/v1/searches/{search_id}"): (NEED_READ, _none),
    ("GET", "/api/v1/searches/{search_id}/trials"): (NEED_READ, _none),
    ("GET", "/api/v1/searches/{search_id}/importances"): (NEED_READ, _none),
    ("POST", "/api/v1/searches/{search_id}/stop"): (NEED_WRITE, _none),
    ("POST", "/api/v1/searches/{search_id}/resume"): (NEED_WRITE, lambda: {"json": {"trials": 1}}),
    ("POST", "/api/v1/searches/{search_id}/submit-best"): (NEED_WRITE, _none),
    # ------------------------------------------------ pages
    ("GET", "/searches/{search_id}"): (NEED_READ, _none),
    ("POST", "/searches/{search_id}/stop"): (NEED_WRITE, _none),
    ("POST", "/searches/{search_id}/resume"): (NEED_WRITE, lambda: {"data": {"trials": "1"}}),
    ("POST", "/searches/{search_id}/submit-best"): (NEED_WRITE, _none),
}
# The lab's routes (module labyard.labs: classified in tests/integration/labs too).
LAB_ROUTES: dict[tuple[str, str], tuple[dict[str, str], Body]] = {
    ("POST", "/api/v1/labs/{lab_id}/searches"): (
        NEED_WRITE,
        lambda: {"json": {"search": {"trials": 2}, "space": {"epochs": 1}}},
    ),
    ("POST", "/labs/{lab_id}/searches"): (
        NEED_WRITE,
        lambda: {"data": {"trials": "2", "param.epochs": "1"}},
    ),
}


def test_every_searches_route_is_in_the_matrix(app: FastAPI) -> None:
    from tests.integration.core.test_permission_matrix import iter_routes

    routes = list(iter_routes(app))
    ours = {(m, p) for m, p, module in routes if module.startswith("labyard.searches")}
    assert ours == set(ROUTES), (sorted(ours - set(ROUTES)), sorted(set(ROUTES) - ours))
    search_paths = {(m, p) for m, p, _ in routes if "/searches" in p}
    assert search_paths == set(ROUTES) | set(LAB_ROUTES), sorted(search_paths)


@dataclass
class World:
    """A project with members by role, and a lab holding the fake training script."""

    users: dict[str, User]
    project_id: int
    lab_id: int


def _make_world(database: Database, settings: Settings) -> World:
    users = make_users_fast(database, "own", "write", "read", "stranger")
    with database.session() as db:
        owner = db.get(User, users["own"].id)
        assert owner is not None and owner.default_project_id is not None
        project_id = owner.default_project_id
        for name, role in (("write", Role.WRITE), ("read", Role.READ)):
            project_service.set_member(db, owner, project_id, username=name, role=role)
        lab = labs_service.create_lab(
            db, settings, owner, project_id=project_id, name="fake", flavor="tiny"
        )
    folder = labs_service.lab_dir(settings, lab.id)
    (folder / "train.py").write_text(TRAIN_SCRIPT)
    (folder / "mlsteam.yml").write_text(search_yml(epochs=1))
    return World(users, project_id, lab.id)


def _fresh_search(app: FastAPI, database: Database, world: World) -> int:
    """A running search of the lab (started by its owner over the API) with one completed
    trial (so submit-best may run)."""
    with WebClient(app) as owner:
        owner.headers.update(auth(access_token_for(app, database, world.users["own"])))
        started = owner.post(
            f"/api/v1/labs/{world.lab_id}/searches", json={"search": {"trials": 3}}
        )
    assert started.status_code == 201, started.text
    search_id = int(started.json()["id"])
    with database.session() as db:
        db.add(
            SearchTrial(
                search_id=search_id,
                number=0,
                params={"lr": 0.01, "width": 64, "epochs": 1},
                state=TrialState.COMPLETE,
                value=0.5,
                steps={"1": 0.5},
                finished_at=utcnow(),
            )
        )
    return search_id


def _admin(database: Database) -> User:
    name = f"boss{next(_fresh)}"
    admin = make_users_fast(database, name)[name]
    with database.session() as db:
        row = db.get(User, admin.id)
        assert row is not None
        row.is_admin = True
    return admin


def _client(app: FastAPI, database: Database, world: World, role: str, api: bool) -> WebClient:
    """The acting role's client: a bearer token for the API, a browser session for pages."""
    if role == "anonymous":
        client = WebClient(app)
        if not api:
            client.refresh_csrf("/login")  # a pre-login token, so CSRF is not what refuses
        return client
    acting = {"nonmember": "stranger", "READ": "read", "WRITE": "write", "OWN": "own"}
    user = _admin(database) if role == "admin" else world.users[acting[role]]
    if not api:
        return session_client(app, database, user)
    client = WebClient(app)
    client.headers.update(auth(access_token_for(app, database, user)))
    return client


def _state(database: Database, search_id: int) -> tuple[Any, ...]:
    """What a refused change must leave as it was: the search row and the project's rows."""
    with database.read_session() as db:
        search = db.get(Search, search_id)
        assert search is not None
        trials = db.query(SearchTrial).count()
        return (
            search.state,
            search.trials_wanted,
            trials,
            db.query(Sweep).count(),
            db.query(Job).count(),
        )


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(
    app: FastAPI, database: Database, settings: Settings, flavors: None, role: str
) -> None:
    world = _make_world(database, settings)
    failures = []
    for (method, template), (expect, body) in {**ROUTES, **LAB_ROUTES}.items():
        search_id = _fresh_search(app, database, world)
        before = _state(database, search_id), _files(settings)
        path = template.format(search_id=search_id, lab_id=world.lab_id)
        api = path.startswith("/api/")
        with _client(app, database, world, role, api) as client:
            kwargs = body() if method != "GET" else {}
            response = client.hx(method, path, **kwargs) if kwargs or method != "GET" else None
            response = response or client.get(path)
        got = permission_outcome(response)
        if got != expect[role]:
            failures.append(f"{method} {template}: {got} != {expect[role]} ({response.text[:120]})")
        elif got != OK and (_state(database, search_id), _files(settings)) != before:
            failures.append(f"{method} {template}: refused ({got}) but something was written")
        if (method, template) == ("GET", "/api/v1/searches") and got == OK:
            listed = [s["id"] for s in response.json()]
            if (search_id in listed) != (role != "nonmember"):
                failures.append(f"GET /api/v1/searches: {role} sees {listed}")
    assert not failures, "\n".join(failures)


def _files(settings: Settings) -> list[str]:
    found = []
    for name in ("searches", "jobs"):
        folder = settings.data_dir / name
        if folder.exists():
            found += sorted(str(p.relative_to(settings.data_dir)) for p in folder.rglob("*"))
    return found


@pytest.mark.parametrize("role", ROLES)
def test_trials_through_the_jobs_filter_follow_the_project(
    app: FastAPI, database: Database, settings: Settings, flavors: None, role: str
) -> None:
    world = _make_world(database, settings)
    search_id = _fresh_search(app, database, world)
    driver.advance(settings, database, search_id)  # samples trials: their jobs are queued
    with database.read_session() as db:
        job_ids = sorted(
            t.job_id for t in db.query(SearchTrial).filter_by(search_id=search_id) if t.job_id
        )
    assert len(job_ids) == 2  # the file's parallel: 2 trials sampled beside the finished one
    with _client(app, database, world, role, api=True) as client:
        response = client.get("/api/v1/jobs", params={"search_id": search_id})
    if role == "anonymous":
        assert response.status_code == 401
    elif role == "nonmember":
        assert response.status_code == 200 and response.json() == []
    else:
        assert sorted(j["id"] for j in response.json()) == job_ids
