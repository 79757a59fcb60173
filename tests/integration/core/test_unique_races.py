"""Twenty writers racing to create the same name over real HTTP: exactly one row, one success,
every other answer the pre-check's own 409 and message, never a 500. On PostgreSQL the writers
really overlap (SQLite queues them at BEGIN IMMEDIATE, so there the pre-check decides)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets.models import Dataset
from labyard.db import Database
from labyard.db.unique import saved_unless_taken
from labyard.flavors.models import Flavor
from labyard.labs.models import Lab, LabDataset
from labyard.projects.models import Membership
from tests.factories import access_token_for, auth, make_dataset, make_users_fast
from tests.serving import serve_in_thread

WRITERS = 20


def race(
    app: FastAPI, database: Database, user: User, method: str, path: str, body: Any = None
) -> list[Any]:
    """Send the same request as `user` from WRITERS threads released at once, each with a token
    of its own (one shared token's last-use update would queue them on its row); the answers."""
    tokens = [access_token_for(app, database, user) for _ in range(WRITERS)]
    answers: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)
    with serve_in_thread(app) as url:

        def writer(token: str) -> None:
            try:
                with httpx.Client(base_url=url, headers=auth(token), timeout=120) as client:
                    start.wait()
                    answers.append(client.request(method, path, json=body))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(token,)) for token in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors, [repr(e) for e in errors[:3]]
    return answers


def one_wins(answers: list[Any], created: int, message: str) -> None:
    """Exactly one `created`, every other answer 409 with `message`."""
    codes = Counter(a.status_code for a in answers)
    assert codes == {created: 1, 409: WRITERS - 1}, (codes, [a.text for a in answers][:3])
    assert {a.json()["detail"] for a in answers if a.status_code == 409} == {message}


def all_succeed(answers: list[Any], code: int) -> None:
    """Idempotent writes: every racer gets `code`."""
    codes = Counter(a.status_code for a in answers)
    assert codes == {code: WRITERS}, (codes, [a.text for a in answers][:3])


def count(database: Database, model: type[Any], *where: Any) -> int:
    with database.read_session() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where)) or 0


@pytest.fixture
def owner(database: Database) -> User:
    return make_users_fast(database, "racer")["racer"]


@pytest.fixture
def admin(database: Database) -> User:
    with database.session() as db:
        user = db.scalar(select(User).where(User.username == "admin"))
    assert user is not None
    return user


@pytest.mark.slow
def test_labs(app: FastAPI, database: Database, owner: User) -> None:
    project_id = owner.default_project_id
    body = {"project_id": project_id, "name": "same"}
    answers = race(app, database, owner, "POST", "/api/v1/labs", body)
    one_wins(answers, 201, "This project already has a lab named 'same'.")
    assert count(database, Lab, Lab.project_id == project_id, Lab.name == "same") == 1


@pytest.mark.slow
def test_project_datasets(app: FastAPI, database: Database, owner: User) -> None:
    project_id = owner.default_project_id
    body = {"project_id": project_id, "name": "same"}
    answers = race(app, database, owner, "POST", "/api/v1/datasets", body)
    one_wins(answers, 201, "A dataset named 'same' already exists here.")
    assert count(database, Dataset, Dataset.name == "same") == 1


@pytest.mark.slow
def test_public_datasets(app: FastAPI, database: Database, admin: User) -> None:
    body = {"name": "same", "public": True}
    answers = race(app, database, admin, "POST", "/api/v1/datasets", body)
    one_wins(answers, 201, "A dataset named 'same' already exists here.")
    assert count(database, Dataset, Dataset.name == "same") == 1


@pytest.mark.slow
def test_users(app: FastAPI, database: Database, admin: User) -> None:
    body = {"username": "twin", "password": "a long enough password"}
    answers = race(app, database, admin, "POST", "/api/v1/users", body)
    one_wins(answers, 201, "User 'twin' already exists.")
    assert count(database, User, User.username == "twin") == 1


@pytest.mark.slow
def test_flavors(app: FastAPI, database: Database, admin: User) -> None:
    body = {"name": "same", "cpus": 1.0, "memory_mb": 512}
    answers = race(app, database, admin, "POST", "/api/v1/flavors", body)
    one_wins(answers, 201, "Flavor 'same' already exists.")
    assert count(database, Flavor, Flavor.name == "same") == 1


@pytest.mark.slow
def test_members(app: FastAPI, database: Database, owner: User) -> None:
    """Adding a member is an upsert: every racer succeeds and one membership exists."""
    member = make_users_fast(database, "joiner")["joiner"]
    project_id = owner.default_project_id
    body = {"username": "joiner", "role": "WRITE"}
    answers = race(app, database, owner, "POST", f"/api/v1/projects/{project_id}/members", body)
    all_succeed(answers, 201)
    where = (Membership.project_id == project_id, Membership.user_id == member.id)
    assert count(database, Membership, *where) == 1


@pytest.mark.slow
def test_attaching_a_dataset(
    app: FastAPI, database: Database, settings: Settings, owner: User
) -> None:
    """Attaching is idempotent: every racer succeeds and the dataset is attached once."""
    project_id = owner.default_project_id
    with database.session() as db:
        lab = Lab(project_id=project_id, name="lab", flavor="cpu")
        db.add(lab)
    dataset_id = make_dataset(database, settings, owner, project_id, "data")
    answers = race(app, database, owner, "PUT", f"/api/v1/labs/{lab.id}/datasets/{dataset_id}")
    all_succeed(answers, 200)
    assert count(database, LabDataset, LabDataset.lab_id == lab.id) == 1


def test_no_unique_check_waits_for_commit() -> None:
    """save_unique maps violations at flush; a DEFERRABLE constraint would fail at commit,
    after the endpoint returned, as a 500."""
    import labyard.db.models  # noqa: F401 - registers every table
    from labyard.db import Base

    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            assert not constraint.deferrable, (table.name, constraint.name)


def test_a_misspelled_constraint_is_refused(database: Database) -> None:
    with database.session() as db, pytest.raises(ValueError, match="uq_labs_name"):
        saved_unless_taken(db, "uq_labs_name", lambda: None)
