"""A search test's world over the real app: an owner with a project and a bearer token, a
stranger, labs holding the fake training script (made through the labs API), and what the
database and the data folder hold (to prove a refused request wrote nothing)."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.models import Job, Sweep
from labyard.searches.models import Search, SearchTrial
from tests.integration.searches.conftest import SEARCH_YML, TRAIN_SCRIPT


def search_yml(*, epochs: int = 2, extra_param: str = "") -> str:
    """The fake lab's mlsteam.yml; `extra_param` adds a typed param (`name: {type: T}`)."""
    text = SEARCH_YML.format(python=shlex.quote(sys.executable), epochs=epochs)
    if extra_param:
        name, definition = extra_param.split(":", 1)
        text = text.replace("params_definition:\n", f"  {name}: x\nparams_definition:\n")
        text = text.replace("search:\n", f"  {name}:{definition}\nsearch:\n")
    return text


def field_of(response: Any) -> str | None:
    """The field a 422 blames: a domain error's `field`, else the last part of the first
    validation error's location."""
    body = response.json()
    if isinstance(body.get("detail"), list):
        return str(body["detail"][0]["loc"][-1])
    return body.get("field")


def message_of(response: Any) -> str:
    """The text a user sees of an error answer."""
    detail = response.json()["detail"]
    return detail if isinstance(detail, str) else " ".join(str(e["msg"]) for e in detail)


@dataclass
class SearchWorld:
    """The owner's API client and project, a stranger, and helpers over the real app."""

    app: FastAPI
    database: Database
    settings: Settings
    api: TestClient
    owner: User
    other: User
    project_id: int
    headers: dict[str, str]
    other_headers: dict[str, str]

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET as the owner (or as `headers=`)."""
        kwargs.setdefault("headers", self.headers)
        return self.api.get(path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST JSON as the owner (or as `headers=`)."""
        kwargs.setdefault("headers", self.headers)
        return self.api.post(path, json=json, **kwargs)

    def make_lab(self, name: str = "fake", *, yml: str | None = None) -> int:
        """A lab (flavor tiny) with train.py and mlsteam.yml written over the labs API."""
        body = {"name": name, "project_id": self.project_id, "flavor": "tiny"}
        made = self.post("/api/v1/labs", json=body)
        assert made.status_code == 201, made.text
        lab_id = int(made.json()["id"])
        wrote = self.api.put(
            f"/api/v1/labs/{lab_id}/files/content",
            json={"path": "train.py", "content": TRAIN_SCRIPT},
            headers=self.headers,
        )
        assert wrote.status_code == 200, wrote.text
        config = self.api.put(
            f"/api/v1/labs/{lab_id}/config",
            json={"content": yml if yml is not None else search_yml()},
            headers=self.headers,
        )
        assert config.status_code == 200, config.text
        return lab_id

    def start(self, lab_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Start a search (201 expected); its JSON."""
        response = self.post(f"/api/v1/labs/{lab_id}/searches", json=body)
        assert response.status_code == 201, response.text
        started: dict[str, Any] = response.json()
        return started

    def footprint(self) -> tuple[Any, ...]:
        """Rows of sweeps, searches, trials and jobs, the files under <data_dir>/searches,
        and the folders of <data_dir>/jobs (incoming ones included; not the files inside,
        which running jobs write)."""
        with self.database.read_session() as db:
            rows = tuple(
                db.scalar(select(func.count()).select_from(table))
                for table in (Sweep, Search, SearchTrial, Job)
            )
        return (
            rows,
            _tree(self.settings.data_dir / "searches"),
            _folders(self.settings.data_dir / "jobs"),
        )


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _folders(jobs: Path) -> list[str]:
    """Each job's folder, and each prepared folder waiting in .incoming."""
    incoming = jobs / ".incoming"
    found = [p.name for p in jobs.iterdir()] if jobs.exists() else []
    found += [f".incoming/{p.name}" for p in incoming.iterdir()] if incoming.exists() else []
    return sorted(found)
