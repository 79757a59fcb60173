"""Fixtures of the datasets tests: a project with an owner, a WRITE and a READ member, an
outsider; their API tokens; a dataset in the project; helpers for archives and tasks."""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from labyard.config import Settings
from labyard.datasets import service
from labyard.datasets.models import Dataset
from labyard.db import Database
from tests.factories import (
    WebClient,
    access_token_for,
    add_member,
    auth,
    make_dataset,
    make_users_fast,
)


@dataclass
class Team:
    """Who is who in the datasets tests, with ready Authorization headers."""

    project_id: int
    dataset_id: int
    owner: dict[str, str]
    writer: dict[str, str]
    reader: dict[str, str]
    outsider: dict[str, str]


@pytest.fixture
def api(app: FastAPI) -> Iterator[WebClient]:
    """A client for the JSON API with the app's lifespan (task pool) running."""
    with WebClient(app) as client:
        yield client


@pytest.fixture
def team(app: FastAPI, database: Database, settings: Settings) -> Team:
    """ana owns project `lab` with dataset `ds`; will has WRITE, rita READ; olga nothing."""
    users = make_users_fast(database, "ana", "will", "rita", "olga")
    project_id = users["ana"].default_project_id
    assert project_id is not None
    add_member(database, project_id, users["will"], "WRITE")
    add_member(database, project_id, users["rita"], "READ")
    dataset_id = make_dataset(database, settings, users["ana"], project_id, "ds")

    def headers(name: str) -> dict[str, str]:
        return auth(access_token_for(app, database, users[name]))

    return Team(
        project_id, dataset_id, headers("ana"), headers("will"), headers("rita"), headers("olga")
    )


def dataset_root(settings: Settings, database: Database, dataset_id: int) -> Path:
    """The folder of a dataset on disk."""
    with database.session() as db:
        dataset = db.get(Dataset, dataset_id)
        assert dataset is not None
        return service.dataset_dir(settings, dataset)


def tree(folder: Path) -> list[str]:
    """Every path under `folder`, relative and sorted (empty list for a missing folder)."""
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def upload(
    client: WebClient,
    headers: dict[str, str],
    dataset_id: int,
    name: str,
    data: bytes,
    **fields: str,
) -> object:
    """A plain multipart upload."""
    return client.post(
        f"/api/v1/datasets/{dataset_id}/files",
        files={"file": (name, data)},
        data=fields,
        headers=headers,
    )


def wait_task(client: WebClient, headers: dict[str, str], task_id: int) -> dict[str, object]:
    """Poll a task until it has finished; its JSON."""
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, object] = client.get(
            f"/api/v1/dataset-tasks/{task_id}", headers=headers
        ).json()
        if body["status"] in ("done", "failed", "cancelled"):
            return body
        assert time.monotonic() < deadline, f"task still {body['status']}"
        time.sleep(0.02)


def tar_bytes(entries: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    """A tar archive of (name, data) files and prepared TarInfo entries (links, devices)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                archive.addfile(info, io.BytesIO(entry[1]))
    return buffer.getvalue()


def zip_bytes(entries: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive of (name, data) files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def live_url(app: FastAPI) -> Iterator[str]:
    """The base URL of a real uvicorn server running this test's app (for raw sockets)."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
