"""Fixtures of the labs tests: an owner with a project, API and browser-like clients."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.projects import service as project_service
from labyard.projects.models import Role
from tests.factories import WebClient, access_token_for, auth, make_users_fast, session_client


@dataclass
class LabWorld:
    """An owner with a project, a second user outside it, and their API clients."""

    app: FastAPI
    database: Database
    settings: Settings
    owner: User
    other: User
    project_id: int
    api: TestClient
    owner_headers: dict[str, str]
    other_headers: dict[str, str]

    def create_lab(self, name: str = "lab1", **extra: Any) -> dict[str, Any]:
        """A lab made through the API (201 expected)."""
        body = {"name": name, "project_id": self.project_id, **extra}
        response = self.api.post("/api/v1/labs", json=body, headers=self.owner_headers)
        assert response.status_code == 201, response.text
        lab: dict[str, Any] = response.json()
        return lab

    def add_member(self, user: User, role: Role) -> None:
        """Give `user` a role in the project."""
        with self.database.session() as db:
            owner = db.get(User, self.owner.id)
            assert owner is not None
            project_service.set_member(
                db, owner, self.project_id, username=user.username, role=role
            )

    def headers_for(self, user: User) -> dict[str, str]:
        """Bearer headers of `user`."""
        return auth(access_token_for(self.app, self.database, user))

    def web_for(self, user: User) -> WebClient:
        """A logged-in browser-like client of `user` (close it after use)."""
        return session_client(self.app, self.database, user)


@pytest.fixture
def world(app: FastAPI, database: Database, settings: Settings) -> Iterator[LabWorld]:
    """The labs tests' starting point."""
    users = make_users_fast(database, "owner", "other")
    owner, other = users["owner"], users["other"]
    assert owner.default_project_id is not None
    with TestClient(app) as api:
        yield LabWorld(
            app=app,
            database=database,
            settings=settings,
            owner=owner,
            other=other,
            project_id=owner.default_project_id,
            api=api,
            owner_headers=auth(access_token_for(app, database, owner)),
            other_headers=auth(access_token_for(app, database, other)),
        )
