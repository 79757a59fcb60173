"""Hostile request bodies: a body the server does not want is refused before it is read;
every body and multipart parser is bounded; malformed input is a 4xx with a message.

The refusals are checked on a real socket: the client announces 1 GiB, sends 64 KiB, and the
answer arrives while the rest was never sent, so the server cannot have read, parsed or
spooled it. The limits are checked in process, with what they leave behind."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from labyard import paths
from labyard.config import Settings
from labyard.datasets import service
from labyard.datasets.models import Dataset
from labyard.db import Database
from labyard.projects.models import Project
from tests.factories import (
    WebClient,
    access_token_for,
    auth,
    make_dataset,
    make_job_row,
    make_users_fast,
    session_client,
)
from tests.serving import serve_in_thread

GIB = 1 << 30
SENT = 64 * 1024
BOUNDARY = "hostileboundary42"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
FORM = "application/x-www-form-urlencoded"


@dataclass
class Setup:
    """ana's dataset, her bearer header and a browser session (cookie header, CSRF token)."""

    dataset_id: int
    bearer: dict[str, str]
    cookie: str
    csrf: str
    pre_login_cookie: str


@pytest.fixture
def setup(app: FastAPI, database: Database, settings: Settings) -> Iterator[Setup]:
    ana = make_users_fast(database, "ana")["ana"]
    assert ana.default_project_id is not None
    dataset_id = make_dataset(database, settings, ana, ana.default_project_id, "ds")
    with session_client(app, database, ana) as browser, WebClient(app) as visitor:
        visitor.refresh_csrf("/login")
        assert browser.csrf is not None
        yield Setup(
            dataset_id,
            auth(access_token_for(app, database, ana)),
            "; ".join(f"{k}={v}" for k, v in browser.cookies.items()),
            browser.csrf,
            "; ".join(f"{k}={v}" for k, v in visitor.cookies.items()),
        )


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder of this process (the server runs in it): spooled parts land here."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _announce_and_send_little(base: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """POST announcing a 1 GiB body, send only SENT bytes of it, and read the answer (the
    server must answer without the rest). Answer (status, body text)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {GIB}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode() + b"a" * SENT)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply) < reply.find(b"\r\n\r\n") + 40:
            data = sock.recv(65536)  # a timeout here means the server waited for the body
            if not data:
                break
            reply += data
    status = int(reply.split(b" ", 2)[1])
    return status, reply.decode(errors="replace")


def _dataset_files(settings: Settings, database: Database, dataset_id: int) -> list[str]:
    with database.session() as db:
        dataset = db.get(Dataset, dataset_id)
        assert dataset is not None
        root = service.dataset_dir(settings, dataset)
    return sorted(p.name for p in root.rglob("*"))


def _work_files(settings: Settings) -> list[str]:
    work = service.datasets_root(settings) / ".work"
    return sorted(p.name for p in work.iterdir()) if work.exists() else []


