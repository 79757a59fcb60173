"""CSRF: every state-changing page route refuses a request without the session's token."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labyard.auth.models import ApiToken, User, WebSession
from labyard.db import Database
from labyard.flavors.models import Flavor
from labyard.projects.models import Membership, Project
from tests.factories import WebClient, access_token_for, auth, make_users_fast, session_client

# (path, form) of every state-changing page route; {p} is a project of the user, {u} another
# user, {f} a flavor, {t} a personal token. The snapshot below must not change when refused.
PAGE_POSTS = [
    ("/projects", {"name": "new"}),
    ("/projects/{p}/rename", {"name": "renamed"}),
    ("/projects/{p}/delete", {}),
    ("/projects/{p}/members", {"username": "bob", "role": "READ"}),
    ("/projects/{p}/members/{u}/remove", {}),
    ("/settings/tokens", {"name": "t"}),
    ("/settings/tokens/{t}/revoke", {}),
    ("/settings/password", {"current_password": "x", "new_password": "yyyyyyyyyy"}),
    ("/admin/users", {"username": "carol", "password": "carol-password"}),
    ("/admin/users/{u}/password", {"password": "new password"}),
    ("/admin/users/{u}/active", {"active": "false"}),
    ("/admin/flavors", {"name": "xl", "gpus": "8", "cpus": "32", "memory_mb": "9999"}),
    ("/admin/flavors/{f}", {"gpus": "3", "cpus": "3", "memory_mb": "3333"}),
    ("/admin/flavors/{f}/delete", {}),
    ("/logout", {}),
]


def _snapshot(db: Session) -> tuple[object, ...]:
    """Everything these routes could change, in a comparable form."""
    return (
        sorted((p.id, p.name) for p in db.scalars(select(Project))),
        sorted((m.project_id, m.user_id, m.role.name) for m in db.scalars(select(Membership))),
        sorted((u.username, u.password_hash, u.is_active) for u in db.scalars(select(User))),
        sorted((f.name, f.gpus, f.cpus, f.memory_mb) for f in db.scalars(select(Flavor))),
        sorted((t.id, t.revoked) for t in db.scalars(select(ApiToken))),
        db.scalar(select(func.count()).select_from(WebSession).where(WebSession.revoked)),
    )


@pytest.fixture
def setup(app: FastAPI, database: Database) -> Callable[[str], str]:
    """Make the admin's project with bob in it, a flavor, a token; return a path filler."""
    from labyard.auth import service as auth_service
    from labyard.projects import service as projects_service
    from labyard.projects.models import Role

    users = make_users_fast(database, "bob")
    with database.session() as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
        project = projects_service.create_project(db, owner=admin, name="csrf")
        projects_service.set_member(db, admin, project.id, username="bob", role=Role.READ)
        flavor = db.scalar(select(Flavor).where(Flavor.name == "small"))
        _text, token = auth_service.create_personal_token(db, admin, name="t")
        ids = {
            "p": project.id,
            "u": users["bob"].id,
            "f": flavor.id if flavor else 0,
            "t": token.id,
        }
    return lambda path: path.format(**ids)


@pytest.fixture
def admin_browser(app: FastAPI, database: Database) -> Iterator[WebClient]:
    """The seeded admin's browser session (made without a password check)."""
    with database.session() as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
    assert admin is not None
    with session_client(app, database, admin) as client:
        yield client


@pytest.mark.parametrize(("path", "form"), PAGE_POSTS, ids=[p for p, _ in PAGE_POSTS])
def test_page_post_without_the_right_token_is_refused_and_changes_nothing(
    path: str,
    form: dict[str, str],
    admin_browser: WebClient,
    database: Database,
    setup: Callable[[str], str],
) -> None:
    url = setup(path)
    with database.session() as db:
        before = _snapshot(db)
    attempts = [
        {"data": form},  # a plain form without the hidden field
        {"data": {**form, "csrf_token": "not-the-token"}},  # a wrong hidden field
        {"data": form, "headers": {"HX-Request": "true"}},  # htmx without the header
        {"data": form, "headers": {"HX-Request": "true", "X-CSRF-Token": "bad"}},
    ]
    for attempt in attempts:
        response = admin_browser.post(url, **attempt)
        assert response.status_code == 403, attempt
        assert "security token is missing or stale" in response.text
    with database.session() as db:
        assert _snapshot(db) == before
    assert admin_browser.get("/projects").status_code == 200  # still logged in


def test_htmx_header_and_form_field_are_accepted(admin_web: WebClient, database: Database) -> None:
    assert admin_web.hx("POST", "/projects", data={"name": "via-header"}).status_code == 200
    response = admin_web.post("/projects", data={"name": "via-field", "csrf_token": admin_web.csrf})
    assert response.status_code == 200
    with database.session() as db:
        names = set(db.scalars(select(Project.name)))
    assert {"via-header", "via-field"} <= names


def test_pages_carry_the_token_for_htmx_and_forms(admin_web: WebClient) -> None:
    page = admin_web.get("/projects").text
    assert f'hx-headers=\'{{"X-CSRF-Token": "{admin_web.csrf}"}}\'' in page
    assert f'<meta name="csrf-token" content="{admin_web.csrf}">' in page
    assert f'name="csrf_token" value="{admin_web.csrf}"' in page  # the logout form


def test_login_form_needs_the_pre_session_token(web: WebClient, database: Database) -> None:
    make_users_fast(database, "ana")
    refused = web.post("/login", data={"username": "ana", "password": "correct horse battery"})
    assert refused.status_code == 403
    assert "labyard_session" not in web.cookies


def test_bearer_api_call_without_cookie_is_exempt(app: FastAPI, database: Database) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    with WebClient(app) as client:
        response = client.post(
            "/api/v1/projects",
            json={"name": "api"},
            headers=auth(access_token_for(app, database, ana)),
        )
        assert response.status_code == 201


def test_bearer_api_call_with_a_session_cookie_needs_the_token(
    app: FastAPI, database: Database
) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    headers = auth(access_token_for(app, database, ana))
    with session_client(app, database, ana) as client:
        refused = client.post("/api/v1/projects", json={"name": "sneaky"}, headers=headers)
        assert refused.status_code == 403
        assert "security token" in refused.json()["detail"]
        accepted = client.post(
            "/api/v1/projects",
            json={"name": "fine"},
            headers={**headers, "X-CSRF-Token": client.csrf or ""},
        )
        assert accepted.status_code == 201
    with database.session() as db:
        names = set(db.scalars(select(Project.name)))
    assert "sneaky" not in names and "fine" in names


def test_anonymous_api_post_gets_401_not_403(web: WebClient) -> None:
    response = web.post("/api/v1/projects", json={"name": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
