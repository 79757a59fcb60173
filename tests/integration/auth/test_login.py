"""Login, logout, sessions and throttling through the real pages."""

from __future__ import annotations

from labyard.db import Database
from tests.factories import PASSWORD, WebClient, make_user


def test_login_sets_hardened_cookie_and_logout_revokes_server_side(
    web: WebClient, database: Database
) -> None:
    make_user(database, "ana")
    response = web.login("ana")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "labyard_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    stolen = web.cookies.get("labyard_session")
    assert web.get("/projects").status_code == 200
    web.post("/logout", data={"csrf_token": web.csrf})
    # the old cookie value no longer works: the session was revoked on the server
    web.cookies.set("labyard_session", stolen)
    assert web.get("/projects").status_code == 303


def test_fresh_session_id_at_each_login(web: WebClient, database: Database) -> None:
    make_user(database, "ana")
    web.login("ana")
    first = web.cookies.get("labyard_session")
    web.login("ana")
    second = web.cookies.get("labyard_session")
    assert first and second and first != second
    web.cookies.set("labyard_session", first)
    assert web.get("/projects").status_code == 303


def test_unknown_user_and_wrong_password_get_the_same_message(
    web: WebClient, database: Database
) -> None:
    make_user(database, "ana")
    unknown = web.login("nobody", PASSWORD)
    wrong = web.login("ana", "not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert "Unknown username or wrong password." in unknown.text
    assert "Unknown username or wrong password." in wrong.text


def test_repeated_failures_throttle_the_account_from_that_address_even_with_the_right_password(
    web: WebClient, database: Database
) -> None:
    make_user(database, "ana")
    for _ in range(5):
        assert web.login("ana", "wrong").status_code == 401
    response = web.login("ana", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed logins" in response.text
    assert "labyard_session" not in web.cookies


def test_anonymous_page_redirects_to_login_with_next(web: WebClient) -> None:
    response = web.get("/projects/5")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/projects/5"


def test_login_refuses_offsite_next(web: WebClient, database: Database) -> None:
    make_user(database, "ana")
    token = web.refresh_csrf("/login")
    response = web.post(
        "/login",
        data={
            "username": "ana",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
    )
    assert response.headers["location"] == "/"


def test_deactivated_user_loses_session(admin_web: WebClient, database: Database, app) -> None:  # type: ignore[no-untyped-def]
    ana = make_user(database, "ana")
    with WebClient(app) as other:
        other.login("ana")
        assert other.get("/projects").status_code == 200
        assert (
            admin_web.hx(
                "POST", f"/admin/users/{ana.id}/active", data={"active": "false"}
            ).status_code
            == 200
        )
        assert other.get("/projects").status_code == 303
        assert other.login("ana").status_code == 401
