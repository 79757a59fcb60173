"""The labs permission matrix: every labs route (page and API) for every role.

READ members see but cannot change (403), non-members get 404 (no existence leak),
anonymous gets 401 (API) or the login redirect (pages), WRITE/OWN members and admins may.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from labyard.auth.models import User
from labyard.datasets import service as datasets_service
from labyard.db import Database
from labyard.labs import service as labs_service
from labyard.projects import service as project_service
from labyard.projects.models import Role
from tests.factories import WebClient, make_users_fast, session_client

ROLES = ("anonymous", "nonmember", "READ", "WRITE", "OWN", "admin")
OK, DENIED, HIDDEN, AUTH = "ok", "403", "404", "login"
ANY_USER = {**dict.fromkeys(ROLES, OK), "anonymous": AUTH}
NEED_READ = {**ANY_USER, "nonmember": HIDDEN}
NEED_WRITE = {**NEED_READ, "READ": DENIED}
_fresh = itertools.count()

Body = Callable[[dict[str, Any]], dict[str, Any]]


def _none(w: dict[str, Any]) -> dict[str, Any]:
    return {}


ROUTES: dict[tuple[str, str], tuple[dict[str, str], Body]] = {
    ("GET", "/api/v1/templates"): (ANY_USER, _none),
    ("GET", "/api/v1/labs"): (ANY_USER, _none),
    ("POST", "/api/v1/labs"): (
        NEED_WRITE,
        lambda w: {"json": {"name": f"n{next(_fresh)}", "project_id": w["project_id"]}},
    ),
    ("GET", "/api/v1/labs/{lab_id}"): (NEED_READ, _none),
    ("PATCH", "/api/v1/labs/{lab_id}"): (NEED_WRITE, lambda w: {"json": {"description": "d"}}),
    ("DELETE", "/api/v1/labs/{lab_id}"): (NEED_WRITE, _none),
    ("GET", "/api/v1/labs/{lab_id}/files"): (NEED_READ, _none),
    ("GET", "/api/v1/labs/{lab_id}/files/content"): (
        NEED_READ,
        lambda w: {"params": {"path": "main.py"}},
    ),
    ("PUT", "/api/v1/labs/{lab_id}/files/content"): (
        NEED_WRITE,
        lambda w: {"json": {"path": "a.py", "content": "x"}},
    ),
    ("POST", "/api/v1/labs/{lab_id}/files"): (
        NEED_WRITE,
        lambda w: {"files": {"file": ("u.py", b"x")}, "data": {"path": ""}},
    ),
    ("POST", "/api/v1/labs/{lab_id}/folders"): (NEED_WRITE, lambda w: {"json": {"path": "d"}}),
    ("POST", "/api/v1/labs/{lab_id}/files/move"): (
        NEED_WRITE,
        lambda w: {"json": {"path": "main.py", "new_path": "m.py"}},
    ),
    ("DELETE", "/api/v1/labs/{lab_id}/files"): (
        NEED_WRITE,
        lambda w: {"params": {"path": "main.py"}},
    ),
    ("GET", "/api/v1/labs/{lab_id}/config"): (NEED_READ, _none),
    ("PUT", "/api/v1/labs/{lab_id}/config"): (
        NEED_WRITE,
        lambda w: {"json": {"content": "command: python main.py\n"}},
    ),
    ("PUT", "/api/v1/labs/{lab_id}/datasets/{dataset_id}"): (NEED_WRITE, _none),
    ("DELETE", "/api/v1/labs/{lab_id}/datasets/{dataset_id}"): (NEED_WRITE, _none),
    ("GET", "/api/v1/labs/{lab_id}/parameters"): (NEED_READ, _none),
    ("POST", "/api/v1/labs/{lab_id}/sweeps"): (NEED_WRITE, lambda w: {"json": {"params": {}}}),
    ("POST", "/api/v1/labs/{lab_id}/searches"): (
        NEED_WRITE,
        lambda w: {"json": {"search": {"metric": "Validation_acc", "trials": 1}}},
    ),
    # ------------------------------------------------ pages
    ("GET", "/labs"): (ANY_USER, _none),
    ("GET", "/templates"): (ANY_USER, _none),
    ("GET", "/projects/{project_id}/labs"): (NEED_READ, _none),
    ("POST", "/labs"): (
        NEED_WRITE,
        lambda w: {"data": {"name": f"n{next(_fresh)}", "project_id": w["project_id"]}},
    ),
    ("GET", "/labs/{lab_id}"): (NEED_READ, _none),
    ("POST", "/labs/{lab_id}/delete"): (NEED_WRITE, _none),
    ("GET", "/labs/{lab_id}/files"): (NEED_READ, lambda w: {"params": {"file": "main.py"}}),
    ("GET", "/labs/{lab_id}/files/raw"): (NEED_READ, lambda w: {"params": {"path": "pic.png"}}),
    ("GET", "/labs/{lab_id}/files/download"): (
        NEED_READ,
        lambda w: {"params": {"path": "main.py"}},
    ),
    ("POST", "/labs/{lab_id}/files/save"): (
        NEED_WRITE,
        lambda w: {"data": {"path": "main.py", "content": "x"}},
    ),
    ("POST", "/labs/{lab_id}/files/new"): (
        NEED_WRITE,
        lambda w: {"data": {"folder": "", "name": "new.py", "kind": "file"}},
    ),
    ("POST", "/labs/{lab_id}/files/rename"): (
        NEED_WRITE,
        lambda w: {"data": {"path": "main.py", "new_path": "m.py"}},
    ),
    ("POST", "/labs/{lab_id}/files/delete"): (NEED_WRITE, lambda w: {"data": {"path": "main.py"}}),
    ("GET", "/labs/{lab_id}/datasets"): (NEED_READ, _none),
    ("GET", "/labs/{lab_id}/datasets/suggest"): (NEED_READ, lambda w: {"params": {"name": "d"}}),
    ("POST", "/labs/{lab_id}/datasets"): (NEED_WRITE, lambda w: {"data": {"name": "digits"}}),
    ("POST", "/labs/{lab_id}/datasets/{dataset_id}/detach"): (NEED_WRITE, _none),
    ("GET", "/labs/{lab_id}/parameters"): (NEED_READ, _none),
    ("POST", "/labs/{lab_id}/parameters/count"): (NEED_WRITE, _none),
    ("POST", "/labs/{lab_id}/parameters/review"): (NEED_WRITE, _none),
    ("POST", "/labs/{lab_id}/sweeps"): (NEED_WRITE, _none),
    ("POST", "/labs/{lab_id}/searches"): (
        NEED_WRITE,
        lambda w: {"data": {"metric": "Validation_acc", "trials": "1"}},
    ),
    ("GET", "/labs/{lab_id}/config"): (NEED_READ, _none),
    ("POST", "/labs/{lab_id}/config"): (
        NEED_WRITE,
        lambda w: {"data": {"content": "command: python main.py\n"}},
    ),
    ("GET", "/labs/{lab_id}/jobs"): (NEED_READ, _none),
}


def test_every_labs_route_is_in_the_matrix(app: FastAPI) -> None:
    from tests.integration.core.test_permission_matrix import iter_routes

    ours = {(m, p) for m, p, module in iter_routes(app) if module.startswith("labyard.labs")}
    assert ours == set(ROUTES), (sorted(ours - set(ROUTES)), sorted(set(ROUTES) - ours))


PIXEL_PNG = bytes.fromhex(  # a 1x1 PNG, for the viewer's raw image route
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c63600000000200015f1ec9820000000049454e44ae426082"
)


def _make_world(database: Database, settings: Any) -> tuple[dict[str, User], int, int]:
    users = make_users_fast(database, "own", "write", "read", "stranger")
    with database.session() as db:
        owner = db.get(User, users["own"].id)
        assert owner is not None
        project_id = owner.default_project_id
        assert project_id is not None
        for name, role in (("write", Role.WRITE), ("read", Role.READ)):
            project_service.set_member(db, owner, project_id, username=name, role=role)
        dataset = datasets_service.create_dataset(
            db, settings, user=owner, name="mine", project_id=project_id
        )
        return users, project_id, dataset.id


def _fresh_lab(database: Database, settings: Any, owner: User, project_id: int, ds: int) -> int:
    with database.session() as db:
        actor = db.get(User, owner.id)
        assert actor is not None
        lab = labs_service.create_lab(
            db, settings, actor, project_id=project_id, name=f"m{next(_fresh)}"
        )
        labs_service.attach_dataset(db, actor, lab.id, dataset_id=ds)
        (labs_service.lab_dir(settings, lab.id) / "pic.png").write_bytes(PIXEL_PNG)
        return lab.id


def _outcome(method: str, path: str, status: int, location: str) -> str:
    if status == 401 or (status == 303 and location.startswith("/login")):
        return AUTH
    if status in (403, 404):
        return str(status)
    assert status < 400, f"{method} {path}: unexpected {status}"
    return OK


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(app: FastAPI, database: Database, settings: Any, role: str) -> None:
    users, project_id, dataset_id = _make_world(database, settings)
    acting = {"nonmember": "stranger", "READ": "read", "WRITE": "write", "OWN": "own"}
    if role == "admin":
        admin = make_users_fast(database, "boss")["boss"]
        with database.session() as db:
            db.get(User, admin.id).is_admin = True  # type: ignore[union-attr]
        client: WebClient = session_client(app, database, admin)
    elif role == "anonymous":
        client = WebClient(app)
        client.refresh_csrf("/login")  # a pre-login token, so CSRF is not what refuses
    else:
        client = session_client(app, database, users[acting[role]])
    failures = []
    with client:
        for (method, template), (expect, body) in ROUTES.items():
            lab_id = _fresh_lab(database, settings, users["own"], project_id, dataset_id)
            path = template.format(lab_id=lab_id, project_id=project_id, dataset_id=dataset_id)
            kwargs = body({"project_id": project_id})
            response = (
                client.hx(method, path, **kwargs) if method != "GET" else client.get(path, **kwargs)
            )
            got = _outcome(method, path, response.status_code, response.headers.get("location", ""))
            redirect = response.headers.get("hx-redirect", "")
            if response.status_code == 204 and redirect:
                got = AUTH if redirect.startswith("/login") else OK
            if got != expect[role]:
                failures.append(
                    f"{method} {template}: {got} != {expect[role]} ({response.text[:120]})"
                )
    assert not failures, "\n".join(failures)