REFUSED = [
    # (label, path, headers, status, message)
    ("anonymous login form", "/login", {"Content-Type": FORM}, 403, "security token"),
    ("anonymous login multipart", "/login", {"Content-Type": MULTIPART}, 403, "security token"),
    (
        "bogus session cookie",
        "/projects",
        {"Content-Type": FORM, "Cookie": "labyard_session=bogus"},
        403,
        "security token",
    ),
    (
        "bogus session cookie, upload",
        "/api/v1/datasets/{ds}/files",
        {"Content-Type": MULTIPART, "Cookie": "labyard_session=bogus", "X-CSRF-Token": "x"},
        403,
        "security token",
    ),
    ("anonymous upload", "/api/v1/datasets/{ds}/files", {"Content-Type": MULTIPART}, 401, "Log in"),
    (
        "bogus bearer token",
        "/api/v1/datasets/{ds}/files",
        {"Content-Type": MULTIPART, "Authorization": "Bearer not-a-token"},
        401,
        "Log in",
    ),
    (
        "session without CSRF header, upload",
        "/api/v1/datasets/{ds}/files",
        {"Content-Type": MULTIPART, "Cookie": "{cookie}"},
        403,
        "security token",
    ),
    (
        "session with a wrong CSRF header",
        "/projects",
        {"Content-Type": FORM, "Cookie": "{cookie}", "X-CSRF-Token": "wrong"},
        403,
        "security token",
    ),
    (
        "pre-login cookie, over the form cap",
        "/login",
        {"Content-Type": FORM, "Cookie": "{pre}"},
        413,
        "larger than the limit of 8.0 MiB",
    ),
    (
        "logged in, a form over the cap",
        "/projects",
        {"Content-Type": FORM, "Cookie": "{cookie}", "X-CSRF-Token": "{csrf}"},
        413,
        "larger than the limit",
    ),
    (
        "logged in, upload over the size limit",
        "/api/v1/datasets/{ds}/files",
        {"Content-Type": MULTIPART, "Authorization": "{bearer}"},
        413,
        "maximum upload size",
    ),
]


