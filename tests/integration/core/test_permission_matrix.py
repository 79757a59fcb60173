"""The permission matrix: every route of the foundation, for every role.

Roles: OWN / WRITE / READ members of a project, a non-member, an admin, and anonymous.
READ sees but cannot change (403), a non-member gets 404 (no existence leak), anonymous gets
401 (API) or the login redirect (pages), admins may do everything.

ROUTES is THE table. `test_every_route_is_classified` fails when the foundation gains a route
that the table does not list; routes of later domains are listed in OWNED_ELSEWHERE and
checked by their domain's tests (each domain extends its own matrix).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from labyard.auth import service as auth_service
from labyard.auth.models import User
from labyard.db import Database
from labyard.flavors import service as flavor_service
from labyard.projects import service as project_service
from labyard.projects.models import Role
from tests.factories import (
    ADMIN_PASSWORD,
    PASSWORD,
    WebClient,
    access_token_for,
    auth,
    make_users_fast,
    session_client,
)

OK, DENIED, HIDDEN, AUTH = "ok", "403", "404", "login"
ROLES = ("anonymous", "nonmember", "READ", "WRITE", "OWN", "admin")

PUBLIC = dict.fromkeys(ROLES, OK)
ANY_USER = {**PUBLIC, "anonymous": AUTH}
ADMIN_ONLY = {**dict.fromkeys(ROLES, DENIED), "admin": OK, "anonymous": AUTH}
NEED_READ = {**ANY_USER, "nonmember": HIDDEN}
NEED_WRITE = {**NEED_READ, "READ": DENIED}
NEED_OWN = {**NEED_WRITE, "WRITE": DENIED}
SCRAPER = {**dict.fromkeys(ROLES, HIDDEN), "admin": OK}  # /metrics: admins (or its token)

# Endpoints of these modules are the foundation's and must each be in ROUTES.
FOUNDATION_MODULES = (
    "labyard.auth",
    "labyard.projects",
    "labyard.flavors",
    "labyard.web",
    "labyard.overview",
    "labyard.nodes",
    "labyard.monitoring",
)
FRAMEWORK_MODULES = ("fastapi", "starlette")  # /api/v1/openapi.json
# Later domains: owned by their domain's tests (tests/integration/<domain>/), not this table.
OWNED_ELSEWHERE = (
    "labyard.datasets",
    "labyard.labs",
    "labyard.jobs",
    "labyard.tensorboard",
    "labyard.searches",  # tests/integration/searches/test_search_permissions.py
    "labyard.sessions",  # tests/integration/sessions/test_session_permissions.py
    "labyard.notifications",  # tests/integration/notifications/test_notification_permissions.py
    "labyard.weights",  # tests/integration/weights/test_weights_permissions.py
    # mounted at /backend (not in app.routes): tests/integration/deephealth/
    "labyard.deephealth",
)

_counter = itertools.count()


@dataclass
class World:
    """Fresh things for one request: a project with members, a token, a flavor, a victim."""

    project_id: int
    writer_id: int
    reader_id: int
    token_id: int
    flavor_id: int
    target: str
    target_id: int
    fresh: str  # a name nobody uses yet
    password: str  # the acting user's password


Body = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """How to call a route and what each role must get."""

    expect: dict[str, str]
    body: Body = lambda w: {}


def _json(fn: Callable[[World], Any]) -> Body:
    return lambda w: {"json": fn(w)}


def _form(fn: Callable[[World], dict[str, str]]) -> Body:
    return lambda w: {"data": fn(w)}


FLAVOR_SIZES = {"gpus": "1", "cpus": "2", "memory_mb": "4096", "description": "d"}

ROUTES: dict[tuple[str, str], Case] = {
    # ------------------------------------------------ public
    ("GET", "/healthz"): Case(PUBLIC),
    ("GET", "/favicon.ico"): Case(PUBLIC),
    ("GET", "/api/v1/openapi.json"): Case(PUBLIC),
    ("GET", "/docs"): Case(PUBLIC),
    ("GET", "/docs/deephealth"): Case(PUBLIC),
    ("GET", "/login"): Case(PUBLIC),
    ("POST", "/login"): Case(PUBLIC, _form(lambda w: {"username": w.target, "password": PASSWORD})),
    ("POST", "/logout"): Case(PUBLIC),
    (
        "POST",
        "/api/v1/auth/token",
    ): Case(
        PUBLIC,
        _form(lambda w: {"grant_type": "password", "username": w.target, "password": PASSWORD}),
    ),
    ("POST", "/api/v1/auth/revoke"): Case(PUBLIC, _form(lambda w: {"token": "not-a-token"})),
    # ------------------------------------------------ any logged-in user, about themselves
    ("GET", "/"): Case(ANY_USER),
    ("GET", "/overview/live"): Case(ANY_USER),
    ("GET", "/api/v1/overview"): Case(ANY_USER),
    ("GET", "/nodes"): Case(ANY_USER),
    ("GET", "/api/v1/nodes"): Case(ANY_USER),
    ("GET", "/metrics"): Case(SCRAPER),
    ("GET", "/api/v1/me"): Case(ANY_USER),
    ("GET", "/api/v1/me/tokens"): Case(ANY_USER),
    ("POST", "/api/v1/me/tokens"): Case(ANY_USER, _json(lambda w: {"name": "ci"})),
    ("DELETE", "/api/v1/me/tokens/{token_id}"): Case(ANY_USER),
    ("GET", "/settings"): Case(ANY_USER),
    ("POST", "/settings/tokens"): Case(ANY_USER, _form(lambda w: {"name": "ci"})),
    ("POST", "/settings/tokens/{token_id}/revoke"): Case(ANY_USER),
    ("POST", "/settings/password"): Case(
        ANY_USER,
        _form(lambda w: {"current_password": w.password, "new_password": "a new password 1"}),
    ),
    ("POST", "/api/v1/me/password"): Case(
        ANY_USER,
        _json(lambda w: {"current_password": w.password, "new_password": "a new password 1"}),
    ),
    ("GET", "/api/v1/flavors"): Case(ANY_USER),
    ("GET", "/api/v1/projects"): Case(ANY_USER),
    ("POST", "/api/v1/projects"): Case(ANY_USER, _json(lambda w: {"name": w.fresh})),
    ("GET", "/projects"): Case(ANY_USER),
    ("POST", "/projects"): Case(ANY_USER, _form(lambda w: {"name": w.fresh})),
    # ------------------------------------------------ one project: the role decides
    ("GET", "/api/v1/projects/{project_id}"): Case(NEED_READ),
    ("PATCH", "/api/v1/projects/{project_id}"): Case(NEED_WRITE, _json(lambda w: {"name": "r"})),
    ("DELETE", "/api/v1/projects/{project_id}"): Case(NEED_OWN),
    ("GET", "/api/v1/projects/{project_id}/members"): Case(NEED_READ),
    ("POST", "/api/v1/projects/{project_id}/members"): Case(
        NEED_OWN, _json(lambda w: {"username": w.target, "role": "READ"})
    ),
    ("DELETE", "/api/v1/projects/{project_id}/members/{member_id}"): Case(NEED_OWN),
    ("GET", "/projects/{project_id}"): Case(NEED_READ),
    ("GET", "/projects/{project_id}/datasets"): Case(NEED_READ),
    ("GET", "/api/v1/projects/{project_id}/overview"): Case(NEED_READ),
    ("POST", "/projects/{project_id}/rename"): Case(NEED_WRITE, _form(lambda w: {"name": "r"})),
    ("POST", "/projects/{project_id}/delete"): Case(NEED_OWN),
    ("POST", "/projects/{project_id}/members"): Case(
        NEED_OWN, _form(lambda w: {"username": w.target, "role": "WRITE"})
    ),
    ("POST", "/projects/{project_id}/members/{member_id}/remove"): Case(NEED_OWN),
    # ------------------------------------------------ administration
    ("GET", "/api/v1/users"): Case(ADMIN_ONLY),
    ("POST", "/api/v1/users"): Case(
        ADMIN_ONLY, _json(lambda w: {"username": w.fresh, "password": PASSWORD})
    ),
    ("PATCH", "/api/v1/users/{user_id}"): Case(ADMIN_ONLY, _json(lambda w: {"is_active": False})),
    ("POST", "/api/v1/flavors"): Case(
        ADMIN_ONLY, _json(lambda w: {"name": w.fresh, "gpus": 1, "cpus": 2, "memory_mb": 4096})
    ),
    ("PATCH", "/api/v1/flavors/{flavor_id}"): Case(
        ADMIN_ONLY, _json(lambda w: {"gpus": 2, "cpus": 4, "memory_mb": 8192})
    ),
    ("DELETE", "/api/v1/flavors/{flavor_id}"): Case(ADMIN_ONLY),
    ("GET", "/admin"): Case(ADMIN_ONLY),
    ("POST", "/admin/users"): Case(
        ADMIN_ONLY, _form(lambda w: {"username": w.fresh, "password": PASSWORD})
    ),
    ("POST", "/admin/users/{user_id}/password"): Case(
        ADMIN_ONLY, _form(lambda w: {"password": "another password"})
    ),
    ("POST", "/admin/users/{user_id}/active"): Case(ADMIN_ONLY, _form(lambda w: {"active": "0"})),
    ("POST", "/admin/flavors"): Case(
        ADMIN_ONLY, _form(lambda w: {"name": w.fresh, **FLAVOR_SIZES})
    ),
    ("POST", "/admin/flavors/{flavor_id}"): Case(ADMIN_ONLY, _form(lambda w: FLAVOR_SIZES)),
    ("POST", "/admin/flavors/{flavor_id}/delete"): Case(ADMIN_ONLY),
    ("POST", "/admin/deephealth-clients"): Case(
        ADMIN_ONLY, _form(lambda w: {"client_id": w.fresh, "name": "n"})
    ),
    # an unknown id: the section again with the reason next to the control (200)
    ("POST", "/admin/deephealth-clients/remove"): Case(
        ADMIN_ONLY, _form(lambda w: {"client_id": w.fresh})
    ),
    ("GET", "/api/v1/admin/deephealth-clients"): Case(ADMIN_ONLY),
    ("POST", "/api/v1/admin/deephealth-clients"): Case(
        ADMIN_ONLY, _json(lambda w: {"client_id": w.fresh})
    ),
    # the admin passes the check and is told the (fresh) id is not registered
    ("DELETE", "/api/v1/admin/deephealth-clients/{client_id}"): Case(
        {**ADMIN_ONLY, "admin": "404"}
    ),
    ("POST", "/admin/quotas/projects"): Case(
        ADMIN_ONLY, _form(lambda w: {"target_id": str(w.project_id), "max_gpus": "2"})
    ),
    ("POST", "/admin/quotas/users"): Case(
        ADMIN_ONLY, _form(lambda w: {"target_id": str(w.target_id), "monthly_gpu_hours": "5"})
    ),
}


def iter_routes(app: FastAPI) -> Iterator[tuple[str, str, str]]:
    """(method, path, endpoint module) of every route, included routers flattened."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        items = list(contexts()) if contexts is not None else [route]
        for item in items:
            original = getattr(item, "original_route", item)
            endpoint = getattr(item, "endpoint", None) or getattr(original, "endpoint", None)
            methods = getattr(original, "methods", None)
            if endpoint is None or not methods:
                continue  # a mount (/static), checked by the security-headers tests
            for method in sorted(set(methods) - {"HEAD"}):
                yield method, getattr(item, "path", ""), endpoint.__module__


