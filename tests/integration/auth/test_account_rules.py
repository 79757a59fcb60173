"""Account rules live in the auth service, the same for pages and API: my own password
change (with its JSON twin) and "nobody deactivates or demotes themselves"."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from labyard.auth.models import ApiToken, User
from labyard.auth.passwords import verify_password
from labyard.db import Database
from tests.factories import (
    PASSWORD,
    WebClient,
    access_token_for,
    auth,
    make_users_fast,
    session_client,
)

NEW_PASSWORD = "a brand new password"


def _hash(database: Database, username: str) -> str:
    with database.read_session() as db:
        return db.scalar(select(User.password_hash).where(User.username == username)) or ""


def test_password_change_api_checks_the_current_password(
    app: FastAPI, database: Database, web: WebClient
) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    token = access_token_for(app, database, ana)
    before = _hash(database, "ana")
    wrong = web.post(
        "/api/v1/me/password",
        json={"current_password": "not it", "new_password": NEW_PASSWORD},
        headers=auth(token),
    )
    assert wrong.status_code == 422
    assert "current password is wrong" in wrong.text
    weak = web.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "x"},
        headers=auth(token),
    )
    assert weak.status_code == 422
    assert _hash(database, "ana") == before  # nothing written
    assert web.get("/api/v1/me", headers=auth(token)).status_code == 200  # nothing revoked
    assert web.post("/api/v1/me/password", json={}).status_code == 401  # anonymous


def test_password_change_api_ends_every_token(
    app: FastAPI, database: Database, web: WebClient
) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    token, other = access_token_for(app, database, ana), access_token_for(app, database, ana)
    with session_client(app, database, ana) as browser:
        changed = web.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=auth(token),
        )
        assert changed.status_code == 204
        assert verify_password(_hash(database, "ana"), NEW_PASSWORD)
        for ended in (token, other):
            assert web.get("/api/v1/me", headers=auth(ended)).status_code == 401
        assert browser.get("/settings").status_code == 303  # the browser session ended too
    with database.read_session() as db:
        live = db.scalars(select(ApiToken).where(ApiToken.revoked.is_(False))).all()
    assert live == []


def test_password_change_is_in_the_openapi_schema(web: WebClient) -> None:
    schema = web.get("/api/v1/openapi.json")
    operation = schema.json()["paths"]["/api/v1/me/password"]["post"]
    assert "PasswordChange" in str(operation["requestBody"])


def test_admins_cannot_demote_or_deactivate_themselves(
    app: FastAPI, database: Database, web: WebClient
) -> None:
    boss = make_users_fast(database, "boss")["boss"]
    with database.session() as db:
        db.get(User, boss.id).is_admin = True  # type: ignore[union-attr]
    token = access_token_for(app, database, boss)
    for change in ({"is_admin": False}, {"is_active": False}):
        refused = web.patch(f"/api/v1/users/{boss.id}", json=change, headers=auth(token))
        assert refused.status_code == 403
        assert "cannot deactivate or demote yourself" in refused.text
    with session_client(app, database, boss) as page:
        refused = page.hx("POST", f"/admin/users/{boss.id}/active", data={"active": "false"})
        assert refused.status_code == 403
        assert "cannot deactivate or demote yourself" in refused.text
    with database.read_session() as db:
        row = db.get(User, boss.id)
        assert row is not None and row.is_admin and row.is_active  # nothing changed
    # other users can still be changed
    make_users_fast(database, "bob")
    with database.read_session() as db:
        bob_id = db.scalar(select(User.id).where(User.username == "bob"))
    done = web.patch(f"/api/v1/users/{bob_id}", json={"is_active": False}, headers=auth(token))
    assert done.status_code == 200 and done.json()["is_active"] is False
