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

from labyard.db import Database
from labyard.projects.models import Membership
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