@pytest.mark.parametrize(("label", "path", "headers", "status", "message"), REFUSED)
def test_unwanted_body_is_refused_before_it_is_sent(
    app: FastAPI,
    settings: Settings,
    database: Database,
    setup: Setup,
    temp_dir: Path,
    label: str,
    path: str,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    settings.dataset_max_upload_bytes = GIB // 2  # the announced body is over it
    values = {
        "ds": str(setup.dataset_id),
        "cookie": setup.cookie,
        "csrf": setup.csrf,
        "pre": setup.pre_login_cookie,
        "bearer": setup.bearer["Authorization"],
    }
    sent = {k: v.format(**values) for k, v in headers.items()}
    with serve_in_thread(app) as base:
        got, text = _announce_and_send_little(base, path.format(**values), sent)
    assert got == status, text[:500]
    assert message in text
    assert list(temp_dir.iterdir()) == []
    assert _dataset_files(settings, database, setup.dataset_id) == []
    assert _work_files(settings) == []


def _multipart(*parts: tuple[str, str | None, bytes], extra_header: str = "") -> bytes:
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{extra_header}\r\n".encode()
        body += value + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def _upload(web: WebClient, setup: Setup, body: bytes) -> tuple[int, str]:
    response = web.post(
        f"/api/v1/datasets/{setup.dataset_id}/files",
        content=body,
        headers={**setup.bearer, "Content-Type": MULTIPART},
    )
    answer = response.json()
    return response.status_code, answer["detail"] if isinstance(answer, dict) else ""


LIMITS = [
    ("many text fields", [(f"f{i}", None, b"v") for i in range(17)], 413, "at most 16 text"),
    ("a long text field", [("path", None, b"p" * (64 * 1024 + 1))], 413, "longer than 64 KiB"),
    ("many files", [("file", f"{i}.txt", b"x") for i in range(4)], 413, "at most 3 files"),
]


@pytest.mark.parametrize(("label", "parts", "status", "message"), LIMITS)
def test_upload_parser_limits_answer_413_and_leave_nothing(
    app: FastAPI,
    settings: Settings,
    database: Database,
    setup: Setup,
    label: str,
    parts: list[tuple[str, str | None, bytes]],
    status: int,
    message: str,
) -> None:
    settings.upload_max_files = 3
    with WebClient(app) as web:
        got, detail = _upload(web, setup, _multipart(*parts))
    assert (got, message in detail) == (status, True), detail
    assert _dataset_files(settings, database, setup.dataset_id) == []
    assert _work_files(settings) == []


MALFORMED = [
    ("no closing boundary", _multipart(("file", "a.txt", b"x"))[:-8], "closing boundary"),
    ("garbage", b"this is not multipart at all", "malformed"),
    (
        "a huge part header",
        _multipart(("file", "a.txt", b"x"), extra_header="X: " + "h" * 9000 + "\r\n"),
        "malformed",
    ),
    (
        "too many part headers",
        _multipart(("file", "a.txt", b"x"), extra_header="X: 1\r\n" * 9),
        "malformed",
    ),
]


@pytest.mark.parametrize(("label", "body", "message"), MALFORMED)
def test_malformed_multipart_is_400_and_leaves_nothing(
    app: FastAPI,
    settings: Settings,
    database: Database,
    setup: Setup,
    label: str,
    body: bytes,
    message: str,
) -> None:
    with WebClient(app) as web:
        got, detail = _upload(web, setup, body)
    assert got == 400 and message in detail, detail
    assert _dataset_files(settings, database, setup.dataset_id) == []
    assert _work_files(settings) == []


def test_form_pages_bound_fields_and_body(
    app: FastAPI, database: Database, settings: Settings, setup: Setup
) -> None:
    ana = make_users_fast(database, "bob")["bob"]
    with session_client(app, database, ana) as browser:
        many = "&".join(f"f{i}=v" for i in range(1001)) + "&name=p1"
        response = browser.hx("POST", "/projects", content=many, headers={"Content-Type": FORM})
        assert response.status_code == 400 and "Too many fields" in response.text
        settings.request_max_body_bytes = 4096
        big = browser.hx("POST", "/projects", data={"name": "p2", "description": "d" * 5000})
        assert big.status_code == 413 and "larger than the limit of 4.0 KiB" in big.text
        broken = browser.hx(
            "POST",
            "/projects",
            content=b"--x\r\nbroken",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        assert 400 <= broken.status_code < 500
    with database.read_session() as db:  # (a page's random CSRF token may hold "p1")
        names = set(db.scalars(select(Project.name)))
    assert "p1" not in names and "p2" not in names


@pytest.mark.parametrize("offset", ["1e20", str(10**20), "-1"])
def test_out_of_range_log_offsets_are_4xx(
    app: FastAPI, database: Database, settings: Settings, setup: Setup, offset: str
) -> None:
    with database.session() as db:
        dataset = db.get(Dataset, setup.dataset_id)
        assert dataset is not None and dataset.project_id is not None
        project_id = dataset.project_id
    job_id = make_job_row(database, settings, project_id, log_lines=["hello"])
    with WebClient(app) as web:
        response = web.get(
            f"/api/v1/jobs/{job_id}/logs", params={"offset": offset}, headers=setup.bearer
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["query", "offset"]
        whole = web.get(f"/api/v1/jobs/{job_id}/logs", headers=setup.bearer)
    assert whole.status_code == 200 and "hello" in whole.text


def test_adding_files_keeps_the_dataset_counts_exact(
    app: FastAPI, database: Database, settings: Settings, setup: Setup
) -> None:
    """The counts are updated per file, not by walking the dataset: they must still agree
    with the disk after new files, a replaced file and a file in a new folder."""
    with WebClient(app) as web:
        first = [("file", f"{i}.txt", b"x" * i) for i in range(1, 6)]
        assert _upload(web, setup, _multipart(*first))[0] == 201
        again = [("file", "3.txt", b"longer now"), ("file", "sub/new.txt", b"n")]
        assert _upload(web, setup, _multipart(*again))[0] == 201
    with database.session() as db:
        dataset = db.get(Dataset, setup.dataset_id)
        assert dataset is not None
        counted = (dataset.size_bytes, dataset.file_count)
        on_disk = paths.tree_stats(service.dataset_dir(settings, dataset))
    assert counted == on_disk == (1 + 2 + 10 + 4 + 5 + 1, 6)


def test_the_token_grant_and_logins_still_take_their_small_bodies(
    app: FastAPI, database: Database, setup: Setup
) -> None:
    make_users_fast(database, "cleo")
    with WebClient(app) as web:
        grant = web.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "cleo", "password": "wrong password"},
        )
        assert grant.status_code in (400, 401) and "error" in grant.json()
        login = web.login("cleo")
        assert login.status_code == 303
