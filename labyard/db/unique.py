"""Unique names under concurrent writers: a violation becomes the pre-check's domain error.

Services check a name before inserting it and raise Conflict when it is taken. On PostgreSQL
two requests can both pass that check; the second insert then waits for the first and fails
with a UniqueViolation. Changes made through `save_unique` are flushed in a SAVEPOINT, so the
violation arrives there (not at commit: no unique constraint here is DEFERRABLE) and is turned
into the same error the pre-check raises, with the session still usable. SQLite queues writers
at BEGIN IMMEDIATE (db.engine), so there the pre-check alone decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labyard.errors import DomainError

# sqlite3's message names the columns, not the constraint: "UNIQUE constraint failed: t.a, t.b"
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)")


@cache
def _unique_names() -> dict[tuple[str, frozenset[str]], str]:
    """(table, column names) -> name of every unique constraint and unique index."""
    import labyard.db.models  # noqa: F401 - registers every table
    from labyard.db.base import Base

    names: dict[tuple[str, frozenset[str]], str] = {}
    for table in Base.metadata.tables.values():
        uniques: list[UniqueConstraint | Index] = [
            c for c in table.constraints if isinstance(c, UniqueConstraint)
        ]
        uniques += [i for i in table.indexes if i.unique]
        for unique in uniques:
            columns = frozenset(column.name for column in unique.columns)
            names[(table.name, columns)] = str(unique.name)
    return names


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the unique constraint (or unique index) that refused a write, if any."""
    diag = getattr(exc.orig, "diag", None)  # psycopg
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    match = _SQLITE_UNIQUE.search(str(exc.orig))
    if match is None:
        return None
    qualified = [part.split(".", 1) for part in match.group(1).split(", ")]
    table = qualified[0][0]
    return _unique_names().get((table, frozenset(column for _, column in qualified)))


def saved_unless_taken(db: Session, constraint: str, change: Callable[[], object]) -> bool:
    """Make `change` (e.g. `lambda: db.add(row)`) and flush it in a SAVEPOINT: True when it was
    written, False when `constraint` refused it (a concurrent writer got there first; the
    change is rolled back, the transaction goes on). Other errors propagate."""
    if constraint not in _unique_names().values():
        raise ValueError(f"no unique constraint or index named {constraint!r}")
    db.flush()  # earlier changes are not part of the savepoint
    try:
        with db.begin_nested():
            change()
            db.flush()
    except IntegrityError as exc:
        if violated_constraint(exc) != constraint:
            raise
        return False
    return True


def save_unique(
    db: Session, constraint: str, taken: DomainError, change: Callable[[], object]
) -> None:
    """`saved_unless_taken`, raising `taken` (the pre-check's own error) when refused."""
    if not saved_unless_taken(db, constraint, change):
        raise taken
