"""SQLite runs with WAL, foreign keys and a busy timeout; concurrent writers never see
"database is locked"."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from labyard.db import Database
from labyard.db.engine import SQLITE_BUSY_TIMEOUT_MS
from labyard.flavors.models import Flavor
from labyard.projects.models import Membership, Role

WRITERS = 20
TRANSACTIONS = 15


@pytest.fixture
def sqlite_database(database: Database) -> Database:
    if not database.url.startswith("sqlite"):
        pytest.skip("SQLite only (this run uses PostgreSQL)")
    return database


def test_pragmas_are_in_effect(sqlite_database: Database) -> None:
    with sqlite_database.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == SQLITE_BUSY_TIMEOUT_MS


def test_foreign_keys_are_enforced(sqlite_database: Database) -> None:
    with pytest.raises(IntegrityError), sqlite_database.session() as db:
        db.add(Membership(project_id=999_999, user_id=999_999, role=Role.READ))


def test_twenty_concurrent_writers_never_see_database_is_locked(
    sqlite_database: Database,
) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(TRANSACTIONS):
                with sqlite_database.session() as db:  # read, then write, in one transaction
                    db.scalar(select(Flavor.id).where(Flavor.name == "cpu"))
                    db.add(Flavor(name=f"w{n}-{i}", gpus=0, cpus=1.0, memory_mb=512))
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, [str(e) for e in errors[:3]]
    with sqlite_database.session() as db:
        written = db.scalars(select(Flavor.name).where(Flavor.name.like("w%"))).all()
    assert len(written) == WRITERS * TRANSACTIONS