def test_every_route_is_classified(app: FastAPI) -> None:
    foundation, unknown = set(), []
    for method, path, module in iter_routes(app):
        if module.startswith(FOUNDATION_MODULES + FRAMEWORK_MODULES):
            foundation.add((method, path))
        elif not module.startswith(OWNED_ELSEWHERE):
            unknown.append(f"{method} {path} ({module})")
    assert not unknown, f"routes of a domain nobody classified: {unknown}"
    missing = sorted(foundation - ROUTES.keys())
    assert not missing, f"add these routes to ROUTES in {__file__}: {missing}"
    stale = sorted(ROUTES.keys() - foundation)
    assert not stale, f"ROUTES lists routes that no longer exist: {stale}"


# ------------------------------------------------------------------ running one case


@pytest.fixture
def people(database: Database) -> dict[str, User]:
    """The actors: a project owner, a writer, a reader, an outsider, and the seeded admin."""
    users = make_users_fast(database, "owner", "writer", "reader", "outsider")
    with database.session() as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
    assert admin is not None
    return {
        "OWN": users["owner"],
        "WRITE": users["writer"],
        "READ": users["reader"],
        "nonmember": users["outsider"],
        "admin": admin,
    }


def _fresh_world(database: Database, people: dict[str, User], role: str) -> World:
    n = next(_counter)
    target = f"target{n}"
    target_user = make_users_fast(database, target)[target]
    owner, actor = people["OWN"], people.get(role, people["OWN"])
    with database.session() as db:
        project = project_service.create_project(db, owner=owner, name=f"matrix {n}")
        for name, member_role in (("WRITE", Role.WRITE), ("READ", Role.READ)):
            project_service.set_member(
                db, owner, project.id, username=people[name].username, role=member_role
            )
        _text, token = auth_service.create_personal_token(db, actor, name=f"t{n}")
        flavor = flavor_service.create_flavor(
            db, people["admin"], name=f"mx{n}", gpus=0, cpus=1.0, memory_mb=512
        )
        ids = (project.id, token.id, flavor.id)
    return World(
        project_id=ids[0],
        writer_id=people["WRITE"].id,
        reader_id=people["READ"].id,
        token_id=ids[1],
        flavor_id=ids[2],
        target=target,
        target_id=target_user.id,
        fresh=f"fresh{n}",
        password=ADMIN_PASSWORD if role == "admin" else PASSWORD,
    )


