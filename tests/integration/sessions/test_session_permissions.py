"""The sessions permission matrix: every sessions route (API and pages), for every role.

A session executes code: WRITE and OWN members and admins may start, see, keep, restart and
stop it; READ members, non-members get 404 (as if there were none), anonymous gets 401 (API)
or the login redirect (pages). A refused request leaves rows and files as they were. The
proxy routes are checked against a real JupyterLab in test_session_proxy.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.models import Job
from labyard.sessions import pages as sessions_pages
from labyard.sessions.models import LabSession
from tests.factories import WebClient, permission_outcome, session_client
from tests.integration.sessions.conftest import SessionWorld

ROLES = ("anonymous", "nonmember", "READ", "WRITE", "OWN", "admin")
OK, HIDDEN, AUTH, CONFLICT = "ok", "404", "login", "409"
ANY_USER = {**dict.fromkeys(ROLES, OK), "anonymous": AUTH}
USE = {**ANY_USER, "nonmember": HIDDEN, "READ": HIDDEN}
# keeping a session that is not running is a conflict, for those who may ask at all
KEEP = {**USE, "WRITE": CONFLICT, "OWN": CONFLICT, "admin": CONFLICT}
Body = Callable[[], dict[str, Any]]


def _none() -> dict[str, Any]:
    return {}


ROUTES: dict[tuple[str, str], tuple[dict[str, str], Body]] = {
    ("GET", "/api/v1/sessions"): (ANY_USER, _none),
    ("POST", "/api/v1/labs/{lab_id}/session"): (USE, lambda: {"json": {}}),
    ("GET", "/api/v1/labs/{lab_id}/session"): (USE, _none),
    ("DELETE", "/api/v1/labs/{lab_id}/session"): (USE, _none),
    ("POST", "/api/v1/labs/{lab_id}/session/restart"): (USE, lambda: {"json": {}}),
    ("POST", "/api/v1/labs/{lab_id}/session/keep"): (KEEP, _none),
    # ------------------------------------------------ pages
    ("GET", "/sessions"): (ANY_USER, _none),
    ("GET", "/labs/{lab_id}/jupyter"): (USE, _none),
    ("GET", "/labs/{lab_id}/jupyter/panel"): (USE, _none),
    ("POST", "/labs/{lab_id}/jupyter/start"): (USE, lambda: {"data": {"flavor": "g1"}}),
    ("POST", "/labs/{lab_id}/jupyter/stop"): (USE, _none),
    ("POST", "/labs/{lab_id}/jupyter/restart"): (USE, _none),
    ("POST", "/labs/{lab_id}/jupyter/keep"): (KEEP, _none),
}
PROXY = {"/labs/{lab_id}/session/~{token}/{path}", "/labs/{lab_id}/session/{path}"}  # as listed


def test_every_sessions_route_is_in_the_matrix(app: FastAPI) -> None:
    from tests.integration.core.test_permission_matrix import iter_routes

    ours = {(m, p) for m, p, module in iter_routes(app) if module.startswith("labyard.sessions")}
    # the proxy's plain Starlette routes (listed without a path here) are the only others
    assert {(m, p) for m, p in ours if p and p not in PROXY} == set(ROUTES)
    proxied = {getattr(r, "path", "") for r in sessions_pages.router.routes}
    assert {sessions_pages.LINK_PATH, sessions_pages.PLAIN_PATH} <= proxied


def _client(world: SessionWorld, role: str, api: bool) -> WebClient:
    acting = {"nonmember": "stranger", "READ": "read", "WRITE": "write", "OWN": "own"}
    name = "boss" if role == "admin" else acting.get(role, "anonymous")
    if api or role == "anonymous":
        client = world.api(name)
        if not api:
            client.refresh_csrf("/login")  # a pre-login token, so CSRF is not what refuses
        return client
    client = session_client(world.app, world.database, world.users[name])
    world.clients.append(client)
    return client


def _state(database: Database, settings: Settings) -> tuple[Any, ...]:
    with database.read_session() as db:
        rows = [(j.id, j.status, j.stop_requested_at) for j in db.query(Job).order_by(Job.id)]
        sessions = db.query(LabSession).count()
    jobs = settings.data_dir / "jobs"
    files = sorted(str(p) for p in jobs.rglob("*")) if jobs.exists() else []
    return rows, sessions, files


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(world: SessionWorld, role: str) -> None:
    failures = []
    for (method, template), (expect, body) in ROUTES.items():
        path = template.format(lab_id=world.lab_id)
        before = _state(world.database, world.settings)
        client = _client(world, role, path.startswith("/api/"))
        kwargs = body()
        response = client.hx(method, path, **kwargs) if method != "GET" else client.get(path)
        got = permission_outcome(response, (404, 409))
        if got != expect[role]:
            failures.append(f"{method} {template}: {got} != {expect[role]} ({response.text[:120]})")
        elif got not in (OK, CONFLICT) and _state(world.database, world.settings) != before:
            failures.append(f"{method} {template}: refused ({got}) but something was written")
        if (method, template) == ("GET", "/api/v1/sessions") and got == OK:
            listed = [s["lab_id"] for s in response.json()]
            sees = role in ("WRITE", "OWN", "admin") and _live(world)
            if (world.lab_id in listed) != sees:
                failures.append(f"GET /api/v1/sessions: {role} sees {listed}")
    assert not failures, "\n".join(failures)


def _live(world: SessionWorld) -> bool:
    with world.database.read_session() as db:
        return db.query(Job).filter(Job.status.in_(("queued", "starting", "running"))).count() > 0
