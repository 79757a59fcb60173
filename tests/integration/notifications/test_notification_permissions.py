"""The notifications permission matrix: every route (API and pages), for every role.

A project's subscriptions are managed by its OWNers and admins: READ and WRITE members get
403, non-members 404, anonymous 401 (API) or the login redirect (pages). A person's own
subscriptions are theirs alone: anybody else, admins included, gets 404 and never sees them
listed. A refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

from labyard.auth.models import User
from labyard.db import Database
from labyard.notifications import service
from labyard.notifications.models import Delivery, Subscription
from labyard.projects import service as project_service
from labyard.projects.models import Role
from tests.factories import (
    WebClient,
    access_token_for,
    auth,
    make_users_fast,
    permission_outcome,
    session_client,
)

ROLES = ("anonymous", "nonmember", "READ", "WRITE", "OWN", "admin")
OK, DENIED, HIDDEN, AUTH = "ok", "403", "404", "login"
ANY_USER = {**dict.fromkeys(ROLES, OK), "anonymous": AUTH}
NEED_OWN = {**ANY_USER, "nonmember": HIDDEN, "READ": DENIED, "WRITE": DENIED}
ACTING = {"nonmember": "stranger", "READ": "read", "WRITE": "write", "OWN": "own", "admin": "boss"}
Body = Callable[[int], dict[str, Any]]
HOOK = "https://hooks.example.org/labyard"


def _none(project_id: int) -> dict[str, Any]:
    return {}


ROUTES: dict[tuple[str, str], tuple[dict[str, str], Body]] = {
    ("GET", "/api/v1/notifications"): (ANY_USER, _none),
    ("POST", "/api/v1/notifications"): (
        NEED_OWN,
        lambda p: {"json": {"url": HOOK, "events": ["job.failed"], "project_id": p}},
    ),
    ("GET", "/api/v1/notifications/{subscription_id}"): (NEED_OWN, _none),
    ("DELETE", "/api/v1/notifications/{subscription_id}"): (NEED_OWN, _none),
    ("GET", "/api/v1/notifications/{subscription_id}/deliveries"): (NEED_OWN, _none),
    ("POST", "/api/v1/notifications/{subscription_id}/test"): (NEED_OWN, _none),
    # ------------------------------------------------ pages
    ("GET", "/settings/notifications"): (ANY_USER, _none),
    ("POST", "/settings/notifications"): (
        NEED_OWN,
        lambda p: {"data": {"url": HOOK, "events": ["job.failed"], "project_id": str(p)}},
    ),
    ("POST", "/settings/notifications/{subscription_id}/delete"): (NEED_OWN, _none),
    ("POST", "/settings/notifications/{subscription_id}/test"): (NEED_OWN, _none),
}


@dataclass
class World:
    """A project owned by `own` (write and read members), a stranger and an admin."""

    app: FastAPI
    database: Database
    users: dict[str, User]
    project_id: int

    def subscription(self, owner: str = "own", project: bool = True) -> int:
        """A fresh webhook subscription made by `owner` (the project's, or their own)."""
        with self.database.session() as db:
            user = db.get(User, self.users[owner].id)
            assert user is not None
            sub, _ = service.create_subscription(
                db,
                self.app.state.settings,
                user,
                kind="webhook",
                events=["job.failed"],
                url=HOOK,
                project_id=self.project_id if project else None,
            )
            return sub.id


@pytest.fixture
def world(app: FastAPI, database: Database) -> Iterator[World]:
    users = make_users_fast(database, "own", "write", "read", "stranger", "boss")
    with database.session() as db:
        owner = db.get(User, users["own"].id)
        boss = db.get(User, users["boss"].id)
        assert owner is not None and boss is not None and owner.default_project_id
        boss.is_admin = True
        for name, role in (("write", Role.WRITE), ("read", Role.READ)):
            project_service.set_member(
                db, owner, owner.default_project_id, username=name, role=role
            )
        project_id = owner.default_project_id
    yield World(app, database, users, project_id)


def test_every_notifications_route_is_in_the_matrix(app: FastAPI) -> None:
    from tests.integration.core.test_permission_matrix import iter_routes

    ours = {
        (m, p) for m, p, module in iter_routes(app) if module.startswith("labyard.notifications")
    }
    assert ours == set(ROUTES)


def _client(world: World, role: str, api: bool) -> WebClient:
    client = WebClient(world.app)
    if role == "anonymous":
        client.refresh_csrf("/login")  # a pre-login token, so CSRF is not what refuses
        return client
    user = world.users[ACTING[role]]
    if api:
        client.headers.update(auth(access_token_for(world.app, world.database, user)))
        return client
    client.close()
    return session_client(world.app, world.database, user)


def _state(database: Database) -> tuple[Any, ...]:
    with database.read_session() as db:
        subs = [
            (s.id, s.target, s.project_id) for s in db.query(Subscription).order_by(Subscription.id)
        ]
        return subs, db.query(Delivery).count()


@pytest.mark.parametrize("role", ROLES)
def test_project_subscriptions_are_for_owners(world: World, role: str) -> None:
    failures = []
    for (method, template), (expect, body) in ROUTES.items():
        path = template.format(subscription_id=world.subscription())
        before = _state(world.database)
        with _client(world, role, path.startswith("/api/")) as client:
            kwargs = body(world.project_id)
            response = client.hx(method, path, **kwargs) if method != "GET" else client.get(path)
        got = permission_outcome(response)
        if got != expect[role]:
            failures.append(f"{method} {template}: {got} != {expect[role]} ({response.text[:120]})")
        elif got != OK and _state(world.database) != before:
            failures.append(f"{method} {template}: refused ({got}) but something was written")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("other", ["write", "stranger", "boss"])
def test_my_own_subscriptions_are_mine_alone(world: World, other: str) -> None:
    mine = world.subscription(owner="read", project=False)
    with _client(world, "READ", api=True) as me:
        assert [s["id"] for s in me.get("/api/v1/notifications").json()] == [mine]
    before = _state(world.database)
    role = {"write": "WRITE", "stranger": "nonmember", "boss": "admin"}[other]
    with _client(world, role, api=True) as client:
        assert mine not in [s["id"] for s in client.get("/api/v1/notifications").json()]
        for method, suffix in (
            ("GET", ""),
            ("GET", "/deliveries"),
            ("POST", "/test"),
            ("DELETE", ""),
        ):
            response = client.request(method, f"/api/v1/notifications/{mine}{suffix}")
            assert response.status_code == 404, (method, suffix, response.text)
    with _client(world, role, api=False) as web:
        assert HOOK not in web.get("/settings/notifications").text
        assert web.hx("POST", f"/settings/notifications/{mine}/delete").status_code == 404
    assert _state(world.database) == before
