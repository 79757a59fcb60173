"""Fixtures of the backup and restore tests: a fresh installation to restore into (an empty
data folder and an empty database of the suite's kind), and comparisons of two
installations (every table's rows, every file's hash)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from labyard.config import Settings
from tests import services
from tests.conftest import USE_POSTGRES, _pg_create, _pg_drop, _settings_for


@pytest.fixture
def fresh(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a second installation: a data folder that does not exist yet and an
    empty database (no tables) beside the test's own."""
    data = tmp_path / "restored"
    if not USE_POSTGRES:
        yield _settings_for(f"sqlite:///{data / 'labyard.db'}", data)
        return
    server = services.require(services.postgres_url)
    name = f"labyard_restore_{os.getpid()}_{make_url(db_url).database}"
    yield _settings_for(_pg_create(server, name), data)
    _pg_drop(server, name)


def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (all columns, sorted), Alembic's table included."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            return {
                name: sorted(
                    (tuple(row) for row in conn.execute(text(f'SELECT * FROM "{name}"'))),
                    key=repr,
                )
                for name in tables
            }
    finally:
        engine.dispose()


def tree_hashes(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under `root`, or for a link `link:` and its
    target (a target inside `root` written as `<root>/...`, so two roots compare). The SQLite
    database files are left out (compare them with table_rows)."""
    found: dict[str, str] = {}
    for folder, dirs, names in os.walk(root):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = Path(folder, name)
            key = path.relative_to(root).as_posix()
            if key.startswith("labyard.db"):
                continue
            if path.is_symlink():
                target = os.readlink(path)
                inside = os.path.isabs(target) and Path(target).is_relative_to(root)
                shown = f"<root>/{Path(target).relative_to(root)}" if inside else target
                found[key] = "link:" + shown
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def tree_modes(root: Path) -> dict[str, int]:
    """Relative path -> permission bits of every file and folder under `root` (no links)."""
    return {
        path.relative_to(root).as_posix(): path.stat().st_mode & 0o7777
        for path in root.rglob("*")
        if not path.is_symlink()
    }


from tests.integration.jobs.conftest import make_scheduler  # noqa: E402, F401 - a fixture here too