def _client(app: FastAPI, database: Database, people: dict[str, User], role: str, api: bool):
    """The acting role's client: bearer token for the API, browser session for pages."""
    if role == "anonymous":
        client = WebClient(app)
        if not api:  # a visitor's pre-login CSRF token, so the request reaches the auth check
            client.refresh_csrf("/login")
        return client
    if api:
        client = WebClient(app)
        client.headers.update(auth(access_token_for(app, database, people[role])))
        return client
    return session_client(app, database, people[role])


def _outcome(response: Any, api: bool) -> str:
    location = response.headers.get("location", "") or response.headers.get("hx-redirect", "")
    if not api and response.status_code in (204, 303) and location.startswith("/login?next="):
        return AUTH
    if api and response.status_code == 401:
        assert response.headers.get("www-authenticate") == "Bearer"
        return AUTH
    if response.status_code < 400:
        return OK
    return str(response.status_code)


@pytest.mark.parametrize(("method", "path"), list(ROUTES), ids=lambda v: str(v))
def test_route_permissions(
    method: str, path: str, app: FastAPI, database: Database, people: dict[str, User]
) -> None:
    case = ROUTES[(method, path)]
    api = path.startswith("/api/") or path == "/healthz"
    wrong = []
    for role in ROLES:
        world = _fresh_world(database, people, role)
        url = path.format(
            project_id=world.project_id,
            member_id=world.reader_id,
            token_id=world.token_id,
            flavor_id=world.flavor_id,
            user_id=world.target_id,
            client_id=world.fresh,
        )
        with _client(app, database, people, role, api) as client:
            if method == "GET":
                response = client.get(url)
            else:
                response = client.hx(method, url, **case.body(world))
        got = _outcome(response, api)
        if got != case.expect[role]:
            wrong.append(f"{role}: expected {case.expect[role]}, got {got} {response.text[:200]}")
    assert not wrong, f"{method} {path}:\n" + "\n".join(wrong)
