"""The database half of a backup: a consistent snapshot (SQLite's online backup API, or
pg_dump inside an exported snapshot), reading what it holds, and loading it back."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from labyard.ops.manifest import BackupError
from labyard.ops.tree import ROW_FOLDERS, SQLITE_SUFFIXES

KINDS = ("sqlite", "postgresql")
PG_TIMEOUT_S = 3600
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Snapshot:
    """What a database snapshot holds: its schema revision and, per row folder of the data
    folder (labyard.ops.tree.ROW_FOLDERS), the ids of its rows."""

    revision: str
    known_ids: Mapping[str, Collection[int]]


def database_kind(url: str) -> str:
    """`sqlite` or `postgresql`; BackupError for any other database."""
    kind = make_url(url).get_backend_name()
    if kind not in KINDS:
        raise BackupError(f"backup and restore support SQLite and PostgreSQL, not {kind}")
    return kind


def sqlite_file(url: str) -> Path:
    """The file of a SQLite URL."""
    name = make_url(url).database or ""
    if not name or name == ":memory:":
        raise BackupError("the SQLite database is in memory: there is nothing to back up")
    return Path(name).resolve()


def read_snapshot(conn: Connection) -> Snapshot:
    """The revision and row ids that `conn` (inside the snapshot's transaction) sees."""
    tables = set(inspect(conn).get_table_names())
    if VERSION_TABLE not in tables:
        raise BackupError("the database has no schema yet (run `labyard migrate` first)")
    revision = conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}")) or ""
    ids = {
        folder: set(conn.scalars(text(f"SELECT id FROM {table}")))  # noqa: S608 - fixed names
        for folder, table in ROW_FOLDERS.items()
        if table in tables
    }
    return Snapshot(str(revision), ids)


def snapshot_sqlite(url: str, dump: Path) -> Snapshot:
    """Copy the SQLite database into `dump` with the online backup API (one step: one
    consistent read transaction; under WAL writers go on meanwhile)."""
    source_file = sqlite_file(url)
    if not source_file.is_file():
        raise BackupError(f"no SQLite database at {source_file}")
    source = sqlite3.connect(source_file, timeout=30)
    target = sqlite3.connect(dump)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        target.close()
        source.close()
    engine = create_engine(f"sqlite:///{dump}", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return read_snapshot(conn)
    finally:
        engine.dispose()


def libpq_args(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment that carries it
    (so no password shows in a process list)."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    uri = parsed.set(drivername="postgresql", password=None)
    return uri.render_as_string(hide_password=False), env


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _run_pg(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_S)
    if proc.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed: {proc.stderr.strip()[-2000:]}")


def snapshot_postgres(url: str, dump: Path) -> Snapshot:
    """pg_dump (custom format) of the snapshot a REPEATABLE READ transaction exports; the
    row ids are read in that same transaction, so both see the same instant."""
    pg_dump = _pg_tool("pg_dump")
    uri, env = libpq_args(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with (
            engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn,
            conn.begin(),
        ):
            exported = conn.scalar(text("SELECT pg_export_snapshot()"))
            snapshot = read_snapshot(conn)
            cmd = [pg_dump, "--format=custom", f"--snapshot={exported}", f"--file={dump}"]
            _run_pg([*cmd, f"--dbname={uri}"], env)
    finally:
        engine.dispose()
    return snapshot


def snapshot_database(url: str, dump: Path) -> Snapshot:
    """A consistent copy of the database at `url` in the file `dump` (private)."""
    kind = database_kind(url)
    snapshot = snapshot_sqlite(url, dump) if kind == "sqlite" else snapshot_postgres(url, dump)
    dump.chmod(0o600)
    return snapshot


def tables_with_rows(url: str) -> list[str]:
    """The tables of the database at `url` that hold rows (Alembic's own table aside)."""
    if database_kind(url) == "sqlite" and not sqlite_file(url).exists():
        return []
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            names = sorted(set(inspect(conn).get_table_names()) - {VERSION_TABLE})
            return [
                name
                for name in names
                if conn.scalar(text(f'SELECT 1 FROM "{name}" LIMIT 1')) is not None  # noqa: S608
            ]
    finally:
        engine.dispose()


def clear_database(url: str) -> None:
    """Drop every table of the database at `url` (SQLite: remove its files)."""
    if database_kind(url) == "sqlite":
        path = sqlite_file(url)
        for suffix in SQLITE_SUFFIXES:
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for name in inspect(conn).get_table_names():
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()


def load_database(url: str, dump: Path) -> None:
    """Load `dump` into the (empty) database at `url`: the SQLite file put in place, or
    pg_restore in one transaction (all or nothing)."""
    if database_kind(url) == "sqlite":
        path = sqlite_file(url)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_name(f".{path.name}.restoring")
        shutil.copyfile(dump, partial)
        partial.chmod(0o600)
        os.replace(partial, path)
        return
    uri, env = libpq_args(url)
    cmd = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
    _run_pg([*cmd, "--single-transaction", f"--dbname={uri}", str(dump)], env)
