"""Uploads: plain multipart, the tus resumable protocol (interrupt and resume, expiry,
termination), size and quota limits answered while streaming, unsafe names, concurrency."""

from __future__ import annotations

import base64
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from labyard.config import Settings
from labyard.datasets import service, uploads
from labyard.db import Database, utcnow
from tests.factories import WebClient
from tests.integration.datasets.conftest import Team, dataset_root, tree, upload


def _work_files(settings: Settings) -> list[str]:
    work = service.datasets_root(settings) / ".work"
    return sorted(p.name for p in work.iterdir()) if work.exists() else []


def test_plain_upload_into_a_folder_and_listing(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    api.post(
        f"/api/v1/datasets/{team.dataset_id}/folders", json={"name": "train"}, headers=team.owner
    )
    response = upload(api, team.owner, team.dataset_id, "cat.png", b"\x89PNG...", path="train")
    assert response.status_code == 201, response.text
    assert response.json() == [{"path": "train/cat.png", "size": 7, "task_id": None}]
    listing = api.get(
        f"/api/v1/datasets/{team.dataset_id}/files", params={"path": "train"}, headers=team.reader
    ).json()
    assert listing[0]["name"] == "cat.png" and listing[0]["path"] == "train/cat.png"
    assert listing[0]["type"] == "file" and listing[0]["size"] == 7
    body = api.get(f"/api/v1/datasets/{team.dataset_id}", headers=team.owner).json()
    assert body["file_count"] == 1 and body["size_bytes"] == 7
    assert _work_files(settings) == []


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("evil\u202egnp.exe", "evil_gnp.exe"),
        ("a" * 600 + ".png", "a" * 196 + ".png"),
        ("sub/dir/x.txt", "sub/dir/x.txt"),
    ],
)
def test_unsafe_names_are_made_safe(api: WebClient, team: Team, name: str, stored: str) -> None:
    response = upload(api, team.owner, team.dataset_id, name, b"x")
    assert response.status_code == 201, response.text
    assert response.json()[0]["path"] == stored


@pytest.mark.parametrize("name", ["..", "../escape.txt", "a/../../b", "..\\..\\win.txt"])
def test_traversing_upload_names_are_refused(
    api: WebClient, team: Team, settings: Settings, database: Database, name: str
) -> None:
    response = upload(api, team.owner, team.dataset_id, name, b"x")
    assert response.status_code == 422, response.text
    assert tree(dataset_root(settings, database, team.dataset_id)) == []
    assert tree(settings.data_dir / "datasets" / "escape.txt") == []
    assert _work_files(settings) == []


