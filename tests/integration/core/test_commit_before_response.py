"""A response leaves only after its transaction committed, through a real server socket.

FastAPI runs the exit code of a request-scoped dependency with `yield` after the response body
is sent; `get_db` used to commit there, so a client could see `204` and act on it before the
write existed. These tests race the next request against the commit.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from labyard.auth.models import LoginFailure
from labyard.db import Database
from labyard.db.oncommit import on_commit
from labyard.projects.models import Membership
from labyard.web.deps import SessionDep
from tests.factories import access_token_for, auth, make_users_fast
from tests.serving import serve_in_thread

TRIES = 40


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a loopback port."""
    with serve_in_thread(app) as url:
        yield url


def test_revoked_member_cannot_read_right_after_the_delete(
    app: FastAPI, database: Database, base_url: str
) -> None:
    users = make_users_fast(database, "owner", "guest")
    owner, guest = users["owner"], users["guest"]
    project_id = owner.default_project_id
    owner_auth = auth(access_token_for(app, database, owner))
    guest_auth = auth(access_token_for(app, database, guest))
    allowed_after_revoke = refused_after_add = 0
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(TRIES):
            added = client.post(
                f"/api/v1/projects/{project_id}/members",
                json={"username": "guest", "role": "READ"},
                headers=owner_auth,
            )
            assert added.status_code == 201, added.text
            if client.get(f"/api/v1/projects/{project_id}", headers=guest_auth).status_code != 200:
                refused_after_add += 1
            removed = client.delete(
                f"/api/v1/projects/{project_id}/members/{guest.id}", headers=owner_auth
            )
            assert removed.status_code == 204, removed.text
            read = client.get(f"/api/v1/projects/{project_id}", headers=guest_auth)
            if read.status_code == 200:
                allowed_after_revoke += 1
            else:
                assert read.status_code == 404, read.text
    figures = f"{allowed_after_revoke} reads allowed after revoke, {refused_after_add} refused"
    assert (allowed_after_revoke, refused_after_add) == (0, 0), f"{figures} after add ({TRIES})"


def test_a_204_means_the_row_is_committed(app: FastAPI, database: Database, base_url: str) -> None:
    """Each 204 is checked from a separate connection the moment it arrives."""
    users = make_users_fast(database, "owner", "guest")
    owner, guest = users["owner"], users["guest"]
    project_id = owner.default_project_id
    owner_auth = auth(access_token_for(app, database, owner))
    still_there = missing = 0
    query = select(Membership.user_id).where(
        Membership.project_id == project_id, Membership.user_id == guest.id
    )
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(TRIES):
            added = client.post(
                f"/api/v1/projects/{project_id}/members",
                json={"username": "guest", "role": "READ"},
                headers=owner_auth,
            )
            assert added.status_code == 201, added.text
            with database.read_session() as db:
                missing += db.scalar(query) is None  # a 201 must be committed too
            removed = client.delete(
                f"/api/v1/projects/{project_id}/members/{guest.id}", headers=owner_auth
            )
            assert removed.status_code == 204, removed.text
            with database.read_session() as db:
                if db.scalar(query) is not None:
                    still_there += 1
    assert (still_there, missing) == (0, 0), (
        f"of {TRIES}: {still_there} 204s and {missing} 201s arrived before their commit"
    )


def test_a_failing_commit_is_answered_as_an_error(
    app: FastAPI, database: Database, base_url: str
) -> None:
    """A write that only fails at COMMIT (a duplicate key flushed then) must not answer 200."""
    with database.session() as db:
        db.add(LoginFailure(key="taken", count=1))

    def write_a_duplicate(db: SessionDep) -> dict[str, str]:
        db.add(LoginFailure(key="taken", count=99))  # flushed only by the commit
        return {"status": "done"}

    app.add_api_route("/api/v1/test-duplicate", write_a_duplicate, methods=["POST"])
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.post("/api/v1/test-duplicate")
    assert response.status_code >= 400 and "done" not in response.text
    with database.read_session() as db:
        assert db.get(LoginFailure, "taken").count == 1  # type: ignore[union-attr]


def test_on_commit_runs_after_commit_and_never_after_rollback(database: Database) -> None:
    ran: list[str] = []
    with database.session() as db:
        on_commit(db, lambda: ran.append("committed"))
        db.add(LoginFailure(key="k1", count=1))
        assert ran == []  # not before the commit
    assert ran == ["committed"]
    with database.sessionmaker() as db:
        on_commit(db, lambda: ran.append("rolled back"))
        db.add(LoginFailure(key="k2", count=1))
        db.flush()
        db.rollback()  # the request failed
        db.add(LoginFailure(key="k3", count=1))
        db.commit()  # a later commit of the same session does not run the dropped action
        assert db.get(LoginFailure, "k2") is None
    assert ran == ["committed"]


def test_a_failing_action_after_commit_keeps_the_commit(database: Database) -> None:
    def boom() -> None:
        raise OSError("the worker pool is gone")

    with database.session() as db:
        on_commit(db, boom)
        db.add(LoginFailure(key="kept", count=1))
    with database.read_session() as db:
        assert db.get(LoginFailure, "kept") is not None
