"""Administration: users (create, reset password, deactivate) and flavors, pages and API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from labyard.auth.models import User
from labyard.db import Database
from labyard.flavors.models import Flavor
from tests.factories import (
    PASSWORD,
    WebClient,
    access_token_for,
    auth,
    bearer_token,
    make_users_fast,
    session_client,
)


@pytest.fixture
def admin_user(database: Database) -> User:
    with database.session() as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
    assert admin is not None
    return admin


@pytest.fixture
def admin_browser(app: FastAPI, database: Database, admin_user: User) -> Iterator[WebClient]:
    with session_client(app, database, admin_user) as client:
        yield client


@pytest.fixture
def admin_api(app: FastAPI, database: Database, admin_user: User) -> Iterator[WebClient]:
    with WebClient(app) as client:
        client.headers.update(auth(access_token_for(app, database, admin_user)))
        yield client


def _users(database: Database) -> dict[str, tuple[bool, bool, str]]:
    with database.session() as db:
        return {
            u.username: (u.is_admin, u.is_active, u.password_hash) for u in db.scalars(select(User))
        }


def _flavors(database: Database) -> dict[str, tuple[int, float, int, str]]:
    with database.session() as db:
        return {
            f.name: (f.gpus, f.cpus, f.memory_mb, f.description) for f in db.scalars(select(Flavor))
        }


def test_seeded_flavors(database: Database) -> None:
    flavors = _flavors(database)
    assert {name: f[0] for name, f in flavors.items()} == {
        "cpu": 0,
        "small": 1,
        "medium": 2,
        "large": 4,
    }
    assert all(f[1] > 0 and f[2] >= 1024 for f in flavors.values())


def test_create_user_reset_password_deactivate_on_the_page(
    admin_browser: WebClient, web: WebClient, database: Database
) -> None:
    created = admin_browser.hx(
        "POST", "/admin/users", data={"username": "bob", "password": PASSWORD, "is_admin": "true"}
    )
    assert created.status_code == 200 and 'id="users"' in created.text and "bob" in created.text
    assert _users(database)["bob"][:2] == (True, True)
    with database.session() as db:
        bob = db.scalar(select(User).where(User.username == "bob"))
        assert bob is not None and bob.default_project_id is not None
        bob_id = bob.id
    token = bearer_token(web, "bob")
    reset = admin_browser.hx(
        "POST", f"/admin/users/{bob_id}/password", data={"password": "a fresh password"}
    )
    assert reset.status_code == 200
    assert web.get("/api/v1/me", headers=auth(token)).status_code == 401  # tokens ended
    token = bearer_token(web, "bob", "a fresh password")
    off = admin_browser.hx("POST", f"/admin/users/{bob_id}/active", data={"active": "false"})
    assert off.status_code == 200 and "deactivated" in off.text
    assert web.get("/api/v1/me", headers=auth(token)).status_code == 401
    refused = web.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "bob", "password": "a fresh password"},
    )
    assert refused.status_code == 400
    on = admin_browser.hx("POST", f"/admin/users/{bob_id}/active", data={"active": "true"})
    assert on.status_code == 200
    assert bearer_token(web, "bob", "a fresh password")


def test_bad_user_input_is_refused_and_nothing_written(
    admin_browser: WebClient, admin_api: WebClient, database: Database, admin_user: User
) -> None:
    make_users_fast(database, "bob")
    before = _users(database)
    for username, password, message in (
        ("bad name!", PASSWORD, "Username"),
        ("", PASSWORD, "username"),
        ("carol", "short", "at least 8"),
        ("bob", PASSWORD, "already exists"),
    ):
        page = admin_browser.hx(
            "POST", "/admin/users", data={"username": username, "password": password}
        )
        assert page.status_code in (409, 422) and message.lower() in page.text.lower()
        api = admin_api.post("/api/v1/users", json={"username": username, "password": password})
        assert api.status_code in (409, 422) and message.lower() in api.text.lower()
    bob_id = make_users_fast(database, "dan")["dan"].id
    before = _users(database)
    short = admin_browser.hx("POST", f"/admin/users/{bob_id}/password", data={"password": "x"})
    assert short.status_code == 422 and "at least 8" in short.text
    self_off = admin_browser.hx(
        "POST", f"/admin/users/{admin_user.id}/active", data={"active": "false"}
    )
    assert self_off.status_code == 403
    assert (
        admin_api.patch(f"/api/v1/users/{admin_user.id}", json={"is_admin": False}).status_code
        == 403
    )
    assert (
        admin_browser.hx(
            "POST", "/admin/users/999999/password", data={"password": PASSWORD}
        ).status_code
        == 404
    )
    assert _users(database) == before


def test_users_api(admin_api: WebClient, web: WebClient, database: Database) -> None:
    created = admin_api.post("/api/v1/users", json={"username": "erin", "password": PASSWORD})
    assert created.status_code == 201
    body = created.json()
    assert body["username"] == "erin" and body["is_admin"] is False and "password" not in str(body)
    assert "erin" in [u["username"] for u in admin_api.get("/api/v1/users").json()]
    uid = body["id"]
    patched = admin_api.patch(f"/api/v1/users/{uid}", json={"is_admin": True})
    assert patched.json()["is_admin"] is True
    admin_api.patch(f"/api/v1/users/{uid}", json={"password": "erin's new password"})
    assert bearer_token(web, "erin", "erin's new password")
    off = admin_api.patch(f"/api/v1/users/{uid}", json={"is_active": False})
    assert off.json()["is_active"] is False
    assert admin_api.patch("/api/v1/users/999999", json={"is_active": False}).status_code == 404


def test_flavors_crud_on_the_page(admin_browser: WebClient, database: Database) -> None:
    created = admin_browser.hx(
        "POST",
        "/admin/flavors",
        data={"name": "xl", "gpus": "8", "cpus": "32", "memory_mb": "131072", "description": "big"},
    )
    assert created.status_code == 200 and 'id="flavors"' in created.text and "xl" in created.text
    assert _flavors(database)["xl"] == (8, 32.0, 131072, "big")
    with database.session() as db:
        xl = db.scalar(select(Flavor.id).where(Flavor.name == "xl"))
    updated = admin_browser.hx(
        "POST",
        f"/admin/flavors/{xl}",
        data={
            "gpus": "6", "cpus": "24", "memory_mb": "65536", "description": "smaller",
            "partition": " big ", "account": "lab", "qos": "",
        },
    )  # fmt: skip
    assert updated.status_code == 200
    assert _flavors(database)["xl"] == (6, 24.0, 65536, "smaller")
    with database.session() as db:
        row = db.scalar(select(Flavor).where(Flavor.name == "xl"))
        assert row is not None and (row.partition, row.account, row.qos) == ("big", "lab", "")
    assert 'value="big"' in updated.text  # the admin page shows them
    deleted = admin_browser.hx("POST", f"/admin/flavors/{xl}/delete")
    assert deleted.status_code == 200 and "xl" not in _flavors(database)
    assert admin_browser.hx("POST", f"/admin/flavors/{xl}/delete").status_code == 404


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Bad Name"}, "Flavor name"),
        ({"name": "x" * 33}, "Flavor name"),
        ({"name": "small"}, "already exists"),
        ({"gpus": "-1"}, "GPUs must be between 0 and 64"),
        ({"gpus": "65"}, "GPUs must be between 0 and 64"),
        ({"cpus": "0"}, "CPUs must be more than 0"),
        ({"memory_mb": "10"}, "Memory must be between"),
        ({"gpus": "two"}, "gpus"),
        ({"partition": "gpu; rm -rf /"}, "Partition: up to 100 letters"),
        ({"account": "-lead"}, "Account: up to 100 letters"),
        ({"qos": "q" * 101}, "QOS: up to 100 letters"),
    ],
)
def test_bad_flavors_are_refused_and_nothing_written(
    fields: dict[str, str],
    message: str,
    admin_browser: WebClient,
    admin_api: WebClient,
    database: Database,
) -> None:
    before = _flavors(database)
    form = {"name": "newflavor", "gpus": "1", "cpus": "2", "memory_mb": "4096", **fields}
    page = admin_browser.hx("POST", "/admin/flavors", data=form)
    assert page.status_code in (409, 422) and message in page.text
    assert page.headers["hx-retarget"] == "#flash"
    api = admin_api.post("/api/v1/flavors", json=form)
    assert api.status_code in (409, 422) and message in api.text
    with database.session() as db:
        small = db.scalar(select(Flavor.id).where(Flavor.name == "small"))
    if "name" not in fields:  # the same sizes refused when changing a flavor
        sizes = {k: v for k, v in form.items() if k != "name"}
        update = admin_browser.hx("POST", f"/admin/flavors/{small}", data=sizes)
        assert update.status_code == 422 and message in update.text
    assert _flavors(database) == before


def test_flavors_api(admin_api: WebClient, app: FastAPI, database: Database) -> None:
    created = admin_api.post(
        "/api/v1/flavors", json={"name": "tiny", "gpus": 0, "cpus": 0.5, "memory_mb": 512}
    )
    assert created.status_code == 201
    fid = created.json()["id"]
    sizes = {"gpus": 1, "cpus": 1, "memory_mb": 1024, "description": "d"}
    slurm = {"partition": "gpu", "account": "lab-a", "qos": "normal"}
    patched = admin_api.patch(f"/api/v1/flavors/{fid}", json={**sizes, **slurm})
    assert patched.json() == {
        "id": fid,
        "name": "tiny",
        "gpus": 1,
        "cpus": 1.0,
        "memory_mb": 1024,
        "description": "d",
        **slurm,  # the flavor's Slurm options (empty: the cluster's defaults)
    }
    ana = make_users_fast(database, "ana")["ana"]
    names = [
        f["name"]
        for f in admin_api.get(
            "/api/v1/flavors", headers=auth(access_token_for(app, database, ana))
        ).json()
    ]
    assert names[0] == "cpu" and "tiny" in names  # smallest first; everyone may list
    assert admin_api.delete(f"/api/v1/flavors/{fid}").status_code == 204
    assert admin_api.delete(f"/api/v1/flavors/{fid}").status_code == 404


def test_non_admins_get_403_on_pages_and_api(app: FastAPI, database: Database) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    before = (_users(database), _flavors(database))
    with session_client(app, database, ana) as browser:
        page = browser.get("/admin")
        assert page.status_code == 403 and "Only administrators" in page.text
        assert 'href="/admin"' not in browser.get("/projects").text  # no nav link either
        assert (
            browser.hx(
                "POST",
                "/admin/flavors",
                data={"name": "x", "gpus": "1", "cpus": "1", "memory_mb": "512"},
            ).status_code
            == 403
        )
    with WebClient(app) as api:
        headers = auth(access_token_for(app, database, ana))
        assert api.get("/api/v1/users", headers=headers).status_code == 403
        assert api.post("/api/v1/flavors", json={"name": "x"}, headers=headers).status_code == 403
    assert (_users(database), _flavors(database)) == before
