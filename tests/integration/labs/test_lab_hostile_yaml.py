"""Hostile mlsteam.yml through every way a user can write one: the Config tab and its API,
the file editor's API, an upload, a rename. Each is a 422 naming the line, and nothing is
saved; the parse happens with no write transaction open."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.labs import service
from labyard.mlsteam import CONFIG_FILE
from tests.integration.labs.conftest import LabWorld
from tests.serving import serve_in_thread

NESTED = "x: " + "[" * (256 * 1024 - 3)  # 256 KiB: within the size limit, far past the depth
HOSTILE = [
    # (case, content, line, words in the message)
    ("nested 256 KiB", NESTED, 1, "nested deeper than"),
    ("alias bomb", "command: x\na: &a [x, x]\nb: [*a, *a]\n", 2, "anchors and aliases"),
    ("bad date", "command: x\nparams:\n  d: 2024-13-45\n", 3, "2024-13-45"),
    ("huge file", "command: x\n# " + "a" * 256 * 1024 + "\n", None, "larger than 256 KiB"),
]
IDS = [case for case, *_ in HOSTILE]


def _config(world: LabWorld, lab_id: int) -> str:
    answer = world.api.get(f"/api/v1/labs/{lab_id}/config", headers=world.owner_headers)
    assert answer.status_code == 200
    text: str = answer.json()["content"]
    return text


def _assert_refused(answer: httpx.Response, line: int | None, words: str) -> None:
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert words in detail and detail.startswith(f"{CONFIG_FILE} line {line}: " if line else "")


@pytest.mark.parametrize(("case", "content", "line", "words"), HOSTILE, ids=IDS)
def test_api_saves_refuse_hostile_yaml_with_its_line(
    world: LabWorld, case: str, content: str, line: int | None, words: str
) -> None:
    lab = world.create_lab()
    before = _config(world, lab["id"])
    api, headers = world.api, world.owner_headers
    config = api.put(f"/api/v1/labs/{lab['id']}/config", json={"content": content}, headers=headers)
    _assert_refused(config, line, words)
    edit = api.put(
        f"/api/v1/labs/{lab['id']}/files/content",
        json={"path": CONFIG_FILE, "content": content},
        headers=headers,
    )
    _assert_refused(edit, line, words)
    upload = api.post(
        f"/api/v1/labs/{lab['id']}/files",
        files={"file": (CONFIG_FILE, content.encode(), "text/yaml")},
        headers=headers,
    )
    _assert_refused(upload, line, words)
    assert _config(world, lab["id"]) == before  # nothing saved


@pytest.mark.parametrize(("case", "content", "line", "words"), HOSTILE[:3], ids=IDS[:3])
def test_renaming_a_hostile_file_to_mlsteam_yml_is_refused(
    world: LabWorld, case: str, content: str, line: int | None, words: str
) -> None:
    lab = world.create_lab()
    api, headers = world.api, world.owner_headers
    gone = api.delete(
        f"/api/v1/labs/{lab['id']}/files", params={"path": CONFIG_FILE}, headers=headers
    )
    assert gone.status_code == 204  # a rename never replaces a file, so make room
    staged = api.put(
        f"/api/v1/labs/{lab['id']}/files/content",
        json={"path": "other.yml", "content": content},
        headers=headers,
    )
    assert staged.status_code == 200  # any other file may hold anything
    moved = api.post(
        f"/api/v1/labs/{lab['id']}/files/move",
        json={"path": "other.yml", "new_path": CONFIG_FILE},
        headers=headers,
    )
    _assert_refused(moved, line, words)
    listing = api.get(f"/api/v1/labs/{lab['id']}/files", headers=headers).json()
    assert {e["name"] for e in listing["entries"]} == {"main.py", "other.yml"}


@pytest.mark.parametrize(("case", "content", "line", "words"), HOSTILE[:3], ids=IDS[:3])
def test_config_tab_shows_the_line_inline_and_saves_nothing(
    world: LabWorld, case: str, content: str, line: int | None, words: str
) -> None:
    lab = world.create_lab()
    before = _config(world, lab["id"])
    with world.web_for(world.owner) as web:
        answer = web.hx("POST", f"/labs/{lab['id']}/config", data={"content": content})
    assert answer.status_code == 200  # an inline form error in the Config tab
    assert f"line {line}" in answer.text and words.split()[0] in answer.text
    assert _config(world, lab["id"]) == before


def test_file_work_runs_with_no_write_transaction_open(world: LabWorld) -> None:
    """After the permission check, the request's transaction is over: another writer can
    take SQLite's write lock at once while the file is parsed."""
    lab = world.create_lab()
    with world.database.sessionmaker() as db:
        user = db.get(User, world.owner.id)
        assert user is not None
        found = service.lab_for_file_work(db, user, lab["id"])
        assert found.id == lab["id"] and not db.in_transaction()
        _write_now(world, db)


def _write_now(world: LabWorld, db: Session) -> None:
    url = world.database.url
    if not url.startswith("sqlite"):
        return  # PostgreSQL has no database-wide write lock; in_transaction() said enough
    path = url.split("///", 1)[1]
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # "database is locked" at once if anyone holds it
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_a_concurrent_write_during_a_hostile_save_is_not_blocked(world: LabWorld) -> None:
    """Through a real server: the 256 KiB nested save and a write to the same lab, sent
    together, both answer (422 and 200); no "database is locked"."""
    lab = world.create_lab()
    before = _config(world, lab["id"])
    answers: dict[str, Any] = {}
    start = threading.Barrier(2)
    with serve_in_thread(world.app) as base:

        def send(name: str, method: str, path: str, body: dict[str, Any]) -> None:
            with httpx.Client(base_url=base, headers=world.owner_headers, timeout=120) as c:
                start.wait()
                answers[name] = c.request(method, path, json=body)

        threads = [
            threading.Thread(
                target=send,
                args=("save", "PUT", f"/api/v1/labs/{lab['id']}/config", {"content": NESTED}),
            ),
            threading.Thread(
                target=send,
                args=("write", "PATCH", f"/api/v1/labs/{lab['id']}", {"description": "mine"}),
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    _assert_refused(answers["save"], 1, "nested deeper than")
    assert answers["write"].status_code == 200, answers["write"].text
    assert answers["write"].json()["description"] == "mine"
    assert _config(world, lab["id"]) == before
