"""API tokens: the OAuth2 password and refresh grants, personal access tokens."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import select, text

from labyard.auth.models import ApiToken
from labyard.db import Database
from tests.factories import PASSWORD, WebClient, auth, make_users_fast, session_client


def _grant(web: WebClient, **fields: str):  # type: ignore[no-untyped-def]
    return web.post("/api/v1/auth/token", data=fields)


def test_password_grant_answers_exactly_the_oauth2_keys(web: WebClient, database: Database) -> None:
    make_users_fast(database, "ana")
    response = _grant(web, grant_type="password", username="ana", password=PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    me = web.get("/api/v1/me", headers=auth(body["access_token"]))
    assert me.status_code == 200 and me.json()["username"] == "ana"


def test_password_grant_wants_form_fields_not_json(web: WebClient, database: Database) -> None:
    make_users_fast(database, "ana")
    response = web.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "username": "ana", "password": PASSWORD},
    )
    assert response.status_code == 422


def test_wrong_password_and_unknown_user_get_invalid_grant(
    web: WebClient, database: Database
) -> None:
    make_users_fast(database, "ana")
    wrong = _grant(web, grant_type="password", username="ana", password="nope nope")
    unknown = _grant(web, grant_type="password", username="zed", password=PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_grant",
            "error_description": "Unknown username or wrong password.",
        }
    with database.session() as db:
        assert db.scalar(select(ApiToken.id).where(ApiToken.kind == "access")) is None


def test_missing_fields_and_unknown_grant_type(web: WebClient) -> None:
    missing = _grant(web, grant_type="password", username="ana")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    odd = _grant(web, grant_type="client_credentials")
    assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"


def test_refresh_rotates_and_the_old_refresh_token_is_refused(
    web: WebClient, database: Database
) -> None:
    make_users_fast(database, "ana")
    first = _grant(web, grant_type="password", username="ana", password=PASSWORD).json()
    second = _grant(web, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert web.get("/api/v1/me", headers=auth(body["access_token"])).status_code == 200
    again = _grant(web, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # an access token is not a refresh token, and a refresh token is not a bearer token
    as_refresh = _grant(web, grant_type="refresh_token", refresh_token=body["access_token"])
    assert as_refresh.status_code == 400
    assert web.get("/api/v1/me", headers=auth(body["refresh_token"])).status_code == 401


def test_bad_bearer_tokens_get_401(web: WebClient) -> None:
    for header in ("Bearer lya_nonsense", "Bearer ", "Basic YWRtaW46eA=="):
        response = web.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def _all_text(database: Database) -> str:
    """Every value of every api_tokens row, as text."""
    with database.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_tokens")).all()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


def test_personal_tokens_on_the_settings_page(
    app: FastAPI, database: Database, web: WebClient
) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    with session_client(app, database, ana) as browser:
        created = browser.hx("POST", "/settings/tokens", data={"name": "laptop <cli>"})
        assert created.status_code == 200
        match = re.search(r'<code class="token" id="new-token">(lya_[^<]+)</code>', created.text)
        assert match, created.text
        token = match.group(1)
        assert "laptop &lt;cli&gt;" in created.text
        assert token not in _all_text(database)  # stored hashed only
        assert web.get("/api/v1/me", headers=auth(token)).json()["username"] == "ana"
        listed = browser.get("/settings").text
        assert "laptop &lt;cli&gt;" in listed and token not in listed  # shown once
        with database.session() as db:
            row = db.scalar(select(ApiToken).where(ApiToken.kind == "personal"))
            assert row is not None and row.last_used_at is not None
            token_id = row.id
        revoked = browser.hx("POST", f"/settings/tokens/{token_id}/revoke")
        assert revoked.status_code == 200 and "No tokens." in revoked.text
    assert web.get("/api/v1/me", headers=auth(token)).status_code == 401


def test_personal_tokens_through_the_api(app: FastAPI, database: Database, web: WebClient) -> None:
    make_users_fast(database, "ana", "bob")
    login = _grant(web, grant_type="password", username="ana", password=PASSWORD).json()
    ana = auth(login["access_token"])
    created = web.post("/api/v1/me/tokens", json={"name": "ci"}, headers=ana)
    assert created.status_code == 201
    body = created.json()
    token = body["token"]
    assert token.startswith("lya_") and body["prefix"] == token[:10]
    assert token not in _all_text(database)
    listed = web.get("/api/v1/me/tokens", headers=ana).json()
    assert [t["name"] for t in listed] == ["ci"] and "token" not in listed[0]
    assert web.get("/api/v1/me", headers=auth(token)).json()["username"] == "ana"
    # another user cannot see or revoke it
    bob = auth(
        _grant(web, grant_type="password", username="bob", password=PASSWORD).json()["access_token"]
    )
    assert web.get("/api/v1/me/tokens", headers=bob).json() == []
    assert web.delete(f"/api/v1/me/tokens/{body['id']}", headers=bob).status_code == 404
    assert web.get("/api/v1/me", headers=auth(token)).status_code == 200
    assert web.delete(f"/api/v1/me/tokens/{body['id']}", headers=ana).status_code == 204
    assert web.get("/api/v1/me", headers=auth(token)).status_code == 401
    assert web.delete(f"/api/v1/me/tokens/{body['id']}", headers=ana).status_code == 404


def test_bad_token_name_is_refused_and_nothing_is_stored(
    web: WebClient, database: Database, app: FastAPI
) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    login = _grant(web, grant_type="password", username="ana", password=PASSWORD).json()
    for name in ("", "   ", "x" * 101):
        response = web.post(
            "/api/v1/me/tokens", json={"name": name}, headers=auth(login["access_token"])
        )
        assert response.status_code == 422
        assert response.json()["field"] == "name"
    with session_client(app, database, ana) as browser:
        page = browser.hx("POST", "/settings/tokens", data={"name": " "})
        assert page.status_code == 422 and "Token name" in page.text
        assert page.headers["hx-retarget"] == "#flash"
    with database.session() as db:
        assert db.scalar(select(ApiToken.id).where(ApiToken.kind == "personal")) is None


def test_password_change_ends_tokens_and_other_sessions(
    app: FastAPI, database: Database, web: WebClient
) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    token = _grant(web, grant_type="password", username="ana", password=PASSWORD).json()
    with session_client(app, database, ana) as other, session_client(app, database, ana) as me:
        wrong = me.hx(
            "POST",
            "/settings/password",
            data={"current_password": "not it at all", "new_password": "new password 123"},
        )
        assert wrong.status_code == 422 and "current password is wrong" in wrong.text
        assert web.get("/api/v1/me", headers=auth(token["access_token"])).status_code == 200
        changed = me.hx(
            "POST",
            "/settings/password",
            data={"current_password": PASSWORD, "new_password": "new password 123"},
        )
        assert changed.status_code == 303
        assert me.get("/settings").status_code == 200  # this browser got a fresh session
        assert other.get("/settings").status_code == 303
    assert web.get("/api/v1/me", headers=auth(token["access_token"])).status_code == 401
    refreshed = _grant(web, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert refreshed.status_code == 400
    ok = _grant(web, grant_type="password", username="ana", password="new password 123")
    assert ok.status_code == 200


def test_revocation_ends_a_login_and_nothing_else(web: WebClient, database: Database) -> None:
    """POST /api/v1/auth/revoke (RFC 7009): a refresh token ends with its login's access
    token; another login and a personal token live on; bad bodies are refused clearly."""
    make_users_fast(database, "ana")
    first = _grant(web, grant_type="password", username="ana", password=PASSWORD).json()
    second = _grant(web, grant_type="password", username="ana", password=PASSWORD).json()
    made = web.post("/api/v1/me/tokens", json={"name": "ci"}, headers=auth(second["access_token"]))
    personal = made.json()["token"]

    def status(token: str) -> int:
        return web.get("/api/v1/me", headers=auth(token)).status_code

    for token in (first["refresh_token"], personal, "unknown", first["refresh_token"]):
        ended = web.post("/api/v1/auth/revoke", data={"token": token})
        assert ended.status_code == 200 and ended.json() == {}  # unknown, ended: 200 too
    assert status(first["access_token"]) == 401
    again = _grant(web, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert status(second["access_token"]) == 200 and status(personal) == 200
    access_only = web.post("/api/v1/auth/revoke", data={"token": second["access_token"]})
    assert access_only.status_code == 200 and status(second["access_token"]) == 401
    renewed = _grant(web, grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert renewed.status_code == 200  # ending an access token leaves its refresh token
    for body in ({}, {"token": "x" * 201}, {"token_type_hint": "refresh_token"}):
        refused = web.post("/api/v1/auth/revoke", data=body)
        assert refused.status_code == 422 and "token" in refused.text
    with database.session() as db:
        live = db.scalars(select(ApiToken).where(ApiToken.revoked.is_(False))).all()
        assert {t.kind for t in live} == {"refresh", "access", "personal"}
