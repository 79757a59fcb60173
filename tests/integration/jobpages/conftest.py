"""Fixtures of the job pages tests: users with projects, browser clients, SSE parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

from labyard.auth.models import User
from labyard.db import Database
from labyard.projects.models import Role
from labyard.projects.service import set_member
from tests.factories import WebClient, make_users_fast, session_client


@dataclass
class People:
    """ana owns a project; rita is a READ member of it; otto is an outsider."""

    ana: User
    rita: User
    otto: User

    @property
    def project_id(self) -> int:
        """ana's default project."""
        assert self.ana.default_project_id is not None
        return self.ana.default_project_id


@pytest.fixture
def people(database: Database) -> People:
    """Three users; rita gets READ on ana's project."""
    users = make_users_fast(database, "ana", "rita", "otto")
    with database.session() as db:
        ana = db.get(User, users["ana"].id)
        assert ana is not None and ana.default_project_id is not None
        set_member(db, ana, ana.default_project_id, username="rita", role=Role.READ)
    return People(users["ana"], users["rita"], users["otto"])


@pytest.fixture
def clients(app: FastAPI, database: Database, people: People) -> Iterator[dict[str, WebClient]]:
    """Logged-in browser clients of ana, rita and otto."""
    made = {
        name: session_client(app, database, getattr(people, name))
        for name in ("ana", "rita", "otto")
    }
    for client in made.values():
        client.__enter__()
    yield made
    for client in made.values():
        client.__exit__(None, None, None)


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Server-sent events of a finished stream: [{id, event, data}] (data JSON-decoded)."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            key, _, value = line.partition(": ")
            fields[key] = value
        if "event" in fields:
            fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events