def test_upload_into_a_traversing_folder_is_404(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    for folder in ("../", "..", "%2e%2e%2f", "../../etc", "a/../../"):
        response = upload(api, team.owner, team.dataset_id, "x.txt", b"x", path=folder)
        assert response.status_code == 404, folder
    assert tree(dataset_root(settings, database, team.dataset_id)) == []
    assert _work_files(settings) == []


@pytest.fixture
def small_limits(app: FastAPI) -> Settings:
    """Limits small enough to hit: 1000 bytes per upload, 1500 bytes per project."""
    settings: Settings = app.state.settings
    settings.dataset_max_upload_bytes = 1000
    settings.dataset_project_quota_bytes = 1500
    return settings


def test_size_limit_answers_413_while_streaming_and_leaves_nothing(
    api: WebClient, team: Team, small_limits: Settings, database: Database
) -> None:
    # no Content-Length: the limit must be found while the body streams
    def body() -> object:
        boundary = b"--xyz"
        yield (
            boundary
            + b'\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        )
        for _ in range(10):
            yield b"x" * 500
        yield b"\r\n" + boundary + b"--\r\n"

    response = api.post(
        f"/api/v1/datasets/{team.dataset_id}/files",
        content=body(),
        headers={**team.owner, "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code == 413
    assert "maximum upload size of 1000 B" in response.json()["detail"]
    assert tree(dataset_root(small_limits, database, team.dataset_id)) == []
    assert _work_files(small_limits) == []
    # with Content-Length too large it is refused before reading
    assert upload(api, team.owner, team.dataset_id, "b.bin", b"y" * 3_000_000).status_code == 413


def test_project_quota_answers_413_and_leaves_nothing(
    api: WebClient, team: Team, small_limits: Settings, database: Database
) -> None:
    assert upload(api, team.owner, team.dataset_id, "a.bin", b"a" * 900).status_code == 201
    response = upload(api, team.owner, team.dataset_id, "b.bin", b"b" * 900)
    assert response.status_code == 413
    assert "quota of 1.5 KiB" in response.json()["detail"]
    assert tree(dataset_root(small_limits, database, team.dataset_id)) == ["a.bin"]
    assert _work_files(small_limits) == []
    tus = _create(api, team, 900)
    assert tus.status_code == 413 and "quota" in tus.json()["detail"]


def test_concurrent_uploads_into_one_dataset(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    results: list[int] = []

    def send(i: int) -> None:
        response = upload(api, team.writer, team.dataset_id, f"f{i}.bin", bytes([i]) * 200_000)
        results.append(response.status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 6
    root = dataset_root(settings, database, team.dataset_id)
    assert tree(root) == [f"f{i}.bin" for i in range(6)]
    assert all((root / f"f{i}.bin").read_bytes() == bytes([i]) * 200_000 for i in range(6))
    body = api.get(f"/api/v1/datasets/{team.dataset_id}", headers=team.owner).json()
    assert body["file_count"] == 6 and body["size_bytes"] == 1_200_000


# ---------------------------------------------------------------- tus


def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _create(api: WebClient, team: Team, length: int, **meta: str) -> object:
    return api.post(
        f"/api/v1/datasets/{team.dataset_id}/uploads",
        headers={
            **team.owner,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(length),
            "Upload-Metadata": _meta(filename="big.bin", **meta),
        },
    )


def _patch(api: WebClient, team: Team, url: str, offset: int, data: object) -> object:
    return api.patch(
        url,
        content=data,
        headers={
            **team.owner,
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


def test_tus_options_advertise_the_extensions(api: WebClient, team: Team) -> None:
    response = api.options(f"/api/v1/datasets/{team.dataset_id}/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "termination",
        "expiration",
    }


def _send_part_then_drop(
    live_url: str, url: str, headers: dict[str, str], part: bytes, length: int
) -> None:
    """A PATCH announcing `length` bytes whose connection breaks after `part`."""
    host, port = live_url.split(":")
    lines = [
        f"PATCH {url} HTTP/1.1",
        f"Host: {live_url}",
        f"Content-Length: {length}",
        "Tus-Resumable: 1.0.0",
        "Upload-Offset: 0",
        "Content-Type: application/offset+octet-stream",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + part)


def test_tus_interrupted_upload_resumes_from_the_confirmed_offset(
    api: WebClient, team: Team, settings: Settings, database: Database, live_url: str
) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    created = _create(api, team, len(data), relativePath="folder/big.bin")
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    assert created.headers["Upload-Expires"]
    _send_part_then_drop(live_url, url, team.owner, data[:300_000], len(data))
    deadline = time.monotonic() + 30
    while True:  # the server notices the broken connection and keeps what arrived
        head = api.head(url, headers={**team.owner, "Tus-Resumable": "1.0.0"})
        assert head.status_code == 200
        offset = int(head.headers["Upload-Offset"])
        busy = _patch(api, team, url, offset, b"")
        if offset == 300_000 and busy.status_code == 204:
            break
        assert time.monotonic() < deadline, f"offset {offset}, {busy.status_code}"
        time.sleep(0.05)
    assert head.headers["Upload-Length"] == str(len(data))
    assert tree(dataset_root(settings, database, team.dataset_id)) == []  # nothing shown yet
    wrong = _patch(api, team, url, 0, data)
    assert wrong.status_code == 409
    done = _patch(api, team, url, offset, data[offset:])
    assert done.status_code == 204 and done.headers["Upload-Offset"] == str(len(data))
    root = dataset_root(settings, database, team.dataset_id)
    assert (root / "folder" / "big.bin").read_bytes() == data
    assert api.head(url, headers={**team.owner, "Tus-Resumable": "1.0.0"}).status_code == 404
    assert _work_files(settings) == []


def test_tus_refuses_bytes_past_the_length_and_wrong_requests(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    url = _create(api, team, 10).headers["Location"]
    too_much = _patch(api, team, url, 0, b"x" * 11)
    assert too_much.status_code == 413
    head = api.head(url, headers={**team.owner, "Tus-Resumable": "1.0.0"})
    assert head.headers["Upload-Offset"] == "0"
    old = api.patch(
        url,
        content=b"x",
        headers={
            **team.owner,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert old.status_code == 412
    plain = api.patch(
        url,
        content=b"x",
        headers={
            **team.owner,
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Content-Type": "text/plain",
        },
    )
    assert plain.status_code == 415
    assert _patch(api, team, url, 0, b"y" * 10).status_code == 204
    assert tree(dataset_root(settings, database, team.dataset_id)) == ["big.bin"]
    bad = _create(api, team, 5, relativePath="../../x.bin")
    assert bad.status_code == 422


def test_tus_termination_and_expiry_remove_partial_uploads(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    url = _create(api, team, 100).headers["Location"]
    _patch(api, team, url, 0, b"z" * 40)
    assert api.delete(url, headers={**team.owner, "Tus-Resumable": "1.0.0"}).status_code == 204
    assert api.head(url, headers={**team.owner, "Tus-Resumable": "1.0.0"}).status_code == 404
    url = _create(api, team, 100).headers["Location"]
    _patch(api, team, url, 0, b"z" * 40)
    assert len(_work_files(settings)) == 1
    removed = uploads.reap_expired(settings, database, now=utcnow() + timedelta(days=2))
    assert removed == 1
    assert _work_files(settings) == []
    assert api.head(url, headers={**team.owner, "Tus-Resumable": "1.0.0"}).status_code == 404
    assert tree(dataset_root(settings, database, team.dataset_id)) == []


def test_tus_with_a_browser_session_needs_the_csrf_header(
    app: FastAPI, database: Database, team: Team, settings: Settings
) -> None:
    from sqlalchemy import select

    from labyard.auth.models import User
    from tests.factories import session_client

    with database.session() as db:
        ana = db.scalar(select(User).where(User.username == "ana"))
    assert ana is not None
    with session_client(app, database, ana) as client:
        headers = {
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "3",
            "Upload-Metadata": _meta(filename="s.txt"),
        }
        url = f"/api/v1/datasets/{team.dataset_id}/uploads"
        assert client.post(url, headers=headers).status_code == 403
        created = client.post(url, headers={**headers, "X-CSRF-Token": client.csrf or ""})
        assert created.status_code == 201
        done = client.patch(
            created.headers["Location"],
            content=b"abc",
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": "0",
                "X-CSRF-Token": client.csrf or "",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert done.status_code == 204
    assert (dataset_root(settings, database, team.dataset_id) / "s.txt").read_bytes() == b"abc"


def test_stray_work_files_of_forgotten_uploads_are_reaped(
    settings: Settings, database: Database, team: Team
) -> None:
    stray = service.work_dir(settings) / "upload-0123456789abcdef0123456789abcdef"
    stray.write_bytes(b"left over")
    old = utcnow().timestamp() - 7200
    import os

    os.utime(stray, (old, old))
    uploads.reap_expired(settings, database)
    assert not Path(stray).exists()
