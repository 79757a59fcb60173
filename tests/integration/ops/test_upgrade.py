"""Upgrading a database made by the previous release, with rows in every table, to the
newest schema keeps every row and value, and the application starts on it.

The previous release is revision c9e3f5a7pubname (2026-12-02), the last before searches
(20261206), lab sessions, Slurm placement and notifications were added in one release
window (issues 11-13): installations in use run that schema, and upgrades must work from
it. The filler is generic: it reflects the tables that revision made and inserts
ROWS rows into each with values of the column's type (as the current models bind them),
row i of a child pointing at row i of its parent; nullable foreign keys are set after
every table is filled, which also closes the users <-> projects cycle.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.pool import NullPool

import labyard.db.models  # noqa: F401 - registers every current table
from labyard.app import create_app
from labyard.auth.passwords import hash_password
from labyard.bootstrap import alembic_config
from labyard.config import Settings
from labyard.db import Base, Database
from tests.factories import ADMIN_PASSWORD, WebClient

PREVIOUS_RELEASE = "c9e3f5a7pubname"
ROWS = 3
LIST_JSON = {("jobs", "command"), ("jobs", "assigned_gpus"), ("jobs", "datasets")}


@functools.cache
def _admin_hash() -> str:
    """The admin's password hash, made once (argon2 takes a while)."""
    hashed: str = hash_password(ADMIN_PASSWORD)
    return hashed


OVERRIDES: dict[tuple[str, str], Any] = {  # values the pages read as more than their type
    ("users", "username"): lambda i: "admin" if i == 1 else f"user{i}",
    ("users", "password_hash"): lambda i: _admin_hash(),
    ("users", "is_admin"): lambda i: i == 1,
    ("users", "is_active"): lambda i: True,
    ("jobs", "status"): lambda i: "succeeded",
    ("jobs", "executor"): lambda i: "local",
    ("tensorboards", "status"): lambda i: "stopped",
    ("dataset_tasks", "status"): lambda i: "done",
    ("metric_points", "x_name"): lambda i: "step",
    ("metric_series", "x_name"): lambda i: "step",
}


def _value(table: str, column: sa.Column[Any], kind: Any, i: int) -> Any:
    """A value for row i (1-based) of the reflected `column` of `table`, unique within the
    column; `kind` is the type the current models bind it with (an Enum's names, JSON)."""
    if (table, column.name) in OVERRIDES:
        return OVERRIDES[(table, column.name)](i)
    if column.foreign_keys:
        return None if column.nullable else i
    python = column.type.python_type
    if column.primary_key and python is int:
        return i
    if isinstance(kind, sa.Enum):
        return kind.enums[i % len(kind.enums)]
    if isinstance(kind, sa.JSON):
        return ["x", str(i)] if (table, column.name) in LIST_JSON else {"k": i}
    if python is bool:
        return i % 2 == 1
    if python is int:
        return 10 * i + 3
    if python is float:
        return i + 0.25
    if python is datetime:
        return datetime(2026, 12, 1, 12, i, 30, tzinfo=UTC)
    text = f"{column.name}-{i}"
    length = getattr(column.type, "length", None)
    return text[-length:] if length else text


def _insert_table(reflected: sa.Table) -> sa.Table:
    """`reflected` with the current models' column types, so values bind as the app's do."""
    current = Base.metadata.tables.get(reflected.name)
    columns = [
        sa.Column(
            c.name,
            current.c[c.name].type if current is not None and c.name in current.c else c.type,
            primary_key=c.primary_key,
        )
        for c in reflected.columns
    ]
    return sa.Table(reflected.name, sa.MetaData(), *columns)


def _link_rows(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Point row i's nullable foreign keys of the reflected `table` at row i of their
    parents (the rows as inserted)."""
    nullable = [c.name for c in table.columns if c.foreign_keys and c.nullable]
    for i, row in enumerate(rows, start=1):
        if nullable:
            match = [c == row[c.name] for c in table.primary_key.columns]
            conn.execute(table.update().where(*match).values(dict.fromkeys(nullable, i)))


def _nullable(key: sa.ForeignKeyConstraint | sa.ForeignKey) -> bool:
    """A foreign key (SQLAlchemy passes a ForeignKey, its stubs say a constraint) whose
    columns may be NULL: left out of the insert order, set after every table is filled."""
    columns = key.columns if isinstance(key, sa.ForeignKeyConstraint) else [key.parent]
    return all(column.nullable for column in columns)


def fill_every_table(url: str) -> list[str]:
    """ROWS rows in every table of the database at `url` but Alembic's; the table names."""
    engine = sa.create_engine(url, poolclass=NullPool)
    meta = sa.MetaData()
    meta.reflect(engine)
    tables = [t for t in meta.tables.values() if t.name != "alembic_version"]
    order = sa.schema.sort_tables(tables, skip_fn=_nullable)
    with engine.begin() as conn:
        made = []
        for table in order:
            target = _insert_table(table)
            rows = [
                {c.name: _value(table.name, c, target.c[c.name].type, i) for c in table.columns}
                for i in range(1, ROWS + 1)
            ]
            conn.execute(target.insert(), rows)
            made.append((table, rows))
        for table, rows in made:  # nullable foreign keys last: every parent row exists now
            _link_rows(conn, table, rows)
        if engine.dialect.name == "postgresql":  # explicit ids leave sequences behind
            for table in (t for t in order if "id" in t.c and t.c.id.autoincrement):
                sequence = f"pg_get_serial_sequence('{table.name}', 'id')"
                conn.execute(
                    sa.text(f"SELECT setval({sequence}, {ROWS}) WHERE {sequence} IS NOT NULL")
                )
    engine.dispose()
    return sorted(t.name for t in tables)


def rows_of(url: str, tables: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every row of `tables` as a column -> value mapping, in a stable order."""
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        found = {
            name: sorted(
                (dict(row) for row in conn.execute(sa.text(f'SELECT * FROM "{name}"')).mappings()),
                key=repr,
            )
            for name in tables
        }
    engine.dispose()
    return found


def test_a_previous_release_database_with_data_in_every_table_upgrades_intact(
    fresh: Settings,
) -> None:
    url = fresh.resolved_database_url
    fresh.data_dir.mkdir(parents=True)
    command.upgrade(alembic_config(url), PREVIOUS_RELEASE)
    tables = fill_every_table(url)
    assert len(tables) == 19 and {"users", "jobs", "metric_buckets"} <= set(tables)
    before = rows_of(url, tables)
    assert all(len(rows) == ROWS for rows in before.values())

    command.upgrade(alembic_config(url), "head")

    after = rows_of(url, tables)
    for name in tables:  # same rows; every old column keeps its values
        old_columns = before[name][0].keys()
        kept = sorted(({k: row[k] for k in old_columns} for row in after[name]), key=repr)
        assert kept == before[name], name
    assert {row["kind"] for row in after["sweeps"]} == {"sweep"}  # new columns' defaults
    assert {row["stop_status"] for row in after["jobs"]} == {"stopped"}
    assert {row["node"] for row in after["jobs"]} == {""}
    database = Database(url)
    try:
        with WebClient(create_app(fresh, database=database)) as client:
            health = client.get("/healthz")
            assert health.status_code == 200, health.text
            client.login("admin", ADMIN_PASSWORD)
            projects = client.get("/api/v1/projects")
            assert projects.status_code == 200
            assert "name-1" in {p["name"] for p in projects.json()}
            jobs = client.get("/api/v1/jobs")
            assert jobs.status_code == 200 and len(jobs.json()) >= 1
    finally:
        database.dispose()
