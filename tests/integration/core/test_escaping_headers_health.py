"""What users typed is shown as text; security headers everywhere; /healthz."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from labyard import __version__
from labyard.auth.models import User
from labyard.db import Database
from labyard.projects import service as project_service
from labyard.web.headers import SECURITY_HEADERS
from tests.factories import (
    WebClient,
    access_token_for,
    auth,
    make_job_row,
    make_users_fast,
    session_client,
)

EVIL = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def _admin(database: Database) -> User:
    with database.session() as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
    assert admin is not None
    return admin


def test_project_name_and_description_are_shown_as_text(app: FastAPI, database: Database) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    with session_client(app, database, ana) as browser:
        created = browser.hx("POST", "/projects", data={"name": EVIL, "description": EVIL})
        assert created.status_code == 200
        with database.session() as db:
            pid = next(p.id for p, _ in project_service.list_projects(db, ana) if p.name == EVIL)
        for response in (created, browser.get("/projects"), browser.get(f"/projects/{pid}")):
            assert ESCAPED in response.text
            assert EVIL not in response.text
        renamed = browser.hx("POST", f"/projects/{pid}/rename", data={"name": EVIL + "2"})
        assert ESCAPED in renamed.text and EVIL not in renamed.text
        assert 'hx-confirm="Delete project &lt;img' in browser.get(f"/projects/{pid}").text


def test_usernames_are_restricted_so_members_cannot_smuggle_markup(
    app: FastAPI, database: Database
) -> None:
    with WebClient(app) as api:
        api.headers.update(auth(access_token_for(app, database, _admin(database))))
        for name in (EVIL, "<b>", 'a"b', "a b", "a/b"):
            response = api.post("/api/v1/users", json={"username": name, "password": "x" * 10})
            assert response.status_code == 422 and response.json()["field"] == "username"
        pid = _admin(database).default_project_id
        member = api.post(
            f"/api/v1/projects/{pid}/members", json={"username": EVIL, "role": "READ"}
        )
        assert member.status_code == 422
    with database.session() as db:
        assert "<" not in "".join(db.scalars(select(User.username)))


def test_form_errors_echo_input_escaped(app: FastAPI, database: Database) -> None:
    with session_client(app, database, _admin(database)) as browser:
        pid = _admin(database).default_project_id
        response = browser.hx(
            "POST", f"/projects/{pid}/members", data={"username": EVIL, "role": "READ"}
        )
        assert response.status_code == 422
        assert EVIL not in response.text and "&lt;img" in response.text
        login = WebClient(app)
        with login:
            token = login.refresh_csrf("/login")
            page = login.post(
                "/login", data={"username": EVIL, "password": "whatever!", "csrf_token": token}
            )
            assert page.status_code == 401 and EVIL not in page.text and ESCAPED in page.text


def test_flavor_description_is_shown_escaped_on_admin(app: FastAPI, database: Database) -> None:
    with session_client(app, database, _admin(database)) as browser:
        created = browser.hx(
            "POST",
            "/admin/flavors",
            data={
                "name": "evil",
                "gpus": "0",
                "cpus": "1",
                "memory_mb": "512",
                "description": EVIL,
            },
        )
        assert created.status_code == 200
        page = browser.get("/admin").text
        assert 'value="&lt;img src=x onerror=alert(1)&gt;"' in page
        assert EVIL not in page


def _assert_security_headers(response) -> None:  # type: ignore[no-untyped-def]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name.decode()) == value.decode(), name
    csp = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "script-src 'self'" in csp and "object-src 'none'" in csp


def test_security_headers_on_pages_api_static_and_errors(app: FastAPI, database: Database) -> None:
    with session_client(app, database, _admin(database)) as browser:
        responses = [
            browser.get("/projects"),
            browser.get("/admin"),
            browser.get("/docs"),
            browser.get("/api/v1/me"),
            browser.get("/api/v1/openapi.json"),
            browser.get("/static/vendor/htmx.min.js"),
            browser.get("/static/css/labyard.css"),
            browser.get("/static/nothing-here.js"),  # 404 from the static files
            browser.get("/no-such-page"),  # 404 page
            browser.get("/projects/999999"),  # 404 from a domain error
            browser.post("/projects", data={"name": "x"}),  # 403 CSRF
            browser.get("/healthz"),
        ]
    with WebClient(app) as anonymous:
        responses += [
            anonymous.get("/login"),
            anonymous.get("/projects"),  # redirect
            anonymous.get("/api/v1/me"),  # 401
        ]
    for response in responses:
        _assert_security_headers(response)
    assert [r.status_code for r in responses[7:11]] == [404, 404, 404, 403]


def test_pages_have_no_inline_script_or_style(app: FastAPI, database: Database) -> None:
    import re

    pid = _admin(database).default_project_id
    assert pid is not None
    job = make_job_row(database, app.state.settings, pid, points={"Train_loss": [(1, 0.5)]})
    with session_client(app, database, _admin(database)) as browser:
        pages = ("/", "/projects", f"/projects/{pid}", "/admin", "/settings", "/docs", "/x")
        for url in (*pages, f"/jobs/{job}", "/jobs", "/datasets", "/labs"):
            html = browser.get(url).text
            # only scripts from our origin, and JSON data blocks (never run, not HTML-escaped)
            assert not re.search(r'<script(?![^>]*\b(src=|type="application/json"))[^>]*>', html), (
                url
            )
            assert "<style" not in html and " style=" not in html and "hx-on" not in html, url
            assert "https://" not in html and "http://" not in html, url  # no CDN


def test_healthz_reports_version_and_database(web: WebClient) -> None:
    response = web.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__, "database": "ok"}


def test_healthz_reports_an_unreachable_database(app: FastAPI, database: Database) -> None:
    from labyard.db import Database as Db

    app.state.db = Db("postgresql+psycopg://nobody:x@127.0.0.1:1/none?connect_timeout=1")
    try:  # no `with`: the app's start hooks (which need the database) stay out of it
        response = WebClient(app).get("/healthz")
    finally:
        app.state.db.dispose()
        app.state.db = database
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
