"""Projects: create, rename, delete, members, through the pages (htmx) and the API."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from labyard.db import Database
from labyard.projects.models import Membership, Project, Role
from tests.factories import WebClient, access_token_for, auth, make_users_fast, session_client


def _project_names(database: Database) -> set[str]:
    with database.session() as db:
        return set(db.scalars(select(Project.name)))


def _roles(database: Database, project_id: int) -> dict[str, str]:
    with database.session() as db:
        rows = db.scalars(select(Membership).where(Membership.project_id == project_id))
        return {m.user.username: m.role.name for m in rows}


def test_every_user_has_an_owned_default_project(web: WebClient, database: Database) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    with database.session() as db:
        admin_default = db.scalar(select(Project).where(Project.name == "admin-default"))
    assert admin_default is not None
    assert ana.default_project_id is not None
    assert _roles(database, ana.default_project_id) == {"ana": "OWN"}


def test_create_rename_delete_through_the_pages(app: FastAPI, database: Database) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    with session_client(app, database, ana) as browser:
        created = browser.hx(
            "POST", "/projects", data={"name": "  mnist study ", "description": "d"}
        )
        assert created.status_code == 200
        assert 'id="project-list"' in created.text and "<html" not in created.text  # a fragment
        assert ">mnist study</a>" in created.text
        with database.session() as db:
            project = db.scalar(select(Project).where(Project.name == "mnist study"))
            assert project is not None
            pid = project.id
        page = browser.get(f"/projects/{pid}")
        assert page.status_code == 200 and "Delete project" in page.text
        assert "hx-confirm=" in page.text  # deletion asks first
        renamed = browser.hx("POST", f"/projects/{pid}/rename", data={"name": "digits"})
        assert renamed.status_code == 200 and 'id="project-header"' in renamed.text
        assert "<h1>digits</h1>" in renamed.text
        deleted = browser.hx("POST", f"/projects/{pid}/delete")
        assert deleted.status_code == 204 and deleted.headers["hx-redirect"] == "/projects"
        assert browser.get(f"/projects/{pid}").status_code == 404
    assert "digits" not in _project_names(database)


def test_bad_names_are_refused_with_a_message_and_nothing_is_written(
    app: FastAPI, database: Database
) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    before = _project_names(database)
    headers = auth(access_token_for(app, database, ana))
    with session_client(app, database, ana) as browser:
        for name, message in (
            ("   ", "must not be empty"),
            ("x" * 101, "at most 100 characters"),
            ("bad\x00name", "control or formatting"),
            ("right\u202eleft", "control or formatting"),
        ):
            page = browser.hx("POST", "/projects", data={"name": name})
            assert page.status_code == 422 and message in page.text
            assert page.headers["hx-retarget"] == "#flash"
            api = browser.post(
                "/api/v1/projects",
                json={"name": name},
                headers={**headers, "X-CSRF-Token": browser.csrf or ""},
            )
            assert api.status_code == 422 and message in api.json()["detail"]
        rename = browser.hx(
            "POST", f"/projects/{ana.default_project_id}/rename", data={"name": " "}
        )
        assert rename.status_code == 422
    assert _project_names(database) == before


def test_create_rename_delete_through_the_api(app: FastAPI, database: Database) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    headers = auth(access_token_for(app, database, ana))
    with WebClient(app) as api:
        created = api.post("/api/v1/projects", json={"name": "api project"}, headers=headers)
        assert created.status_code == 201
        body = created.json()
        assert body["role"] == "OWN" and body["name"] == "api project"
        pid = body["id"]
        listed = api.get("/api/v1/projects", headers=headers).json()
        assert {p["name"] for p in listed} == {"ana-default", "api project"}
        patched = api.patch(f"/api/v1/projects/{pid}", json={"description": "x"}, headers=headers)
        assert patched.json()["name"] == "api project" and patched.json()["description"] == "x"
        patched = api.patch(f"/api/v1/projects/{pid}", json={"name": "renamed"}, headers=headers)
        assert patched.json()["name"] == "renamed"
        assert api.delete(f"/api/v1/projects/{pid}", headers=headers).status_code == 204
        assert api.get(f"/api/v1/projects/{pid}", headers=headers).status_code == 404
        assert api.delete(f"/api/v1/projects/{pid}", headers=headers).status_code == 404


def test_default_project_cannot_be_deleted(app: FastAPI, database: Database) -> None:
    ana = make_users_fast(database, "ana")["ana"]
    headers = auth(access_token_for(app, database, ana))
    with session_client(app, database, ana) as browser:
        page = browser.hx("POST", f"/projects/{ana.default_project_id}/delete")
        assert page.status_code == 409 and "default project cannot be deleted" in page.text
        api = browser.delete(
            f"/api/v1/projects/{ana.default_project_id}",
            headers={**headers, "X-CSRF-Token": browser.csrf or ""},
        )
        assert api.status_code == 409
    assert "ana-default" in _project_names(database)


def test_members_add_change_remove_and_the_last_owner_stays(
    app: FastAPI, database: Database
) -> None:
    users = make_users_fast(database, "ana", "bob", "cid")
    pid = users["ana"].default_project_id
    assert pid is not None
    ana_api = auth(access_token_for(app, database, users["ana"]))
    with session_client(app, database, users["ana"]) as browser:
        added = browser.hx(
            "POST", f"/projects/{pid}/members", data={"username": "bob", "role": "READ"}
        )
        assert added.status_code == 200 and 'id="members"' in added.text
        assert _roles(database, pid) == {"ana": "OWN", "bob": "READ"}
        browser.hx("POST", f"/projects/{pid}/members", data={"username": "bob", "role": "WRITE"})
        assert _roles(database, pid)["bob"] == "WRITE"
        unknown = browser.hx(
            "POST", f"/projects/{pid}/members", data={"username": "nobody", "role": "READ"}
        )
        assert unknown.status_code == 422 and "No active user" in unknown.text
        bad_role = browser.hx(
            "POST", f"/projects/{pid}/members", data={"username": "cid", "role": "ADMIN"}
        )
        assert bad_role.status_code == 422
        # the only owner cannot step down or be removed
        demote = browser.hx(
            "POST", f"/projects/{pid}/members", data={"username": "ana", "role": "READ"}
        )
        assert demote.status_code == 409 and "at least one owner" in demote.text
        remove_self = browser.hx("POST", f"/projects/{pid}/members/{users['ana'].id}/remove")
        assert remove_self.status_code == 409
        removed = browser.hx("POST", f"/projects/{pid}/members/{users['bob'].id}/remove")
        assert removed.status_code == 200
        assert _roles(database, pid) == {"ana": "OWN"}
    with WebClient(app) as api:
        url = f"/api/v1/projects/{pid}/members"
        made = api.post(url, json={"username": "cid", "role": "OWN"}, headers=ana_api)
        assert made.status_code == 201
        assert made.json() == {"user_id": users["cid"].id, "username": "cid", "role": "OWN"}
        assert [m["username"] for m in api.get(url, headers=ana_api).json()] == ["ana", "cid"]
        # with a second owner, ana may now step down
        down = api.post(url, json={"username": "ana", "role": "READ"}, headers=ana_api)
        assert down.status_code == 201
        assert api.delete(f"{url}/{users['bob'].id}", headers=ana_api).status_code == 403
    assert _roles(database, pid) == {"ana": "READ", "cid": "OWN"}


def test_read_member_sees_but_cannot_change(app: FastAPI, database: Database) -> None:
    users = make_users_fast(database, "ana", "bob")
    with database.session() as db:
        db.add(
            Membership(
                project_id=users["ana"].default_project_id, user_id=users["bob"].id, role=Role.READ
            )
        )
    pid = users["ana"].default_project_id
    with session_client(app, database, users["bob"]) as browser:
        page = browser.get(f"/projects/{pid}")
        assert page.status_code == 200 and "ana-default" in page.text
        assert "Rename" not in page.text and "Delete project" not in page.text
        assert "Add or change" not in page.text
        assert browser.hx("POST", f"/projects/{pid}/rename", data={"name": "x"}).status_code == 403
        listed = browser.get("/projects").text
        assert "ana-default" in listed and "role-read" in listed
    assert "x" not in _project_names(database)


def test_non_member_gets_404_everywhere(app: FastAPI, database: Database) -> None:
    users = make_users_fast(database, "ana", "eve")
    pid = users["ana"].default_project_id
    eve_api = auth(access_token_for(app, database, users["eve"]))
    with session_client(app, database, users["eve"]) as browser:
        for url in (f"/projects/{pid}", "/projects/999999"):
            page = browser.get(url)
            assert page.status_code == 404 and "ana-default" not in page.text
        for path in ("rename", "delete", "members", f"members/{users['ana'].id}/remove"):
            response = browser.hx(
                "POST",
                f"/projects/{pid}/{path}",
                data={"name": "x", "username": "eve", "role": "OWN"},
            )
            assert response.status_code == 404, path
        # the same answer for a project that exists and one that does not
        mine = browser.get(f"/api/v1/projects/{pid}", headers=eve_api)
        none = browser.get("/api/v1/projects/999999", headers=eve_api)
        assert mine.status_code == none.status_code == 404
        assert mine.json() == none.json()
        assert "ana-default" not in browser.get("/projects").text
    assert _roles(database, pid) == {"ana": "OWN"}
